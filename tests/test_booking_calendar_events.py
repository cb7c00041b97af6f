"""A booking lands in each host's chosen calendar as one event, with the product talking real HTTP to
the Google and Microsoft fakes: the client's name, their notes, the join link and the manage link
in it; moved with the booking, deleted with it, taken from a host who no longer has the booking and
given to the new one; exactly once through repeated tasks, sweeps and answers that came too late;
a Google Meet booking is one event that carries the link; a provider that is down is tried again
until the meeting ends."""

from datetime import UTC, datetime, timedelta

import pytest
from django.conf import settings
from django.db import connection as db_connection
from django.db import transaction
from django.test import TestCase
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from bookings import followup
from bookings import services as booking_services
from bookings import tasks as booking_tasks
from bookings.models import BookingChange
from integrations import http, registry
from integrations.calendars import choices, events, sync
from integrations.models import BookingCalendarEvent, Calendar, Connection, VideoMeeting
from integrations.sandbox import google, microsoft, zoom
from meetingtypes.models import MeetingType

from . import google_helpers, microsoft_helpers, zoom_helpers
from .booking_helpers import make_booking, make_meeting_type
from .zoom_helpers import (
    CallRecorder,
    book_zoom_meeting,
    cancel,
    reschedule,
    sweep_later,
    video,
    weekday_at,
)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("provider_sandboxes")]

HANA_GOOGLE = "hana@hana-workspace.example"
IVO_GOOGLE = "ivo.host@ivo-workspace.example"
IVO_MICROSOFT = "ivo@contoso.example"
NOTES = "Please have the Q3 numbers ready."
Row = BookingCalendarEvent.State


def books_into(member, provider: str, email: str, name: str = "Client meetings") -> Calendar:
    """The member connects their account and picks one of its calendars (not the primary one) to
    receive their bookings, on their card, counting none as busy."""
    if provider == "google":
        connection = google_helpers.connected_in_sandbox(member, email)
        external_id = google.add_calendar(email, name)
    else:
        connection = microsoft_helpers.connected_in_sandbox(member, email)
        external_id = microsoft.add_calendar(email, name)
    sync.refresh_calendar_list(connection.pk)
    calendar = Calendar.objects.get(connection=connection, external_id=external_id)
    choices.save_calendar_choices(member=member, busy_ids=[], booking_calendar_id=calendar.pk)
    calendar.refresh_from_db()
    assert calendar.receives_bookings and not calendar.is_primary
    return calendar


def google_events(email: str, calendar_id: str | None = None, *, deleted: bool = False) -> list[dict]:
    return google.events_of(email, calendar_id, deleted=deleted)


def row_of(booking, member) -> BookingCalendarEvent:
    return BookingCalendarEvent.objects.get(booking=booking, member=member)


def host_of(booking):
    (host,) = [row.member for row in booking.host_rows.filter(is_active=True).select_related("member")]
    return host


def in_person_type(organization, hosts, **overrides) -> MeetingType:
    return make_meeting_type(organization, hosts, **overrides)


def manage_link(booking) -> str:
    return f"{settings.SITE_URL}/app/bookings/#booking-{booking.pk}"


def starts_at(event: dict) -> datetime:
    return datetime.fromisoformat(event["start"]["dateTime"].replace("Z", "+00:00")).astimezone(UTC)


def is_ours(event: dict) -> bool:
    """The mark that keeps the busy-time sync from counting our own event as a meeting."""
    return "tspBooking" in event.get("extendedProperties", {}).get("private", {})


def wait_for(condition, seconds: float = 10):
    import time

    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.05)


# --- Written once --------------------------------------------------------------------------------


def test_a_zoom_booking_lands_once_in_the_chosen_calendar_with_the_client_the_link_and_the_manage_link(
    hana, monkeypatch
):
    zoom_helpers.connected_in_sandbox(hana, "hana@zoom.example")
    calendar = books_into(hana, "google", HANA_GOOGLE)
    meeting_type = zoom_helpers.zoom_meeting_type(hana.organization, [hana], name="Strategy session")
    start = weekday_at(10)

    booking = book_zoom_meeting(meeting_type, start, client_notes=NOTES)

    meeting = video(booking)
    row = row_of(booking, hana)
    assert (row.state, row.shares_video_event) == (Row.READY, False)
    (event,) = google_events(HANA_GOOGLE)
    assert (event["calendarId"], event["id"]) == (calendar.external_id, row.event_id)
    assert event["summary"] == "Strategy session with Casey Client"
    for text in ("Casey Client", "casey@example.com", NOTES, meeting.join_url, manage_link(booking)):
        assert text in event["description"]
    if meeting.passcode:
        assert meeting.passcode in event["description"]
    assert event["location"] == meeting.join_url
    assert starts_at(event) == start and event["start"]["timeZone"] == "Europe/Berlin"
    assert is_ours(event)

    creates = CallRecorder(monkeypatch, registry.get("google"), "create_event")
    booking_tasks.booking_changed.apply(args=[booking.pk])
    sweep_later(600)
    sweep_later(3600)

    assert creates.count == 0
    assert [item["id"] for item in google_events(HANA_GOOGLE)] == [row.event_id]


@pytest.mark.parametrize("provider", ["google", "microsoft"])
def test_an_answer_that_came_too_late_is_asked_for_again_with_the_same_request_and_there_is_one_event(
    hana, monkeypatch, provider
):
    email, fake = (HANA_GOOGLE, google) if provider == "google" else ("hana@contoso.example", microsoft)
    calendar = books_into(hana, provider, email)
    monkeypatch.setattr(http, "READ_TIMEOUT", 0.5)
    creates = CallRecorder(monkeypatch, registry.get(provider), "create_event")
    # The provider is slow: it answers after we gave up, but it does write the event.
    fake.inject_failure("/events", method="POST", delay_seconds=1.5)

    def written() -> list[str]:
        return [item["id"] for item in fake.events_of(email, calendar.external_id)]

    booking = book_zoom_meeting(in_person_type(hana.organization, [hana]), weekday_at(10))

    assert row_of(booking, hana).state == Row.UNKNOWN
    wait_for(lambda: len(written()) == 1)
    sweep_later(1)  # the first try's claim has not run out: nobody asks yet
    assert creates.count == 1
    sweep_later(events.STALE_CLAIM.total_seconds() + 1)

    row = row_of(booking, hana)
    assert creates.count == 2
    assert creates.calls[0][0][2].request_id == creates.calls[1][0][2].request_id
    assert (row.state, row.last_error) == (Row.READY, "")
    assert written() == [row.event_id]


def test_after_a_worker_died_mid_create_the_sweep_asks_again_and_there_is_one_event(hana):
    books_into(hana, "google", HANA_GOOGLE)
    meeting_type = in_person_type(hana.organization, [hana])
    booking = make_booking(meeting_type, [hana], weekday_at(10), client_name="Casey Client")
    with TestCase.captureOnCommitCallbacks(execute=False):
        followup.record_change(booking, BookingChange.CREATED)
    row = row_of(booking, hana)
    # The worker wrote the event, then died before it could say so.
    booking.refresh_from_db()
    row.booking = booking
    made = registry.get("google").create_event(
        row.calendar.connection.access_token, row.calendar_external_id, events.calendar_event(booking, row)
    )
    BookingCalendarEvent.objects.filter(pk=row.pk).update(
        state=Row.CREATING, claimed_at=timezone.now(), attempts=1, next_attempt_at=timezone.now() + events.STALE_CLAIM
    )

    sweep_later(60)
    assert row_of(booking, hana).state == Row.CREATING  # its claim still holds
    sweep_later(events.STALE_CLAIM.total_seconds() + 1)

    row = row_of(booking, hana)
    assert (row.state, row.event_id) == (Row.READY, made)
    assert [item["id"] for item in google_events(HANA_GOOGLE)] == [made]


# --- Moved, deleted, reassigned ------------------------------------------------------------------


def test_rescheduling_moves_the_same_event_and_cancelling_deletes_it(hana):
    calendar = books_into(hana, "google", HANA_GOOGLE)
    booking = book_zoom_meeting(in_person_type(hana.organization, [hana]), weekday_at(10))
    (event,) = google_events(HANA_GOOGLE)
    assert event["location"] == "1 Harbour Street, Springfield"

    reschedule(booking, weekday_at(13))

    (moved,) = google_events(HANA_GOOGLE)
    assert moved["id"] == event["id"] and starts_at(moved) == weekday_at(13)

    cancel(booking)

    assert google_events(HANA_GOOGLE) == []
    assert [item["id"] for item in google_events(HANA_GOOGLE, calendar.external_id, deleted=True)] == [event["id"]]
    assert row_of(booking, hana).state == Row.DELETED


def test_a_move_recorded_while_the_event_is_being_moved_is_written_next(hana, monkeypatch):
    books_into(hana, "google", HANA_GOOGLE)
    booking = book_zoom_meeting(in_person_type(hana.organization, [hana]), weekday_at(10))
    provider = registry.get("google")
    original = provider.update_event
    moved_again = []

    def update_while_the_client_moves_it_again(*args):
        original(*args)
        if not moved_again:  # the client moves it once more while our first write is on its way
            moved_again.append(True)
            with TestCase.captureOnCommitCallbacks(execute=False):
                booking_services.reschedule(booking=booking, start=weekday_at(14))

    monkeypatch.setattr(provider, "update_event", update_while_the_client_moves_it_again)

    reschedule(booking, weekday_at(13))

    assert starts_at(google_events(HANA_GOOGLE)[0]) == weekday_at(13)
    assert row_of(booking, hana).needs_sync
    sweep_later(60)
    (event,) = google_events(HANA_GOOGLE)
    assert starts_at(event) == weekday_at(14)
    row = row_of(booking, hana)
    assert (row.needs_sync, row.next_attempt_at, row.claimed_at) == (False, None, None)


def test_a_booking_moved_to_another_host_leaves_the_first_hosts_calendar_and_lands_in_the_new_ones(hana, ivo):
    hana_calendar = books_into(hana, "google", HANA_GOOGLE)
    ivo_calendar = books_into(ivo, "microsoft", IVO_MICROSOFT)
    meeting_type = in_person_type(hana.organization, [hana, ivo])
    elsewhere = in_person_type(hana.organization, [hana, ivo], name="Board meeting")
    make_booking(elsewhere, [ivo], weekday_at(10))  # Ivo is taken at ten: Hana gets the booking
    booking = book_zoom_meeting(meeting_type, weekday_at(10))
    assert host_of(booking) == hana and len(google_events(HANA_GOOGLE)) == 1
    make_booking(elsewhere, [hana], weekday_at(13))  # and Hana at one: the booking moves to Ivo

    reschedule(booking, weekday_at(13))

    assert host_of(booking) == ivo
    assert (row_of(booking, hana).state, row_of(booking, ivo).state) == (Row.DELETED, Row.READY)
    assert google_events(HANA_GOOGLE, hana_calendar.external_id) == []
    (event,) = microsoft.events_of(IVO_MICROSOFT, ivo_calendar.external_id)
    assert event["id"] == row_of(booking, ivo).event_id
    assert event["subject"] == "Intro call with Casey Client"
    assert datetime.fromisoformat(event["start"]["dateTime"][:19]).replace(tzinfo=UTC) == weekday_at(13)


# --- Google Meet and Microsoft Teams -------------------------------------------------------------


def test_a_google_meet_booking_is_one_event_on_the_chosen_calendar_that_carries_the_link(hana):
    calendar = books_into(hana, "google", HANA_GOOGLE)
    meeting_type = google_helpers.meet_meeting_type(hana.organization, [hana])

    booking = book_zoom_meeting(meeting_type, weekday_at(10), client_notes=NOTES)

    meeting = video(booking)
    row = row_of(booking, hana)
    (event,) = google_events(HANA_GOOGLE)
    assert (meeting.state, meeting.provider) == (VideoMeeting.State.READY, "google")
    assert (event["calendarId"], event["id"]) == (calendar.external_id, meeting.meeting_id)
    assert (row.state, row.shares_video_event, row.event_id) == (Row.READY, True, meeting.meeting_id)
    assert event["hangoutLink"] == meeting.join_url
    assert event["summary"] == "Intro call with Casey Client"
    for text in ("Casey Client", "casey@example.com", NOTES, manage_link(booking)):
        assert text in event["description"]
    assert is_ours(event)

    reschedule(booking, weekday_at(13))

    (moved,) = google_events(HANA_GOOGLE)
    assert moved["id"] == event["id"] and starts_at(moved) == weekday_at(13)
    assert video(booking).join_url == meeting.join_url

    cancel(booking)

    assert google_events(HANA_GOOGLE) == []
    assert row_of(booking, hana).state == Row.DELETED


def test_a_meet_booking_moved_to_another_host_takes_its_event_from_her_calendar_to_his(hana, ivo):
    hana_calendar = books_into(hana, "google", HANA_GOOGLE)
    ivo_calendar = books_into(ivo, "google", IVO_GOOGLE)
    meeting_type = google_helpers.meet_meeting_type(hana.organization, [hana, ivo])
    elsewhere = in_person_type(hana.organization, [hana, ivo], name="Board meeting")
    make_booking(elsewhere, [ivo], weekday_at(10))
    booking = book_zoom_meeting(meeting_type, weekday_at(10))
    assert host_of(booking) == hana and len(google_events(HANA_GOOGLE, hana_calendar.external_id)) == 1
    make_booking(elsewhere, [hana], weekday_at(13))

    reschedule(booking, weekday_at(13))

    meeting = video(booking)
    assert (host_of(booking), meeting.host) == (ivo, ivo)
    assert google_events(HANA_GOOGLE) == []
    (event,) = google_events(IVO_GOOGLE)
    assert (event["calendarId"], event["id"]) == (ivo_calendar.external_id, meeting.meeting_id)
    assert event["hangoutLink"] == meeting.join_url and starts_at(event) == weekday_at(13)
    assert row_of(booking, hana).state == Row.DELETED
    assert (row_of(booking, ivo).state, row_of(booking, ivo).shares_video_event) == (Row.READY, True)


def test_a_link_typed_by_the_host_instead_of_the_meet_is_written_into_the_same_event(hana):
    books_into(hana, "google", HANA_GOOGLE)
    booking = book_zoom_meeting(google_helpers.meet_meeting_type(hana.organization, [hana]), weekday_at(10))
    (event,) = google_events(HANA_GOOGLE)

    with TestCase.captureOnCommitCallbacks(execute=True):
        booking_services.set_video_link(booking=booking, by=hana, join_url="https://meet.example.org/hana-room")

    (rewritten,) = google_events(HANA_GOOGLE)
    row = row_of(booking, hana)
    assert rewritten["id"] == event["id"] == row.event_id
    assert (row.state, row.shares_video_event) == (Row.READY, False)
    assert rewritten["location"] == "https://meet.example.org/hana-room"
    assert "https://meet.example.org/hana-room" in rewritten["description"]


def test_a_teams_booking_gets_a_teams_meeting_and_one_outlook_event_with_the_join_link(ivo):
    calendar = books_into(ivo, "microsoft", IVO_MICROSOFT)
    meeting_type = microsoft_helpers.teams_meeting_type(ivo.organization, [ivo])

    booking = book_zoom_meeting(meeting_type, weekday_at(10))

    meeting = video(booking)
    assert meeting.state == VideoMeeting.State.READY and len(microsoft_helpers.teams_meetings()) == 1
    (event,) = microsoft.events_of(IVO_MICROSOFT, calendar.external_id)
    assert event["id"] == row_of(booking, ivo).event_id
    assert event["subject"] == "Intro call with Casey Client"
    assert meeting.join_url in event["body"]["content"] and manage_link(booking) in event["body"]["content"]
    assert event["location"]["displayName"] == meeting.join_url
    assert str(event.get("transactionId", "")).startswith("tsp-")
    assert microsoft.events_of(IVO_MICROSOFT, microsoft.default_calendar_id(IVO_MICROSOFT)) == []


def test_a_link_made_after_the_event_was_written_is_added_to_the_event(hana):
    zoom_helpers.connected_in_sandbox(hana, "hana@zoom.example")
    books_into(hana, "google", HANA_GOOGLE)
    zoom.inject_failure("/meetings", method="POST", status=503)  # Zoom hiccups once

    booking = book_zoom_meeting(zoom_helpers.zoom_meeting_type(hana.organization, [hana]), weekday_at(10))

    (event,) = google_events(HANA_GOOGLE)
    assert video(booking).state == VideoMeeting.State.PENDING
    assert event["location"] == "Zoom"

    sweep_later(600)

    meeting = video(booking)
    (updated,) = google_events(HANA_GOOGLE)
    assert meeting.state == VideoMeeting.State.READY
    assert updated["id"] == event["id"]
    assert updated["location"] == meeting.join_url and meeting.join_url in updated["description"]


# --- Failures --------------------------------------------------------------------------------------


def test_while_google_is_down_for_hours_the_event_is_tried_again_until_the_meeting_ends_then_failed(hana):
    books_into(hana, "google", HANA_GOOGLE)
    google.inject_failure("/events", method="POST", status=503, times=100)
    booking = book_zoom_meeting(in_person_type(hana.organization, [hana]), weekday_at(10))
    assert row_of(booking, hana).state == Row.PENDING

    for hours in (1, 6, 24):
        sweep_later(hours * 3600)
        row = row_of(booking, hana)
        assert (row.state, row.next_attempt_at is not None) == (Row.PENDING, True)
    assert row.attempts == 4 and "503" in row.last_error

    sweep_later((booking.end - timezone.now()).total_seconds() - 1)

    row = row_of(booking, hana)
    assert (row.state, row.next_attempt_at) == (Row.FAILED, None)
    assert "meeting ended" in row.last_error and "503" in row.last_error
    assert google_events(HANA_GOOGLE) == []


def test_a_refusal_fails_the_event_at_once_with_the_reason_and_it_is_not_tried_again(hana, monkeypatch):
    books_into(hana, "google", HANA_GOOGLE)
    google.inject_failure("/events", method="POST", status=403)

    booking = book_zoom_meeting(in_person_type(hana.organization, [hana]), weekday_at(10))

    row = row_of(booking, hana)
    assert (row.state, row.next_attempt_at) == (Row.FAILED, None) and "403" in row.last_error
    creates = CallRecorder(monkeypatch, registry.get("google"), "create_event")
    sweep_later(600)
    assert creates.count == 0 and google_events(HANA_GOOGLE) == []


def test_send_again_writes_a_failed_event(hana):
    books_into(hana, "google", HANA_GOOGLE)
    google.inject_failure("/events", method="POST", status=403)
    booking = book_zoom_meeting(in_person_type(hana.organization, [hana]), weekday_at(10))
    assert row_of(booking, hana).state == Row.FAILED

    with TestCase.captureOnCommitCallbacks(execute=True):
        assert followup.resend(booking) >= 1

    row = row_of(booking, hana)
    assert row.state == Row.READY and [item["id"] for item in google_events(HANA_GOOGLE)] == [row.event_id]


def test_an_account_that_needs_reconnecting_fails_the_event_with_a_clear_reason(hana, monkeypatch):
    calendar = books_into(hana, "google", HANA_GOOGLE)
    Connection.objects.filter(pk=calendar.connection_id).update(status=Connection.Status.BROKEN)
    creates = CallRecorder(monkeypatch, registry.get("google"), "create_event")

    booking = book_zoom_meeting(in_person_type(hana.organization, [hana]), weekday_at(10))

    row = row_of(booking, hana)
    assert (row.state, row.next_attempt_at) == (Row.FAILED, None)
    assert "Google account needs reconnecting" in row.last_error
    assert creates.count == 0


def test_hosts_without_a_booking_calendar_get_no_event(hana, ivo):
    books_into(hana, "google", HANA_GOOGLE)
    google_helpers.connected_in_sandbox(ivo, IVO_GOOGLE)  # connected, but no calendar chosen for bookings
    meeting_type = in_person_type(hana.organization, [hana, ivo], assignment=MeetingType.Assignment.COLLECTIVE)

    booking = book_zoom_meeting(meeting_type, weekday_at(10))

    assert [row.member for row in BookingCalendarEvent.objects.filter(booking=booking)] == [hana]
    assert google_events(IVO_GOOGLE) == []


def test_after_disconnecting_nothing_is_called_for_the_event_left_in_the_calendar(hana, monkeypatch):
    calendar = books_into(hana, "google", HANA_GOOGLE)
    booking = book_zoom_meeting(in_person_type(hana.organization, [hana]), weekday_at(10))
    Connection.objects.filter(pk=calendar.connection_id).delete()  # its calendars go with it
    deletes = CallRecorder(monkeypatch, registry.get("google"), "delete_event")

    cancel(booking)

    row = row_of(booking, hana)
    assert deletes.count == 0
    assert (row.calendar, row.next_attempt_at) == (None, None)
    assert row.last_error == "The calendar is no longer connected."


# --- Queries ---------------------------------------------------------------------------------------


def test_recording_the_calendar_work_of_a_change_takes_as_many_queries_for_six_hosts_as_for_two(
    make_member, organization
):
    def recorded_queries(host_count: int) -> int:
        hosts = [
            make_member(organization, name=f"Host {host_count}-{n}", email=f"h{host_count}-{n}@acme.example")
            for n in range(host_count)
        ]
        for host in hosts:
            connection = google_helpers.connected_in_sandbox(host, f"h{host_count}-{host.pk}@workspace.example")
            Calendar.objects.create(
                connection=connection,
                member=host,
                external_id=f"cal-{host.pk}",
                name="Bookings",
                receives_bookings=True,
            )
        meeting_type = in_person_type(
            organization, hosts, name=f"Team {host_count}", assignment=MeetingType.Assignment.COLLECTIVE
        )
        booking = make_booking(meeting_type, hosts, weekday_at(10))
        with TestCase.captureOnCommitCallbacks(execute=False):
            followup.record_change(booking, BookingChange.CREATED)
        BookingCalendarEvent.objects.filter(booking=booking).update(state=Row.READY, event_id="made")
        with CaptureQueriesContext(db_connection) as queries, transaction.atomic():
            events.record_change(booking, due=timezone.now())
        assert BookingCalendarEvent.objects.filter(booking=booking, needs_sync=True).count() == host_count
        return len(queries)

    assert recorded_queries(2) == recorded_queries(6)


def test_the_sweep_finds_due_calendar_events_in_a_fixed_number_of_queries(hana, django_assert_max_num_queries):
    books_into(hana, "google", HANA_GOOGLE)
    google.inject_failure("/events", method="POST", status=503, times=20)
    meeting_type = in_person_type(hana.organization, [hana])
    bookings = [book_zoom_meeting(meeting_type, weekday_at(10 + n)) for n in range(3)]

    with django_assert_max_num_queries(3):
        due = followup.due_bookings(now=timezone.now() + timedelta(hours=1))

    assert {booking.pk for booking in bookings} <= set(due)
