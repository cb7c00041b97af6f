"""Booked meetings get a Zoom meeting on the right host's account, through the whole booking path,
with the product's real Zoom client talking HTTP to the Zoom sandbox."""

import threading
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from django.core import mail
from django.db import connection as db
from django.db import connections
from django.test import TestCase
from django.urls import reverse
from django.utils import timezone

from bookings import followup
from bookings import tasks as booking_tasks
from bookings.models import Booking, BookingChange
from integrations import http, tokens
from integrations import video as video_module
from integrations.models import Connection, VideoMeeting
from integrations.sandbox import zoom
from integrations.zoom import client as zoom_client
from meetingtypes.models import MeetingType

from .booking_helpers import book_via_page, iso, make_booking
from .zoom_helpers import (
    CallRecorder,
    book_zoom_meeting,
    browser_for,
    card_as_seen_by,
    connect_member,
    has_a_zoom_link,
    mails_to,
    only_mail_to,
    reconnect_mails_to,
    reschedule,
    sandbox_meetings,
    sandbox_user,
    says_action_needed,
    says_host_will_send_the_link,
    sweep_later,
    video,
    weekday_at,
    zoom_api,
    zoom_meeting_type,
)
from .zoom_helpers import cancel as cancel_booking

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("zoom_sandbox")]

HANA_ZOOM = "hana.zoom@zoom-account.example"
IVO_ZOOM = "ivo.zoom@zoom-account.example"
JUN_ZOOM = "jun.zoom@zoom-account.example"
CLIENT_EMAIL = "casey@example.com"


@pytest.fixture
def jun(make_member, organization):
    return make_member(organization, name="Jun Host", email="jun@acme.example", time_zone="UTC")


def assigned_host(booking):
    return booking.host_rows.get(is_active=True).member


def assert_no_link_and_host_told(booking, host):
    """Confirmed without a link; the host is told to act, the client that the host sends the link."""
    booking.refresh_from_db()
    assert booking.status == Booking.Status.CONFIRMED
    meeting = VideoMeeting.objects.filter(booking=booking).first()
    assert meeting is None or not meeting.join_url
    host_mail = mails_to(host.user.email)
    assert says_action_needed(host_mail), [message.subject for message in host_mail]
    assert not any(has_a_zoom_link(message.body) for message in host_mail)
    client_mail = only_mail_to(booking.client_email).body
    assert says_host_will_send_the_link(client_mail), client_mail
    assert not has_a_zoom_link(client_mail) and not says_action_needed(mails_to(booking.client_email))


def wait_for(condition, seconds: float = 10):
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.05)


# --- The happy path ----------------------------------------------------------------------------


def test_a_client_books_through_the_public_form_and_gets_a_meeting_on_the_hosts_zoom(client, hana, ivo):
    connect_member(hana, HANA_ZOOM)
    connect_member(ivo, IVO_ZOOM)  # connected, but not a host of this meeting type
    meeting_type = zoom_meeting_type(hana.organization, [hana], name="Strategy session", duration_minutes=60)
    start = weekday_at(10)  # late morning in Berlin

    response = book_via_page(client, meeting_type, iso(start), notes=("Please look at our roadmap. " * 80)[:2000])

    assert response.status_code == 302
    booking = Booking.objects.get()
    meeting = video(booking)
    assert meeting.state == VideoMeeting.State.READY
    assert meeting.host == hana and meeting.provider == "zoom"
    assert int(meeting.meeting_id) > 2**32  # Zoom ids are int64: stored and read back whole
    in_zoom = zoom.get_meeting(int(meeting.meeting_id))
    assert in_zoom["host_email"] == HANA_ZOOM
    assert in_zoom["type"] == 2 and in_zoom["status"] == "waiting"
    assert in_zoom["topic"] == "Strategy session with Casey Client"
    assert in_zoom["start_time"] == iso(start) and in_zoom["start_time"].endswith("Z")
    assert in_zoom["duration"] == 60
    assert in_zoom["timezone"] == "Europe/Berlin"
    # Our mark first (lists of meetings show 250 characters of it), so the meeting can be found again.
    assert in_zoom["agenda"].startswith(f"Booking {booking.uid}\nStrategy session booked by Casey Client <casey@")
    assert 2000 - 40 < len(in_zoom["agenda"]) <= 2000  # the long notes were cut to Zoom's limit
    assert in_zoom["settings"]["waiting_room"] is True and in_zoom["settings"]["join_before_host"] is False
    assert (meeting.join_url, meeting.passcode) == (in_zoom["join_url"], in_zoom["password"])
    assert meeting.join_url.startswith("https://") and meeting.passcode
    assert sandbox_meetings(IVO_ZOOM) == []
    for address in (CLIENT_EMAIL, hana.user.email):
        body = only_mail_to(address).body
        assert meeting.join_url in body and meeting.passcode in body


def test_the_meeting_id_column_holds_64_bit_ids_as_text():
    # Zoom's ids are int64; Google's event ids and Graph's meeting ids are strings.
    assert VideoMeeting._meta.get_field("meeting_id").get_internal_type() == "CharField"


def test_round_robin_the_assigned_hosts_zoom_hosts_each_call(hana, ivo):
    connect_member(hana, HANA_ZOOM)
    connect_member(ivo, IVO_ZOOM)
    meeting_type = zoom_meeting_type(hana.organization, [hana, ivo])

    first = book_zoom_meeting(meeting_type, weekday_at(10))
    second = book_zoom_meeting(meeting_type, weekday_at(12), client_email="dana@example.com")

    zoom_email = {hana.pk: HANA_ZOOM, ivo.pk: IVO_ZOOM}
    assert {assigned_host(first).pk, assigned_host(second).pk} == {hana.pk, ivo.pk}  # the work is shared
    for booking in (first, second):
        host = assigned_host(booking)
        meeting = video(booking)
        assert meeting.host == host
        assert zoom.get_meeting(int(meeting.meeting_id))["host_email"] == zoom_email[host.pk]
        assert meeting.join_url in only_mail_to(host.user.email).body


def test_collective_the_first_host_in_order_with_zoom_connected_hosts_the_call(hana, ivo, jun):
    connect_member(ivo, IVO_ZOOM)
    connect_member(jun, JUN_ZOOM)
    meeting_type = zoom_meeting_type(
        hana.organization, [hana, ivo, jun], assignment=MeetingType.Assignment.COLLECTIVE, name="Panel"
    )

    booking = book_zoom_meeting(meeting_type, weekday_at(10))

    assert sorted(booking.host_rows.values_list("member_id", flat=True)) == sorted([hana.pk, ivo.pk, jun.pk])
    meeting = video(booking)
    assert meeting.host == ivo  # Hana comes first but has no Zoom: the second host's account is used
    assert zoom.get_meeting(int(meeting.meeting_id))["host_email"] == IVO_ZOOM
    assert sandbox_meetings(JUN_ZOOM) == []
    for address in (CLIENT_EMAIL, hana.user.email, ivo.user.email, jun.user.email):
        assert meeting.join_url in only_mail_to(address).body


def test_collective_host_order_not_join_order_decides(make_member, organization):
    """The host listed first hosts the call, even when another host joined the team earlier."""
    later = make_member(organization, name="Zed Host", email="zed@acme.example", time_zone="UTC")
    earlier = make_member(organization, name="Amy Host", email="amy@acme.example", time_zone="UTC")
    connect_member(later, "zed.zoom@zoom-account.example")
    connect_member(earlier, "amy.zoom@zoom-account.example")
    meeting_type = zoom_meeting_type(organization, [earlier, later], assignment=MeetingType.Assignment.COLLECTIVE)

    booking = book_zoom_meeting(meeting_type, weekday_at(10))

    assert zoom.get_meeting(int(video(booking).meeting_id))["host_email"] == "amy.zoom@zoom-account.example"


def test_no_host_with_zoom_the_booking_stays_confirmed_and_the_host_is_told(hana, ivo):
    connect_member(ivo, IVO_ZOOM)  # not a host of this meeting type
    meeting_type = zoom_meeting_type(hana.organization, [hana])

    booking = book_zoom_meeting(meeting_type, weekday_at(10))

    assert video(booking).state == VideoMeeting.State.FAILED
    assert sandbox_meetings() == []
    assert_no_link_and_host_told(booking, hana)


def test_after_the_host_connects_zoom_a_reschedule_brings_the_missing_link(hana):
    meeting_type = zoom_meeting_type(hana.organization, [hana])
    booking = book_zoom_meeting(meeting_type, weekday_at(10))
    assert video(booking).state == VideoMeeting.State.FAILED
    connect_member(hana, HANA_ZOOM)
    mark = len(mail.outbox)

    reschedule(booking, weekday_at(12))

    meeting = video(booking)
    assert meeting.state == VideoMeeting.State.READY
    assert zoom.get_meeting(int(meeting.meeting_id))["start_time"] == iso(weekday_at(12))
    assert meeting.join_url in only_mail_to(CLIENT_EMAIL, since=mark).body


@pytest.mark.parametrize(
    "location", [MeetingType.Location.PHONE, MeetingType.Location.IN_PERSON], ids=["phone", "in-person"]
)
def test_phone_and_in_person_meetings_create_no_zoom_meeting(hana, location):
    connect_member(hana, HANA_ZOOM)
    meeting_type = zoom_meeting_type(hana.organization, [hana], location=location, location_detail="+49 30 1234567")

    booking = book_zoom_meeting(meeting_type, weekday_at(10))

    assert sandbox_meetings() == []
    assert sandbox_user(HANA_ZOOM)["meeting_writes_today"] == 0
    assert not VideoMeeting.objects.filter(booking=booking, state=VideoMeeting.State.READY).exists()
    for address in (CLIENT_EMAIL, hana.user.email):
        body = only_mail_to(address).body
        assert "+49 30 1234567" in body and not has_a_zoom_link(body)
    assert not says_action_needed(mails_to(hana.user.email))


# --- Tokens: expiry, concurrent refresh, revoked grants ------------------------------------------


def test_an_expired_access_token_is_refreshed_once_and_the_call_retried_once(hana, monkeypatch):
    connection = connect_member(hana, HANA_ZOOM)
    old_tokens = (connection.access_token, connection.refresh_token)
    refreshes = CallRecorder(monkeypatch, zoom_client, "refresh")
    creates = CallRecorder(monkeypatch, zoom_client, "create_meeting")
    assert zoom.expire_access_tokens(HANA_ZOOM) == 1  # Zoom expired it before our clock says so

    booking = book_zoom_meeting(zoom_meeting_type(hana.organization, [hana]), weekday_at(10))

    assert (refreshes.count, creates.count) == (1, 2)
    assert video(booking).state == VideoMeeting.State.READY
    assert len(sandbox_meetings(HANA_ZOOM)) == 1
    connection.refresh_from_db()
    assert connection.is_active
    assert connection.access_token != old_tokens[0] and connection.refresh_token != old_tokens[1]
    assert connection.expires_at > timezone.now() + timedelta(minutes=55)
    assert zoom_api("GET", "/users/me", connection.access_token).status_code == 200


def test_an_access_token_about_to_expire_is_refreshed_before_the_call(hana, monkeypatch):
    connection = connect_member(hana, HANA_ZOOM)
    Connection.objects.filter(pk=connection.pk).update(expires_at=timezone.now() + timedelta(minutes=1))
    refreshes = CallRecorder(monkeypatch, zoom_client, "refresh")
    creates = CallRecorder(monkeypatch, zoom_client, "create_meeting")

    booking = book_zoom_meeting(zoom_meeting_type(hana.organization, [hana]), weekday_at(10))

    assert (refreshes.count, creates.count) == (1, 1)  # no refused call first
    assert video(booking).state == VideoMeeting.State.READY
    connection.refresh_from_db()
    assert connection.is_active and connection.expires_at > timezone.now() + timedelta(minutes=55)


def test_concurrent_workers_refresh_a_rotating_token_only_once(hana, monkeypatch):
    if db.vendor != "postgresql":
        pytest.skip("needs PostgreSQL: real row locks (SELECT … FOR UPDATE) across threads")
    connection = connect_member(hana, HANA_ZOOM)
    old_access = connection.access_token
    Connection.objects.filter(pk=connection.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
    refreshes = CallRecorder(monkeypatch, zoom_client, "refresh")
    workers = 8
    barrier = threading.Barrier(workers)
    got, errors = [], []

    def worker():
        try:
            barrier.wait(timeout=10)
            got.append(tokens.access_token(connection.pk))
        except Exception as error:  # noqa: BLE001 - reported below
            errors.append(repr(error))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert errors == []
    assert len(got) == workers and len(set(got)) == 1  # everyone got the same new token
    assert got[0] != old_access
    assert refreshes.count == 1  # Zoom saw exactly one refresh
    connection.refresh_from_db()
    assert connection.is_active and connection.access_token == got[0]
    user = sandbox_user(HANA_ZOOM)
    assert user["refresh_tokens"] == 1 and user["live_access_tokens"] == 2  # the old one, and one new
    # The stored refresh token is the live one: refreshing later still works.
    Connection.objects.filter(pk=connection.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
    assert tokens.access_token(connection.pk) not in (old_access, got[0])
    connection.refresh_from_db()
    assert connection.is_active


def test_a_refused_refresh_token_breaks_the_connection_and_the_member_is_told(hana):
    connection = connect_member(hana, HANA_ZOOM)
    zoom.expire_access_tokens(HANA_ZOOM, include_refresh=True)
    Connection.objects.filter(pk=connection.pk).update(expires_at=timezone.now() - timedelta(minutes=1))

    booking = book_zoom_meeting(zoom_meeting_type(hana.organization, [hana]), weekday_at(10))

    connection.refresh_from_db()
    assert connection.status == Connection.Status.BROKEN
    assert video(booking).state == VideoMeeting.State.FAILED
    assert sandbox_meetings() == []
    card = card_as_seen_by(hana, hana)
    assert "Reconnect Zoom" in card and "Needs reconnecting" in card and "Disconnect Zoom" not in card
    reconnect = reconnect_mails_to(hana.user.email)
    assert len(reconnect) == 1 and "Zoom" in reconnect[0].subject
    assert f"#member-{hana.pk}" in reconnect[0].body
    assert_no_link_and_host_told(booking, hana)


def test_a_broken_connection_is_not_used_again_nor_the_member_told_twice(hana):
    connection = connect_member(hana, HANA_ZOOM)
    zoom.expire_access_tokens(HANA_ZOOM, include_refresh=True)
    Connection.objects.filter(pk=connection.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
    meeting_type = zoom_meeting_type(hana.organization, [hana])
    book_zoom_meeting(meeting_type, weekday_at(10))

    second = book_zoom_meeting(meeting_type, weekday_at(12), client_email="dana@example.com")

    assert video(second).state == VideoMeeting.State.FAILED
    assert len(reconnect_mails_to(hana.user.email)) == 1


# --- Zoom failing while we create the meeting ----------------------------------------------------


def _retry_after_http_date() -> str:
    return format_datetime(datetime.now(UTC) + timedelta(seconds=150), usegmt=True)


@pytest.mark.parametrize(
    "retry_after, at_least",
    [pytest.param(lambda: "120", 120, id="seconds"), pytest.param(_retry_after_http_date, 140, id="http-date")],
)
def test_rate_limited_creation_waits_as_zoom_asks_and_makes_exactly_one_meeting(
    hana, monkeypatch, retry_after, at_least
):
    connect_member(hana, HANA_ZOOM)
    creates = CallRecorder(monkeypatch, zoom_client, "create_meeting")
    zoom.inject_failure("/users/me/meetings", method="POST", status=429, times=2, retry_after=retry_after())

    booking = book_zoom_meeting(zoom_meeting_type(hana.organization, [hana]), weekday_at(10))

    # Rescheduled, not retried on the spot (also with tasks run in-process, as under `make run`).
    assert creates.count == 1
    meeting = video(booking)
    assert meeting.state == VideoMeeting.State.PENDING
    assert (meeting.next_attempt_at - meeting.claimed_at).total_seconds() >= at_least  # Retry-After understood
    sweep_later(at_least - 30)
    assert creates.count == 1  # not before Zoom said

    sweep_later(at_least + 15)  # the second 429
    sweep_later(3 * at_least + 60)

    meeting = video(booking)
    assert meeting.state == VideoMeeting.State.READY and meeting.attempts == 3 and creates.count == 3
    assert [str(m["id"]) for m in sandbox_meetings(HANA_ZOOM)] == [meeting.meeting_id]
    assert meeting.join_url in only_mail_to(CLIENT_EMAIL).body  # one email, sent once the link existed


def test_a_500_with_an_html_body_is_retried(hana):
    connect_member(hana, HANA_ZOOM)
    zoom.inject_failure(
        "/users/me/meetings", method="POST", status=500, raw_body="<html><body>Internal error</body></html>"
    )

    booking = book_zoom_meeting(zoom_meeting_type(hana.organization, [hana]), weekday_at(10))
    assert video(booking).state == VideoMeeting.State.PENDING and mail.outbox == []  # the emails wait for it
    sweep_later(61)

    meeting = video(booking)
    assert meeting.state == VideoMeeting.State.READY and meeting.attempts == 2
    assert len(sandbox_meetings()) == 1
    assert meeting.join_url in only_mail_to(hana.user.email).body


def test_zoom_down_for_an_hour_gets_the_meeting_made_when_it_is_back_and_the_link_sent(hana):
    connect_member(hana, HANA_ZOOM)
    outage = [60, 5 * 60, 30 * 60, 59 * 60]  # the sweeps while Zoom answers 503
    zoom.inject_failure("/users/me/meetings", method="POST", status=503, times=1 + len(outage))

    booking = book_zoom_meeting(zoom_meeting_type(hana.organization, [hana]), weekday_at(10, days_ahead=2))
    for seconds in outage:
        sweep_later(seconds)
        assert video(booking).state == VideoMeeting.State.PENDING  # still trying
    # The client did not wait an hour for the confirmation: it went after a few minutes, saying
    # the link would follow; nobody was asked to act.
    confirmation = only_mail_to(CLIENT_EMAIL)
    assert confirmation.subject.startswith("Confirmed:") and not has_a_zoom_link(confirmation.body)
    assert not says_action_needed(mails_to(hana.user.email))

    sweep_later(61 * 60)  # Zoom is back

    meeting = video(booking)
    assert meeting.state == VideoMeeting.State.READY
    assert [str(m["id"]) for m in sandbox_meetings(HANA_ZOOM)] == [meeting.meeting_id]
    booking.refresh_from_db()
    assert booking.sequence == 1  # calendars update the event with the link
    for address in (CLIENT_EMAIL, hana.user.email):
        subjects = sorted(message.subject.split(":")[0] for message in mails_to(address))
        assert subjects in (["Confirmed", "New video link"], ["New booking", "New video link"])
        assert meeting.join_url in mails_to(address)[-1].body
    sweep_later(62 * 60)
    assert len(sandbox_meetings()) == 1 and len(mail.outbox) == 4  # nothing twice


def test_when_zoom_stays_down_until_shortly_before_the_meeting_the_host_is_told(hana):
    connect_member(hana, HANA_ZOOM)
    zoom.inject_failure("/users/me/meetings", method="POST", status=503, times=50)

    booking = book_zoom_meeting(zoom_meeting_type(hana.organization, [hana]), weekday_at(10))
    sweep_later(10 * 60)
    assert video(booking).state == VideoMeeting.State.PENDING
    sweep_later((booking.start - timezone.now()).total_seconds() - 9 * 60)

    meeting = video(booking)
    assert meeting.state == VideoMeeting.State.FAILED and "shortly before" in meeting.last_error
    assert meeting.next_attempt_at is None
    assert sandbox_meetings() == []
    assert_no_link_and_host_told(booking, hana)


def test_running_the_task_again_after_success_makes_no_second_meeting(hana, monkeypatch):
    connect_member(hana, HANA_ZOOM)
    booking = book_zoom_meeting(zoom_meeting_type(hana.organization, [hana]), weekday_at(10))
    first = video(booking)
    creates = CallRecorder(monkeypatch, zoom_client, "create_meeting")

    booking_tasks.booking_changed.apply(args=[booking.pk])
    booking_tasks.booking_changed.apply(args=[booking.pk, "created"])
    sweep_later(600)

    assert creates.count == 0
    assert [str(m["id"]) for m in sandbox_meetings()] == [first.meeting_id]
    again = video(booking)
    assert (again.state, again.meeting_id, again.join_url) == (
        VideoMeeting.State.READY,
        first.meeting_id,
        first.join_url,
    )


def _booked_with_a_claim_left_by_a_dead_worker(hana, *, made_at_zoom: bool):
    """A booking whose worker claimed the meeting 10 minutes ago, called Zoom and died."""
    connection = connect_member(hana, HANA_ZOOM)
    meeting_type = zoom_meeting_type(hana.organization, [hana])
    booking = make_booking(meeting_type, [hana], weekday_at(10), client_email=CLIENT_EMAIL)
    with TestCase.captureOnCommitCallbacks(execute=False):
        followup.record_change(booking, BookingChange.CREATED)
    VideoMeeting.objects.filter(booking=booking).update(
        provider="zoom",
        host=hana,
        state=VideoMeeting.State.CREATING,
        claimed_at=timezone.now() - timedelta(minutes=10),
        next_attempt_at=timezone.now() - timedelta(minutes=8),
        attempts=1,
    )
    if made_at_zoom:  # Zoom made it before the worker died
        connection.refresh_from_db()
        made = zoom_client.create_meeting(connection.access_token, video_module.meeting_request(booking, "UTC"))
        return booking, made.meeting_id
    return booking, None


@pytest.mark.parametrize("made_at_zoom", [True, False], ids=["zoom-made-it", "zoom-never-got-it"])
def test_after_a_worker_died_mid_create_zoom_is_asked_and_there_is_one_meeting(hana, monkeypatch, made_at_zoom):
    booking, made_id = _booked_with_a_claim_left_by_a_dead_worker(hana, made_at_zoom=made_at_zoom)
    creates = CallRecorder(monkeypatch, zoom_client, "create_meeting")

    sweep_later(0)

    meeting = video(booking)
    assert meeting.state == VideoMeeting.State.READY
    assert [str(m["id"]) for m in sandbox_meetings(HANA_ZOOM)] == [meeting.meeting_id]
    if made_at_zoom:
        assert creates.count == 0 and meeting.meeting_id == made_id  # adopted, not made again
    else:
        assert creates.count == 1  # none there: made now
    assert zoom.get_meeting(int(meeting.meeting_id))["join_url"] == meeting.join_url
    assert meeting.join_url in only_mail_to(CLIENT_EMAIL).body
    assert not says_action_needed(mails_to(hana.user.email))


def test_a_duplicate_run_while_another_worker_creates_the_meeting_waits_for_it(hana, monkeypatch):
    connect_member(hana, HANA_ZOOM)
    booking = make_booking(zoom_meeting_type(hana.organization, [hana]), [hana], weekday_at(10))
    with TestCase.captureOnCommitCallbacks(execute=False):
        followup.record_change(booking, BookingChange.CREATED)
    VideoMeeting.objects.filter(booking=booking).update(
        provider="zoom",
        host=hana,
        state=VideoMeeting.State.CREATING,
        claimed_at=timezone.now(),
        next_attempt_at=timezone.now() + video_module.STALE_CLAIM,
        attempts=1,
    )
    creates = CallRecorder(monkeypatch, zoom_client, "create_meeting")

    booking_tasks.booking_changed.apply(args=[booking.pk])  # e.g. a redelivered message
    sweep_later(30)

    assert creates.count == 0
    assert video(booking).state == VideoMeeting.State.CREATING
    assert mail.outbox == []  # no link-less emails meanwhile (each email goes out only once)
    # The other worker gets its meeting; the next run sends the emails, with the link.
    VideoMeeting.objects.filter(booking=booking).update(
        state=VideoMeeting.State.READY,
        meeting_id=str(2**33),
        join_url=zoom.MEETING_HOST + "/j/8589934592",
        passcode="1",
    )
    booking_tasks.booking_changed.apply(args=[booking.pk])
    assert creates.count == 0
    assert zoom.MEETING_HOST + "/j/8589934592" in only_mail_to(booking.client_email).body


def test_a_read_timeout_after_sending_is_settled_by_asking_zoom_and_never_makes_two_meetings(hana, monkeypatch):
    connect_member(hana, HANA_ZOOM)
    monkeypatch.setattr(http, "READ_TIMEOUT", 0.5)
    creates = CallRecorder(monkeypatch, zoom_client, "create_meeting")
    # Zoom is slow: it answers after we gave up, but it does make the meeting.
    zoom.inject_failure("/users/me/meetings", method="POST", delay_seconds=1.5)

    booking = book_zoom_meeting(zoom_meeting_type(hana.organization, [hana]), weekday_at(10))

    assert creates.count == 1
    meeting = video(booking)
    assert meeting.state == VideoMeeting.State.UNKNOWN and not meeting.join_url
    wait_for(lambda: len(sandbox_meetings()) == 1)  # Zoom finished the slow request meanwhile
    sweep_later(60)  # a request may still be on its way: no guess yet
    assert video(booking).state == VideoMeeting.State.UNKNOWN

    sweep_later(video_module.STALE_CLAIM.total_seconds() + 1)

    meeting = video(booking)
    assert creates.count == 1
    assert meeting.state == VideoMeeting.State.READY
    assert [str(m["id"]) for m in sandbox_meetings()] == [meeting.meeting_id]  # the one Zoom made, adopted
    assert meeting.join_url in only_mail_to(CLIENT_EMAIL).body
    assert not says_action_needed(mails_to(hana.user.email))


def test_a_token_refresh_that_times_out_is_retried_because_no_meeting_can_exist_yet(hana, monkeypatch):
    connection = connect_member(hana, HANA_ZOOM)
    Connection.objects.filter(pk=connection.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
    monkeypatch.setattr(http, "READ_TIMEOUT", 0.5)
    creates = CallRecorder(monkeypatch, zoom_client, "create_meeting")
    # Zoom's token endpoint hangs and then fails: the refresh never happened, the meeting was never asked for.
    zoom.inject_failure("/oauth/token", method="POST", status=503, delay_seconds=1.0)
    hang_ends = time.monotonic() + 1.0

    booking = book_zoom_meeting(zoom_meeting_type(hana.organization, [hana]), weekday_at(10))
    assert video(booking).state == VideoMeeting.State.PENDING
    time.sleep(max(0.0, hang_ends - time.monotonic()) + 0.1)  # let the hung request finish within this test
    sweep_later(61)

    assert creates.count == 1
    meeting = video(booking)
    assert meeting.state == VideoMeeting.State.READY
    assert [str(m["id"]) for m in sandbox_meetings(HANA_ZOOM)] == [meeting.meeting_id]
    connection.refresh_from_db()
    assert connection.is_active
    assert not says_action_needed(mails_to(hana.user.email))


# --- Reschedule and cancel -----------------------------------------------------------------------


def test_rescheduling_moves_the_same_zoom_meeting(hana, monkeypatch):
    connect_member(hana, HANA_ZOOM)
    booking = book_zoom_meeting(zoom_meeting_type(hana.organization, [hana]), weekday_at(10))
    before = video(booking)
    creates = CallRecorder(monkeypatch, zoom_client, "create_meeting")
    new_start = weekday_at(13, 30, days_ahead=5)
    mark = len(mail.outbox)

    reschedule(booking, new_start)

    after = video(booking)
    assert creates.count == 0
    assert after.state == VideoMeeting.State.READY
    assert (after.meeting_id, after.join_url) == (before.meeting_id, before.join_url)
    in_zoom = zoom.get_meeting(int(after.meeting_id))
    assert in_zoom["start_time"] == iso(new_start)
    assert in_zoom["host_email"] == HANA_ZOOM and in_zoom["duration"] == 30
    assert len(sandbox_meetings()) == 1
    assert after.join_url in only_mail_to(CLIENT_EMAIL, since=mark).body  # the new time, same link


def test_rescheduling_onto_another_round_robin_host_moves_the_meeting_to_their_zoom(hana, ivo):
    connect_member(hana, HANA_ZOOM)
    connect_member(ivo, IVO_ZOOM)
    meeting_type = zoom_meeting_type(hana.organization, [hana, ivo])
    booking = book_zoom_meeting(meeting_type, weekday_at(10))
    first_host = assigned_host(booking)
    other_host, other_zoom = (ivo, IVO_ZOOM) if first_host == hana else (hana, HANA_ZOOM)
    old_meeting_id = video(booking).meeting_id
    new_start = weekday_at(12, days_ahead=5)
    # The first host is busy at the new time (another booking of theirs), so the booking changes hands.
    make_booking(meeting_type, [first_host], new_start, client_email="earlier@example.com")
    mark = len(mail.outbox)

    reschedule(booking, new_start)

    assert assigned_host(booking) == other_host
    assert zoom.get_meeting(int(old_meeting_id)) is None  # deleted from the first host's Zoom
    meeting = video(booking)
    assert meeting.state == VideoMeeting.State.READY and meeting.host == other_host
    assert meeting.meeting_id != old_meeting_id
    in_zoom = zoom.get_meeting(int(meeting.meeting_id))
    assert in_zoom["host_email"] == other_zoom and in_zoom["start_time"] == iso(new_start)
    assert len(sandbox_meetings()) == 1
    for address in (CLIENT_EMAIL, other_host.user.email):
        assert meeting.join_url in only_mail_to(address, since=mark).body
    assert not any(has_a_zoom_link(message.body) for message in mails_to(first_host.user.email, since=mark))


def test_cancelling_deletes_the_zoom_meeting(hana):
    connect_member(hana, HANA_ZOOM)
    booking = book_zoom_meeting(zoom_meeting_type(hana.organization, [hana]), weekday_at(10))
    meeting_id = video(booking).meeting_id
    mark = len(mail.outbox)

    cancel_booking(booking)

    assert booking.status == Booking.Status.CANCELLED
    assert zoom.get_meeting(meeting_id) is None
    assert video(booking).state == VideoMeeting.State.DELETED
    for address in (CLIENT_EMAIL, hana.user.email):
        assert not has_a_zoom_link(only_mail_to(address, since=mark).body)  # the dead link is not sent again


def test_cancelling_while_zoom_has_a_hiccup_deletes_the_meeting_on_retry(hana):
    connect_member(hana, HANA_ZOOM)
    booking = book_zoom_meeting(zoom_meeting_type(hana.organization, [hana]), weekday_at(10))
    meeting_id = video(booking).meeting_id
    zoom.inject_failure(f"/meetings/{meeting_id}", method="DELETE", status=502, raw_body="<html>Bad gateway</html>")

    cancel_booking(booking)
    assert zoom.get_meeting(meeting_id) is not None
    sweep_later(61)

    assert zoom.state_summary()["failures"] == []  # the first DELETE did fail…
    assert zoom.get_meeting(meeting_id) is None  # …and the retry deleted it
    assert video(booking).state == VideoMeeting.State.DELETED


def test_rescheduling_a_meeting_the_host_deleted_in_zoom_makes_a_new_one(hana):
    connection = connect_member(hana, HANA_ZOOM)
    booking = book_zoom_meeting(zoom_meeting_type(hana.organization, [hana]), weekday_at(10))
    old_id = video(booking).meeting_id
    assert zoom_api("DELETE", f"/meetings/{old_id}", connection.access_token).status_code == 204
    mark = len(mail.outbox)

    reschedule(booking, weekday_at(12))

    meeting = video(booking)
    assert meeting.state == VideoMeeting.State.READY and meeting.meeting_id != old_id
    assert zoom.get_meeting(int(meeting.meeting_id))["start_time"] == iso(weekday_at(12))
    assert meeting.join_url in only_mail_to(CLIENT_EMAIL, since=mark).body


def test_cancelling_a_meeting_already_deleted_in_zoom_still_counts_as_done(hana, monkeypatch):
    connection = connect_member(hana, HANA_ZOOM)
    booking = book_zoom_meeting(zoom_meeting_type(hana.organization, [hana]), weekday_at(10))
    meeting_id = video(booking).meeting_id
    assert zoom_api("DELETE", f"/meetings/{meeting_id}", connection.access_token).status_code == 204
    deletes = CallRecorder(monkeypatch, zoom_client, "delete_meeting")

    cancel_booking(booking)

    assert deletes.count == 1  # Zoom answered 404 (3001)…
    meeting = video(booking)
    assert meeting.state == VideoMeeting.State.DELETED  # …which counts as deleted
    assert meeting.last_error == ""


def test_finding_our_meeting_reads_every_page_of_the_hosts_upcoming_meetings(hana, monkeypatch):
    connection = connect_member(hana, HANA_ZOOM)
    monkeypatch.setattr(zoom_client, "LIST_PAGE_SIZE", 2)
    booking = make_booking(zoom_meeting_type(hana.organization, [hana]), [hana], weekday_at(12))
    for hour in (9, 10):  # the host's own meetings, earlier in the list
        other = make_booking(zoom_meeting_type(hana.organization, [hana], name=f"Other {hour}"), [], weekday_at(hour))
        zoom_client.create_meeting(connection.access_token, video_module.meeting_request(other, "UTC"))
    assert zoom_client.find_meeting(connection.access_token, video_module.marker(booking)) is None
    made = zoom_client.create_meeting(connection.access_token, video_module.meeting_request(booking, "UTC"))

    found = zoom_client.find_meeting(connection.access_token, video_module.marker(booking))

    assert found == made  # on the second page, with its passcode


def test_an_admin_sends_again_a_meeting_that_failed_once_the_host_has_connected_zoom(hana, admin):
    booking = book_zoom_meeting(zoom_meeting_type(hana.organization, [hana]), weekday_at(10))
    assert video(booking).state == VideoMeeting.State.FAILED  # nobody had Zoom connected
    connect_member(hana, HANA_ZOOM)
    mark = len(mail.outbox)

    browser = browser_for(admin)
    page = browser.get(reverse("bookings:list")).content.decode()
    assert "Send again" in page
    assert browser.post(reverse("bookings:resend", args=[booking.pk])).status_code == 302
    sweep_later(1)

    meeting = video(booking)
    assert meeting.state == VideoMeeting.State.READY
    assert [str(m["id"]) for m in sandbox_meetings(HANA_ZOOM)] == [meeting.meeting_id]
    for address in (CLIENT_EMAIL, hana.user.email):  # who got the link-less confirmation gets the link
        assert only_mail_to(address, since=mark).subject.startswith("New video link")
        assert meeting.join_url in only_mail_to(address, since=mark).body
