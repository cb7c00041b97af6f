"""Booking pages are served from a cache, and every change to what can be booked shows at once.

A client opening the calendar should not wait for a month of availability to be worked out
again when nothing changed; and nobody should ever be offered a time that a booking, a day off
or a host change has taken away.
"""

from datetime import time, timedelta

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from bookings import services as booking_services
from meetingtypes import services as meetingtype_services
from meetingtypes.models import MeetingType
from members import services as member_services

from .booking_helpers import (
    NOW,
    TUESDAY,
    at,
    book_through_service,
    book_via_page,
    get_slots,
    iso,
    make_meeting_type,
    slots,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("frozen_now")]

DECEMBER = "2026-12"
TUESDAY_KEY = TUESDAY.isoformat()


@pytest.fixture
def hana(make_member, organization):
    return make_member(organization, name="Hana Host", time_zone="UTC")


@pytest.fixture
def ivan(make_member, organization):
    return make_member(organization, name="Ivan Host", time_zone="UTC")


@pytest.fixture
def consultation(hana):
    return make_meeting_type(hana.organization, [hana], assignment=MeetingType.Assignment.ONE_PERSON)


def december(client, meeting_type) -> dict:
    return slots(client, meeting_type, month=DECEMBER)


def queries_for_december(client, meeting_type) -> list[str]:
    with CaptureQueriesContext(connection) as queries:
        response = get_slots(client, meeting_type, month=DECEMBER)
    assert response.status_code == 200
    return [query["sql"] for query in queries.captured_queries]


def reads_availability(sql: list[str]) -> bool:
    tables = ("bookings_bookinghost", "members_workinghours", "members_dateoverride", "meetingtypes_meetingtypehost")
    return any(table in statement for statement in sql for table in tables)


def test_the_same_month_again_is_served_without_working_it_out_again(client, consultation):
    first = queries_for_december(client, consultation)
    again = queries_for_december(client, consultation)

    assert reads_availability(first)
    assert not reads_availability(again)
    assert again == []  # the meeting type at its address is cached as well (tests/test_public_lookups.py)


def test_a_cache_lifetime_of_zero_works_every_month_out_again(client, consultation, settings):
    """SLOTS_CACHE_SECONDS=0 (the load test's cold web node): nothing is kept, every request reads the database."""
    settings.SLOTS_CACHE_SECONDS = 0
    first = queries_for_december(client, consultation)
    again = queries_for_december(client, consultation)

    assert reads_availability(first)
    assert reads_availability(again)
    assert len(again) == len(first)


def test_a_booked_time_disappears_from_the_cached_page_at_once(client, consultation):
    assert "10:00" in december(client, consultation)[TUESDAY_KEY]

    response = book_via_page(client, consultation, iso(at(TUESDAY, "10:00")))

    assert response.status_code == 302
    assert "10:00" not in december(client, consultation)[TUESDAY_KEY]


def test_a_cancelled_time_comes_back(client, consultation):
    booking = book_through_service(consultation, at(TUESDAY, "10:00"))
    assert "10:00" not in december(client, consultation)[TUESDAY_KEY]

    booking_services.cancel(booking=booking)

    assert "10:00" in december(client, consultation)[TUESDAY_KEY]


def test_a_day_off_and_new_weekly_hours_show_at_once(client, consultation, hana):
    assert TUESDAY_KEY in december(client, consultation)

    member_services.set_date_override(member=hana, date=TUESDAY, intervals=[])
    assert TUESDAY_KEY not in december(client, consultation)

    member_services.remove_date_override(member=hana, date=TUESDAY)
    member_services.set_weekly_hours(member=hana, weekly={1: [(time(13, 0), time(14, 0))]})
    assert december(client, consultation)[TUESDAY_KEY] == ["13:00", "13:30"]


def test_a_moved_time_zone_moves_the_hours(client, consultation, hana):
    assert december(client, consultation)[TUESDAY_KEY][0] == "09:00"

    member_services.update_own_profile(member=hana, display_name=hana.display_name, time_zone="Europe/Berlin")

    assert december(client, consultation)[TUESDAY_KEY][0] == "08:00"


def test_a_deactivated_host_is_no_longer_offered(client, consultation, hana, admin):
    assert december(client, consultation)

    member_services.deactivate_member(member=hana)

    assert december(client, consultation) == {}


def test_the_first_host_of_a_one_person_type_changing_changes_the_times(client, consultation, hana, ivan):
    consultation.host_links.create(member=ivan, position=1)
    member_services.set_weekly_hours(member=ivan, weekly={1: [(time(15, 0), time(16, 0))]})
    assert december(client, consultation)[TUESDAY_KEY][0] == "09:00"  # Hana's hours

    meetingtype_services.move_host_up(meeting_type=consultation, member=ivan)

    assert december(client, consultation)[TUESDAY_KEY] == ["15:00", "15:30"]  # now Ivan's


def test_editing_the_meeting_type_changes_the_times_without_waiting(client, consultation):
    assert december(client, consultation)[TUESDAY_KEY][:2] == ["09:00", "09:30"]

    consultation.slot_interval_minutes = 60
    consultation.save()

    assert december(client, consultation)[TUESDAY_KEY][:2] == ["09:00", "10:00"]


def test_times_that_came_too_close_to_book_leave_the_cached_page(client, hana):
    meeting_type = make_meeting_type(
        hana.organization, [hana], assignment=MeetingType.Assignment.ONE_PERSON, minimum_notice_minutes=60
    )
    monday = NOW.date().isoformat()
    with time_machine.travel(NOW.replace(hour=7, minute=59, second=50), tick=False):
        assert december(client, meeting_type)[monday][0] == "09:00"

    with time_machine.travel(NOW.replace(hour=8, minute=0, second=10), tick=False):  # 20 seconds later
        again = queries_for_december(client, meeting_type)
        page = december(client, meeting_type)

    assert not reads_availability(again)  # still the cached page…
    assert page[monday][0] == "09:30"  # …without 09:00, now less than an hour away


def test_a_change_in_another_organization_leaves_this_cache_alone(client, consultation, outsider):
    december(client, consultation)

    member_services.set_date_override(member=outsider, date=TUESDAY + timedelta(days=1), intervals=[])

    assert not reads_availability(queries_for_december(client, consultation))


def test_a_client_moving_a_booking_always_gets_fresh_times(client, consultation):
    booking = book_through_service(consultation, at(TUESDAY, "10:00"))
    assert "10:00" not in december(client, consultation)[TUESDAY_KEY]  # cached for everyone else

    moving = reverse("bookings:reschedule_slots", args=[booking.uid, booking.manage_token])

    # The booking's own time is free to the client moving it, whatever the cache holds.
    assert "10:00" in slots(client, consultation, month=DECEMBER, url=moving)[TUESDAY_KEY]
    assert "10:00" not in december(client, consultation)[TUESDAY_KEY]


def test_with_the_cache_down_pages_are_worked_out_and_clients_can_still_book(client, consultation, monkeypatch):
    from django.core.cache import cache

    def unreachable(*args, **kwargs):
        raise ConnectionError("cache server unreachable")

    for method in ("get", "set", "set_many", "add", "incr"):
        monkeypatch.setattr(cache, method, unreachable)
    assert "10:00" in december(client, consultation)[TUESDAY_KEY]

    response = book_via_page(client, consultation, iso(at(TUESDAY, "10:00")))

    assert response.status_code == 302 and "booked=1" in response["Location"]
    assert "10:00" not in december(client, consultation)[TUESDAY_KEY]
