"""The cache of bookable times, and the rule that keeps it true while forgetting as little as
possible: every meeting type has a version, and so has each of its months; every cached month
names both versions it was worked out at, and a change gives new versions to exactly the meeting
types (or, for a booking, the months of the meeting types) whose pages it can change, so their
older values become unreachable at once and the others stay.

What a meeting type's page shows depends on its own rules (part of each key: editing them needs
no version), its list and order of hosts, and, for each host, their working hours, date
overrides, time zone, being active, bookings in any meeting type and calendar busy time. So:

- a change to a member's own availability (`hosts_changed`) forgets the meeting types they host;
- a booking made, cancelled, moved or given other hosts (`booking_changed`) forgets, of the
  meeting types of its hosts (those it had before as well as those it has now), only the months
  around its time (and around its time before a move): a booking next week leaves next month's
  page cached;
- a change to a meeting type's hosts or assignment (`meeting_type_changed`) forgets that type.

Nothing else is shared between meeting types, so no change forgets a whole organization: a busy
team taking a booking every minute keeps serving the pages of its other meeting types from the
cache.

Booking pages are viewed far more often than anything on them changes. The lifetime of a value
bounds the damage of a change made outside the services (the Django admin, a shell): a value a
few seconds stale can only offer a time that is then refused with "just taken", since booking
re-checks against the database.
"""

import hashlib
import logging
import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime, timedelta
from typing import TypeVar

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import Q

from meetingtypes.models import MeetingType, MeetingTypeHost

from . import availability
from .models import Booking, BookingHost

logger = logging.getLogger(__name__)

T = TypeVar("T")


def hosts_changed(member_ids: Iterable[int]) -> None:
    """What these members can be booked for changed (working hours, date overrides, time zone,
    active or not, calendar busy time or which calendars count): forget the pages of every
    meeting type they host. One query."""
    member_ids = sorted(set(member_ids))
    if member_ids:
        _forget(_meeting_types_hosted_by(Q(member_id__in=member_ids)))


def booking_changed(
    booking: Booking, *, previous_host_ids: Iterable[int] = (), previous_start: datetime | None = None
) -> None:
    """The booking was made, cancelled, moved or given other hosts: forget the months around its
    time (and `previous_start`, its time before a move) of every meeting type that has one of its
    hosts, now (its host rows, cancelled ones included) or before the change
    (`previous_host_ids`). One query."""
    hosts = Q(member_id__in=BookingHost.objects.filter(booking_id=booking.pk).values("member_id"))
    previous_host_ids = sorted(set(previous_host_ids))
    if previous_host_ids:
        hosts |= Q(member_id__in=previous_host_ids)
    months = _months_around(booking.start)
    if previous_start is not None:
        months |= _months_around(previous_start)
    _forget(_meeting_types_hosted_by(hosts), months=sorted(months))


def meeting_type_changed(meeting_type_id: int) -> None:
    """The meeting type's hosts, their order, its assignment or its being active changed: forget
    its pages. No query."""
    _forget([meeting_type_id])


def remember(
    meeting_type: MeetingType, rules: availability.SlotRules, month: date, what: str, compute: Callable[[], T]
) -> T:
    """The cached value of `what` (about `month`) for the meeting type, worked out by `compute()`
    when missing.

    The meeting type's own rules are part of the key, so editing them needs no invalidation.
    `what` must never hold anything a client chooses freely (a time zone, say): the cache would
    then hold one copy per choice and the first request of each would miss.
    """
    version_keys = [_version_key(meeting_type.pk), _version_key(meeting_type.pk, month)]
    versions = safely(cache.get_many, version_keys) or {}
    missing = [key for key in version_keys if key not in versions]
    if missing:
        versions.update(_new_versions(missing))
    rules_hash = hashlib.sha256(repr(rules).encode()).hexdigest()[:16]
    type_version, month_version = (versions[key] for key in version_keys)
    key = f"slots:{meeting_type.pk}:{rules_hash}:{type_version}:{month_version}:{what}"
    value = safely(cache.get, key)
    if value is None:
        value = compute()
        safely(cache.set, key, value, settings.SLOTS_CACHE_SECONDS)
    return value


def _meeting_types_hosted_by(hosts: Q) -> list[int]:
    return list(MeetingTypeHost.objects.filter(hosts).order_by().values_list("meeting_type_id", flat=True).distinct())


def _months_around(moment: datetime) -> set[date]:
    """The months whose cached pages a booking at `moment` can change. A month's page is worked
    out for the UTC days around it (a day each side, see bookings.slots), and a booking blocks
    starts up to its length plus buffers (less than a day) either side of it: two days each side
    cover both."""
    return {
        (moment + offset).astimezone(UTC).date().replace(day=1)
        for offset in (-2 * _ONE_DAY, -_ONE_DAY, timedelta(0), _ONE_DAY, 2 * _ONE_DAY)
    }


_ONE_DAY = timedelta(days=1)


def _forget(meeting_type_ids: Iterable[int], *, months: list[date] | None = None) -> None:
    """New versions for these meeting types (or only for these months of theirs) now, so the
    change is seen at once in this process, and again after the commit, so that a value worked
    out meanwhile by another request from the not-yet-committed data does not stay. The meeting
    types are found once, inside the transaction that made the change: it sees its own writes
    (a cancelled host row, say)."""
    meeting_type_ids = sorted(set(meeting_type_ids))
    if months is None:
        keys = [_version_key(meeting_type_id) for meeting_type_id in meeting_type_ids]
    else:
        keys = [_version_key(meeting_type_id, month) for meeting_type_id in meeting_type_ids for month in months]
    if not keys:
        return
    _new_versions(keys)
    transaction.on_commit(lambda: _new_versions(keys))


def _version_key(meeting_type_id: int, month: date | None = None) -> str:
    return f"slots-version:{meeting_type_id}" if month is None else f"slots-version:{meeting_type_id}:{month:%Y-%m}"


def _new_versions(keys: list[str]) -> dict[str, str]:
    # Fresh random values rather than increments (an evicted counter restarting at 1 could bring
    # back values cached under that number) or clock readings (two changes can share one).
    versions = {key: uuid.uuid4().hex for key in keys}
    safely(cache.set_many, versions, None)
    return versions


def safely(method, *args):
    """A cache read or write that never fails the request: with the cache down, times are worked
    out every time and bookings go through (their re-check reads the database, not the cache)."""
    try:
        return method(*args)
    except Exception:  # whatever the cache backend raises (redis.ConnectionError, timeouts, …)
        logger.warning("cache unavailable for booking pages", exc_info=True)
        return None
