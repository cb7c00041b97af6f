"""Push channels: the provider tells us when a checked calendar changes, and we sync it at once.

Google's events.watch channels and Graph's subscriptions both POST to a URL of ours
(integrations/calendars/webhooks.py) with a token we chose when we asked for the channel:
Google's X-Goog-Channel-Token, Graph's clientState. The token is derived from the calendar's
primary key with the site's secret key (`token_for`), so nothing secret is stored and a
notification is checked without a look-up beyond the calendar itself. One rule for both
providers, because Graph chooses a subscription's id itself and it can't be known before the
subscription exists; a channel renewed under a new id (Google) keeps the calendar's token.

Channels live a few days; the sweep renews them a day before they expire and makes one for every
checked calendar that has none. Push needs a URL the provider can reach: without it
(`push_enabled()` False) calendars are polled instead. `channel_expires_at` on a calendar without
a channel says when to try making one again after the provider refused.
"""

import logging
import uuid
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone
from django.utils.crypto import constant_time_compare, salted_hmac

from .. import http, registry
from ..base import ProviderResponseError, PushChannel
from ..models import Calendar, Connection
from ..tokens import ConnectionBroken, call_with_token

logger = logging.getLogger(__name__)

SALT = "integrations.calendars.push"
RENEW_BEFORE = timedelta(days=1)
# How long a channel is asked for. Google allows weeks but ends channels when it likes; Graph
# allows at most 4230 minutes for calendar events in older documentation (10080 in newer), so ask
# for the lower one and renew.
CHANNEL_LIFETIME = {"google": timedelta(days=7), "microsoft": timedelta(minutes=4230)}
DEFAULT_CHANNEL_LIFETIME = timedelta(days=3)
# A provider that refused a channel for good (a calendar that can't be watched) is asked again
# this much later; one that was down, after a polling interval.
RETRY_REFUSED_CHANNEL = timedelta(days=1)
BATCH = 200


def push_enabled() -> bool:
    """Whether providers can reach our webhooks: CALENDAR_PUSH "on", or "auto" with an https:// SITE_URL."""
    mode = settings.CALENDAR_PUSH
    return mode == "on" or (mode == "auto" and settings.SITE_URL.startswith("https://"))


def address(provider_key: str) -> str:
    """Where the provider posts its notifications: built from SITE_URL, never from a request."""
    return settings.SITE_URL + reverse(f"integrations:{provider_key}_calendar_push")


def channel_token(seed: str, *, secret: str | None = None) -> str:
    return salted_hmac(SALT, seed, secret=secret, algorithm="sha256").hexdigest()


def token_for(calendar: Calendar) -> str:
    return channel_token(f"calendar:{calendar.pk}")


def token_matches(calendar: Calendar, given: str | None) -> bool:
    """Constant-time check of a notification's token. Tokens made before a secret key rotation
    stay good while the old key is in SECRET_KEY_FALLBACKS (a Graph renewal keeps the old one)."""
    if not given:
        return False
    seed = f"calendar:{calendar.pk}"
    secrets = [settings.SECRET_KEY, *settings.SECRET_KEY_FALLBACKS]
    return any(constant_time_compare(channel_token(seed, secret=secret), given) for secret in secrets)


def lifetime(provider_key: str) -> timedelta:
    return CHANNEL_LIFETIME.get(provider_key, DEFAULT_CHANNEL_LIFETIME)


def channel_of(calendar: Calendar) -> PushChannel:
    return PushChannel(
        channel_id=calendar.channel_id,
        resource_id=calendar.channel_resource_id,
        expires_at=calendar.channel_expires_at or timezone.now(),
    )


def channel_as_dict(channel: PushChannel) -> dict:
    """A channel as task arguments and JSON (the channels a disconnect leaves to stop)."""
    return {
        "channel_id": channel.channel_id,
        "resource_id": channel.resource_id,
        "expires_at": channel.expires_at.isoformat(),
    }


def channel_from_dict(data: dict) -> PushChannel:
    return PushChannel(
        channel_id=data["channel_id"],
        resource_id=data.get("resource_id", ""),
        expires_at=datetime.fromisoformat(data["expires_at"]),
    )


# ---------------------------------------------------------------- notifications


def calendar_for_channel(provider_key: str, channel_id: str) -> Calendar | None:
    if not channel_id:
        return None
    return (
        Calendar.objects.filter(channel_id=channel_id, connection__provider=provider_key, checks_busy=True)
        .only("pk", "channel_id", "connection_id")
        .first()
    )


def calendars_for_channels(provider_key: str, channel_ids: list[str]) -> dict[str, Calendar]:
    """The calendars of these channels, by channel id, in one query."""
    wanted = [channel_id for channel_id in channel_ids if channel_id]
    calendars = Calendar.objects.filter(channel_id__in=wanted, connection__provider=provider_key, checks_busy=True)
    return {calendar.channel_id: calendar for calendar in calendars.only("pk", "channel_id", "connection_id")}


def calendar_changed(calendar_id: int) -> None:
    """A notification said the calendar changed: it is due now (the sweep's safety net if the
    task is lost), and its sync is queued at once."""
    from tsp.tasks import enqueue_after_commit

    from .tasks import sync_calendar

    Calendar.objects.filter(pk=calendar_id, checks_busy=True).update(next_sync_at=timezone.now())
    enqueue_after_commit(sync_calendar, calendar_id)


# ---------------------------------------------------------------- making, renewing, stopping


def ensure_channel(calendar: Calendar, *, now: datetime | None = None) -> bool:
    """Ask for a channel for a checked calendar that has no live one. Returns whether one was made."""
    now = now or timezone.now()
    if not push_enabled() or not calendar.checks_busy:
        return False
    if calendar.channel_expires_at and calendar.channel_expires_at > now:
        return False  # a live channel, or a refusal not to ask about again yet
    provider = registry.get(calendar.connection.provider)
    expires_at = now + lifetime(provider.key)
    channel_id = uuid.uuid4().hex
    try:
        channel = call_with_token(
            calendar.connection_id,
            lambda token: provider.watch_calendar(
                token,
                calendar.external_id,
                address=address(provider.key),
                channel_id=channel_id,
                token=token_for(calendar),
                expires_at=expires_at,
            ),
        )
    except (http.HTTPError, ProviderResponseError, ConnectionBroken) as error:
        refused = isinstance(error, http.PermanentHTTPError | ProviderResponseError)
        retry_at = now + (RETRY_REFUSED_CHANNEL if refused else timedelta(seconds=settings.CALENDAR_POLL_SECONDS))
        logger.warning("calendar %s: no push channel (%s); polled meanwhile", calendar.pk, error.__class__.__name__)
        if not isinstance(error, ConnectionBroken):
            Calendar.objects.filter(pk=calendar.pk, channel_id="").update(channel_expires_at=retry_at)
        return False
    # Stored only if nobody stored another meanwhile (a second sweep) and it is still checked.
    stored = Calendar.objects.filter(pk=calendar.pk, checks_busy=True, channel_id=calendar.channel_id).update(
        channel_id=channel.channel_id,
        channel_resource_id=channel.resource_id,
        channel_expires_at=channel.expires_at,
        updated_at=timezone.now(),
    )
    if not stored:
        stop_channel_quietly(calendar.connection_id, channel, provider_key=provider.key)
        return False
    logger.info("calendar %s: push channel made", calendar.pk)
    return True


def renew_channel(calendar: Calendar, *, now: datetime | None = None) -> bool:
    """Keep notifications coming past the channel's expiry. Returns whether it was renewed."""
    now = now or timezone.now()
    provider = registry.get(calendar.connection.provider)
    old = channel_of(calendar)
    try:
        channel = call_with_token(
            calendar.connection_id,
            lambda token: provider.renew_watch(
                token,
                calendar.external_id,
                old,
                address=address(provider.key),
                new_channel_id=uuid.uuid4().hex,
                token=token_for(calendar),
                expires_at=now + lifetime(provider.key),
            ),
        )
    except (http.PermanentHTTPError, ProviderResponseError) as error:
        # The provider no longer has it: make a new one at once, and sync (we may have missed news).
        logger.warning("calendar %s: push channel could not be renewed (%s)", calendar.pk, error.__class__.__name__)
        Calendar.objects.filter(pk=calendar.pk, channel_id=old.channel_id).update(
            channel_id="", channel_resource_id="", channel_expires_at=None, next_sync_at=now
        )
        return False
    except (http.TransientHTTPError, ConnectionBroken) as error:
        logger.info("calendar %s: push channel renewal put off (%s)", calendar.pk, error.__class__.__name__)
        return False
    stored = Calendar.objects.filter(pk=calendar.pk, channel_id=old.channel_id).update(
        channel_id=channel.channel_id,
        channel_resource_id=channel.resource_id,
        channel_expires_at=channel.expires_at,
        updated_at=timezone.now(),
    )
    if not stored and channel.channel_id != old.channel_id:
        stop_channel_quietly(calendar.connection_id, channel, provider_key=provider.key)
    return bool(stored)


def stop_channel_quietly(connection_id: int, channel: PushChannel, *, provider_key: str | None = None) -> bool:
    """Stop a channel with the connection's token, as well as can be: one left running only sends
    notifications we answer 404 until it expires. Returns whether the provider confirmed."""
    if provider_key is None:
        provider_key = Connection.objects.filter(pk=connection_id).values_list("provider", flat=True).first()
        if provider_key is None:
            return False
    provider = registry.get(provider_key)
    try:
        call_with_token(connection_id, lambda token: provider.stop_watch(token, channel))
    except (http.HTTPError, ProviderResponseError, ConnectionBroken, Connection.DoesNotExist) as error:
        logger.info("push channel of connection %s not stopped (%s)", connection_id, error.__class__.__name__)
        return False
    return True


def stop_channels_with_tokens(provider_key: str, pending) -> list[dict]:
    """Stop the channels of a deleted connection with the tokens kept for it (a PendingRevocation).
    Returns the channels to try again later (the provider was down). A refused access token is
    traded once for a fresh one; the fresh pair is kept on `pending` for the revocation after."""
    provider = registry.get(provider_key)
    left = []
    refreshed = False
    for data in pending.channels:
        channel = channel_from_dict(data)
        try:
            try:
                provider.stop_watch(pending.access_token, channel)
            except http.PermanentHTTPError as error:
                if error.status != 401 or refreshed or not pending.refresh_token:
                    raise
                refreshed = True
                fresh = provider.refresh(pending.refresh_token)
                pending.access_token = fresh.access_token
                if fresh.refresh_token:
                    pending.refresh_token = fresh.refresh_token
                provider.stop_watch(pending.access_token, channel)
        except http.TransientHTTPError:
            left.append(data)
        except (http.HTTPError, ProviderResponseError) as error:
            reason = getattr(error, "status", None) or error.__class__.__name__
            logger.info("a push channel of a disconnected %s account not stopped (%s)", provider_key, reason)
    return left


# ---------------------------------------------------------------- what the sweep does


def forget_lapsed_channels(now: datetime) -> int:
    """Channels past their expiry send nothing more: forget them, and sync those calendars now
    (changes since the channel lapsed were not announced)."""
    return (
        Calendar.objects.exclude(channel_id="")
        .filter(channel_expires_at__lte=now)
        .update(channel_id="", channel_resource_id="", channel_expires_at=None, next_sync_at=now)
    )


def channels_to_renew(now: datetime) -> list[Calendar]:
    return list(
        Calendar.objects.select_related("connection")
        .filter(checks_busy=True, connection__status=Connection.Status.ACTIVE)
        .exclude(channel_id="")
        .filter(channel_expires_at__gt=now, channel_expires_at__lte=now + RENEW_BEFORE)
        .order_by("channel_expires_at")[:BATCH]
    )


def calendars_without_channel(now: datetime) -> list[Calendar]:
    return list(
        Calendar.objects.select_related("connection")
        .filter(checks_busy=True, channel_id="", connection__status=Connection.Status.ACTIVE)
        .filter(Q(channel_expires_at__isnull=True) | Q(channel_expires_at__lte=now))
        .order_by("pk")[:BATCH]
    )
