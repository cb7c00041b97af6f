"""A member's own calendar meetings, as cached in our database, take their times off the booking page.

The sync that fills the cache talks to the providers elsewhere; here the cached busy time is written
as the sync leaves it, and read through the real URLs and services. The clock stands at NOW, Monday
2026-12-07 06:00 UTC; hosts work Mon-Fri 09:00-17:00 in their own zone (UTC unless said otherwise).
"""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from bookings import selectors, services
from integrations.calendars import sync
from integrations.models import BusyInterval, Calendar, Connection
from meetingtypes.models import MeetingType

from .booking_helpers import (
    MONDAY,
    TUESDAY,
    WEDNESDAY,
    at,
    book_through_service,
    get_slots,
    make_booking,
    make_meeting_type,
    slots,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("frozen_now")]

COLLECTIVE = MeetingType.Assignment.COLLECTIVE
ONE_PERSON = MeetingType.Assignment.ONE_PERSON
NEW_YORK = ZoneInfo("America/New_York")
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@pytest.fixture
def host(make_member, organization):
    return make_member(organization, name="Hana Host", time_zone="UTC")


@pytest.fixture
def second_host(make_member, organization):
    return make_member(organization, name="Ivo Host", time_zone="UTC")


def calendar_of(member, *, name: str = "Work") -> Calendar:
    connection_row, _ = Connection.objects.get_or_create(
        member=member, provider="google", defaults={"external_user_id": f"g-{member.pk}", "email": "h@example.com"}
    )
    return Calendar.objects.create(
        connection=connection_row,
        member=member,
        external_id=f"{name.lower()}@example.com",
        name=name,
        is_primary=name == "Work",
        checks_busy=True,
    )


def meeting_in(calendar: Calendar, start, end, event_id: str | None = None) -> BusyInterval:
    """A meeting in the member's calendar, as the sync stores it."""
    return BusyInterval.objects.create(
        calendar=calendar, member=calendar.member, event_id=event_id or f"ev-{start:%d%H%M}", start=start, end=end
    )


def busy_of(host_data) -> list[tuple[datetime, datetime]]:
    """The busy intervals handed to the engine, as UTC datetimes (read as integers on PostgreSQL)."""
    spans = zip(host_data.busy_starts.tolist(), host_data.busy_ends.tolist(), strict=True)
    return sorted((EPOCH + timedelta(microseconds=start), EPOCH + timedelta(microseconds=end)) for start, end in spans)


def times_on(client, meeting_type, day, tz: str = "UTC") -> list[str]:
    return slots(client, meeting_type, tz=tz, month=f"{day:%Y-%m}").get(day.isoformat(), [])


# ---------------------------------------------------------------- which times go


def test_a_meeting_in_the_hosts_calendar_takes_exactly_the_times_it_overlaps(client, host):
    meeting_type = make_meeting_type(host.organization, [host], assignment=ONE_PERSON)
    meeting_in(calendar_of(host), at(TUESDAY, "10:00"), at(TUESDAY, "11:00"))

    tuesday = times_on(client, meeting_type, TUESDAY)
    assert "10:00" not in tuesday and "10:30" not in tuesday
    # The half hours that end as it starts, and start as it ends, stay bookable.
    assert "09:30" in tuesday and "11:00" in tuesday
    assert len(tuesday) == 16 - 2
    assert len(times_on(client, meeting_type, WEDNESDAY)) == 16


def test_the_slot_with_its_buffers_must_clear_the_meeting_but_the_meeting_has_no_buffers_of_its_own(client, host):
    """A booking's buffers are part of the time it takes; a calendar meeting is just its own time.
    With 15 minutes before and after, a 30-minute slot needs [start - 15, end + 15) clear of it."""
    meeting_type = make_meeting_type(
        host.organization,
        [host],
        assignment=ONE_PERSON,
        slot_interval_minutes=15,
        buffer_before_minutes=15,
        buffer_after_minutes=15,
    )
    meeting_in(calendar_of(host), at(TUESDAY, "12:00"), at(TUESDAY, "13:00"))

    tuesday = times_on(client, meeting_type, TUESDAY)
    gone = {"11:30", "11:45", "12:00", "12:15", "12:30", "12:45", "13:00"}
    assert not gone & set(tuesday)
    # 11:15 + 30 min + 15 min buffer ends at 12:00; 13:15 - 15 min buffer starts at 13:00.
    assert {"11:15", "13:15"} <= set(tuesday)


def test_unticking_a_calendar_gives_its_meetings_times_back(client, host):
    meeting_type = make_meeting_type(host.organization, [host], assignment=ONE_PERSON)
    calendar = calendar_of(host, name="Birthdays")
    meeting_in(calendar, at(TUESDAY, "10:00"), at(TUESDAY, "11:00"))
    assert "10:00" not in times_on(client, meeting_type, TUESDAY)

    sync.stop_checking(calendar)
    assert "10:00" in times_on(client, meeting_type, TUESDAY)


def test_a_meeting_blocks_the_same_local_hours_on_both_sides_of_a_dst_change(client, make_member, organization):
    """A host in New York with a 09:00-10:00 meeting every Friday around the March change: the
    cached instants are UTC, the page shows 09:00 local gone on both Fridays."""
    host = make_member(organization, time_zone="America/New_York")
    meeting_type = make_meeting_type(organization, [host], assignment=ONE_PERSON, booking_window_days=120)
    calendar = calendar_of(host)
    before, after = MONDAY + timedelta(days=88), MONDAY + timedelta(days=102)  # Fri 5 and 19 March 2027
    for friday in (before, after):
        meeting_in(calendar, at(friday, "09:00", NEW_YORK), at(friday, "10:00", NEW_YORK))

    for friday in (before, after):
        local = times_on(client, meeting_type, friday, tz="America/New_York")
        assert local[:3] == ["10:00", "10:30", "11:00"], (friday, local[:3])
    assert at(before, "09:00", NEW_YORK).hour == 14 and at(after, "09:00", NEW_YORK).hour == 13


def test_a_meeting_longer_than_the_range_read_still_blocks_it(client, host):
    """An all-day or multi-day event starting well before the month page's range."""
    meeting_type = make_meeting_type(host.organization, [host], assignment=ONE_PERSON)
    meeting_in(calendar_of(host), at(MONDAY, "00:00") - timedelta(days=10), at(WEDNESDAY, "00:00"))
    assert times_on(client, meeting_type, TUESDAY) == []
    assert len(times_on(client, meeting_type, WEDNESDAY)) == 16


def test_round_robin_keeps_the_time_while_another_host_is_free_collective_does_not(client, host, second_host):
    round_robin = make_meeting_type(host.organization, [host, second_host], name="Either")
    together = make_meeting_type(host.organization, [host, second_host], name="Both", assignment=COLLECTIVE)
    meeting_in(calendar_of(host), at(TUESDAY, "10:00"), at(TUESDAY, "10:30"))

    assert "10:00" in times_on(client, round_robin, TUESDAY)
    assert "10:00" not in times_on(client, together, TUESDAY)
    booking = book_through_service(round_robin, at(TUESDAY, "10:00"))
    assert list(booking.host_rows.values_list("member_id", flat=True)) == [second_host.pk]


def test_booking_a_time_the_calendar_has_taken_is_refused_as_just_taken(host):
    meeting_type = make_meeting_type(host.organization, [host], assignment=ONE_PERSON)
    meeting_in(calendar_of(host), at(TUESDAY, "10:00"), at(TUESDAY, "11:00"))
    with pytest.raises(services.SlotUnavailable) as refused:
        book_through_service(meeting_type, at(TUESDAY, "10:30"))
    assert not isinstance(refused.value, services.SlotNotOffered)
    assert not meeting_type.bookings.exists()


def test_another_members_meetings_take_nothing_from_this_host(client, host, second_host):
    meeting_type = make_meeting_type(host.organization, [host], assignment=ONE_PERSON)
    meeting_in(calendar_of(second_host), at(TUESDAY, "10:00"), at(TUESDAY, "11:00"))
    assert "10:00" in times_on(client, meeting_type, TUESDAY)


# ---------------------------------------------------------------- moving a booking


def test_moving_a_booking_frees_its_own_time_but_not_the_calendars(client, host):
    meeting_type = make_meeting_type(host.organization, [host], assignment=ONE_PERSON)
    booking = make_booking(meeting_type, [host], at(TUESDAY, "14:00"))
    meeting_in(calendar_of(host), at(TUESDAY, "10:00"), at(TUESDAY, "11:00"))

    _rules, hosts = selectors.load_availability(
        meeting_type, start=at(TUESDAY, "00:00"), end=at(WEDNESDAY, "00:00"), exclude_booking_id=booking.pk
    )
    assert busy_of(hosts[0]) == [(at(TUESDAY, "10:00"), at(TUESDAY, "11:00"))]

    with pytest.raises(services.SlotUnavailable):
        services.reschedule(booking=booking, start=at(TUESDAY, "10:30"))
    moved = services.reschedule(booking=booking, start=at(TUESDAY, "14:30"))  # overlaps only its own old time
    assert moved.start == at(TUESDAY, "14:30")


# ---------------------------------------------------------------- the number of queries


def _month_queries(client, meeting_type) -> list[str]:
    with CaptureQueriesContext(connection) as queries:
        response = get_slots(client, meeting_type, tz="Europe/Paris", month="2026-12")
    assert response.status_code == 200
    return [query["sql"] for query in queries.captured_queries]


def test_the_month_page_takes_as_many_queries_with_calendars_as_without(
    client, host, second_host, django_assert_num_queries
):
    meeting_type = make_meeting_type(host.organization, [host, second_host], daily_limit_per_host=8)
    make_booking(meeting_type, [host], at(TUESDAY, "15:00"))
    get_slots(client, meeting_type, tz="Europe/Paris", month="2026-12")  # its address is found once and kept
    services.cache.hosts_changed([host.pk, second_host.pk])
    without = _month_queries(client, meeting_type)

    for member in (host, second_host):
        calendar = calendar_of(member)
        for day in range(20):
            start = at(TUESDAY, "09:00") + timedelta(days=day)
            meeting_in(calendar, start, start + timedelta(minutes=45), event_id=f"ev-{day}")
    services.cache.hosts_changed([host.pk, second_host.pk])
    with django_assert_num_queries(len(without)):
        response = get_slots(client, meeting_type, tz="Europe/Paris", month="2026-12")
    assert "2026-12-08T09:00:00Z" not in str(response.json()["days"])


@pytest.mark.parametrize(
    ("leaving_out", "queries"),
    [
        pytest.param(None, 1, id="booking page: hosts with their hours, overrides and busy day sums in one row each"),
        pytest.param(0, 4, id="moving a booking: hosts, hours, overrides, then the busy rows themselves"),
    ],
)
def test_loading_availability_reads_bookings_and_calendars_together(
    host, second_host, django_assert_num_queries, leaving_out, queries
):
    meeting_type = make_meeting_type(host.organization, [host, second_host])
    make_booking(meeting_type, [host], at(TUESDAY, "15:00"))
    meeting_in(calendar_of(second_host), at(TUESDAY, "10:00"), at(TUESDAY, "11:00"))
    meeting_in(calendar_of(host, name="Team"), at(TUESDAY, "12:00"), at(TUESDAY, "12:30"))

    with django_assert_num_queries(queries):
        _rules, hosts = selectors.load_availability(
            meeting_type, start=at(MONDAY, "00:00"), end=at(WEDNESDAY, "00:00"), exclude_booking_id=leaving_out
        )
    assert {host_data.host_id: busy_of(host_data) for host_data in hosts} == {
        host.pk: [(at(TUESDAY, "12:00"), at(TUESDAY, "12:30")), (at(TUESDAY, "15:00"), at(TUESDAY, "15:30"))],
        second_host.pk: [(at(TUESDAY, "10:00"), at(TUESDAY, "11:00"))],
    }
