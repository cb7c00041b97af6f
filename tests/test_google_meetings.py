"""Bookings of Google Meet types get their Meet link from an event on the right host's Google
Calendar, through the whole booking path, with the product's Google client talking HTTP to the
Google fake: created once, moved with the booking, deleted with it, through expired tokens,
revoked grants, rate limits, outages and answers that came too late."""

import time
from datetime import timedelta

import pytest
from django.core import mail
from django.test import TestCase
from django.utils import timezone

from bookings import followup
from bookings import tasks as booking_tasks
from bookings.models import Booking, BookingChange
from integrations import http
from integrations import video as video_module
from integrations.google import client as google_client
from integrations.models import Connection, VideoMeeting
from integrations.sandbox import google
from meetingtypes.models import MeetingType

from .booking_helpers import book_via_page, iso, make_booking
from .google_helpers import (
    connect_google,
    connected_in_sandbox,
    grant_of,
    has_a_meet_link,
    meet_meeting_type,
    sandbox_events,
    userinfo,
    utc_z,
)
from .zoom_helpers import (
    CallRecorder,
    book_zoom_meeting,
    browser_for,
    card_as_seen_by,
    expire_in_our_records,
    mails_to,
    only_mail_to,
    reconnect_mails_to,
    reschedule,
    says_action_needed,
    says_host_will_send_the_link,
    sweep_later,
    video,
    weekday_at,
)
from .zoom_helpers import cancel as cancel_booking

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("google_sandbox")]

HANA_GOOGLE = "hana@hana-workspace.example"
IVO_GOOGLE = "ivo.host@gmail.com"
CLIENT_EMAIL = "casey@example.com"


def event_of(meeting: VideoMeeting) -> dict:
    event = google.get_event(meeting.meeting_id)
    assert event is not None, f"the fake has no event {meeting.meeting_id}"
    return event


def assert_no_link_and_host_told(booking, host):
    booking.refresh_from_db()
    assert booking.status == Booking.Status.CONFIRMED
    meeting = VideoMeeting.objects.filter(booking=booking).first()
    assert meeting is None or not meeting.join_url
    assert says_action_needed(mails_to(host.user.email))
    client_mail = only_mail_to(booking.client_email).body
    assert says_host_will_send_the_link(client_mail) and not has_a_meet_link(client_mail)


# --- Created -----------------------------------------------------------------------------------


def test_a_client_books_through_the_public_form_and_gets_a_meet_link_from_the_hosts_calendar(client, hana, ivo):
    connected_in_sandbox(hana, HANA_GOOGLE)
    connected_in_sandbox(ivo, IVO_GOOGLE)  # connected, but not a host of this meeting type
    meeting_type = meet_meeting_type(hana.organization, [hana], name="Strategy session", duration_minutes=60)
    start = weekday_at(10)

    response = book_via_page(client, meeting_type, iso(start))

    assert response.status_code == 302
    booking = Booking.objects.get()
    meeting = video(booking)
    assert meeting.state == VideoMeeting.State.READY
    assert (meeting.provider, meeting.host) == ("google", hana)
    event = event_of(meeting)
    assert meeting.meeting_id == google_client.event_id(f"{booking.uid}-{booking.sequence}")
    assert [item["calendar_id"] for item in sandbox_events()] == [HANA_GOOGLE]
    assert event["summary"] == "Strategy session with Casey Client"
    assert event["description"].startswith(f"Booking {booking.uid}\nStrategy session booked by Casey Client")
    assert event["start"] == {"dateTime": utc_z(start), "timeZone": "Europe/Berlin"}
    assert event["end"] == {"dateTime": utc_z(start + timedelta(minutes=60)), "timeZone": "Europe/Berlin"}
    assert meeting.join_url == event["hangoutLink"] and has_a_meet_link(meeting.join_url)
    assert meeting.external_ref == event["conferenceData"]["conferenceId"]
    assert sandbox_events()[0]["send_updates"] == ["none"]  # Google sent no invitation of its own
    for address in (CLIENT_EMAIL, hana.user.email):
        assert meeting.join_url in only_mail_to(address).body


def test_round_robin_the_assigned_hosts_google_hosts_each_call(hana, ivo):
    connected_in_sandbox(hana, HANA_GOOGLE)
    connected_in_sandbox(ivo, IVO_GOOGLE)
    meeting_type = meet_meeting_type(hana.organization, [hana, ivo])

    first = book_zoom_meeting(meeting_type, weekday_at(10))
    second = book_zoom_meeting(meeting_type, weekday_at(12), client_email="dana@example.com")

    calendar_of = {hana.pk: HANA_GOOGLE, ivo.pk: IVO_GOOGLE}
    hosts = {video(booking).host_id for booking in (first, second)}
    assert hosts == {hana.pk, ivo.pk}
    for booking in (first, second):
        meeting = video(booking)
        assert google.get_event(meeting.meeting_id, calendar_of[meeting.host_id])["hangoutLink"] == meeting.join_url


def test_a_collective_type_whose_hosts_have_no_zoom_falls_back_to_the_first_host_with_google(hana, ivo):
    connected_in_sandbox(ivo, IVO_GOOGLE)
    meeting_type = meet_meeting_type(
        hana.organization, [hana, ivo], location=MeetingType.Location.ZOOM, assignment=MeetingType.Assignment.COLLECTIVE
    )

    booking = book_zoom_meeting(meeting_type, weekday_at(10))

    meeting = video(booking)
    assert (meeting.state, meeting.provider, meeting.host) == (VideoMeeting.State.READY, "google", ivo)
    assert [item["calendar_id"] for item in sandbox_events()] == [IVO_GOOGLE]
    for address in (CLIENT_EMAIL, hana.user.email, ivo.user.email):
        assert meeting.join_url in only_mail_to(address).body


# --- Tokens: Google keeps its refresh token ------------------------------------------------------


def test_an_expiring_access_token_is_refreshed_and_the_stored_refresh_token_is_kept(hana, monkeypatch):
    connection = connect_google(browser_for(hana), hana, HANA_GOOGLE)
    old_access, refresh_token = connection.access_token, connection.refresh_token
    refreshes = CallRecorder(monkeypatch, google_client, "refresh")
    expire_in_our_records(connection)

    booking = book_zoom_meeting(meet_meeting_type(hana.organization, [hana]), weekday_at(10))

    assert refreshes.count == 1 and refreshes.results[0].refresh_token == ""
    assert video(booking).state == VideoMeeting.State.READY
    connection.refresh_from_db()
    assert connection.is_active
    assert connection.access_token != old_access
    assert connection.refresh_token == refresh_token  # Google sent none: the stored one stays
    assert connection.expires_at > timezone.now() + timedelta(minutes=55)
    # …and it keeps working: the next refresh succeeds with it.
    expire_in_our_records(connection)
    reschedule(booking, weekday_at(12))
    connection.refresh_from_db()
    assert refreshes.count == 2 and connection.is_active and connection.refresh_token == refresh_token
    assert userinfo(connection.access_token).status_code == 200
    assert grant_of(HANA_GOOGLE)["refresh_tokens"] == 1
    assert event_of(video(booking))["start"]["dateTime"] == utc_z(weekday_at(12))


def test_an_access_token_google_already_expired_is_refreshed_once_and_the_call_retried_once(hana, monkeypatch):
    connection = connected_in_sandbox(hana, HANA_GOOGLE)
    refreshes = CallRecorder(monkeypatch, google_client, "refresh")
    creates = CallRecorder(monkeypatch, google_client, "create_meeting")
    assert google.expire_access_tokens(HANA_GOOGLE) == 1

    booking = book_zoom_meeting(meet_meeting_type(hana.organization, [hana]), weekday_at(10))

    assert (refreshes.count, creates.count) == (1, 2)
    assert video(booking).state == VideoMeeting.State.READY
    assert len(sandbox_events(HANA_GOOGLE)) == 1
    connection.refresh_from_db()
    assert connection.is_active and userinfo(connection.access_token).status_code == 200


def test_a_revoked_grant_breaks_the_connection_and_the_member_is_told_once(hana):
    connection = connect_google(browser_for(hana), hana, HANA_GOOGLE)
    google.revoke_grant(HANA_GOOGLE)  # the member removed the app at myaccount.google.com
    expire_in_our_records(connection)
    meeting_type = meet_meeting_type(hana.organization, [hana])

    booking = book_zoom_meeting(meeting_type, weekday_at(10))
    later = book_zoom_meeting(meeting_type, weekday_at(12), client_email="dana@example.com")

    connection.refresh_from_db()
    assert connection.status == Connection.Status.BROKEN and "revoked" in connection.last_error
    for each in (booking, later):
        assert video(each).state == VideoMeeting.State.FAILED
    assert sandbox_events() == []
    card = card_as_seen_by(hana, hana)
    assert "Reconnect Google" in card and "Needs reconnecting" in card and "Disconnect Google" not in card
    [reconnect] = reconnect_mails_to(hana.user.email)  # one email, not one per booking
    assert "Google" in reconnect.subject and f"#member-{hana.pk}" in reconnect.body
    assert_no_link_and_host_told(booking, hana)


def test_after_reconnecting_google_bookings_get_meet_links_again(hana):
    connection = connect_google(browser_for(hana), hana, HANA_GOOGLE)
    google.expire_access_tokens(HANA_GOOGLE, include_refresh=True)
    expire_in_our_records(connection)
    meeting_type = meet_meeting_type(hana.organization, [hana])
    book_zoom_meeting(meeting_type, weekday_at(10))
    assert Connection.objects.get(pk=connection.pk).status == Connection.Status.BROKEN

    reconnected = connect_google(browser_for(hana), hana, HANA_GOOGLE)
    booking = book_zoom_meeting(meeting_type, weekday_at(12), client_email="dana@example.com")

    assert reconnected.is_active
    meeting = video(booking)
    assert (meeting.state, meeting.provider, meeting.host) == (VideoMeeting.State.READY, "google", hana)
    assert [item["id"] for item in sandbox_events(HANA_GOOGLE)] == [meeting.meeting_id]
    assert meeting.join_url in only_mail_to("dana@example.com").body


# --- Moved and deleted --------------------------------------------------------------------------


def test_rescheduling_moves_the_same_event_and_the_link_stays(hana, monkeypatch):
    connected_in_sandbox(hana, HANA_GOOGLE)
    booking = book_zoom_meeting(meet_meeting_type(hana.organization, [hana]), weekday_at(10))
    before = video(booking)
    creates = CallRecorder(monkeypatch, google_client, "create_meeting")
    new_start = weekday_at(13, 30, days_ahead=5)
    mark = len(mail.outbox)

    reschedule(booking, new_start)

    after = video(booking)
    assert creates.count == 0
    assert (after.state, after.meeting_id, after.join_url) == (
        VideoMeeting.State.READY,
        before.meeting_id,
        before.join_url,
    )
    event = event_of(after)
    assert event["start"] == {"dateTime": utc_z(new_start), "timeZone": "Europe/Berlin"}
    assert event["end"]["dateTime"] == utc_z(new_start + timedelta(minutes=30))
    assert event["hangoutLink"] == before.join_url
    [summary] = sandbox_events()
    assert summary["send_updates"] == ["none", "none"]
    assert after.join_url in only_mail_to(CLIENT_EMAIL, since=mark).body


def test_rescheduling_an_event_the_host_deleted_in_google_calendar_makes_a_new_one(hana):
    connection = connected_in_sandbox(hana, HANA_GOOGLE)
    booking = book_zoom_meeting(meet_meeting_type(hana.organization, [hana]), weekday_at(10))
    old = video(booking)
    google_client.delete_meeting(connection.access_token, old.meeting_id)  # by hand, in their calendar
    mark = len(mail.outbox)

    reschedule(booking, weekday_at(12))

    meeting = video(booking)
    assert meeting.state == VideoMeeting.State.READY and meeting.meeting_id != old.meeting_id
    assert meeting.join_url != old.join_url
    assert event_of(meeting)["start"]["dateTime"] == utc_z(weekday_at(12))
    assert [item["id"] for item in sandbox_events()] == [meeting.meeting_id]
    assert meeting.join_url in only_mail_to(CLIENT_EMAIL, since=mark).body


def test_cancelling_deletes_the_event_without_google_mailing_anyone(hana):
    connected_in_sandbox(hana, HANA_GOOGLE)
    booking = book_zoom_meeting(meet_meeting_type(hana.organization, [hana]), weekday_at(10))
    meeting_id = video(booking).meeting_id
    mark = len(mail.outbox)

    cancel_booking(booking)

    assert booking.status == Booking.Status.CANCELLED
    assert video(booking).state == VideoMeeting.State.DELETED
    assert sandbox_events() == []
    [deleted] = sandbox_events(deleted=True)
    assert deleted["id"] == meeting_id and deleted["send_updates"] == ["none", "none"]
    for address in (CLIENT_EMAIL, hana.user.email):
        assert not has_a_meet_link(only_mail_to(address, since=mark).body)


def test_cancelling_an_event_already_deleted_in_google_counts_as_done(hana, monkeypatch):
    connection = connected_in_sandbox(hana, HANA_GOOGLE)
    booking = book_zoom_meeting(meet_meeting_type(hana.organization, [hana]), weekday_at(10))
    google_client.delete_meeting(connection.access_token, video(booking).meeting_id)
    deletes = CallRecorder(monkeypatch, google_client, "delete_meeting")

    cancel_booking(booking)

    assert deletes.count == 1  # Google answered 410 Gone…
    meeting = video(booking)
    assert meeting.state == VideoMeeting.State.DELETED and meeting.last_error == ""  # …which is done


def test_cancelling_while_google_has_a_hiccup_deletes_the_event_on_retry(hana):
    connected_in_sandbox(hana, HANA_GOOGLE)
    booking = book_zoom_meeting(meet_meeting_type(hana.organization, [hana]), weekday_at(10))
    meeting_id = video(booking).meeting_id
    google.inject_failure(f"/events/{meeting_id}", method="DELETE", status=502, raw_body="<html>Bad gateway</html>")

    cancel_booking(booking)
    assert event_of(video(booking))["status"] == "confirmed"
    sweep_later(61)

    assert google.state_summary()["failures"] == []
    assert event_of(video(booking))["status"] == "cancelled"
    assert video(booking).state == VideoMeeting.State.DELETED


# --- Retries, and never a second meeting ---------------------------------------------------------


def test_a_429_waits_as_google_asks_and_makes_exactly_one_event(hana, monkeypatch):
    connected_in_sandbox(hana, HANA_GOOGLE)
    creates = CallRecorder(monkeypatch, google_client, "create_meeting")
    google.inject_failure("/calendars/primary/events", method="POST", status=429, retry_after=120)

    booking = book_zoom_meeting(meet_meeting_type(hana.organization, [hana]), weekday_at(10))

    meeting = video(booking)
    assert creates.count == 1 and meeting.state == VideoMeeting.State.PENDING
    assert (meeting.next_attempt_at - meeting.claimed_at).total_seconds() >= 120
    sweep_later(90)
    assert creates.count == 1  # not before Google said
    sweep_later(140)

    meeting = video(booking)
    assert meeting.state == VideoMeeting.State.READY and creates.count == 2
    assert [item["id"] for item in sandbox_events()] == [meeting.meeting_id]
    assert meeting.join_url in only_mail_to(CLIENT_EMAIL).body


def test_googles_403_rate_limit_is_waited_out_like_a_429(hana):
    connected_in_sandbox(hana, HANA_GOOGLE)
    body = google.google_error_body(403, "Rate Limit Exceeded", "userRateLimitExceeded")
    google.inject_failure("/calendars/primary/events", method="POST", status=403, body=body)

    booking = book_zoom_meeting(meet_meeting_type(hana.organization, [hana]), weekday_at(10))
    assert video(booking).state == VideoMeeting.State.PENDING
    sweep_later(61 * 60)

    meeting = video(booking)
    assert meeting.state == VideoMeeting.State.READY and meeting.provider == "google"
    assert len(sandbox_events()) == 1


def test_a_500_with_an_html_body_is_retried_later(hana):
    connected_in_sandbox(hana, HANA_GOOGLE)
    google.inject_failure("/calendars/primary/events", method="POST", status=500, raw_body="<html>Oops</html>")

    booking = book_zoom_meeting(meet_meeting_type(hana.organization, [hana]), weekday_at(10))
    assert video(booking).state == VideoMeeting.State.PENDING and mail.outbox == []
    sweep_later(61)

    meeting = video(booking)
    assert meeting.state == VideoMeeting.State.READY and meeting.attempts == 2
    assert len(sandbox_events()) == 1
    assert meeting.join_url in only_mail_to(hana.user.email).body


def test_running_the_task_again_after_success_makes_no_second_event(hana, monkeypatch):
    connected_in_sandbox(hana, HANA_GOOGLE)
    booking = book_zoom_meeting(meet_meeting_type(hana.organization, [hana]), weekday_at(10))
    first = video(booking)
    creates = CallRecorder(monkeypatch, google_client, "create_meeting")

    booking_tasks.booking_changed.apply(args=[booking.pk])
    booking_tasks.booking_changed.apply(args=[booking.pk, "created"])
    sweep_later(600)

    assert creates.count == 0
    assert [item["id"] for item in sandbox_events()] == [first.meeting_id]
    assert video(booking).join_url == first.join_url


def wait_for(condition, seconds: float = 10):
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.05)


def test_a_create_answered_after_we_gave_up_is_adopted_and_never_made_twice(hana, monkeypatch):
    connected_in_sandbox(hana, HANA_GOOGLE)
    monkeypatch.setattr(http, "READ_TIMEOUT", 0.5)
    creates = CallRecorder(monkeypatch, google_client, "create_meeting")
    # Google is slow: it answers after we gave up, but it does make the event.
    google.inject_failure("/calendars/primary/events", method="POST", delay_seconds=1.5)

    booking = book_zoom_meeting(meet_meeting_type(hana.organization, [hana]), weekday_at(10))

    assert creates.count == 1
    assert video(booking).state == VideoMeeting.State.UNKNOWN
    wait_for(lambda: len(sandbox_events()) == 1)
    sweep_later(video_module.STALE_CLAIM.total_seconds() + 1)

    meeting = video(booking)
    assert meeting.state == VideoMeeting.State.READY
    assert [item["id"] for item in sandbox_events()] == [meeting.meeting_id]
    assert meeting.join_url == event_of(meeting)["hangoutLink"]
    assert meeting.join_url in only_mail_to(CLIENT_EMAIL).body
    assert not says_action_needed(mails_to(hana.user.email))


@pytest.mark.parametrize("made_at_google", [True, False], ids=["google-made-it", "google-never-got-it"])
def test_after_a_worker_died_mid_create_google_is_asked_and_there_is_one_event(hana, monkeypatch, made_at_google):
    connection = connected_in_sandbox(hana, HANA_GOOGLE)
    meeting_type = meet_meeting_type(hana.organization, [hana])
    booking = make_booking(meeting_type, [hana], weekday_at(10), client_email=CLIENT_EMAIL)
    with TestCase.captureOnCommitCallbacks(execute=False):
        followup.record_change(booking, BookingChange.CREATED)
    VideoMeeting.objects.filter(booking=booking).update(
        provider="google",
        host=hana,
        state=VideoMeeting.State.CREATING,
        claimed_at=timezone.now() - timedelta(minutes=10),
        next_attempt_at=timezone.now() - timedelta(minutes=8),
        attempts=1,
    )
    made = None
    if made_at_google:
        request = video_module.meeting_request(booking, hana.time_zone)
        made = google_client.create_meeting(connection.access_token, request)
    creates = CallRecorder(monkeypatch, google_client, "create_meeting")

    sweep_later(0)

    meeting = video(booking)
    assert meeting.state == VideoMeeting.State.READY
    assert [item["id"] for item in sandbox_events()] == [meeting.meeting_id]
    if made_at_google:
        assert creates.count == 0 and (meeting.meeting_id, meeting.join_url) == (made.meeting_id, made.join_url)
    else:
        assert creates.count == 1
    assert meeting.join_url in only_mail_to(CLIENT_EMAIL).body


def test_even_a_second_create_for_the_same_booking_adopts_the_event_instead_of_making_another(hana):
    """The database claim keeps a second worker from calling Google; should one call anyway (a
    claim lost to a restore, an operator re-running the task by hand), Google's 409 on our event
    id still leaves one event."""
    connection = connected_in_sandbox(hana, HANA_GOOGLE)
    booking = book_zoom_meeting(meet_meeting_type(hana.organization, [hana]), weekday_at(10))
    meeting = video(booking)

    again = google_client.create_meeting(connection.access_token, video_module.meeting_request(booking, "UTC"))

    assert (again.meeting_id, again.join_url) == (meeting.meeting_id, meeting.join_url)
    assert len(sandbox_events()) == 1
