"""Bookings of Microsoft Teams types (and bookings falling back to Teams) get a Teams online meeting
on the right host's Microsoft account, through the whole booking path, with the product's Microsoft
client talking HTTP to the Microsoft fake: created once, moved with the booking, deleted with it,
through rotating refresh tokens, removed grants, personal accounts, rate limits and outages."""

import threading
import time
from datetime import timedelta

import pytest
from django.core import mail
from django.db import connection as db
from django.db import connections
from django.test import TestCase
from django.utils import timezone

from bookings import followup
from bookings import tasks as booking_tasks
from bookings.models import Booking, BookingChange
from integrations import http, tokens
from integrations import video as video_module
from integrations.microsoft import client as microsoft_client
from integrations.models import Connection, VideoMeeting
from integrations.sandbox import microsoft
from meetingtypes.models import MeetingType

from .booking_helpers import book_via_page, iso, make_booking
from .microsoft_helpers import (
    connect_member,
    connected_in_sandbox,
    graph_api,
    has_a_teams_link,
    sandbox_user,
    teams_meeting_type,
    teams_meetings,
)
from .zoom_helpers import (
    CallRecorder,
    book_zoom_meeting,
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
    zoom_meeting_type,
)
from .zoom_helpers import cancel as cancel_booking

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("microsoft_sandbox")]

HANA_MICROSOFT = "hana@contoso.example"
IVO_MICROSOFT = "ivo@fabrikam.example"
IVO_PERSONAL = "ivo.private@outlook.example"
CLIENT_EMAIL = "casey@example.com"

book = book_zoom_meeting  # books through the booking service, whatever the meeting type's location


def at_microsoft(meeting: VideoMeeting) -> dict:
    found = microsoft.get_meeting(meeting.meeting_id)
    assert found is not None, f"the fake has no online meeting {meeting.meeting_id}"
    return found


def assert_no_link_and_host_told(booking, host):
    booking.refresh_from_db()
    assert booking.status == Booking.Status.CONFIRMED
    meeting = VideoMeeting.objects.filter(booking=booking).first()
    assert meeting is None or not meeting.join_url
    assert says_action_needed(mails_to(host.user.email))
    client_mail = only_mail_to(booking.client_email).body
    assert says_host_will_send_the_link(client_mail) and not has_a_teams_link(client_mail)


def wait_for(condition, seconds: float = 10):
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.05)


# --- Created -----------------------------------------------------------------------------------


def test_a_client_books_through_the_public_form_and_gets_a_teams_link_from_the_hosts_account(client, hana, ivo):
    connect_member(hana, HANA_MICROSOFT)
    connect_member(ivo, IVO_MICROSOFT)  # connected, but not a host of this meeting type
    meeting_type = teams_meeting_type(hana.organization, [hana], name="Strategy session", duration_minutes=60)
    start = weekday_at(10)

    response = book_via_page(client, meeting_type, iso(start))

    assert response.status_code == 302
    booking = Booking.objects.get()
    meeting = video(booking)
    assert meeting.state == VideoMeeting.State.READY
    assert (meeting.provider, meeting.host) == ("microsoft", hana)
    online = at_microsoft(meeting)
    assert online["subject"] == "Strategy session with Casey Client"
    assert online["startDateTime"].startswith(iso(start)[:19])
    assert online["endDateTime"].startswith(iso(start + timedelta(minutes=60))[:19])
    assert [m["organizer_email"] for m in teams_meetings()] == [HANA_MICROSOFT]
    assert (meeting.join_url, meeting.passcode) == (online["joinWebUrl"], online["joinMeetingIdSettings"]["passcode"])
    assert meeting.join_url.startswith("https://") and meeting.passcode
    for address in (CLIENT_EMAIL, hana.user.email):
        body = only_mail_to(address).body
        assert meeting.join_url in body and meeting.passcode in body
        assert "Microsoft Teams" in body and "was not available" not in body


def test_round_robin_the_assigned_hosts_microsoft_account_hosts_each_call(hana, ivo):
    connect_member(hana, HANA_MICROSOFT)
    connect_member(ivo, IVO_MICROSOFT)
    meeting_type = teams_meeting_type(hana.organization, [hana, ivo])

    first = book(meeting_type, weekday_at(10))
    second = book(meeting_type, weekday_at(12), client_email="dana@example.com")

    organizer = {hana.pk: HANA_MICROSOFT, ivo.pk: IVO_MICROSOFT}
    hosts = {video(first).host_id, video(second).host_id}
    assert hosts == {hana.pk, ivo.pk}
    for booking in (first, second):
        meeting = video(booking)
        organizers = [m["organizer_email"] for m in teams_meetings() if m["id"] == meeting.meeting_id]
        assert organizers == [organizer[meeting.host_id]]


def test_a_collective_zoom_type_whose_hosts_have_no_zoom_falls_back_to_the_first_host_with_teams(hana, ivo):
    connect_member(ivo, IVO_MICROSOFT)
    meeting_type = zoom_meeting_type(
        hana.organization, [hana, ivo], assignment=MeetingType.Assignment.COLLECTIVE, name="Panel"
    )

    booking = book(meeting_type, weekday_at(10))

    meeting = video(booking)
    assert meeting.state == VideoMeeting.State.READY
    assert (meeting.provider, meeting.host) == ("microsoft", ivo)
    assert [m["organizer_email"] for m in teams_meetings()] == [IVO_MICROSOFT]
    for address in (CLIENT_EMAIL, hana.user.email, ivo.user.email):
        body = only_mail_to(address).body
        assert meeting.join_url in body and "Microsoft Teams — Zoom was not available" in body


# --- Personal accounts: connected, but they can't host Teams meetings ---------------------------


def test_a_personal_account_known_at_connect_is_never_asked_and_the_host_is_told(ivo, monkeypatch):
    connect_member(ivo, IVO_PERSONAL, personal=True)
    creates = CallRecorder(monkeypatch, microsoft_client, "create_meeting")

    booking = book(teams_meeting_type(ivo.organization, [ivo]), weekday_at(10))

    assert creates.count == 0 and teams_meetings() == []
    assert_no_link_and_host_told(booking, ivo)


def test_a_403_from_teams_marks_the_account_as_unable_to_host_and_the_chain_moves_on(hana, ivo, monkeypatch):
    # Microsoft's ID token did not tell (another tenant setup, or a policy that forbids meetings):
    # the 403 at the first meeting does.
    connection = connected_in_sandbox(ivo, IVO_PERSONAL, personal=True)
    Connection.objects.filter(pk=connection.pk).update(can_host_meetings=True)
    connect_member(hana, HANA_MICROSOFT)
    meeting_type = teams_meeting_type(
        ivo.organization, [ivo, hana], assignment=MeetingType.Assignment.COLLECTIVE, name="Panel"
    )
    creates = CallRecorder(monkeypatch, microsoft_client, "create_meeting")

    booking = book(meeting_type, weekday_at(10))

    meeting = video(booking)
    assert meeting.state == VideoMeeting.State.READY
    assert (meeting.provider, meeting.host) == ("microsoft", hana)  # the next host's Teams
    assert [m["organizer_email"] for m in teams_meetings()] == [HANA_MICROSOFT]
    connection.refresh_from_db()
    assert connection.is_active and not connection.can_host_meetings  # kept, but skipped from now on
    card = card_as_seen_by(ivo, ivo)
    assert "Microsoft connected · " + IVO_PERSONAL in card
    assert "This account can't host Microsoft Teams meetings" in card
    assert reconnect_mails_to(ivo.user.email) == []  # nothing is broken: no "reconnect" email

    book(meeting_type, weekday_at(12), client_email="dana@example.com")
    assert creates.count == 3  # the refused one, then Hana's twice: Ivo's account is not asked again


# --- Tokens: Microsoft rotates its refresh tokens --------------------------------------------------


def test_an_access_token_microsoft_already_expired_is_refreshed_once_and_the_new_pair_stored(hana, monkeypatch):
    connection = connect_member(hana, HANA_MICROSOFT)
    # Her calendar not checked, so no live calendar check at booking: the meeting's own call is the
    # first to meet the expired token.
    connection.calendars.update(checks_busy=False)
    old_access, old_refresh = connection.access_token, connection.refresh_token
    refreshes = CallRecorder(monkeypatch, microsoft_client, "refresh")
    creates = CallRecorder(monkeypatch, microsoft_client, "create_meeting")
    assert microsoft.expire_access_tokens(HANA_MICROSOFT) == 1  # expired before our clock says so

    booking = book(teams_meeting_type(hana.organization, [hana]), weekday_at(10))

    assert (refreshes.count, creates.count) == (1, 2)
    assert video(booking).state == VideoMeeting.State.READY and len(teams_meetings()) == 1
    connection.refresh_from_db()
    assert connection.is_active
    assert connection.access_token != old_access and connection.refresh_token != old_refresh
    assert connection.expires_at > timezone.now() + timedelta(minutes=55)
    user = sandbox_user(HANA_MICROSOFT)
    assert (user["refresh_tokens_issued"], user["refresh_tokens_spent"], user["refresh_tokens"]) == (2, 1, 1)
    assert microsoft_client.refresh(connection.refresh_token).access_token  # the stored one is the live one


def test_concurrent_workers_refresh_the_rotating_token_once_and_keep_the_newest(hana, monkeypatch):
    if db.vendor != "postgresql":
        pytest.skip("needs PostgreSQL: real row locks (SELECT … FOR UPDATE) across threads")
    connection = connect_member(hana, HANA_MICROSOFT)
    old_access, old_refresh = connection.access_token, connection.refresh_token
    expire_in_our_records(connection)
    refreshes = CallRecorder(monkeypatch, microsoft_client, "refresh")
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
    assert len(got) == workers and len(set(got)) == 1 and got[0] != old_access
    assert refreshes.count == 1  # Microsoft saw exactly one refresh
    user = sandbox_user(HANA_MICROSOFT)
    assert (user["refresh_tokens_issued"], user["refresh_tokens_spent"], user["refresh_tokens"]) == (2, 1, 1)
    with pytest.raises(http.PermanentHTTPError):  # the old refresh token is spent at Microsoft
        microsoft_client.refresh(old_refresh)
    connection.refresh_from_db()
    assert connection.is_active and connection.access_token == got[0] and connection.refresh_token != old_refresh
    # The stored refresh token is the newest: refreshing later still works.
    expire_in_our_records(connection)
    assert tokens.access_token(connection.pk) not in (old_access, got[0])
    connection.refresh_from_db()
    assert connection.is_active


def test_a_grant_removed_in_the_microsoft_account_breaks_the_connection_and_the_member_is_told_once(hana):
    connection = connect_member(hana, HANA_MICROSOFT)
    microsoft.revoke_grant(HANA_MICROSOFT)
    expire_in_our_records(connection)
    meeting_type = teams_meeting_type(hana.organization, [hana])

    first = book(meeting_type, weekday_at(10))
    second = book(meeting_type, weekday_at(12), client_email="dana@example.com")

    connection.refresh_from_db()
    assert connection.status == Connection.Status.BROKEN
    assert video(first).state == video(second).state == VideoMeeting.State.FAILED
    assert teams_meetings() == []
    card = card_as_seen_by(hana, hana)
    assert "Reconnect Microsoft" in card and "Needs reconnecting" in card and "Disconnect Microsoft" not in card
    reconnect = reconnect_mails_to(hana.user.email)
    assert len(reconnect) == 1 and "Microsoft" in reconnect[0].subject
    assert f"#member-{hana.pk}" in reconnect[0].body
    assert_no_link_and_host_told(first, hana)


def test_after_reconnecting_microsoft_bookings_get_teams_links_again(hana):
    connection = connect_member(hana, HANA_MICROSOFT)
    microsoft.revoke_grant(HANA_MICROSOFT)
    expire_in_our_records(connection)
    meeting_type = teams_meeting_type(hana.organization, [hana])
    book(meeting_type, weekday_at(10))
    assert Connection.objects.get(pk=connection.pk).status == Connection.Status.BROKEN

    connect_member(hana, HANA_MICROSOFT)
    booking = book(meeting_type, weekday_at(12), client_email="dana@example.com")

    meeting = video(booking)
    assert meeting.state == VideoMeeting.State.READY and meeting.provider == "microsoft"
    assert meeting.join_url in only_mail_to("dana@example.com").body


# --- Moved and deleted --------------------------------------------------------------------------


def test_rescheduling_moves_the_same_teams_meeting_and_the_link_stays(hana, monkeypatch):
    connect_member(hana, HANA_MICROSOFT)
    booking = book(teams_meeting_type(hana.organization, [hana]), weekday_at(10))
    before = video(booking)
    creates = CallRecorder(monkeypatch, microsoft_client, "create_meeting")
    new_start = weekday_at(13, 30, days_ahead=5)
    mark = len(mail.outbox)

    reschedule(booking, new_start)

    after = video(booking)
    assert creates.count == 0 and after.state == VideoMeeting.State.READY
    assert (after.meeting_id, after.join_url) == (before.meeting_id, before.join_url)
    online = at_microsoft(after)
    assert online["startDateTime"].startswith(iso(new_start)[:19])
    assert online["endDateTime"].startswith(iso(new_start + timedelta(minutes=30))[:19])
    assert len(teams_meetings()) == 1
    assert after.join_url in only_mail_to(CLIENT_EMAIL, since=mark).body


def test_rescheduling_a_meeting_the_host_deleted_in_teams_makes_a_new_one(hana):
    connection = connect_member(hana, HANA_MICROSOFT)
    booking = book(teams_meeting_type(hana.organization, [hana]), weekday_at(10))
    old = video(booking)
    assert graph_api("DELETE", f"/me/onlineMeetings/{old.meeting_id}", connection.access_token).status_code == 204
    mark = len(mail.outbox)

    reschedule(booking, weekday_at(12))

    meeting = video(booking)
    assert meeting.state == VideoMeeting.State.READY and meeting.meeting_id != old.meeting_id
    assert at_microsoft(meeting)["startDateTime"].startswith(iso(weekday_at(12))[:19])
    assert meeting.join_url in only_mail_to(CLIENT_EMAIL, since=mark).body


def test_cancelling_deletes_the_teams_meeting(hana):
    connect_member(hana, HANA_MICROSOFT)
    booking = book(teams_meeting_type(hana.organization, [hana]), weekday_at(10))
    meeting_id = video(booking).meeting_id
    mark = len(mail.outbox)

    cancel_booking(booking)

    assert booking.status == Booking.Status.CANCELLED
    assert microsoft.get_meeting(meeting_id) is None and teams_meetings() == []
    assert video(booking).state == VideoMeeting.State.DELETED
    for address in (CLIENT_EMAIL, hana.user.email):
        assert not has_a_teams_link(only_mail_to(address, since=mark).body)


def test_cancelling_a_meeting_already_deleted_in_teams_counts_as_done(hana, monkeypatch):
    connection = connect_member(hana, HANA_MICROSOFT)
    booking = book(teams_meeting_type(hana.organization, [hana]), weekday_at(10))
    meeting_id = video(booking).meeting_id
    assert graph_api("DELETE", f"/me/onlineMeetings/{meeting_id}", connection.access_token).status_code == 204
    deletes = CallRecorder(monkeypatch, microsoft_client, "delete_meeting")

    cancel_booking(booking)

    assert deletes.count == 1  # Graph answered 404…
    meeting = video(booking)
    assert meeting.state == VideoMeeting.State.DELETED and meeting.last_error == ""  # …which counts as deleted


def test_cancelling_while_graph_has_a_hiccup_deletes_the_meeting_on_retry(hana):
    connect_member(hana, HANA_MICROSOFT)
    booking = book(teams_meeting_type(hana.organization, [hana]), weekday_at(10))
    meeting_id = video(booking).meeting_id
    microsoft.inject_failure("/me/onlineMeetings/", method="DELETE", status=503, raw_body="<html>Busy</html>")

    cancel_booking(booking)
    assert microsoft.get_meeting(meeting_id) is not None
    sweep_later(61)

    assert microsoft.state_summary()["failures"] == []  # the first DELETE did fail…
    assert microsoft.get_meeting(meeting_id) is None  # …and the retry deleted it
    assert video(booking).state == VideoMeeting.State.DELETED


# --- Retries, and never a second meeting from a second run ----------------------------------------


def test_a_429_waits_as_graph_asks_and_makes_exactly_one_meeting(hana, monkeypatch):
    connect_member(hana, HANA_MICROSOFT)
    creates = CallRecorder(monkeypatch, microsoft_client, "create_meeting")
    microsoft.inject_failure("/me/onlineMeetings", method="POST", status=429, retry_after=120)

    booking = book(teams_meeting_type(hana.organization, [hana]), weekday_at(10))

    meeting = video(booking)
    assert creates.count == 1 and meeting.state == VideoMeeting.State.PENDING
    assert (meeting.next_attempt_at - meeting.claimed_at).total_seconds() >= 120  # Retry-After understood
    sweep_later(90)
    assert creates.count == 1  # not before Microsoft said
    sweep_later(140)

    meeting = video(booking)
    assert meeting.state == VideoMeeting.State.READY and creates.count == 2
    assert [m["id"] for m in teams_meetings()] == [meeting.meeting_id]
    assert meeting.join_url in only_mail_to(CLIENT_EMAIL).body  # one email, sent once the link existed


def test_a_5xx_with_an_html_body_is_retried_later(hana):
    connect_member(hana, HANA_MICROSOFT)
    microsoft.inject_failure("/me/onlineMeetings", method="POST", status=500, raw_body="<html>Oops</html>")

    booking = book(teams_meeting_type(hana.organization, [hana]), weekday_at(10))
    assert video(booking).state == VideoMeeting.State.PENDING and mail.outbox == []
    sweep_later(61)

    meeting = video(booking)
    assert meeting.state == VideoMeeting.State.READY and meeting.attempts == 2
    assert len(teams_meetings()) == 1
    assert meeting.join_url in only_mail_to(hana.user.email).body


def test_running_the_task_again_after_success_makes_no_second_meeting(hana, monkeypatch):
    connect_member(hana, HANA_MICROSOFT)
    booking = book(teams_meeting_type(hana.organization, [hana]), weekday_at(10))
    first = video(booking)
    creates = CallRecorder(monkeypatch, microsoft_client, "create_meeting")

    booking_tasks.booking_changed.apply(args=[booking.pk])
    booking_tasks.booking_changed.apply(args=[booking.pk, "created"])
    sweep_later(600)

    assert creates.count == 0
    assert [m["id"] for m in teams_meetings()] == [first.meeting_id]
    assert video(booking).join_url == first.join_url


def test_a_duplicate_run_while_another_worker_creates_the_meeting_does_not_call_microsoft(hana, monkeypatch):
    connect_member(hana, HANA_MICROSOFT)
    booking = make_booking(teams_meeting_type(hana.organization, [hana]), [hana], weekday_at(10))
    with TestCase.captureOnCommitCallbacks(execute=False):
        followup.record_change(booking, BookingChange.CREATED)
    VideoMeeting.objects.filter(booking=booking).update(
        provider="microsoft",
        host=hana,
        state=VideoMeeting.State.CREATING,
        claimed_at=timezone.now(),
        next_attempt_at=timezone.now() + video_module.STALE_CLAIM,
        attempts=1,
    )
    creates = CallRecorder(monkeypatch, microsoft_client, "create_meeting")

    booking_tasks.booking_changed.apply(args=[booking.pk])  # e.g. a redelivered message
    sweep_later(30)

    assert creates.count == 0 and teams_meetings() == []
    assert video(booking).state == VideoMeeting.State.CREATING


def test_a_worker_that_died_before_reaching_microsoft_gets_its_meeting_made_once(hana, monkeypatch):
    connect_member(hana, HANA_MICROSOFT)
    meeting_type = teams_meeting_type(hana.organization, [hana])
    booking = make_booking(meeting_type, [hana], weekday_at(10), client_email=CLIENT_EMAIL)
    with TestCase.captureOnCommitCallbacks(execute=False):
        followup.record_change(booking, BookingChange.CREATED)
    VideoMeeting.objects.filter(booking=booking).update(
        provider="microsoft",
        host=hana,
        state=VideoMeeting.State.CREATING,
        claimed_at=timezone.now() - timedelta(minutes=10),
        next_attempt_at=timezone.now() - timedelta(minutes=8),
        attempts=1,
    )
    creates = CallRecorder(monkeypatch, microsoft_client, "create_meeting")

    sweep_later(0)
    sweep_later(600)

    meeting = video(booking)
    assert meeting.state == VideoMeeting.State.READY and creates.count == 1
    assert [m["id"] for m in teams_meetings()] == [meeting.meeting_id]
    assert meeting.join_url in only_mail_to(CLIENT_EMAIL).body


def test_a_create_answered_after_we_gave_up_leaves_one_unused_meeting_and_the_booking_one_link(hana, monkeypatch):
    """Graph can't look an online meeting up by anything of ours, so a create whose answer never
    reached us is made again once the claim has gone stale: Microsoft then holds one meeting nobody
    has the link of. The booking still gets exactly one link, and nothing is made a third time."""
    connect_member(hana, HANA_MICROSOFT)
    monkeypatch.setattr(http, "READ_TIMEOUT", 0.5)
    creates = CallRecorder(monkeypatch, microsoft_client, "create_meeting")
    microsoft.inject_failure("/me/onlineMeetings", method="POST", delay_seconds=1.5)  # slow, but it does it

    booking = book(teams_meeting_type(hana.organization, [hana]), weekday_at(10))

    assert creates.count == 1 and video(booking).state == VideoMeeting.State.UNKNOWN
    wait_for(lambda: len(teams_meetings()) == 1)
    sweep_later(60)  # a request may still be on its way: no second call yet
    assert creates.count == 1
    sweep_later(video_module.STALE_CLAIM.total_seconds() + 1)
    sweep_later(video_module.STALE_CLAIM.total_seconds() + 600)

    meeting = video(booking)
    assert meeting.state == VideoMeeting.State.READY and creates.count == 2
    assert len(teams_meetings(HANA_MICROSOFT)) == 2 and meeting.meeting_id in [m["id"] for m in teams_meetings()]
    assert meeting.join_url in only_mail_to(CLIENT_EMAIL).body
    assert not says_action_needed(mails_to(hana.user.email))
