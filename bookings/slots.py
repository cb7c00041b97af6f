"""Month pages of bookable times for the booking calendar, in the client's time zone."""

import hashlib
import logging
import uuid
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

from django.core.cache import cache
from django.db import transaction

from meetingtypes.models import MeetingType

from . import availability, selectors

logger = logging.getLogger(__name__)


def month_start(day: date) -> date:
    return day.replace(day=1)


def next_month(month: date) -> date:
    return date(month.year + (month.month == 12), month.month % 12 + 1, 1)


def previous_month(month: date) -> date:
    return date(month.year - (month.month == 1), (month.month - 2) % 12 + 1, 1)


def _local_midnight(day: date, zone: ZoneInfo) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=zone).astimezone(UTC)


# Month pages are cached: a booking page is viewed far more often than anything on it changes.
# Each organization has a version that every change to its bookable times replaces (see
# availability_changed); a cached page names the version it was computed at, so a change makes
# every older page unreachable at once. The short lifetime bounds the damage of a change made
# outside the services (the Django admin, a shell): a page a few seconds stale can only offer a
# time that is then refused with "just taken", since booking re-checks against the database.
PAGE_CACHE_SECONDS = 30


def availability_changed(organization_id: int) -> None:
    """The organization's bookable times changed (bookings, hours, hosts): forget its cached pages.

    Now, so the change is seen at once in this process, and again after the commit, so that a
    page computed meanwhile by another request from the not-yet-committed data does not stay.
    """
    _new_version(organization_id)
    transaction.on_commit(lambda: _new_version(organization_id))


def _version_key(organization_id: int) -> str:
    return f"availability-version:{organization_id}"


def _new_version(organization_id: int) -> str:
    # A fresh random value rather than an increment (an evicted counter restarting at 1 could
    # bring back pages cached under that number) or a clock reading (two changes can share one).
    version = uuid.uuid4().hex
    _cache_call(cache.set, _version_key(organization_id), version, None)
    return version


def _cache_call(method, *args):
    """A cache read or write that never fails the request: with the cache down, pages are worked
    out every time and bookings go through (their re-check reads the database, not the cache)."""
    try:
        return method(*args)
    except Exception:  # whatever the cache backend raises (redis.ConnectionError, timeouts, …)
        logger.warning("cache unavailable for booking pages", exc_info=True)
        return None


def slots_in_month(
    meeting_type: MeetingType, *, month: date, zone: ZoneInfo, now: datetime, exclude_booking_id: int | None = None
) -> dict[str, list[dict]]:
    """{'2026-12-03': [{'start': '2026-12-03T08:00:00Z', 'time': '09:00'}, …]} for the days with times."""
    if exclude_booking_id is not None:  # a client moving their booking: rare, always computed
        return _compute_month(meeting_type, month=month, zone=zone, now=now, exclude_booking_id=exclude_booking_id)
    version = _cache_call(cache.get, _version_key(meeting_type.organization_id))
    if version is None:
        version = _new_version(meeting_type.organization_id)
    # The meeting type's own settings are part of the key: editing them needs no invalidation.
    rules = selectors.slot_rules(meeting_type)
    settings_hash = hashlib.sha256(repr(rules).encode()).hexdigest()[:16]
    key = f"slots-month:{meeting_type.pk}:{settings_hash}:{version}:{month:%Y-%m}:{zone.key}"
    days = _cache_call(cache.get, key)
    if days is None:
        days = _compute_month(meeting_type, month=month, zone=zone, now=now)
        _cache_call(cache.set, key, days, PAGE_CACHE_SECONDS)
        return days
    # Computed a little earlier: drop the times that have since come too close to book.
    earliest_moment = (now + rules.minimum_notice).astimezone(UTC)
    if earliest_moment.microsecond:  # starts are whole seconds: round up, never offer one too early
        earliest_moment = earliest_moment.replace(microsecond=0) + timedelta(seconds=1)
    earliest = earliest_moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    still = {day: [slot for slot in times if slot["start"] >= earliest] for day, times in days.items()}
    return {day: times for day, times in still.items() if times}


def _compute_month(
    meeting_type: MeetingType, *, month: date, zone: ZoneInfo, now: datetime, exclude_booking_id: int | None = None
) -> dict[str, list[dict]]:
    start = max(_local_midnight(month, zone), now)
    end = _local_midnight(next_month(month), zone)
    if start >= end:
        return {}
    rules, hosts = selectors.load_availability(
        meeting_type, start=start, end=end, exclude_booking_id=exclude_booking_id
    )
    starts = availability.available_starts(rules, hosts, start=start, end=end, now=now)
    return _by_local_day(starts, zone, first_day=month - timedelta(days=1), last_day=next_month(month))


_DAY_SECONDS = 86_400


def _by_local_day(starts: list[datetime], zone: ZoneInfo, *, first_day: date, last_day: date) -> dict[str, list[dict]]:
    """Group sorted UTC starts by local date, each with its ISO UTC time and local "HH:MM".

    A busy month has thousands of starts, so this avoids a zone conversion and a round of
    formatting per start: every local date of exactly 24 hours keeps one UTC offset (no zone
    changes twice in a day), so its starts are placed by arithmetic from its local midnight;
    only starts on DST days are converted one by one.
    """
    midnights = []  # (UTC timestamp of local midnight, "YYYY-MM-DD") for each local date
    day = first_day
    while day <= last_day + timedelta(days=1):
        midnights.append((datetime(day.year, day.month, day.day, tzinfo=zone).timestamp(), day.isoformat()))
        day += timedelta(days=1)
    # Whether each laid-out date is 24 hours long (one offset all day); the last one has no next midnight.
    steady = [after - before == _DAY_SECONDS for (before, _), (after, _) in pairwise(midnights)] + [False]
    local_clock = [f"{minute // 60:02d}:{minute % 60:02d}" for minute in range(24 * 60)]
    days: dict[str, list[dict]] = defaultdict(list)
    utc_days: dict[int, str] = {}
    utc_clock: dict[int, str] = {}
    k = 0
    for moment in starts:
        stamp = moment.timestamp()
        while k + 1 < len(midnights) and midnights[k + 1][0] <= stamp:
            k += 1
        midnight, label = midnights[k]
        if steady[k] and midnight <= stamp:
            local_time = local_clock[int(stamp - midnight) // 60]
        else:  # a DST day (or outside the dates laid out): convert this one
            local = moment.astimezone(zone)
            label, local_time = local.date().isoformat(), f"{local.hour:02d}:{local.minute:02d}"
        utc_day, second = divmod(int(stamp), _DAY_SECONDS)
        if utc_day not in utc_days:
            utc_days[utc_day] = moment.date().isoformat()
        if second not in utc_clock:
            utc_clock[second] = moment.strftime("%H:%M:%S")
        days[label].append({"start": f"{utc_days[utc_day]}T{utc_clock[second]}Z", "time": local_time})
    return dict(days)


def bookable_months(meeting_type: MeetingType, *, zone: ZoneInfo, now: datetime) -> tuple[date, date]:
    """The first and last month a client can page through: now until the end of the booking window."""
    first = month_start(now.astimezone(zone).date())
    last_moment = now + selectors.slot_rules(meeting_type).booking_window
    return first, month_start(last_moment.astimezone(zone).date())


def month_page(
    meeting_type: MeetingType,
    *,
    month: date | None,
    zone: ZoneInfo,
    now: datetime,
    exclude_booking_id: int | None = None,
) -> dict:
    """The JSON for one month. Without a month: the first month that has a free day."""
    first, last = bookable_months(meeting_type, zone=zone, now=now)
    if month is None:
        candidate, month, days = first, first, {}
        while candidate <= last:
            days = slots_in_month(
                meeting_type, month=candidate, zone=zone, now=now, exclude_booking_id=exclude_booking_id
            )
            if days:
                month = candidate
                break
            candidate = next_month(candidate)
        if not days:
            month = first
    elif first <= month <= last:
        days = slots_in_month(meeting_type, month=month, zone=zone, now=now, exclude_booking_id=exclude_booking_id)
    else:
        days = {}
    return {
        "time_zone": zone.key,
        "month": month.strftime("%Y-%m"),
        "today": now.astimezone(zone).date().isoformat(),
        "days": days,
        "previous_month": previous_month(month).strftime("%Y-%m") if month > first else None,
        "next_month": next_month(month).strftime("%Y-%m") if month < last else None,
    }
