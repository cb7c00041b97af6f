"""Month pages of bookable times for the booking calendar, in the client's time zone."""

import json
from bisect import bisect_left
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from itertools import pairwise
from math import ceil
from zoneinfo import ZoneInfo

from meetingtypes.models import MeetingType

from . import availability, cache, selectors

_DAY_SECONDS = 86_400
_CLOCK = [f"{minute // 60:02d}:{minute % 60:02d}" for minute in range(24 * 60)]  # "HH:MM" by minute of the day
_EPOCH_DATE = date(1970, 1, 1)
# More than any zone's distance from UTC, so the UTC days around a month hold all of its local days.
_ZONE_MARGIN = timedelta(days=1)


def month_start(day: date) -> date:
    return day.replace(day=1)


def next_month(month: date) -> date:
    return date(month.year + (month.month == 12), month.month % 12 + 1, 1)


def previous_month(month: date) -> date:
    return date(month.year - (month.month == 1), (month.month - 2) % 12 + 1, 1)


def _local_midnight(day: date, zone: ZoneInfo) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=zone).astimezone(UTC)


class MonthNotOffered(ValueError):
    """A month too far from the booking window to page to: nothing is worked out for it."""


def slots_in_month(
    meeting_type: MeetingType, *, month: date, zone: ZoneInfo, now: datetime, exclude_booking_id: int | None = None
) -> str:
    """The month's days with times, as JSON text (see `_days_json`); NO_DAYS when it has none."""
    rules = selectors.slot_rules(meeting_type)
    stamps, isos = _starts_around(meeting_type, rules, month=month, now=now, exclude_booking_id=exclude_booking_id)
    # The cached starts were worked out a little earlier: drop those that have since come too
    # close to book (rounded up to a whole second, so none is offered too early).
    earliest = ceil((now + rules.minimum_notice).timestamp())
    first = max(int(_local_midnight(month, zone).timestamp()), earliest)
    end = int(_local_midnight(next_month(month), zone).timestamp())
    cut = slice(bisect_left(stamps, first), bisect_left(stamps, end))
    return _days_json(
        stamps[cut], zone, first_day=month - timedelta(days=1), last_day=next_month(month), isos=isos[cut]
    )


def _starts_around(
    meeting_type: MeetingType, rules, *, month: date, now: datetime, exclude_booking_id: int | None
) -> tuple[list[int], list[str]]:
    """Every bookable start in the UTC days around `month`: epoch seconds (ascending), and the
    same written out as the page shows them.

    Every zone's view of the month lies inside them (local offsets run from -12:00 to +14:00),
    so one cached list serves clients in every zone: the cache key names no zone, and a client
    cannot multiply the work by asking for the same month in each of 600 zones. A client moving
    their booking gets a list of their own, with their booking's time free.
    """
    what = f"{month:%Y-%m}" if exclude_booking_id is None else f"{month:%Y-%m}:moving:{exclude_booking_id}"

    def compute() -> tuple[list[int], list[str]]:
        start = max(_local_midnight(month, UTC) - _ZONE_MARGIN, now)
        end = _local_midnight(next_month(month), UTC) + _ZONE_MARGIN
        if start >= end:
            return [], []
        rules_read, hosts = selectors.load_availability(
            meeting_type, start=start, end=end, exclude_booking_id=exclude_booking_id
        )
        instants = availability.available_start_instants(rules_read, hosts, start=start, end=end, now=now)
        stamps = [instant // 1_000_000 for instant in instants]
        return stamps, _iso_starts(stamps)

    return cache.remember(meeting_type, rules, month, what, compute)


# The JSON around and between the strings of one day's starts (none of which needs escaping: digits,
# '-', ':', 'T' and 'Z'): [{"start": "<iso>", "time": "<HH:MM>"}, {"start": …}].
_START_TIME = '", "time": "'
_NEXT_START = '"}, {"start": "'
NO_DAYS = "{}"


def _days_json(
    stamps: list[int], zone: ZoneInfo, *, first_day: date, last_day: date, isos: list[str] | None = None
) -> str:
    """Sorted starts (epoch seconds) grouped by local date, each with its ISO UTC time and local
    "HH:MM", as JSON text: {"2026-12-03": [{"start": "2026-12-03T08:00:00Z", "time": "09:00"}, …], …}.

    A busy month has thousands of starts and this runs on every request (the cache holds the
    starts, not one page per zone), so it converts no start through the zone, formats none and
    makes no object per start: `isos` are the starts already written out (cached with them), and
    every local date of exactly 24 hours keeps one UTC offset (no zone changes twice in a day), so
    its starts are placed by arithmetic from its local midnight, a day at a time, and written by
    joining strings (building a dict per start and encoding them cost three times as much). Only
    starts on DST days, or outside the dates laid out, are converted one by one.
    """
    if isos is None:
        isos = _iso_starts(stamps)
    midnights = []  # (UTC timestamp of local midnight, "YYYY-MM-DD") for each local date
    day = first_day
    while day <= last_day + timedelta(days=1):
        midnights.append((int(datetime(day.year, day.month, day.day, tzinfo=zone).timestamp()), day.isoformat()))
        day += timedelta(days=1)
    days: dict[str, tuple[list[str], list[str]]] = defaultdict(lambda: ([], []))  # date: (ISO starts, clocks)

    def one_by_one(first: int, end: int) -> None:
        for stamp, iso in zip(stamps[first:end], isos[first:end], strict=True):
            local = datetime.fromtimestamp(stamp, zone)
            day_isos, clocks = days[local.date().isoformat()]
            day_isos.append(iso)
            clocks.append(f"{local.hour:02d}:{local.minute:02d}")

    done = bisect_left(stamps, midnights[0][0])
    one_by_one(0, done)
    for (midnight, label), (next_midnight, _) in pairwise(midnights):
        end = bisect_left(stamps, next_midnight, done)
        if end == done:
            continue
        if next_midnight - midnight == _DAY_SECONDS:
            day_isos, clocks = days[label]
            day_isos += isos[done:end]
            clocks += [_CLOCK[(stamp - midnight) // 60] for stamp in stamps[done:end]]
        else:
            one_by_one(done, end)
        done = end
    one_by_one(done, len(stamps))
    written = (
        f'"{label}": [{{"start": "{_NEXT_START.join(map(_START_TIME.join, zip(day_isos, clocks, strict=True)))}"}}]'
        for label, (day_isos, clocks) in days.items()
    )
    return "{" + ", ".join(written) + "}"


def _iso_starts(stamps: list[int]) -> list[str]:
    """'2026-12-03T08:00:00Z' for each start, each UTC date and clock reading formatted once."""
    dates: dict[int, str] = {}
    clocks: dict[int, str] = {}
    isos = []
    for stamp in stamps:
        utc_day, second = divmod(stamp, _DAY_SECONDS)
        if utc_day not in dates:
            dates[utc_day] = (_EPOCH_DATE + timedelta(days=utc_day)).isoformat()
        if second not in clocks:
            clocks[second] = f"{second // 3600:02d}:{second // 60 % 60:02d}:{second % 60:02d}"
        isos.append(f"{dates[utc_day]}T{clocks[second]}Z")
    return isos


def bookable_months(meeting_type: MeetingType, *, zone: ZoneInfo, now: datetime) -> tuple[date, date]:
    """The first and last month a client can page through: now until the end of the booking window."""
    first = month_start(now.astimezone(zone).date())
    last_moment = now + selectors.slot_rules(meeting_type).booking_window
    return first, month_start(last_moment.astimezone(zone).date())


def is_browsable(meeting_type: MeetingType, month: date, *, zone: ZoneInfo, now: datetime) -> bool:
    """Whether a client may page to `month`: a bookable month or one next to them (a calendar left
    open past midnight on the last of the month asks for the month before the first)."""
    first, last = bookable_months(meeting_type, zone=zone, now=now)
    return previous_month(first) <= month <= next_month(last)


def month_page_json(
    meeting_type: MeetingType,
    *,
    month: date | None,
    zone: ZoneInfo,
    now: datetime,
    exclude_booking_id: int | None = None,
) -> str:
    """The JSON for one month: {"time_zone", "month", "today", "days" (see `_days_json`),
    "previous_month", "next_month"}. Without a month: the first month that has a free day.

    A month next to the bookable ones is an empty page; one further away (see `is_browsable`)
    is refused with MonthNotOffered, and nothing is worked out for it.
    """
    first, last = bookable_months(meeting_type, zone=zone, now=now)
    if month is None:
        # At most the 13 months of a year-long window, each cached for every zone.
        candidate, month, days = first, first, NO_DAYS
        while candidate <= last:
            days = slots_in_month(
                meeting_type, month=candidate, zone=zone, now=now, exclude_booking_id=exclude_booking_id
            )
            if days != NO_DAYS:
                month = candidate
                break
            candidate = next_month(candidate)
        if days == NO_DAYS:
            month = first
    elif first <= month <= last:
        days = slots_in_month(meeting_type, month=month, zone=zone, now=now, exclude_booking_id=exclude_booking_id)
    elif is_browsable(meeting_type, month, zone=zone, now=now):
        days = NO_DAYS
    else:
        raise MonthNotOffered(month)
    before = {
        "time_zone": zone.key,
        "month": month.strftime("%Y-%m"),
        "today": now.astimezone(zone).date().isoformat(),
    }
    after = {
        "previous_month": previous_month(month).strftime("%Y-%m") if month > first else None,
        "next_month": next_month(month).strftime("%Y-%m") if month < last else None,
    }
    # The days, already JSON, between the other fields: the same text json.dumps makes of the whole.
    return f'{json.dumps(before)[:-1]}, "days": {days}, {json.dumps(after)[1:]}'
