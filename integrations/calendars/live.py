"""The live check at booking time: just before a booking commits, each chosen host's calendars are
asked whether the slot is still free (Google's freeBusy, Graph's getSchedule).

The cached busy time (BusyInterval) can be a little behind: a meeting added a few seconds ago may not
be synced yet. One short call per host closes that gap for the one slot being booked, at the one
moment it matters, without ever putting a provider call on the booking page itself.

Runs outside the booking's database transaction: a provider call may take seconds, and no row lock
or open transaction should wait on it. When the provider can't answer (down, slow, a broken
connection, an answer we can't read), the cached busy time decides: the database check of the
booking has already used it.
"""

import logging
from collections import defaultdict
from collections.abc import Iterable, Iterator
from datetime import datetime

from django.conf import settings

from bookings import cache
from bookings.models import BookingHost
from tsp.tasks import enqueue_after_commit

from .. import http, registry, tokens
from ..base import ProviderResponseError
from ..models import Calendar, Connection
from . import tasks

logger = logging.getLogger(__name__)

Span = tuple[datetime, datetime]


def confirmed_free(choices: Iterable[list[int]], *, start: datetime, end: datetime) -> Iterator[list[int]]:
    """The host sets of `choices`, in order, whose calendars have nothing in [start, end): each set
    is checked when the caller asks for it, so a round-robin booking calls one host's provider,
    and the next only when the first is busy. A set with one busy host is passed over (collective:
    every host of the set must be free).

    A host found busy gets their calendars synced and the cached pages of the meeting types they
    host forgotten, so the booking pages stop offering what the live check saw taken.
    """
    choices = [list(hosts) for hosts in choices]
    candidates = {member_id for hosts in choices for member_id in hosts}
    checked = _checked_calendars(candidates)
    own = _own_spans(checked.keys(), start=start, end=end) if checked else {}
    for hosts in choices:
        busy = next((member_id for member_id in hosts if _is_busy(member_id, checked, own, start, end)), None)
        if busy is None:
            yield hosts
        else:
            logger.info("host %s is busy in their calendar at %s: not booked there", busy, start.isoformat())
            cache.hosts_changed([busy])


def any_calendar_to_ask(member_ids) -> bool:
    """Whether any of these members (ids, or a query of them) has a calendar `confirmed_free` would
    ask: one query, that loads none."""
    return _calendars_to_ask(member_ids).exists()


def _calendars_to_ask(member_ids):
    """The calendars that count as busy, of accounts whose provider has calendars."""
    with_calendars = [provider.key for provider in registry.all_providers() if provider.has_calendars]
    return Calendar.objects.filter(member_id__in=member_ids, checks_busy=True, connection__provider__in=with_calendars)


def _checked_calendars(member_ids: set[int]) -> dict[int, dict[int, list[Calendar]]]:
    """{member id: {connection id: [the calendars that count as busy]}}: one query. Members with
    no such calendar are left out: they need no call."""
    per_member: dict[int, dict[int, list[Calendar]]] = defaultdict(lambda: defaultdict(list))
    for calendar in _calendars_to_ask(member_ids).select_related("connection").order_by("connection_id", "id"):
        per_member[calendar.member_id][calendar.connection_id].append(calendar)
    return per_member


def _own_spans(member_ids: Iterable[int], *, start: datetime, end: datetime) -> dict[int, list[Span]]:
    """Our own bookings' times near the slot, per host: their events in the host's calendar are
    ours (the database check already counted the bookings), and the booking being moved is still
    at its old time there. Cancelled ones too, until their event is deleted."""
    spans: dict[int, list[Span]] = defaultdict(list)
    rows = BookingHost.objects.filter(member_id__in=list(member_ids), booking__start__lt=end, booking__end__gt=start)
    for member_id, booking_start, booking_end in rows.values_list("member_id", "booking__start", "booking__end"):
        spans[member_id].append((booking_start, booking_end))
    return spans


def _is_busy(member_id: int, checked: dict, own: dict, start: datetime, end: datetime) -> bool:
    for calendars in checked.get(member_id, {}).values():
        periods = _ask(calendars, start=start, end=end)
        if periods is not None and _overlaps_beyond(periods, own.get(member_id, []), start, end):
            for calendar in calendars:
                _sync_soon(calendar)
            return True
    return False


def _ask(calendars: list[Calendar], *, start: datetime, end: datetime) -> list[Span] | None:
    """The busy periods of one connection's calendars in [start, end), or None when the provider
    gave no usable answer (then the cached busy time decides)."""
    connection = calendars[0].connection
    provider = registry.get(connection.provider)

    def free_busy(access_token: str) -> list[Span]:
        return provider.free_busy(
            access_token,
            [calendar.external_id for calendar in calendars],
            start=start,
            end=end,
            account_email=connection.email,
            timeout=settings.CALENDAR_LIVE_CHECK_TIMEOUT_SECONDS,
        )

    try:
        return tokens.call_with_token(connection.pk, free_busy)
    except (http.HTTPError, tokens.ConnectionBroken, ProviderResponseError, Connection.DoesNotExist) as error:
        logger.warning(
            "%s: live calendar check failed for member %s (%s); using the cached busy time",
            provider.name,
            connection.member_id,
            _why(error),
        )
        return None


def _why(error: Exception) -> str:
    """What went wrong, in words that carry nothing of the account or its tokens."""
    if isinstance(error, tokens.ConnectionBroken):
        return "the connection needs reconnecting"
    if isinstance(error, ProviderResponseError):
        return "an answer we could not read"
    if isinstance(error, http.HTTPError) and error.status:
        return f"HTTP {error.status}"
    if isinstance(error, http.HTTPError):
        return "no answer" if error.sent is False else "no answer in time"
    return "the connection was removed"


def _overlaps_beyond(periods: list[Span], own: list[Span], start: datetime, end: datetime) -> bool:
    """Whether a busy period overlaps [start, end) once our own bookings' times are taken out of it.
    Providers merge touching busy periods (our booking 10:00-10:30 and a meeting 10:30-11:00 come
    as one 10:00-11:00), so our spans are cut out of each period rather than matched whole."""
    for period_start, period_end in periods:
        pieces = [(max(period_start, start), min(period_end, end))]
        for own_start, own_end in own:
            pieces = [cut for piece in pieces for cut in _minus(piece, own_start, own_end)]
        if any(piece_start < piece_end for piece_start, piece_end in pieces):
            return True
    return False


def _minus(piece: Span, cut_start: datetime, cut_end: datetime) -> list[Span]:
    piece_start, piece_end = piece
    if cut_end <= piece_start or piece_end <= cut_start:
        return [piece]
    return [part for part in ((piece_start, cut_start), (cut_end, piece_end)) if part[0] < part[1]]


def _sync_soon(calendar: Calendar) -> None:
    # Storing what the provider said is the sync's job: free/busy gives times, the sync the events
    # (ids that a later change or deletion names again).
    enqueue_after_commit(tasks.sync_calendar, calendar.pk)
