"""The calendar's times (slots.json) can't be used to make the server work without end: one cached
month serves clients in every time zone, asking is limited per IP, months far from the booking
window are refused without working anything out, and a client moving a booking is served from
the cache too.

The clock stands at NOW, Monday 2026-12-07 06:00 UTC.
"""

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.core.cache import cache as django_cache
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from bookings import availability, selectors
from meetingtypes.models import MeetingType

from .booking_helpers import (
    NOW,
    TUESDAY,
    at,
    book_through_service,
    get_slots,
    make_meeting_type,
    public_url,
    work_every_day,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("frozen_now")]

DECEMBER = "2026-12"
# The farthest zones from UTC either way, zones with half- and quarter-hour offsets, and DST.
ZONES = [
    "UTC",
    "Pacific/Kiritimati",  # UTC+14
    "Pacific/Pago_Pago",  # UTC-11
    "Asia/Kolkata",
    "Asia/Kathmandu",
    "America/St_Johns",
    "Australia/Lord_Howe",
    "Pacific/Chatham",
]


@pytest.fixture
def around_the_clock(make_member, organization):
    """A host who works every hour of every day: every zone's month starts and ends with times."""
    host = make_member(organization, name="Hana Host", time_zone="UTC")
    work_every_day(host)
    return make_meeting_type(
        organization, [host], assignment=MeetingType.Assignment.ONE_PERSON, duration_minutes=60, booking_window_days=90
    )


def reads_availability(client, meeting_type, **params) -> tuple[dict, bool]:
    """The response's JSON, and whether answering it read hours or bookings from the database."""
    with CaptureQueriesContext(connection) as queries:
        response = get_slots(client, meeting_type, **params)
    assert response.status_code == 200, response.content
    # Working out times always reads the hosts' working hours (the manage link's own page reads
    # the booking's hosts, so bookings_bookinghost would not tell).
    return response.json(), any("members_workinghours" in query["sql"] for query in queries.captured_queries)


def worked_out_for(meeting_type, zone_name: str) -> list[str]:
    """The starts of December in that zone as the engine gives them, without any cache."""
    zone = ZoneInfo(zone_name)
    start, end = max(NOW, datetime(2026, 12, 1, tzinfo=zone)), datetime(2027, 1, 1, tzinfo=zone)
    rules, hosts = selectors.load_availability(meeting_type, start=start, end=end)
    starts = availability.available_starts(rules, hosts, start=start, end=end, now=NOW)
    return [moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") for moment in starts]


def starts_on_page(page: dict) -> list[str]:
    return [slot["start"] for day in sorted(page["days"]) for slot in page["days"][day]]


# ---------------------------------------------------------------- one cache for every zone


def test_one_month_worked_out_once_serves_clients_in_every_zone(client, around_the_clock, monkeypatch):
    keys = []
    real_set = django_cache.set
    monkeypatch.setattr(django_cache, "set", lambda key, *args: keys.append(key) or real_set(key, *args))

    _, worked_out = reads_availability(client, around_the_clock, tz="UTC", month=DECEMBER)
    assert worked_out
    for zone in ZONES[1:]:
        page, worked_out = reads_availability(client, around_the_clock, tz=zone, month=DECEMBER)

        assert not worked_out, zone  # served from the one cached month…
        assert starts_on_page(page) == worked_out_for(around_the_clock, zone), zone  # …and right for the zone
    assert not [key for key in keys if any(zone in key for zone in ZONES)]


def test_each_zone_sees_its_own_local_days_and_clock(client, around_the_clock):
    reads_availability(client, around_the_clock, tz="UTC", month=DECEMBER)

    kiritimati, _ = reads_availability(client, around_the_clock, tz="Pacific/Kiritimati", month=DECEMBER)
    pago_pago, _ = reads_availability(client, around_the_clock, tz="Pacific/Pago_Pago", month=DECEMBER)

    # The last day of December in UTC+14 ends at 10:00 UTC that day; in UTC-11 at 11:00 on 1 January.
    assert kiritimati["days"]["2026-12-31"][-1] == {"start": "2026-12-31T09:00:00Z", "time": "23:00"}
    assert pago_pago["days"]["2026-12-31"][-1] == {"start": "2027-01-01T10:00:00Z", "time": "23:00"}


def test_a_cached_month_still_drops_times_that_came_too_close_to_book(client, make_member, organization):
    host = make_member(organization, name="Hana Host", time_zone="UTC")
    meeting_type = make_meeting_type(
        organization, [host], assignment=MeetingType.Assignment.ONE_PERSON, minimum_notice_minutes=60
    )
    with time_machine.travel(NOW.replace(hour=7, minute=59, second=50), tick=False):
        assert (
            get_slots(client, meeting_type, tz="UTC", month=DECEMBER).json()["days"]["2026-12-07"][0]["time"] == "09:00"
        )

    with time_machine.travel(NOW.replace(hour=8, minute=0, second=10), tick=False):  # 20 seconds later
        page, worked_out = reads_availability(client, meeting_type, tz="Asia/Kolkata", month=DECEMBER)

    assert not worked_out  # still the cached month…
    assert page["days"]["2026-12-07"][0] == {"start": "2026-12-07T09:30:00Z", "time": "15:00"}  # …without 09:00


# ---------------------------------------------------------------- limits


def test_asking_for_times_is_limited_per_ip(around_the_clock, settings):
    settings.SLOTS_RATE_LIMIT = 3
    noisy = Client(REMOTE_ADDR="203.0.113.7")
    for zone in ZONES[:3]:
        assert get_slots(noisy, around_the_clock, tz=zone, month=DECEMBER).status_code == 200

    refused = get_slots(noisy, around_the_clock, tz=ZONES[3], month=DECEMBER)

    assert refused.status_code == 429
    assert 1 <= int(refused["Retry-After"]) <= settings.SLOTS_RATE_WINDOW_SECONDS
    assert "Too many requests" in refused.json()["error"]
    neighbour = Client(REMOTE_ADDR="203.0.113.8")
    assert get_slots(neighbour, around_the_clock, tz=ZONES[3], month=DECEMBER).status_code == 200


@pytest.mark.parametrize("month", ["2150-01", "2027-06", "2000-01", "2026-10", "0000-01", "9999-12"])
def test_a_month_far_from_the_booking_window_is_refused_without_working_anything_out(client, around_the_clock, month):
    with CaptureQueriesContext(connection) as queries:
        response = get_slots(client, around_the_clock, tz="UTC", month=month)

    assert response.status_code == 400
    assert response.json()["error"]
    assert len(queries.captured_queries) <= 1  # the meeting type, nothing of anyone's hours or bookings


def test_the_months_next_to_the_booking_window_are_empty_pages(client, around_the_clock):
    # The window ends in March: February is the last month, March the next one (a stale calendar may ask).
    assert get_slots(client, around_the_clock, tz="UTC", month="2027-03").json()["days"]
    assert get_slots(client, around_the_clock, tz="UTC", month="2027-04").json()["days"] == {}
    assert get_slots(client, around_the_clock, tz="UTC", month="2026-11").json()["days"] == {}


def test_a_calendar_link_to_a_month_it_would_refuse_opens_on_the_first_month(client, around_the_clock):
    page = client.get(public_url(around_the_clock), {"month": "2150-01"}).content.decode()
    assert 'data-initial-month=""' in page

    page = client.get(public_url(around_the_clock), {"month": "2027-01"}).content.decode()
    assert 'data-initial-month="2027-01"' in page


# ---------------------------------------------------------------- moving a booking


def test_a_client_moving_a_booking_is_served_from_the_cache_and_sees_their_own_time_free(client, around_the_clock):
    booking = book_through_service(around_the_clock, at(TUESDAY, "10:00"))
    moving = reverse("bookings:reschedule_slots", args=[booking.uid, booking.manage_token])

    first, worked_out = reads_availability(client, around_the_clock, tz="UTC", month=DECEMBER, url=moving)
    assert worked_out and "2026-12-08T10:00:00Z" in starts_on_page(first)

    again, worked_out = reads_availability(client, around_the_clock, tz="Asia/Kolkata", month=DECEMBER, url=moving)
    assert not worked_out and "2026-12-08T10:00:00Z" in starts_on_page(again)

    # Everyone else still sees that time taken, and a new booking shows at once to the client moving theirs.
    public, _ = reads_availability(client, around_the_clock, tz="UTC", month=DECEMBER)
    assert "2026-12-08T10:00:00Z" not in starts_on_page(public)
    book_through_service(around_the_clock, at(TUESDAY, "12:00"), email="other@example.com")
    after, _ = reads_availability(client, around_the_clock, tz="UTC", month=DECEMBER, url=moving)
    assert "2026-12-08T12:00:00Z" not in starts_on_page(after)
