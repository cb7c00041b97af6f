"""The product's Google client (integrations/google/client.py) against the Google fake, over real
HTTP: tokens, revocation, and the Calendar events that carry Meet links, including the answers
that must not make a second meeting or a crash."""

from datetime import UTC, datetime, timedelta

import pytest
from django.conf import settings

from integrations import http
from integrations.base import CannotHostMeetings, ProviderResponseError
from integrations.google import client
from integrations.google.provider import provider
from integrations.sandbox import google

from .google_helpers import CALENDAR_SCOPE, calendar_api, grant_of, meeting_request, sandbox_events, userinfo, utc_z

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("google_sandbox")]

GINA = "gina.host@acme.example"
PAT = "pat.personal@gmail.com"


@pytest.fixture
def tokens():
    return google.issue_tokens(GINA)


@pytest.fixture
def access(tokens) -> str:
    return tokens["access_token"]


# --- The consent request -------------------------------------------------------------------------


def test_the_consent_request_asks_for_offline_access_with_consent_and_the_configured_scopes():
    url, params = provider.authorize_url("https://tsp.example/integrations/google/callback/")

    assert url == settings.GOOGLE_OAUTH_BASE_URL + "/o/oauth2/v2/auth"
    assert params == {
        "response_type": "code",
        "client_id": settings.GOOGLE_CLIENT_ID,
        "redirect_uri": "https://tsp.example/integrations/google/callback/",
        # The meetings' scopes, and the calendars' (their list and free/busy) on top.
        "scope": f"{settings.GOOGLE_SCOPES} {settings.GOOGLE_CALENDAR_SCOPES}",
        "access_type": "offline",
        "prompt": "consent",
        "include_granted_scopes": "true",
    }
    assert settings.GOOGLE_CLIENT_SECRET not in str(params)


# --- Refresh: Google's refresh tokens don't rotate -------------------------------------------------


def test_a_refresh_returns_a_new_access_token_and_no_refresh_token_and_the_old_one_keeps_working(tokens):
    first = client.refresh(tokens["refresh_token"])
    second = client.refresh(tokens["refresh_token"])  # the same refresh token, again

    assert first.refresh_token == "" and second.refresh_token == ""  # "keep the one you have"
    assert len({tokens["access_token"], first.access_token, second.access_token}) == 3
    assert 3500 < first.expires_in <= 3600
    assert CALENDAR_SCOPE in first.scope.split()
    assert userinfo(second.access_token).json()["email"] == GINA
    assert grant_of(GINA)["refresh_tokens"] == 1


def test_a_revoked_refresh_token_is_a_broken_grant_but_a_wrong_client_secret_is_not(tokens, monkeypatch):
    # The app's secret was rotated in Google's console but not here: our mistake, not the member's.
    with monkeypatch.context() as rotated:
        rotated.setattr(type(google.SANDBOX), "client_secret", property(lambda sandbox: "the-new-secret"))
        with pytest.raises(http.PermanentHTTPError) as wrong_secret:
            client.refresh(tokens["refresh_token"])
    assert wrong_secret.value.status == 401 and wrong_secret.value.provider_code == "invalid_client"
    assert not provider.is_broken_grant(wrong_secret.value)

    google.revoke_grant(GINA)  # the member removed the app in their Google account
    with pytest.raises(http.PermanentHTTPError) as revoked:
        client.refresh(tokens["refresh_token"])
    assert revoked.value.status == 400 and revoked.value.provider_code == "invalid_grant"
    assert provider.is_broken_grant(revoked.value)


def test_a_token_answer_without_an_access_token_is_refused_not_stored(tokens):
    google.inject_failure("/token", method="POST", status=200, body={"token_type": "Bearer"})

    with pytest.raises(ProviderResponseError):
        client.refresh(tokens["refresh_token"])


# --- Account and revocation --------------------------------------------------------------------


def test_the_account_is_googles_subject_and_email_with_the_workspace_domain(access):
    account = provider.get_account(access)

    user = google.get_or_create_user(GINA)
    assert (account.user_id, account.email, account.account_id) == (user["sub"], GINA, "acme.example")
    assert account.can_host_meetings


def test_a_personal_google_account_has_no_workspace_domain():
    account = provider.get_account(google.issue_tokens(PAT)["access_token"])

    assert account.email == PAT and account.account_id == ""


def test_revoking_the_refresh_token_ends_the_whole_grant_and_revoking_again_is_done(tokens):
    provider.revoke(access_token=tokens["access_token"], refresh_token=tokens["refresh_token"])

    assert grant_of(GINA) is None
    assert userinfo(tokens["access_token"]).status_code == 401  # the access token went with it
    # Google answers invalid_token for a token it no longer knows: nothing is left, so that is done.
    provider.revoke(access_token=tokens["access_token"], refresh_token=tokens["refresh_token"])


def test_a_revocation_google_cannot_take_now_is_retried_later(tokens):
    google.inject_failure("/revoke", method="POST", status=503)

    with pytest.raises(http.TransientHTTPError):
        provider.revoke(access_token=tokens["access_token"], refresh_token=tokens["refresh_token"])
    assert grant_of(GINA) is not None


# --- Creating the Meet link ----------------------------------------------------------------------


def test_a_meeting_is_an_event_on_the_primary_calendar_with_a_meet_conference_and_no_invitations(access):
    request = meeting_request("booking-41-0", start=datetime(2030, 5, 6, 9, 30, tzinfo=UTC), minutes=45)

    created = provider.create_meeting(access, request)

    event = google.get_event(created.meeting_id, GINA)
    assert created.meeting_id == client.event_id("booking-41-0")
    assert created.meeting_id.startswith("tsp") and len(created.meeting_id) == 40
    assert created.join_url == event["hangoutLink"] and created.join_url.startswith(google.MEET_HOST + "/")
    assert created.external_ref == event["conferenceData"]["conferenceId"]
    assert created.passcode == ""
    assert event["summary"] == "Intro call with Casey Client"
    assert event["description"] == "Intro call booked by Casey Client <casey@example.com>"
    assert event["start"] == {"dateTime": "2030-05-06T09:30:00Z", "timeZone": "Europe/Berlin"}
    assert event["end"] == {"dateTime": "2030-05-06T10:15:00Z", "timeZone": "Europe/Berlin"}
    assert event["conferenceData"]["createRequest"]["requestId"] == "booking-41-0"
    [summary] = sandbox_events(GINA)
    assert summary["send_updates"] == ["none"]  # the product sends its own invitations


def test_event_ids_are_stable_per_request_valid_for_google_and_distinct_between_requests():
    ids = {client.event_id(f"{uid}-{sequence}") for uid in ("a1", "b2", "c3") for sequence in (0, 1)}

    assert len(ids) == 6
    assert client.event_id("a1-0") == client.event_id("a1-0")
    assert all(client.EVENT_ID_PATTERN.match(value) for value in ids)


def test_creating_twice_for_the_same_request_adopts_the_first_event_instead_of_making_a_second(access):
    first = provider.create_meeting(access, meeting_request("booking-42-0"))

    again = provider.create_meeting(access, meeting_request("booking-42-0"))

    assert again == first
    assert [event["id"] for event in sandbox_events(GINA)] == [first.meeting_id]
    assert google.state_summary()["conference_request_ids"] == ["booking-42-0"]


def test_find_meeting_knows_nothing_before_the_create_and_the_meeting_after_it(access):
    request = meeting_request("booking-43-0")
    assert provider.find_meeting(access, request) is None

    created = provider.create_meeting(access, request)

    assert provider.find_meeting(access, request) == created
    assert provider.find_meeting(access, meeting_request("booking-43-1")) is None


def test_a_request_whose_event_the_host_deleted_by_hand_gets_a_new_event_and_keeps_finding_it(access):
    request = meeting_request("booking-44-0")
    first = provider.create_meeting(access, request)
    assert calendar_api("DELETE", f"/calendars/primary/events/{first.meeting_id}", access).status_code == 204
    assert provider.find_meeting(access, request) is None  # the id stays taken, but no meeting is left

    second = provider.create_meeting(access, request)
    third = provider.create_meeting(access, request)  # a retry of that create

    assert second.meeting_id != first.meeting_id and second.join_url != first.join_url
    assert third == second and provider.find_meeting(access, request) == second
    assert [event["id"] for event in sandbox_events(GINA)] == [second.meeting_id]


def test_a_create_answered_too_late_is_found_and_adopted_by_the_retry(access, monkeypatch):
    monkeypatch.setattr(http, "READ_TIMEOUT", 0.5)
    google.inject_failure("/calendar/v3/calendars/primary/events", method="POST", delay_seconds=1.5)
    request = meeting_request("booking-45-0")

    with pytest.raises(http.TransientHTTPError) as timed_out:
        provider.create_meeting(access, request)
    assert timed_out.value.sent is None  # it may have been made
    monkeypatch.setattr(http, "READ_TIMEOUT", 15)
    found = _wait_for_found(access, request)

    assert provider.create_meeting(access, request) == found
    assert len(sandbox_events(GINA)) == 1


def _wait_for_found(access, request, seconds: float = 10):
    import time

    deadline = time.monotonic() + seconds
    while (found := provider.find_meeting(access, request)) is None:
        assert time.monotonic() < deadline, "the slow create never finished"
        time.sleep(0.05)
    return found


# --- Answers to retry, to refuse, and not to crash on ----------------------------------------------


def test_429_is_retried_later_with_googles_retry_after(access):
    google.inject_failure("/events", method="POST", status=429, retry_after=17)

    with pytest.raises(http.TransientHTTPError) as slow_down:
        provider.create_meeting(access, meeting_request())
    assert slow_down.value.status == 429 and slow_down.value.retry_after == 17
    assert sandbox_events() == []
    assert provider.create_meeting(access, meeting_request()).join_url  # later, it works


@pytest.mark.parametrize("reason", ["rateLimitExceeded", "userRateLimitExceeded"])
def test_googles_403_rate_limit_is_retried_later_like_a_429(access, reason):
    body = google.google_error_body(403, "Rate Limit Exceeded", reason)
    google.inject_failure("/events", method="POST", status=403, body=body)

    with pytest.raises(http.TransientHTTPError) as slow_down:
        provider.create_meeting(access, meeting_request())
    assert slow_down.value.status == 403


def test_a_403_that_is_not_a_rate_limit_is_a_refusal(access):
    body = google.google_error_body(403, "The user must be signed up for Google Calendar.", "forbidden")
    google.inject_failure("/events", method="POST", status=403, body=body)

    with pytest.raises(http.PermanentHTTPError) as refused:
        provider.create_meeting(access, meeting_request())
    assert refused.value.status == 403


def test_a_5xx_with_an_html_page_is_retried_later_without_a_crash(access):
    google.inject_failure("/events", method="POST", status=502, raw_body="<html><h1>502 Bad Gateway</h1></html>")

    with pytest.raises(http.TransientHTTPError) as unavailable:
        provider.create_meeting(access, meeting_request())
    assert unavailable.value.status == 502 and unavailable.value.body is None


def test_an_expired_access_token_is_a_401_for_the_caller_to_refresh(access):
    google.expire_access_tokens(GINA)

    with pytest.raises(http.PermanentHTTPError) as expired:
        provider.create_meeting(access, meeting_request())
    assert expired.value.status == 401
    assert sandbox_events() == []


def test_an_event_answer_without_a_link_is_unusable(access):
    google.inject_failure(
        "/events", method="POST", status=200, body={"id": client.event_id("x-0"), "status": "confirmed"}
    )

    with pytest.raises(ProviderResponseError):
        provider.create_meeting(access, meeting_request("x-0"))


def test_a_conference_google_is_still_making_is_asked_for_again_later(access):
    pending = {
        "id": client.event_id("booking-46-0"),
        "status": "confirmed",
        "conferenceData": {"createRequest": {"requestId": "booking-46-0", "status": {"statusCode": "pending"}}},
    }
    google.inject_failure("/events", method="POST", status=200, body=pending)

    with pytest.raises(http.TransientHTTPError):
        provider.create_meeting(access, meeting_request("booking-46-0"))


def test_a_conference_google_refused_means_this_account_cannot_host_and_leaves_no_event(access):
    event_id = client.event_id("booking-47-0")
    # Google made the event but refused its conference (Meet is switched off for the account).
    made = calendar_api(
        "POST",
        "/calendars/primary/events",
        access,
        params={"sendUpdates": "none"},
        json={"id": event_id, **_times(), "summary": "Intro call"},
    )
    assert made.status_code == 200
    failed = {
        **made.json(),
        "conferenceData": {"createRequest": {"requestId": "booking-47-0", "status": {"statusCode": "failure"}}},
    }
    google.inject_failure("/events", method="POST", status=200, body=failed)

    with pytest.raises(CannotHostMeetings):
        provider.create_meeting(access, meeting_request("booking-47-0"))
    assert sandbox_events(GINA) == []  # no linkless event left in the host's calendar


def _times() -> dict:
    return {
        "start": {"dateTime": "2030-05-06T09:30:00Z", "timeZone": "UTC"},
        "end": {"dateTime": "2030-05-06T10:00:00Z", "timeZone": "UTC"},
    }


# --- Moving and deleting -------------------------------------------------------------------------


def test_moving_patches_only_the_times_of_the_same_event_and_the_link_stays(access):
    created = provider.create_meeting(access, meeting_request("booking-48-0"))
    new_start = datetime(2030, 5, 8, 14, 0, tzinfo=UTC)

    provider.update_meeting(access, created.meeting_id, meeting_request("booking-48-1", start=new_start, minutes=60))

    event = google.get_event(created.meeting_id, GINA)
    assert event["start"] == {"dateTime": utc_z(new_start), "timeZone": "Europe/Berlin"}
    assert event["end"] == {"dateTime": utc_z(new_start + timedelta(minutes=60)), "timeZone": "Europe/Berlin"}
    assert event["hangoutLink"] == created.join_url
    assert event["conferenceData"]["conferenceId"] == created.external_ref
    assert event["summary"] == "Intro call with Casey Client"
    [summary] = sandbox_events(GINA)
    assert summary["send_updates"] == ["none", "none"]


def test_moving_an_event_that_is_gone_is_a_refusal_for_the_caller(access):
    created = provider.create_meeting(access, meeting_request("booking-49-0"))
    provider.delete_meeting(access, created.meeting_id)

    with pytest.raises(http.PermanentHTTPError) as gone:
        provider.update_meeting(access, created.meeting_id, meeting_request("booking-49-1"))
    assert gone.value.status == 410


def test_deleting_removes_the_event_without_telling_anyone_and_again_or_unknown_counts_as_done(access):
    created = provider.create_meeting(access, meeting_request("booking-50-0"))

    provider.delete_meeting(access, created.meeting_id)
    provider.delete_meeting(access, created.meeting_id)  # 410 Gone: already done
    provider.delete_meeting(access, client.event_id("never-made-0"))  # 404: nothing to delete

    [deleted] = sandbox_events(GINA, deleted=True)
    assert deleted["id"] == created.meeting_id and deleted["send_updates"] == ["none", "none"]
    assert sandbox_events(GINA) == []


def test_a_delete_google_cannot_take_now_is_retried_later(access):
    created = provider.create_meeting(access, meeting_request("booking-51-0"))
    google.inject_failure(created.meeting_id, method="DELETE", status=503, retry_after=30)

    with pytest.raises(http.TransientHTTPError) as later:
        provider.delete_meeting(access, created.meeting_id)
    assert later.value.retry_after == 30
    assert [event["id"] for event in sandbox_events(GINA)] == [created.meeting_id]


@pytest.mark.parametrize("meeting_id", ["../../users/me", "ABC123", "tsp", "a" * 1025, ""])
def test_an_id_that_is_not_a_google_event_id_never_reaches_a_url(access, meeting_id):
    with pytest.raises(ValueError):
        provider.delete_meeting(access, meeting_id)
    with pytest.raises(ValueError):
        provider.update_meeting(access, meeting_id, meeting_request())
