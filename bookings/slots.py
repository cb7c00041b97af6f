"""Month pages of bookable times for the booking calendar, in the client's time zone."""

from collections import defaultdict
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from meetingtypes.models import MeetingType

from . import availability, selectors


def month_start(day: date) -> date:
    return day.replace(day=1)


def next_month(month: date) -> date:
    return date(month.year + (month.month == 12), month.month % 12 + 1, 1)


def previous_month(month: date) -> date:
    return date(month.year - (month.month == 1), (month.month - 2) % 12 + 1, 1)


def _local_midnight(day: date, zone: ZoneInfo) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=zone).astimezone(UTC)


def slots_in_month(
    meeting_type: MeetingType, *, month: date, zone: ZoneInfo, now: datetime, exclude_booking_id: int | None = None
) -> dict[str, list[dict]]:
    """{'2026-12-03': [{'start': '2026-12-03T08:00:00Z', 'time': '09:00'}, …]} for the days with times."""
    start = max(_local_midnight(month, zone), now)
    end = _local_midnight(next_month(month), zone)
    if start >= end:
        return {}
    rules, hosts = selectors.load_availability(
        meeting_type, start=start, end=end, exclude_booking_id=exclude_booking_id
    )
    days: dict[str, list[dict]] = defaultdict(list)
    # A busy month has thousands of slots: plain attribute formatting instead of strftime.
    for slot in availability.available_slots(rules, hosts, start=start, end=end, now=now):
        local = slot.start.astimezone(zone)
        days[f"{local.year:04d}-{local.month:02d}-{local.day:02d}"].append(
            {"start": slot.start.isoformat().replace("+00:00", "Z"), "time": f"{local.hour:02d}:{local.minute:02d}"}
        )
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
