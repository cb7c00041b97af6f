"""The booking calendar groups bookable times by the client's local date and shows each in their
local clock, whatever the zone and even on the days the clocks change. The days are written as JSON
text directly: it must be the very text `json.dumps` makes of them."""

import json
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bookings.slots import _days_json

ZONES = ["UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata", "Australia/Adelaide", "Australia/Lord_Howe"]


def one_by_one(starts: list[datetime], zone: ZoneInfo) -> dict[str, list[dict]]:
    """The same grouping done the plain way: convert every start."""
    days: dict[str, list[dict]] = {}
    for moment in starts:
        local = moment.astimezone(zone)
        days.setdefault(local.date().isoformat(), []).append(
            {"start": moment.strftime("%Y-%m-%dT%H:%M:%SZ"), "time": local.strftime("%H:%M")}
        )
    return days


def epoch_seconds(starts: list[datetime]) -> list[int]:
    """The starts as the page cache holds them."""
    return [int(moment.timestamp()) for moment in starts]


def every_quarter_hour(first: datetime, last: datetime) -> list[datetime]:
    starts, moment = [], first
    while moment <= last:
        starts.append(moment)
        moment += timedelta(minutes=15)
    return starts


@pytest.mark.parametrize("zone_name", ZONES)
@pytest.mark.parametrize(
    "month",
    [date(2026, 3, 1), date(2026, 4, 1), date(2026, 10, 1), date(2026, 11, 1)],  # the months clocks change
)
def test_every_quarter_hour_of_a_month_is_labelled_as_a_local_clock_shows_it(zone_name, month):
    zone = ZoneInfo(zone_name)
    first = datetime(month.year, month.month, 1, tzinfo=zone).astimezone(UTC)
    last = first + timedelta(days=31)
    starts = every_quarter_hour(first, last)

    grouped = _days_json(
        epoch_seconds(starts), zone, first_day=month - timedelta(days=1), last_day=month + timedelta(days=32)
    )

    assert grouped == json.dumps(one_by_one(starts, zone))


@settings(max_examples=200, deadline=None, database=None)
@given(
    st.sampled_from(ZONES),
    st.lists(st.integers(0, 40 * 24 * 60), min_size=1, max_size=60, unique=True),
)
def test_any_starts_near_the_laid_out_dates_are_labelled_correctly(zone_name, minutes):
    zone = ZoneInfo(zone_name)
    origin = datetime(2026, 3, 20, tzinfo=UTC)
    starts = [origin + timedelta(minutes=m) for m in sorted(minutes)]

    # Dates laid out cover only part of the starts: the rest must still come out right.
    grouped = _days_json(epoch_seconds(starts), zone, first_day=date(2026, 3, 25), last_day=date(2026, 4, 10))

    assert grouped == json.dumps(one_by_one(starts, zone))


def test_no_starts_make_an_empty_object():
    days = _days_json([], ZoneInfo("Europe/Berlin"), first_day=date(2026, 2, 28), last_day=date(2026, 4, 1))
    assert days == json.dumps({}) == "{}"
