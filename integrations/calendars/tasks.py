"""Celery tasks of members' calendars: thin, they take primary keys and call the services.

None of them raises for a provider's trouble: what fails is recorded on the calendar and picked
up again by the sweep, so a task run in-process (no broker) never breaks the request that queued it.
"""

import logging

from celery import shared_task

from tsp.tasks import backoff_seconds

from .. import http
from ..base import ProviderResponseError
from ..tokens import ConnectionBroken

logger = logging.getLogger(__name__)

LIST_MAX_RETRIES = 5


@shared_task(bind=True, acks_late=True, max_retries=LIST_MAX_RETRIES)
def refresh_calendar_list(self, connection_id: int) -> int:
    """List a connection's calendars (after connecting, or the card's "Refresh")."""
    from . import sync

    try:
        return sync.refresh_calendar_list(connection_id)
    except http.TransientHTTPError as error:
        if self.request.retries < LIST_MAX_RETRIES:
            raise self.retry(countdown=backoff_seconds(self.request.retries, retry_after=error.retry_after)) from error
        logger.warning("connection %s: calendars could not be listed (provider unreachable)", connection_id)
    except (http.HTTPError, ProviderResponseError, ConnectionBroken) as error:
        logger.warning("connection %s: calendars could not be listed (%s)", connection_id, error.__class__.__name__)
    return 0


@shared_task(acks_late=True)
def sync_calendar(calendar_id: int) -> bool:
    """Sync one calendar now (a push notification, a newly checked calendar), then make sure it
    has a push channel when push is on."""
    from ..models import Calendar
    from . import push, sync

    changed = sync.sync_calendar(calendar_id)
    if push.push_enabled():
        calendar = Calendar.objects.select_related("connection").filter(pk=calendar_id, channel_id="").first()
        if calendar is not None:
            push.ensure_channel(calendar)
    return changed


@shared_task(acks_late=True)
def stop_channel(connection_id: int, channel: dict) -> bool:
    """Stop the push channel of a calendar the member no longer checks (best effort)."""
    from . import push

    return push.stop_channel_quietly(connection_id, push.channel_from_dict(channel))


@shared_task(acks_late=True)
def sweep_calendars() -> int:
    """Run by celery beat every CALENDAR_SWEEP_SECONDS: every calendar whose sync is due, every
    push channel near its expiry, a channel for every checked calendar without one."""
    from . import sweep

    return sweep.run()
