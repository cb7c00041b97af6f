"""The periodic sweep of members' calendars (every CALENDAR_SWEEP_SECONDS).

It syncs every checked calendar that is due: polled ones every CALENDAR_POLL_SECONDS, those with
a push channel every CALENDAR_PUSH_RESYNC_SECONDS as a safety net, failed ones when their backoff
ends, and any whose notification's task was lost. When push is on, it renews channels a day
before they expire and makes one for each checked calendar without one. It stops starting new
work after one sweep interval, so sweeps never pile up: the next one goes on where it stopped.
"""

import logging
import time
from datetime import datetime

from django.conf import settings
from django.utils import timezone

from ..models import Calendar, Connection
from . import push, sync

logger = logging.getLogger(__name__)

BATCH = 500


def due_calendars(now: datetime) -> list[int]:
    """Checked calendars of working connections whose sync is due, the longest waiting first."""
    return list(
        Calendar.objects.filter(checks_busy=True, next_sync_at__lte=now, connection__status=Connection.Status.ACTIVE)
        .order_by("next_sync_at", "pk")
        .values_list("pk", flat=True)[:BATCH]
    )


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
