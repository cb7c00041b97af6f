"""The periodic sweep of members' calendars (every CALENDAR_SWEEP_SECONDS).

It syncs every checked calendar that is due: polled ones every CALENDAR_POLL_SECONDS, those with
a push channel every CALENDAR_PUSH_RESYNC_SECONDS as a safety net, failed ones when their backoff
ends, and any whose notification's task was lost. When push is on, it renews channels a day
before they expire and makes one for each checked calendar without one. A connection whose calendars
were never listed (the task queued at Connect was lost with the broker) is listed. It stops starting new
work after one sweep interval, so sweeps never pile up: the next one goes on where it stopped.
"""

import logging
import time
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Exists, OuterRef
from django.utils import timezone

from .. import registry
from ..models import Calendar, Connection
from . import push, sync

logger = logging.getLogger(__name__)

BATCH = 500
# The task queued at Connect lists the calendars within seconds; the sweep only steps in after this.
LISTING_GRACE = timedelta(minutes=5)


def due_calendars(now: datetime) -> list[int]:
    """Checked calendars of working connections whose sync is due, the longest waiting first."""
    return list(
        Calendar.objects.filter(checks_busy=True, next_sync_at__lte=now, connection__status=Connection.Status.ACTIVE)
        .order_by("next_sync_at", "pk")
        .values_list("pk", flat=True)[:BATCH]
    )


def connections_never_listed(now: datetime) -> list[int]:
    """Working connections granting calendar access that have no calendar a while after connecting
    (every Google and Microsoft account has at least its primary one): their listing was lost."""
    providers = [provider.key for provider in registry.offered() if provider.has_calendars]
    candidates = (
        Connection.objects.filter(status=Connection.Status.ACTIVE, provider__in=providers)
        .filter(updated_at__lte=now - LISTING_GRACE)
        .filter(~Exists(Calendar.objects.filter(connection=OuterRef("pk"))))
        .order_by("updated_at", "pk")
        .values_list("pk", "provider", "scopes")[:BATCH]
    )
    return [pk for pk, provider, scopes in candidates if registry.get(provider).grants_calendars(scopes)]


def run(*, now: datetime | None = None) -> int:
    """One sweep. Returns how many calendars it synced."""
    now = now or timezone.now()
    stop_at = time.monotonic() + settings.CALENDAR_SWEEP_SECONDS
    push.forget_lapsed_channels(now)
    synced = 0
    for calendar_id in due_calendars(now):
        if time.monotonic() > stop_at:
            return synced
        _safely("sync", calendar_id, sync.sync_calendar, calendar_id, now=now)
        synced += 1
    for connection_id in connections_never_listed(now):
        if time.monotonic() > stop_at:
            return synced
        _safely("calendar list", connection_id, sync.refresh_calendar_list, connection_id)
    if not push.push_enabled():
        return synced
    for calendar in push.channels_to_renew(now):
        if time.monotonic() > stop_at:
            return synced
        _safely("channel renewal", calendar.pk, push.renew_channel, calendar, now=now)
    for calendar in push.calendars_without_channel(now):
        if time.monotonic() > stop_at:
            return synced
        _safely("new channel", calendar.pk, push.ensure_channel, calendar, now=now)
    return synced


def _safely(what: str, calendar_id: int, work, *args, **kwargs) -> None:
    try:
        work(*args, **kwargs)
    except Exception:  # one calendar's trouble must not stop the others; it stays due
        logger.exception("calendar %s: %s failed", calendar_id, what)
