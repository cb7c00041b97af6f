"""Just before a booking commits, the chosen host's own calendar is asked live whether the time is
still free: a meeting put in it a moment ago, not synced yet, still stops the booking. The product
talks real HTTP to the Google and Microsoft fakes on the live server; the client books through the
public pages."""

import logging
from datetime import datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from django.db import connection as database

from bookings import services
from bookings.models import Booking, BookingHost
from integrations import http
from integrations.calendars import sync
from integrations.models import BusyInterval, Calendar, Connection
from integrations.sandbox import google, microsoft
from meetingtypes.models import MeetingType

from . import google_helpers, microsoft_helpers
from .booking_helpers import book_through_service, book_via_page, get_slots, iso, make_meeting_type
from .zoom_helpers import weekday_at

pytestmark = pytest.mark.django_db(transaction=True)

HANA_GOOGLE = "hana@hana-workspace.example"
IVO_GOOGLE = "ivo.host@gmail.com"
HANA_OUTLOOK = "hana@contoso.example"
LIVE_LOG = "integrations.calendars.live"
ONE_PERSON = MeetingType.Assignment.ONE_PERSON
COLLECTIVE = MeetingType.Assignment.COLLECTIVE


def calendar_connected(member, email: str, provider: str = "google") -> Calendar:
    """The member's account connected, its calendars listed and the primary one (which counts as
    busy) synced: what the booking pages know of it from now on."""
    helpers = google_helpers if provider == "google" else microsoft_helpers
    connection = helpers.connected_in_sandbox(member, email)
    sync.refresh_calendar_list(connection.pk)
    calendar = Calendar.objects.get(connection=connection, is_primary=True)
    assert calendar.checks_busy and calendar.synced_at is not None
    return calendar


def offered(client, meeting_type, start) -> bool:
    days = get_slots(client, meeting_type, month=f"{start:%Y-%m}").json()["days"]
    return iso(start) in [slot["start"] for times in days.values() for slot in times]


def refused_as_taken(response) -> bool:
    return response.status_code == 302 and parse_qs(urlsplit(response["Location"]).query).get("taken") == ["1"]


def hosts_of(booking: Booking) -> list[int]:
    return list(BookingHost.objects.filter(booking=booking, is_active=True).values_list("member_id", flat=True))


@pytest.fixture
def calendar_calls(monkeypatch):
    """Each live free/busy request the product sends: (path, whether a transaction was open,
    how many bookings existed at that moment). The request itself goes out unchanged."""
    calls: list[tuple[str, bool, int]] = []
    send = http.request

    def recorded(method, url, **kwargs):
        path = urlsplit(url).path
        if path.endswith(("/freeBusy", "/getSchedule")):
            calls.append((path, database.in_atomic_block, Booking.objects.count()))
        return send(method, url, **kwargs)

    monkeypatch.setattr(http, "request", recorded)
    return calls


# ---------------------------------------------------------------- a meeting not synced yet


@pytest.mark.usefixtures("google_sandbox")
def test_a_meeting_put_in_the_calendar_a_moment_ago_stops_the_booking_and_leaves_the_page(client, hana):
    calendar = calendar_connected(hana, HANA_GOOGLE)
    meeting_type = make_meeting_type(hana.organization, [hana], assignment=ONE_PERSON)
    start = weekday_at(11)
    assert offered(client, meeting_type, start)  # and now cached for the booking page

    google.add_event(HANA_GOOGLE, start - timedelta(minutes=15), start + timedelta(minutes=15))
    assert not BusyInterval.objects.filter(calendar=calendar).exists()  # not synced: the page still offers it
    assert offered(client, meeting_type, start)

    assert refused_as_taken(book_via_page(client, meeting_type, iso(start)))
    assert not Booking.objects.exists()
    # What the live check saw is stored by a sync of her calendar, and the page stops offering it.
    assert BusyInterval.objects.filter(calendar=calendar, start__lt=start + timedelta(minutes=30)).exists()
    assert not offered(client, meeting_type, start)
    assert offered(client, meeting_type, start + timedelta(minutes=30))


@pytest.mark.usefixtures("google_sandbox")
def test_round_robin_books_the_next_host_when_the_first_ones_calendar_is_busy(client, hana, ivo):
    calendar_connected(hana, HANA_GOOGLE)
    calendar_connected(ivo, IVO_GOOGLE)
    meeting_type = make_meeting_type(hana.organization, [hana, ivo])  # Hana first: both never booked
    start = weekday_at(11)
    google.add_event(HANA_GOOGLE, start, start + timedelta(minutes=30))

    response = book_via_page(client, meeting_type, iso(start))
    assert response.status_code == 302 and "booked=1" in response["Location"]
    assert hosts_of(Booking.objects.get()) == [ivo.pk]


@pytest.mark.usefixtures("google_sandbox")
def test_collective_needs_every_hosts_calendar_free(client, hana, ivo):
    calendar_connected(hana, HANA_GOOGLE)
    calendar_connected(ivo, IVO_GOOGLE)
    meeting_type = make_meeting_type(hana.organization, [hana, ivo], assignment=COLLECTIVE)
    start = weekday_at(11)
    google.add_event(IVO_GOOGLE, start + timedelta(minutes=20), start + timedelta(minutes=50))

    assert refused_as_taken(book_via_page(client, meeting_type, iso(start)))
    assert not Booking.objects.exists()
    booked = book_via_page(client, meeting_type, iso(start - timedelta(hours=1)))
    assert "booked=1" in booked["Location"]
    assert sorted(hosts_of(Booking.objects.get())) == sorted([hana.pk, ivo.pk])


@pytest.mark.usefixtures("microsoft_sandbox")
def test_an_outlook_meeting_not_synced_yet_stops_the_booking_too(client, hana):
    calendar = calendar_connected(hana, HANA_OUTLOOK, provider="microsoft")
    meeting_type = make_meeting_type(hana.organization, [hana], assignment=ONE_PERSON)
    start = weekday_at(12)
    microsoft.add_event(HANA_OUTLOOK, start, start + timedelta(hours=1))
    assert not BusyInterval.objects.filter(calendar=calendar).exists()

    assert refused_as_taken(book_via_page(client, meeting_type, iso(start + timedelta(minutes=30))))
    assert not Booking.objects.exists()
    assert BusyInterval.objects.filter(calendar=calendar).exists()


@pytest.mark.usefixtures("google_sandbox")
def test_a_free_or_tentative_meeting_stops_nothing(client, hana):
    calendar_connected(hana, HANA_GOOGLE)
    meeting_type = make_meeting_type(hana.organization, [hana], assignment=ONE_PERSON)
    start = weekday_at(11)
    google.add_event(HANA_GOOGLE, start, start + timedelta(hours=1), transparency="transparent")

    assert "booked=1" in book_via_page(client, meeting_type, iso(start))["Location"]


# ---------------------------------------------------------------- our own bookings' events


@pytest.mark.usefixtures("google_sandbox")
def test_the_bookings_own_event_in_the_calendar_does_not_stop_moving_it_a_little(hana):
    calendar_connected(hana, HANA_GOOGLE)
    meeting_type = make_meeting_type(hana.organization, [hana], assignment=ONE_PERSON, slot_interval_minutes=15)
    start = weekday_at(11)
    booking = book_through_service(meeting_type, start)
    # The booking is written to her calendar, where free/busy shows it like any other event.
    [event] = google_helpers.sandbox_events(HANA_GOOGLE)
    assert datetime.fromisoformat(event["start"]["dateTime"]) == start

    moved = services.reschedule(booking=booking, start=start + timedelta(minutes=15))
    assert moved.start == start + timedelta(minutes=15)
    # A meeting of her own right before it still counts, though free/busy gives the two as one
    # period: the booking can't move back onto it.
    google.add_event(HANA_GOOGLE, start - timedelta(minutes=15), start + timedelta(minutes=15))
    with pytest.raises(services.SlotUnavailable):
        services.reschedule(booking=moved, start=start)
    assert Booking.objects.get().start == start + timedelta(minutes=15)


# ---------------------------------------------------------------- when and how often it asks


@pytest.mark.usefixtures("google_sandbox")
def test_the_calendar_is_asked_once_before_the_booking_is_written_and_outside_any_transaction(
    client, hana, calendar_calls
):
    calendar_connected(hana, HANA_GOOGLE)
    meeting_type = make_meeting_type(hana.organization, [hana], assignment=ONE_PERSON)

    assert "booked=1" in book_via_page(client, meeting_type, iso(weekday_at(11)))["Location"]
    assert calendar_calls == [("/sandbox/google/calendar/v3/freeBusy", False, 0)]


@pytest.mark.usefixtures("google_sandbox")
def test_hosts_without_a_calendar_that_counts_need_no_call(client, hana, ivo, calendar_calls):
    calendar = calendar_connected(hana, HANA_GOOGLE)
    sync.stop_checking(calendar)
    meeting_type = make_meeting_type(hana.organization, [hana, ivo], assignment=COLLECTIVE)

    assert "booked=1" in book_via_page(client, meeting_type, iso(weekday_at(11)))["Location"]
    assert calendar_calls == []


# ---------------------------------------------------------------- the provider can't answer


@pytest.mark.usefixtures("google_sandbox")
def test_provider_down_the_cached_busy_time_decides_and_the_log_says_so(client, hana, caplog):
    calendar = calendar_connected(hana, HANA_GOOGLE)
    meeting_type = make_meeting_type(hana.organization, [hana], assignment=ONE_PERSON)
    start = weekday_at(11)
    google.add_event(HANA_GOOGLE, start, start + timedelta(minutes=30))  # not synced: only the live check knows
    google.inject_failure("freeBusy", status=503)

    with caplog.at_level(logging.INFO):
        response = book_via_page(client, meeting_type, iso(start))
    assert "booked=1" in response["Location"]
    warnings = [record.getMessage() for record in caplog.records if record.name == LIVE_LOG]
    assert warnings == [
        f"Google: live calendar check failed for member {hana.pk} (HTTP 503); using the cached busy time"
    ]
    secrets = (calendar.connection.access_token, calendar.connection.refresh_token)
    assert not any(secret in caplog.text for secret in secrets)


@pytest.mark.usefixtures("google_sandbox")
def test_provider_down_still_leaves_synced_meetings_blocking(client, hana):
    calendar = calendar_connected(hana, HANA_GOOGLE)
    meeting_type = make_meeting_type(hana.organization, [hana], assignment=ONE_PERSON)
    start = weekday_at(11)
    google.add_event(HANA_GOOGLE, start, start + timedelta(minutes=30))
    sync.sync_calendar(calendar.pk)
    google.inject_failure("freeBusy", status=500, times=5)

    assert refused_as_taken(book_via_page(client, meeting_type, iso(start)))
    assert not Booking.objects.exists()


@pytest.mark.usefixtures("google_sandbox")
def test_a_provider_too_slow_to_answer_does_not_hold_up_the_booking(client, hana, settings, caplog):
    calendar_connected(hana, HANA_GOOGLE)
    settings.CALENDAR_LIVE_CHECK_TIMEOUT_SECONDS = 0.3
    meeting_type = make_meeting_type(hana.organization, [hana], assignment=ONE_PERSON)
    google.inject_failure("freeBusy", delay_seconds=1.5)

    with caplog.at_level(logging.WARNING, logger=LIVE_LOG):
        response = book_via_page(client, meeting_type, iso(weekday_at(11)))
    assert "booked=1" in response["Location"]
    assert "(no answer in time); using the cached busy time" in caplog.text


@pytest.mark.usefixtures("google_sandbox")
def test_a_connection_that_needs_reconnecting_leaves_it_to_the_cached_busy_time(client, hana, caplog):
    calendar = calendar_connected(hana, HANA_GOOGLE)
    Connection.objects.filter(pk=calendar.connection_id).update(status=Connection.Status.BROKEN)
    meeting_type = make_meeting_type(hana.organization, [hana], assignment=ONE_PERSON)

    with caplog.at_level(logging.WARNING, logger=LIVE_LOG):
        response = book_via_page(client, meeting_type, iso(weekday_at(11)))
    assert "booked=1" in response["Location"]
    assert f"member {hana.pk} (the connection needs reconnecting)" in caplog.text


@pytest.mark.usefixtures("microsoft_sandbox")
def test_an_answer_that_makes_no_sense_leaves_it_to_the_cached_busy_time(client, hana, caplog):
    calendar_connected(hana, HANA_OUTLOOK, provider="microsoft")
    meeting_type = make_meeting_type(hana.organization, [hana], assignment=ONE_PERSON)
    microsoft.inject_failure("getSchedule", status=200, body={"value": "not a list"})

    with caplog.at_level(logging.WARNING, logger=LIVE_LOG):
        response = book_via_page(client, meeting_type, iso(weekday_at(12)))
    assert "booked=1" in response["Location"]
    assert "Microsoft: live calendar check failed" in caplog.text
    assert "(an answer we could not read)" in caplog.text
