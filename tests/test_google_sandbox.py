"""The Google fake of the provider sandbox (integrations/sandbox/google.py), over real HTTP on the
live server, as the product's Google client meets it: OAuth with PKCE and offline access, a
refresh token that doesn't rotate, revocation of the whole grant, and Calendar events that carry
a Meet link."""

import base64
import hashlib
import json
import re
import secrets
import time
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from integrations.base import MeetingRequest
from integrations.google import client as google_client
from integrations.sandbox import google, zoom
from tests.provider_sandbox_helpers import GOOGLE_CLIENT_ID, GOOGLE_CLIENT_SECRET

EMAIL = "gina.host@example.com"
CALENDAR_SCOPE = "https://www.googleapis.com/auth/calendar.events"
SCOPE = f"openid email {CALENDAR_SCOPE}"
EVENT = {
    "summary": "Intro call",
    "description": "Booked with TeamSchedulerPro",
    "start": {"dateTime": "2030-05-01T09:30:00Z", "timeZone": "Europe/Berlin"},
    "end": {"dateTime": "2030-05-01T10:00:00Z", "timeZone": "Europe/Berlin"},
    "conferenceData": {
        "createRequest": {"requestId": "booking-41-host-7", "conferenceSolutionKey": {"type": "hangoutsMeet"}}
    },
}
WRITE = {"conferenceDataVersion": "1", "sendUpdates": "none"}
MEET_LINK = re.compile(r"^https://meet\.google\.sandbox\.invalid/[a-z]{3}-[a-z]{4}-[a-z]{3}$")


@pytest.fixture
def site(google_sandbox):
    return google_sandbox


@pytest.fixture
def base(site):
    return site + "/sandbox/google"


# --- Helpers -----------------------------------------------------------------------------------


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
    return verifier, challenge


def callback(site) -> str:
    return site + "/integrations/google/callback/"


def authorize_params(site, challenge, **changes) -> dict:
    params = {
        "response_type": "code",
        "client_id": GOOGLE_CLIENT_ID,
        "redirect_uri": callback(site),
        "scope": SCOPE,
        "state": "state-123",
        "access_type": "offline",
        "prompt": "consent",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    params.update(changes)
    return {key: value for key, value in params.items() if value is not None}


def consent(site, *, decision="allow", email=EMAIL, challenge="c" * 43, **changes):
    """Open the consent page and press a button, as a person would; the sandbox's redirect response."""
    session = requests.Session()
    page = session.get(f"{site}/sandbox/google/o/oauth2/v2/auth", params=authorize_params(site, challenge, **changes))
    assert page.status_code == 200, page.text
    csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
    form = {"csrfmiddlewaretoken": csrf, "email": email, "decision": decision}
    return session.post(page.url, data=form, allow_redirects=False)


def redirect_query(site, response) -> dict:
    assert response.status_code == 302, response.text
    location = response.headers["Location"]
    assert location.startswith(callback(site) + "?")
    return {key: values[0] for key, values in parse_qs(urlsplit(location).query).items()}


def exchange(base, site, code, verifier, **changes):
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": callback(site),
        "code_verifier": verifier,
        "client_id": GOOGLE_CLIENT_ID,
        "client_secret": GOOGLE_CLIENT_SECRET,
    }
    data.update(changes)
    return requests.post(f"{base}/token", data={key: value for key, value in data.items() if value is not None})


def refresh(base, refresh_token, **changes):
    data = {"grant_type": "refresh_token", "refresh_token": refresh_token}
    data.update({"client_id": GOOGLE_CLIENT_ID, "client_secret": GOOGLE_CLIENT_SECRET, **changes})
    return requests.post(f"{base}/token", data=data)


def connect(site, base, email=EMAIL, **changes) -> dict:
    """The whole code flow with PKCE: the token response's JSON."""
    verifier, challenge = pkce_pair()
    code = redirect_query(site, consent(site, email=email, challenge=challenge, **changes))["code"]
    response = exchange(base, site, code, verifier)
    assert response.status_code == 200, response.text
    return response.json()


def api(base, method, path, token, **kwargs):
    return requests.request(method, f"{base}{path}", headers={"Authorization": f"Bearer {token}"}, **kwargs)


EVENTS = "/calendar/v3/calendars/primary/events"


def insert(base, token, params=WRITE, **changes):
    return api(base, "POST", EVENTS, token, params=params, json={**EVENT, **changes})


def claims(id_token: str) -> dict:
    payload = id_token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def google_error(response) -> dict:
    return response.json()["error"]


# --- OAuth: consent ----------------------------------------------------------------------------


def test_the_consent_page_says_it_is_the_local_fake_and_lists_the_scopes(site):
    page = requests.get(f"{site}/sandbox/google/o/oauth2/v2/auth", params=authorize_params(site, "c" * 43))

    assert page.status_code == 200
    assert "Google sandbox (local fake)" in page.text and "This is not Google." in page.text
    assert CALENDAR_SCOPE in page.text
    assert 'value="google.user@example.com"' in page.text
    assert ">Allow<" in page.text and ">Deny<" in page.text


def test_allow_sends_a_code_and_the_state_back_and_deny_sends_access_denied(site):
    assert set(redirect_query(site, consent(site))) == {"code", "state"}

    assert redirect_query(site, consent(site, decision="deny")) == {"error": "access_denied", "state": "state-123"}


@pytest.mark.parametrize(
    "changes",
    [
        {"client_id": "someone-else.apps.googleusercontent.com"},
        {"response_type": "token"},
        {"redirect_uri": "https://attacker.example/integrations/google/callback/"},
        {"scope": None},
        {"state": None},
        {"code_challenge": None, "code_challenge_method": None},  # PKCE is required
        {"code_challenge_method": "plain"},
    ],
)
def test_the_consent_page_refuses_a_request_it_must_not_answer(site, changes):
    page = requests.get(f"{site}/sandbox/google/o/oauth2/v2/auth", params=authorize_params(site, "c" * 43, **changes))

    assert page.status_code == 400
    assert "not valid" in page.text and "csrfmiddlewaretoken" not in page.text


# --- OAuth: tokens -----------------------------------------------------------------------------


def test_the_code_flow_gives_an_offline_grant_for_the_chosen_account(site, base):
    tokens = connect(site, base)

    assert tokens["token_type"] == "Bearer" and tokens["expires_in"] == 3599
    assert tokens["scope"] == SCOPE and tokens["access_token"] and tokens["refresh_token"]
    assert claims(tokens["id_token"])["email"] == EMAIL
    me = api(base, "GET", "/v1/userinfo", tokens["access_token"]).json()
    assert me == {
        "sub": google.get_or_create_user(EMAIL)["sub"],
        "email": EMAIL,
        "email_verified": True,
        "name": "Gina Host",
        "given_name": "Gina",
        "family_name": "Host",
        "hd": "example.com",
    }
    assert re.fullmatch(r"\d{21}", me["sub"])


def test_without_offline_access_there_is_no_refresh_token(site, base):
    tokens = connect(site, base, access_type=None)

    assert tokens["access_token"] and "refresh_token" not in tokens


def test_a_code_works_once_and_only_with_its_verifier_and_redirect_uri(site, base):
    verifier, challenge = pkce_pair()
    code = redirect_query(site, consent(site, challenge=challenge))["code"]
    wrong_verifier = exchange(base, site, code, "not-the-verifier-" + "x" * 40)
    assert wrong_verifier.status_code == 400 and wrong_verifier.json()["error"] == "invalid_grant"
    assert exchange(base, site, code, verifier).status_code == 400  # spent by the failed try

    code = redirect_query(site, consent(site, challenge=challenge))["code"]
    assert exchange(base, site, code, verifier, redirect_uri=site + "/elsewhere/").status_code == 400

    code = redirect_query(site, consent(site, challenge=challenge))["code"]
    assert exchange(base, site, code, verifier).status_code == 200
    again = exchange(base, site, code, verifier)
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"


def test_a_code_expires_after_five_minutes(site, base):
    verifier, challenge = pkce_pair()
    code = redirect_query(site, consent(site, challenge=challenge))["code"]
    google.advance_clock(301)

    assert exchange(base, site, code, verifier).json()["error"] == "invalid_grant"


def test_the_client_is_known_by_its_credentials_in_the_body_or_basic(site, base):
    tokens = google.issue_tokens(EMAIL)

    wrong = refresh(base, tokens["refresh_token"], client_secret="wrong")
    basic = requests.post(
        f"{base}/token",
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
        auth=(GOOGLE_CLIENT_ID, GOOGLE_CLIENT_SECRET),
    )

    assert wrong.status_code == 401 and wrong.json()["error"] == "invalid_client"
    assert basic.status_code == 200


def test_a_refresh_gives_a_new_access_token_and_keeps_the_refresh_token_working(site, base):
    tokens = connect(site, base)

    first = refresh(base, tokens["refresh_token"])
    second = refresh(base, tokens["refresh_token"])  # the same one again: Google's don't rotate

    assert first.status_code == second.status_code == 200
    assert "refresh_token" not in first.json() and "refresh_token" not in second.json()
    assert first.json()["access_token"] != second.json()["access_token"] != tokens["access_token"]
    assert api(base, "GET", "/v1/userinfo", second.json()["access_token"]).json()["email"] == EMAIL


def test_an_unknown_refresh_token_is_an_invalid_grant(base):
    response = refresh(base, "never-issued")

    assert response.status_code == 400
    assert response.json() == {"error": "invalid_grant", "error_description": "Token has been expired or revoked."}


@pytest.mark.parametrize("which", ["access_token", "refresh_token"])
def test_revoking_either_token_ends_the_whole_grant(site, base, which):
    tokens = connect(site, base)

    response = requests.post(f"{base}/revoke", data={"token": tokens[which]})

    assert response.status_code == 200 and response.json() == {}
    assert refresh(base, tokens["refresh_token"]).json()["error"] == "invalid_grant"
    assert api(base, "GET", "/v1/userinfo", tokens["access_token"]).status_code == 401
    again = requests.post(f"{base}/revoke", data={"token": tokens[which]})
    assert again.status_code == 400 and again.json()["error"] == "invalid_token"


def test_removing_the_app_in_the_google_account_ends_every_grant(site, base):
    tokens = connect(site, base)
    session = requests.Session()
    page = session.get(f"{base}/control/")
    assert page.status_code == 200 and EMAIL in page.text
    csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)

    response = session.post(f"{base}/control/remove-app", data={"csrfmiddlewaretoken": csrf, "email": EMAIL})

    assert response.status_code == 200 and "2 tokens of gina.host@example.com revoked" in response.text
    assert refresh(base, tokens["refresh_token"]).json()["error"] == "invalid_grant"
    assert google.revoke_grant(EMAIL) == 0  # the helper does the same; nothing is left


def test_an_expired_access_token_is_refused_with_401_unauthenticated(base):
    tokens = google.issue_tokens(EMAIL)
    assert api(base, "GET", "/v1/userinfo", tokens["access_token"]).status_code == 200

    google.advance_clock(3600)
    response = api(base, "GET", "/v1/userinfo", tokens["access_token"])

    assert response.status_code == 401
    assert google_error(response)["status"] == "UNAUTHENTICATED" and google_error(response)["code"] == 401
    assert refresh(base, tokens["refresh_token"]).status_code == 200  # the refresh token outlives it


def test_expire_tokens_with_refresh_leaves_the_member_to_connect_again(base):
    tokens = google.issue_tokens(EMAIL)

    response = requests.post(f"{base}/control/expire-tokens", json={"email": EMAIL, "refresh": True})

    assert response.json() == {"changed_tokens": 2}
    assert api(base, "GET", "/v1/userinfo", tokens["access_token"]).status_code == 401
    assert refresh(base, tokens["refresh_token"]).json()["error"] == "invalid_grant"


def test_a_token_in_the_query_string_is_refused_even_with_a_valid_header(base):
    token = google.issue_tokens(EMAIL)["access_token"]

    response = api(base, "GET", "/v1/userinfo", token, params={"access_token": token})

    assert response.status_code == 401


# --- Calendar: events with a Meet link ----------------------------------------------------------


def test_an_event_written_with_conference_data_version_1_gets_a_meet_link(base):
    token = google.issue_tokens(EMAIL)["access_token"]

    response = insert(base, token)

    assert response.status_code == 200
    event = response.json()
    assert event["status"] == "confirmed" and re.fullmatch(r"[a-v0-9]{26}", event["id"])
    assert event["htmlLink"].startswith("https://calendar.google.sandbox.invalid/event?eid=")
    assert (event["start"], event["end"]) == (EVENT["start"], EVENT["end"])
    assert MEET_LINK.match(event["hangoutLink"])
    conference = event["conferenceData"]
    assert conference["createRequest"]["status"] == {"statusCode": "success"}
    assert conference["createRequest"]["requestId"] == "booking-41-host-7"
    [entry] = conference["entryPoints"]
    assert entry["entryPointType"] == "video" and entry["uri"] == event["hangoutLink"] and entry["label"]
    assert event["hangoutLink"].endswith(conference["conferenceId"])
    [summary] = google.state_summary()["events"]
    assert summary["send_updates"] == ["none"] and summary["calendar_id"] == EMAIL
    assert google.state_summary()["conference_request_ids"] == ["booking-41-host-7"]


def test_without_conference_data_version_1_no_link_is_made(base):
    token = google.issue_tokens(EMAIL)["access_token"]

    event = insert(base, token, params={"sendUpdates": "none"}).json()

    assert "hangoutLink" not in event and "conferenceData" not in event


def test_the_calendar_is_primary_or_the_accounts_own_email_and_no_one_elses(base):
    token = google.issue_tokens(EMAIL)["access_token"]
    google.issue_tokens("someone.else@example.com")

    own = api(base, "POST", f"/calendar/v3/calendars/{EMAIL}/events", token, params=WRITE, json=EVENT)
    other = api(base, "POST", "/calendar/v3/calendars/someone.else@example.com/events", token, json=EVENT)

    assert own.status_code == 200 and own.json()["organizer"]["email"] == EMAIL
    assert other.status_code == 404 and google_error(other)["status"] == "NOT_FOUND"


def test_a_chosen_id_is_taken_for_good_even_after_the_event_is_deleted(base):
    token = google.issue_tokens(EMAIL)["access_token"]
    assert insert(base, token, id="tsp0123456789abcdef").status_code == 200

    duplicate = insert(base, token, id="tsp0123456789abcdef")
    assert api(base, "DELETE", f"{EVENTS}/tsp0123456789abcdef", token).status_code == 204
    after_delete = insert(base, token, id="tsp0123456789abcdef")

    for response in (duplicate, after_delete):
        assert response.status_code == 409
        error = google_error(response)
        assert error["code"] == 409 and error["message"] == "The requested identifier already exists."
        assert error["errors"][0]["reason"] == "duplicate"


@pytest.mark.parametrize("bad_id", ["abc", "UPPERCASE0123", "has-dash-0123", "w" * 10, "a" * 1025])
def test_a_chosen_id_must_be_base32hex_of_5_to_1024_characters(base, bad_id):
    token = google.issue_tokens(EMAIL)["access_token"]

    response = insert(base, token, id=bad_id)

    assert response.status_code == 400


def test_moving_an_event_keeps_its_link(base):
    token = google.issue_tokens(EMAIL)["access_token"]
    event = insert(base, token).json()
    later = {
        "start": {"dateTime": "2030-05-02T14:00:00Z", "timeZone": "Europe/Berlin"},
        "end": {"dateTime": "2030-05-02T14:45:00Z", "timeZone": "Europe/Berlin"},
    }

    moved = api(base, "PATCH", f"{EVENTS}/{event['id']}", token, params=WRITE, json=later)

    assert moved.status_code == 200
    assert (moved.json()["start"], moved.json()["end"]) == (later["start"], later["end"])
    assert moved.json()["hangoutLink"] == event["hangoutLink"] and moved.json()["summary"] == EVENT["summary"]
    assert api(base, "GET", f"{EVENTS}/{event['id']}", token).json()["start"] == later["start"]
    assert google.state_summary()["events"][0]["send_updates"] == ["none", "none"]


def test_an_event_must_end_after_it_starts(base):
    token = google.issue_tokens(EMAIL)["access_token"]
    event = insert(base, token).json()

    created = insert(base, token, end={"dateTime": "2030-05-01T09:00:00Z"})
    moved = api(base, "PATCH", f"{EVENTS}/{event['id']}", token, json={"end": {"dateTime": "2030-05-01T09:00:00Z"}})

    assert created.status_code == moved.status_code == 400
    assert google_error(moved)["errors"][0]["reason"] == "timeRangeEmpty"


def test_a_deleted_event_answers_410_and_an_unknown_one_404(base):
    token = google.issue_tokens(EMAIL)["access_token"]
    event = insert(base, token).json()
    path = f"{EVENTS}/{event['id']}"

    assert api(base, "DELETE", path, token, params={"sendUpdates": "none"}).status_code == 204

    for method, kwargs in (("DELETE", {}), ("GET", {}), ("PATCH", {"json": {"summary": "Renamed"}})):
        gone = api(base, method, path, token, **kwargs)
        assert gone.status_code == 410
        assert google_error(gone)["code"] == 410 and google_error(gone)["message"] == "Resource has been deleted"
    unknown = api(base, "DELETE", f"{EVENTS}/tsp00000000000000000000", token)
    assert unknown.status_code == 404 and google_error(unknown)["code"] == 404
    assert google.get_event(event["id"])["status"] == "cancelled"


def test_an_expired_access_token_is_refused_by_the_calendar_too(base):
    token = google.issue_tokens(EMAIL)["access_token"]
    google.expire_access_tokens(EMAIL)

    response = insert(base, token)

    assert response.status_code == 401 and google_error(response)["status"] == "UNAUTHENTICATED"
    assert google.state_summary()["events"] == []


def test_a_grant_without_the_calendar_scope_may_not_write_events(base):
    token = google.issue_tokens(EMAIL, scope="openid email")["access_token"]

    response = insert(base, token)

    assert response.status_code == 403 and google_error(response)["errors"][0]["reason"] == "insufficientPermissions"


# --- Failures on request -----------------------------------------------------------------------


def test_an_injected_429_carries_retry_after_and_google_json_then_calls_work_again(base):
    token = google.issue_tokens(EMAIL)["access_token"]
    answer = requests.post(
        f"{base}/control/fail",
        json={"path_contains": "/events", "method": "POST", "status": 429, "retry_after": "7"},
    )
    assert answer.status_code == 200

    limited = insert(base, token)
    then = insert(base, token)

    assert limited.status_code == 429 and limited.headers["Retry-After"] == "7"
    assert google_error(limited)["status"] == "RESOURCE_EXHAUSTED"
    assert google_error(limited)["errors"][0]["reason"] == "rateLimitExceeded"
    assert then.status_code == 200 and len(google.state_summary()["events"]) == 1


def test_a_server_error_and_a_slow_answer_can_be_injected_from_python(base):
    token = google.issue_tokens(EMAIL)["access_token"]
    google.inject_failure("/token", status=500)
    google.inject_failure("/events", method="POST", delay_seconds=1)

    assert refresh(base, google.issue_tokens(EMAIL)["refresh_token"]).status_code == 500
    with pytest.raises(requests.ReadTimeout):
        requests.post(
            f"{base}{EVENTS}", params=WRITE, json=EVENT, headers={"Authorization": f"Bearer {token}"}, timeout=0.3
        )
    deadline = time.monotonic() + 5
    while not google.state_summary()["events"] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(google.state_summary()["events"]) == 1  # the slow Google still made the event


# --- Inspection and separation -----------------------------------------------------------------


def test_the_state_summary_shows_grants_and_events_without_tokens(site, base):
    tokens = connect(site, base)
    insert(base, tokens["access_token"])

    response = requests.get(f"{base}/control/state")

    state = response.json()
    assert state["users"][0]["email"] == EMAIL and state["users"][0]["events"] == 1
    [grant] = state["grants"]
    assert grant == {
        "email": EMAIL,
        "client_id": GOOGLE_CLIENT_ID,
        "scope": SCOPE,
        "live_access_tokens": 1,
        "refresh_tokens": 1,
    }
    assert tokens["access_token"] not in response.text and tokens["refresh_token"] not in response.text


def test_each_provider_has_its_own_state(base):
    zoom_token = zoom.issue_tokens(EMAIL)["access_token"]
    google.issue_tokens(EMAIL)

    zoom.reset()

    assert api(base, "GET", "/v1/userinfo", zoom_token).status_code == 401
    assert [user["email"] for user in google.state_summary()["users"]] == [EMAIL]


def test_the_products_google_client_makes_moves_and_deletes_a_meet_event(google_sandbox):
    tokens = google.issue_tokens(EMAIL)
    meeting = MeetingRequest(
        topic="Intro call",
        start=datetime(2030, 5, 1, 9, 30, tzinfo=UTC),
        duration_minutes=30,
        time_zone="Europe/Berlin",
        agenda="Booked with TeamSchedulerPro",
        request_id="booking-41-host-7",
    )

    created = google_client.create_meeting(tokens["access_token"], meeting)
    again = google_client.create_meeting(tokens["access_token"], meeting)  # a retry adopts the same event
    moved = MeetingRequest(**{**meeting.__dict__, "start": datetime(2030, 5, 2, 14, tzinfo=UTC)})
    google_client.update_meeting(tokens["access_token"], created.meeting_id, moved)
    google_client.delete_meeting(tokens["access_token"], created.meeting_id)
    google_client.delete_meeting(tokens["access_token"], created.meeting_id)  # 410: already done

    assert MEET_LINK.match(created.join_url) and again == created
    [event] = google.state_summary()["events"]
    assert event["status"] == "cancelled" and event["start"]["dateTime"] == "2030-05-02T14:00:00Z"
    assert set(event["send_updates"]) == {"none"}
