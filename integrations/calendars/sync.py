"""A connection's calendar list, and one calendar's busy time kept in our database.

The booking pages never ask a provider: they read BusyInterval rows. This module keeps those rows
true. A sync asks the provider what changed since the stored cursor (Google's syncToken, Graph's
deltaLink) and applies it in one transaction; a cursor the provider forgot (410) means one full
listing of the window. Syncs run when a push notification says the calendar changed, when the
calendar is due (`next_sync_at`: the polling interval without a push channel, a safety resync
with one), and when a member starts checking it.

Each sync claims its calendar with a conditional UPDATE first, so two workers never sync one
calendar at once; a notification that arrives during a sync sets `sync_again`, and the worker
holding the claim runs once more before it lets go. Nothing about an event but its id and times
is ever stored or logged.
"""

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from bookings.cache import hosts_changed
from members.models import TeamMember
from tsp.tasks import backoff_seconds, enqueue_after_commit

from .. import http, registry
from ..base import BusyPeriod, CalendarChanges, CalendarInfo, ProviderResponseError, SyncCursorExpired
from ..models import BusyInterval, Calendar, Connection
from ..tokens import ConnectionBroken, call_with_token

logger = logging.getLogger(__name__)

# Longer than any sync can take (a few pages of events, each request within its timeouts): a claim
# older than this belongs to a worker that died.
STALE_CLAIM = timedelta(minutes=2)
# Busy time already over still matters a little: a booking page shows today from its start.
KEEP_PAST = timedelta(days=1)
# The window moves with the clock, and an incremental sync only reports changes: events that
# entered the far end of the window since the last full listing are only found by listing again.
RELIST_AFTER = timedelta(days=1)


def calendars_offered(connection: Connection) -> bool:
    """Whether this connection's calendars can be read: the provider has calendars and the member
    granted the calendar scopes (older connections may lack them until they allow access)."""
    try:
        provider = registry.get(connection.provider)
    except LookupError:
        return False
    return connection.is_active and provider.has_calendars and provider.grants_calendars(connection.scopes)


def window(now: datetime) -> tuple[datetime, datetime]:
    """The span of time whose busy time we keep."""
    return now - KEEP_PAST, now + timedelta(days=settings.CALENDAR_SYNC_DAYS)


# ---------------------------------------------------------------- the calendar list


def refresh_calendar_list(connection_id: int) -> int:
    """List the account's calendars and store them: new ones added, names and rights updated,
    vanished ones deleted with their busy time. Returns how many calendars the account has.

    On the first listing, the primary calendar counts as busy, and receives the member's bookings
    if they have no booking calendar yet (in any account) and may write to it. Later listings
    never change the member's choices."""
    connection = Connection.objects.filter(pk=connection_id).first()
    if connection is None or not calendars_offered(connection):
        return 0
    provider = registry.get(connection.provider)
    listed = call_with_token(connection_id, provider.list_calendars)
    now = timezone.now()
    due_now: list[int] = []
    with transaction.atomic():
        # The member's row, locked: two accounts listed at once must not both take the bookings.
        member = TeamMember.objects.select_for_update().get(pk=connection.member_id)
        if not Connection.objects.filter(pk=connection_id).exists():
            return 0  # disconnected while we listed
        existing = {calendar.external_id: calendar for calendar in Calendar.objects.filter(connection_id=connection_id)}
        first_listing = not existing
        wants_booking_calendar = not Calendar.objects.filter(member=member, receives_bookings=True).exists()
        seen = set()
        for info in listed:
            if info.external_id in seen:
                continue
            seen.add(info.external_id)
            calendar = existing.get(info.external_id)
            if calendar is None:
                calendar = Calendar(connection_id=connection_id, member=member, external_id=info.external_id)
                if first_listing and info.is_primary:
                    calendar.checks_busy = True
                    calendar.next_sync_at = now
                    if wants_booking_calendar and info.can_write:
                        calendar.receives_bookings = True
            calendar.name = info.name[:255]
            calendar.time_zone = info.time_zone[:64]
            calendar.is_primary = info.is_primary
            calendar.can_write = info.can_write
            due = calendar.checks_busy and (calendar.synced_at is None or calendar.next_sync_at is None)
            if due:
                # Never synced, or its syncing stopped while the account needed reconnecting.
                calendar.next_sync_at, calendar.sync_error, calendar.sync_failures = now, "", 0
            calendar.save()
            if due:
                due_now.append(calendar.pk)  # after the save: a new calendar has no pk before
        vanished = [calendar for external_id, calendar in existing.items() if external_id not in seen]
        if vanished:
            Calendar.objects.filter(pk__in=[calendar.pk for calendar in vanished]).delete()
            if any(calendar.checks_busy for calendar in vanished):
                hosts_changed([member.pk])
        from .tasks import sync_calendar

        for calendar_id in due_now:
            enqueue_after_commit(sync_calendar, calendar_id)
    # A calendar that left the list (unsubscribed, deleted) may still have a live channel.
    from . import push

    for calendar in vanished:
        if calendar.channel_id:
            push.stop_channel_quietly(connection_id, push.channel_of(calendar))
    return len(seen)


# ---------------------------------------------------------------- checking a calendar or not


def start_checking(calendar: Calendar) -> None:
    """The member wants this calendar's meetings to block their slots: sync it now."""
    from .tasks import sync_calendar

    with transaction.atomic():
        now = timezone.now()
        Calendar.objects.filter(pk=calendar.pk).update(
            checks_busy=True, next_sync_at=now, sync_error="", sync_failures=0, updated_at=now
        )
        enqueue_after_commit(sync_calendar, calendar.pk)
    calendar.refresh_from_db()


def stop_checking(calendar: Calendar) -> None:
    """The member no longer wants this calendar to block slots: its busy time goes at once, and
    its push channel is stopped in the background."""
    from . import push
    from .tasks import stop_channel

    with transaction.atomic():
        locked = Calendar.objects.select_for_update().select_related("member").get(pk=calendar.pk)
        channel = push.channel_of(locked) if locked.channel_id else None
        had_busy = BusyInterval.objects.filter(calendar=locked).delete()[0] > 0
        Calendar.objects.filter(pk=locked.pk).update(
            checks_busy=False,
            sync_cursor_encrypted="",
            busy_known_from=None,
            busy_known_until=None,
            synced_at=None,
            next_sync_at=None,
            sync_again=False,
            sync_error="",
            sync_failures=0,
            channel_id="",
            channel_resource_id="",
            channel_expires_at=None,
            updated_at=timezone.now(),
        )
        if had_busy:
            hosts_changed([locked.member_id])
        if channel is not None:
            enqueue_after_commit(stop_channel, locked.connection_id, push.channel_as_dict(channel))
    calendar.refresh_from_db()


# ---------------------------------------------------------------- syncing one calendar


def sync_calendar(calendar_id: int, *, now: datetime | None = None) -> bool:
    """Bring the calendar's busy time up to date. Returns whether it changed.

    If another worker is syncing it, ask that worker to run once more (its listing may have
    started before the change) and return at once."""
    changed = False
    while _claim(calendar_id, now or timezone.now()):
        claimed_at = now or timezone.now()
        try:
            changed |= _sync_claimed(calendar_id, now=claimed_at)
        finally:
            again = _release(calendar_id)
        if not again:
            break
    return changed


def _claim(calendar_id: int, now: datetime) -> bool:
    """Take the calendar for a sync. False when there is nothing to sync, or another worker has
    it (which is then told to sync again)."""
    checked = Calendar.objects.filter(pk=calendar_id, checks_busy=True, connection__status=Connection.Status.ACTIVE)
    # A few rounds at most: each lost race means the other worker released or claimed meanwhile.
    for _attempt in range(3):
        free = Q(sync_claimed_at__isnull=True) | Q(sync_claimed_at__lt=now - STALE_CLAIM)
        if checked.filter(free).update(sync_claimed_at=now, sync_again=False):
            return True
        if Calendar.objects.filter(pk=calendar_id, checks_busy=True, sync_claimed_at__isnull=False).update(
            sync_again=True
        ):
            return False
        if not checked.exists():
            return False
    return False


def _release(calendar_id: int) -> bool:
    """Let go of the claim. True when a change was announced meanwhile (sync once more).

    Single statements, no lock: a notification that comes after the first UPDATE finds no claim
    and takes the calendar itself; one that came before it made the first UPDATE match nothing."""
    if Calendar.objects.filter(pk=calendar_id, sync_again=False).update(sync_claimed_at=None):
        return False
    if Calendar.objects.filter(pk=calendar_id, checks_busy=True).update(sync_claimed_at=None, sync_again=False):
        return True
    Calendar.objects.filter(pk=calendar_id).update(sync_claimed_at=None, sync_again=False)  # unchecked meanwhile
    return False


def _sync_claimed(calendar_id: int, *, now: datetime) -> bool:
    calendar = Calendar.objects.select_related("connection", "member").filter(pk=calendar_id).first()
    if calendar is None or not calendar.checks_busy:
        return False
    provider = registry.get(calendar.connection.provider)
    start, end = window(now)
    cursor = calendar.sync_cursor
    if calendar.busy_known_until is None or calendar.busy_known_until < end - RELIST_AFTER:
        cursor = ""  # the window moved on since the last full listing: list it again
    info = CalendarInfo(
        external_id=calendar.external_id,
        name=calendar.name,
        is_primary=calendar.is_primary,
        can_write=calendar.can_write,
        time_zone=calendar.time_zone,
    )

    def changes_since(cursor: str) -> CalendarChanges:
        return call_with_token(
            calendar.connection_id,
            lambda token: provider.calendar_changes(
                token, info, cursor=cursor, start=start, end=end, host_time_zone=calendar.member.time_zone
            ),
        )

    try:
        try:
            changes = changes_since(cursor)
        except SyncCursorExpired:
            logger.info("calendar %s: the provider forgot our sync cursor; listing the window again", calendar_id)
            changes = changes_since("")
    except ConnectionBroken:
        # The member must reconnect (the card says so); a new connection lists its calendars anew.
        _record_failure(calendar, "The account needs reconnecting.", next_sync_at=None)
        logger.info("calendar %s: its connection is broken; not synced until it is reconnected", calendar_id)
        return False
    except (http.HTTPError, ProviderResponseError, SyncCursorExpired) as error:
        retry_after = getattr(error, "retry_after", None)
        delay = backoff_seconds(calendar.sync_failures, retry_after=retry_after)
        _record_failure(calendar, _describe(error), next_sync_at=now + timedelta(seconds=delay))
        logger.warning("calendar %s: sync failed (%s); next try in %.0f s", calendar_id, _describe(error), delay)
        if isinstance(error, http.PermanentHTTPError) and error.status == 404:
            from .tasks import refresh_calendar_list

            enqueue_after_commit(refresh_calendar_list, calendar.connection_id)  # the calendar may be gone
        return False
    return _apply(calendar, changes, start=start, end=end, now=now)


def _describe(error: Exception) -> str:
    """What went wrong, for the card and the log: never a body that could carry event details."""
    status = getattr(error, "status", None)
    return f"HTTP {status}" if status else error.__class__.__name__


def _record_failure(calendar: Calendar, message: str, *, next_sync_at: datetime | None) -> None:
    Calendar.objects.filter(pk=calendar.pk).update(
        sync_error=message[:500],
        sync_failures=min(calendar.sync_failures + 1, 1000),
        next_sync_at=next_sync_at,
        updated_at=timezone.now(),
    )


def _clipped(periods: tuple[BusyPeriod, ...], start: datetime, end: datetime) -> tuple[dict, set]:
    """The periods within the window, by event id (the last one named wins), and the ids of
    those wholly outside it (stored rows of those go)."""
    inside: dict[str, tuple[datetime, datetime]] = {}
    outside: set[str] = set()
    for period in periods:
        from_, until = max(period.start, start), min(period.end, end)
        if from_ < until:
            inside[period.event_id] = (from_, until)
            outside.discard(period.event_id)
        else:
            inside.pop(period.event_id, None)
            outside.add(period.event_id)
    return inside, outside


def _apply(calendar: Calendar, changes: CalendarChanges, *, start: datetime, end: datetime, now: datetime) -> bool:
    """Store what the provider said, in one transaction. Returns whether the busy time changed."""
    busy, outside = _clipped(changes.busy, start, end)
    freed = (set(changes.freed) | outside) - set(busy)
    with transaction.atomic():
        # Unchecked meanwhile: its busy time is gone and must stay gone.
        if not Calendar.objects.select_for_update().filter(pk=calendar.pk, checks_busy=True).exists():
            return False
        stored = BusyInterval.objects.filter(calendar=calendar)
        if changes.complete:
            before = {
                event_id: (from_, until) for event_id, from_, until in stored.values_list("event_id", "start", "end")
            }
            changed = before != busy
            if changed:
                stored.delete()
                _insert(calendar, busy)
            known_from, known_until = start, end
        else:
            before = {
                event_id: (from_, until)
                for event_id, from_, until in stored.filter(event_id__in=list(busy)).values_list(
                    "event_id", "start", "end"
                )
            }
            new_or_moved = {event_id: times for event_id, times in busy.items() if before.get(event_id) != times}
            # Freed events go, and so does busy time that is over and done with (out of the window).
            gone = stored.filter(Q(event_id__in=list(freed)) | Q(end__lte=start)).delete()[0]
            _insert(calendar, new_or_moved, update=True)
            changed = bool(new_or_moved or gone)
            known_from = max(calendar.busy_known_from or start, start)
            known_until = calendar.busy_known_until or end
        has_channel = bool(calendar.channel_id)
        interval = settings.CALENDAR_PUSH_RESYNC_SECONDS if has_channel else settings.CALENDAR_POLL_SECONDS
        calendar.sync_cursor = changes.cursor
        Calendar.objects.filter(pk=calendar.pk).update(
            sync_cursor_encrypted=calendar.sync_cursor_encrypted,
            busy_known_from=known_from,
            busy_known_until=known_until,
            synced_at=now,
            next_sync_at=now + timedelta(seconds=interval),
            sync_error="",
            sync_failures=0,
            updated_at=timezone.now(),
        )
        if changed:
            hosts_changed([calendar.member_id])
    return changed


def _insert(calendar: Calendar, busy: dict, *, update: bool = False) -> None:
    rows = [
        BusyInterval(calendar=calendar, member_id=calendar.member_id, event_id=event_id, start=from_, end=until)
        for event_id, (from_, until) in busy.items()
    ]
    if not rows:
        return
    if update:
        BusyInterval.objects.bulk_create(
            rows,
            batch_size=1000,
            update_conflicts=True,
            unique_fields=["calendar", "event_id"],
            update_fields=["start", "end"],
        )
    else:
        BusyInterval.objects.bulk_create(rows, batch_size=1000)
