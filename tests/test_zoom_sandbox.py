"""The Zoom sandbox (integrations/sandbox), tested over real HTTP as the product's client meets it.

The sandbox is mounted only when PROVIDER_SANDBOX is on at startup, so this module is its own
urlconf: the sandbox, plus a view that records the webhooks the sandbox delivers.
"""

import base64
import hashlib
import hmac
import json
import os
import re
import secrets
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from django.http import HttpResponse
from django.urls import include, path
from django.views.decorators.csrf import csrf_exempt

from integrations.sandbox import zoom

CLIENT_ID = "test-client-id"
CLIENT_SECRET = "test-client-secret"
WEBHOOK_SECRET = "test-webhook-secret"
BASIC = (CLIENT_ID, CLIENT_SECRET)
EMAIL = "dana.host@example.com"
# A query string of its own: the sandbox must add code and state to it, not replace it.
REDIRECT_URI = "http://app.example.test/integrations/zoom/callback/?from=zoom"
MEETING = {
    "topic": "Intro call",
    "type": 2,
    "start_time": "2030-05-01T09:30:00Z",
    "duration": 30,
    "timezone": "Europe/Berlin",
    "agenda": "Booked with TeamSchedulerPro",
    "settings": {"waiting_room": True, "join_before_host": True},
}

ROOT = Path(__file__).resolve().parent.parent
received_webhooks = []


@csrf_exempt
def _record_webhook(request):
    received_webhooks.append({"body": request.body, "headers": request.headers})
    return HttpResponse(status=204)


urlpatterns = [
    path("sandbox/zoom/", include("integrations.sandbox.urls.zoom")),
    path("hooks/zoom/", _record_webhook),
]

pytestmark = pytest.mark.urls(__name__)


@pytest.fixture(autouse=True)
def sandbox(settings):
    settings.PROVIDER_SANDBOX = True
    settings.ZOOM_CLIENT_ID = CLIENT_ID
    settings.ZOOM_CLIENT_SECRET = CLIENT_SECRET
    settings.ZOOM_WEBHOOK_SECRET_TOKEN = WEBHOOK_SECRET
    settings.ZOOM_SANDBOX_WEBHOOK_URL = None
    settings.ZOOM_SCOPES = "meeting:write user:read"
    settings.CSRF_COOKIE_SECURE = False  # the live server speaks plain HTTP
    settings.SITE_URL = "http://app.example.test"  # whose callback is the app's registered redirect URI
    zoom.reset()
    received_webhooks.clear()
    yield
    zoom.reset()


@pytest.fixture
def base(live_server):
    return live_server.url + "/sandbox/zoom"


@pytest.fixture
def hook_url(live_server):
    return live_server.url + "/hooks/zoom/"


# --- Helpers -----------------------------------------------------------------------------------


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
    return verifier, challenge


def consent(base, *, decision="allow", email=EMAIL, challenge=None, state="state-123", client_id=CLIENT_ID):
    """Open the consent page and press a button, as a person would; the sandbox's redirect response."""
    session = requests.Session()
    params = {"response_type": "code", "client_id": client_id, "redirect_uri": REDIRECT_URI, "state": state}
    if challenge:
        params.update(code_challenge=challenge, code_challenge_method="S256")
    page = session.get(f"{base}/oauth/authorize", params=params)
    assert page.status_code == 200, page.text
    csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
    form = {"csrfmiddlewaretoken": csrf, "email": email, "decision": decision}
    return session.post(page.url, data=form, allow_redirects=False)


def redirect_query(response) -> dict:
    assert response.status_code == 302
    location = response.headers["Location"]
    assert location.startswith("http://app.example.test/integrations/zoom/callback/?")
    return {key: values[0] for key, values in parse_qs(urlsplit(location).query).items()}


def exchange(base, code, *, verifier=None, redirect_uri=REDIRECT_URI, auth=BASIC):
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri}
    if verifier:
        data["code_verifier"] = verifier
    return requests.post(f"{base}/oauth/token", data=data, auth=auth)


def refresh(base, refresh_token, auth=BASIC):
    return requests.post(
        f"{base}/oauth/token", data={"grant_type": "refresh_token", "refresh_token": refresh_token}, auth=auth
    )


def connect(base, email=EMAIL) -> dict:
    """The whole code flow with PKCE: the token response's JSON."""
    verifier, challenge = pkce_pair()
    code = redirect_query(consent(base, email=email, challenge=challenge))["code"]
    response = exchange(base, code, verifier=verifier)
    assert response.status_code == 200, response.text
    return response.json()


def api(base, method, path, token, **kwargs):
    return requests.request(method, f"{base}/v2{path}", headers={"Authorization": f"Bearer {token}"}, **kwargs)


def create_meeting(base, token, **changes):
    return api(base, "POST", "/users/me/meetings", token, json={**MEETING, **changes})


def inject(base, **failure):
    response = requests.post(f"{base}/control/fail", json=failure)
    assert response.status_code == 200, response.text


def expected_signature(timestamp: str, body: bytes) -> str:
    message = b"v0:" + timestamp.encode() + b":" + body
    return "v0=" + hmac.new(WEBHOOK_SECRET.encode(), message, hashlib.sha256).hexdigest()


# --- OAuth: authorize --------------------------------------------------------------------------


def test_consent_page_says_it_is_the_local_fake_and_lists_the_scopes(base):
    params = {"response_type": "code", "client_id": CLIENT_ID, "redirect_uri": REDIRECT_URI, "state": "s"}
    page = requests.get(f"{base}/oauth/authorize", params=params)

    assert page.status_code == 200
    assert "Zoom sandbox (local fake)" in page.text
    assert "meeting:write" in page.text and "user:read" in page.text
    assert 'value="zoom.user@example.com"' in page.text
    assert ">Allow<" in page.text and ">Deny<" in page.text


@pytest.mark.parametrize(
    "changes", [{"client_id": "someone-else"}, {"response_type": "token"}, {"redirect_uri": "javascript:alert(1)"}]
)
def test_authorize_refuses_an_unknown_client_or_a_bad_request(base, changes):
    params = {"response_type": "code", "client_id": CLIENT_ID, "redirect_uri": REDIRECT_URI, **changes}
    page = requests.get(f"{base}/oauth/authorize", params=params)

    assert page.status_code == 400
    assert "not valid" in page.text


def test_deny_sends_the_person_back_with_access_denied(base):
    query = redirect_query(consent(base, decision="deny"))

    assert query == {"from": "zoom", "error": "access_denied", "state": "state-123"}


# --- OAuth: code exchange ----------------------------------------------------------------------


def test_the_code_flow_with_pkce_gives_tokens_for_the_chosen_user(base):
    verifier, challenge = pkce_pair()
    query = redirect_query(consent(base, challenge=challenge))
    assert query["from"] == "zoom" and query["state"] == "state-123"

    response = exchange(base, query["code"], verifier=verifier)

    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "bearer" and body["expires_in"] == 3599
    assert body["scope"] == "meeting:write user:read"
    assert body["api_url"] == base
    assert body["access_token"] and body["refresh_token"]
    me = api(base, "GET", "/users/me", body["access_token"]).json()
    assert me["email"] == EMAIL


def test_a_wrong_pkce_verifier_is_an_invalid_grant(base):
    _, challenge = pkce_pair()
    code = redirect_query(consent(base, challenge=challenge))["code"]

    response = exchange(base, code, verifier="not-the-verifier-" + "x" * 40)

    assert response.status_code == 400
    assert response.json() == {"reason": "Invalid authorization code", "error": "invalid_grant"}


def test_a_code_works_once(base):
    code = redirect_query(consent(base))["code"]
    assert exchange(base, code).status_code == 200

    again = exchange(base, code)

    assert again.status_code == 400
    assert again.json() == {"reason": "Invalid authorization code", "error": "invalid_grant"}


def test_a_code_expires_after_five_minutes(base):
    code = redirect_query(consent(base))["code"]
    zoom.advance_clock(301)

    response = exchange(base, code)

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


def test_the_redirect_uri_must_be_the_one_of_the_authorization(base):
    code = redirect_query(consent(base))["code"]

    response = exchange(base, code, redirect_uri="http://app.example.test/elsewhere/")

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


def test_missing_parameters_are_a_bad_request(base):
    response = requests.post(f"{base}/oauth/token", data={"grant_type": "authorization_code"}, auth=BASIC)

    assert response.status_code == 400
    assert response.json() == {"reason": "Bad request", "error": "invalid_request"}


@pytest.mark.parametrize(
    "how",
    [
        {"auth": (CLIENT_ID, "wrong-secret")},
        {"auth": ("wrong-client", CLIENT_SECRET)},
        {"headers": {"Authorization": "Basic not-base64!"}},
        # Zoom takes client credentials from the Basic header only, never from the body.
        {"data": {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}},
    ],
)
def test_client_authentication_is_basic_auth_with_the_configured_credentials(base, how):
    data = {"grant_type": "authorization_code", "code": "x", "redirect_uri": REDIRECT_URI, **how.pop("data", {})}

    response = requests.post(f"{base}/oauth/token", data=data, **how)

    assert response.status_code == 401
    assert response.json() == {"reason": "Invalid client_id or client_secret", "error": "invalid_client"}


# --- OAuth: refresh, re-authorization, revoke --------------------------------------------------


def test_refreshing_rotates_the_refresh_token(base):
    first = connect(base)

    second = refresh(base, first["refresh_token"])

    assert second.status_code == 200
    new = second.json()
    assert new["access_token"] != first["access_token"] and new["refresh_token"] != first["refresh_token"]
    reused = refresh(base, first["refresh_token"])
    assert reused.status_code == 400
    assert reused.json() == {"reason": "Invalid Token!", "error": "invalid_grant"}
    assert refresh(base, new["refresh_token"]).status_code == 200
    # The old access token keeps working until it expires, as at Zoom.
    assert api(base, "GET", "/users/me", first["access_token"]).status_code == 200


def test_a_new_authorization_revokes_the_users_earlier_tokens(base):
    old = connect(base)

    new = connect(base)

    assert api(base, "GET", "/users/me", old["access_token"]).json()["code"] == 124
    assert refresh(base, old["refresh_token"]).json()["error"] == "invalid_grant"
    assert api(base, "GET", "/users/me", new["access_token"]).status_code == 200


def test_revoke_ends_all_tokens_of_the_user(base):
    tokens = connect(base)

    response = requests.post(f"{base}/oauth/revoke", data={"token": tokens["access_token"]}, auth=BASIC)

    assert response.status_code == 200
    assert response.json() == {"status": "success"}
    assert api(base, "GET", "/users/me", tokens["access_token"]).status_code == 401
    assert refresh(base, tokens["refresh_token"]).status_code == 400
    again = requests.post(f"{base}/oauth/revoke", data={"token": tokens["access_token"]}, auth=BASIC)
    assert again.status_code == 400
    assert again.json() == {"reason": "Invalid Token!", "error": "invalid_request"}


def test_revoke_delivers_app_deauthorized_when_a_webhook_url_is_configured(base, hook_url, settings):
    settings.ZOOM_SANDBOX_WEBHOOK_URL = hook_url
    tokens = connect(base)
    user_id = api(base, "GET", "/users/me", tokens["access_token"]).json()["id"]

    requests.post(f"{base}/oauth/revoke", data={"token": tokens["access_token"]}, auth=BASIC)

    deadline = time.monotonic() + 5
    while not received_webhooks and time.monotonic() < deadline:
        time.sleep(0.05)  # delivered from a background thread
    assert len(received_webhooks) == 1
    assert b'"app_deauthorized"' in received_webhooks[0]["body"] and user_id.encode() in received_webhooks[0]["body"]


# --- REST: authentication ----------------------------------------------------------------------


def test_users_me_describes_the_sandbox_user(base):
    tokens = connect(base, email="Dana.Host@Example.com")

    me = api(base, "GET", "/users/me", tokens["access_token"]).json()

    assert me["email"] == "dana.host@example.com"
    assert (me["first_name"], me["last_name"], me["display_name"]) == ("Dana", "Host", "Dana Host")
    assert me["type"] == 1 and me["status"] == "active" and me["timezone"] == "UTC"
    assert len(str(me["pmi"])) == 10 and me["id"] and me["account_id"]
    assert me["id"] == zoom.get_or_create_user(EMAIL)["id"]  # one user per email


def test_a_token_in_the_query_string_is_rejected_even_when_valid(base):
    tokens = connect(base)

    response = requests.get(f"{base}/v2/users/me", params={"access_token": tokens["access_token"]})

    assert response.status_code == 401
    assert response.json() == {"code": 124, "message": "Invalid access token."}


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer not-a-token"}, {"Authorization": "Basic abc"}])
def test_a_missing_or_unknown_token_is_invalid(base, headers):
    response = requests.get(f"{base}/v2/users/me", headers=headers)

    assert response.status_code == 401
    assert response.json() == {"code": 124, "message": "Invalid access token."}


def test_an_access_token_expires_after_3599_seconds(base):
    tokens = connect(base)
    zoom.advance_clock(3598)
    assert api(base, "GET", "/users/me", tokens["access_token"]).status_code == 200
    zoom.advance_clock(2)

    response = api(base, "GET", "/users/me", tokens["access_token"])

    assert response.status_code == 401
    assert response.json() == {"code": 124, "message": "Access token has expired."}
    assert refresh(base, tokens["refresh_token"]).status_code == 200


def test_control_expire_tokens_expires_access_tokens_at_once(base):
    tokens = connect(base)

    assert requests.post(f"{base}/control/expire-tokens", json={"email": EMAIL}).json() == {"changed_tokens": 1}

    assert api(base, "GET", "/users/me", tokens["access_token"]).json()["message"] == "Access token has expired."


def test_creating_a_meeting_needs_a_meeting_write_scope(base):
    tokens = zoom.issue_tokens(EMAIL, scope="user:read")

    response = create_meeting(base, tokens["access_token"])

    assert response.status_code == 400
    assert response.json() == {
        "code": 4711,
        "message": "Invalid access token, does not contain scopes:[meeting:write:meeting].",
    }


# --- REST: meetings ----------------------------------------------------------------------------


def test_creating_a_meeting_answers_201_with_an_int64_id_and_a_join_url(base):
    tokens = connect(base)

    response = create_meeting(base, tokens["access_token"])

    assert response.status_code == 201
    meeting = response.json()
    assert isinstance(meeting["id"], int) and meeting["id"] > 2**32
    assert meeting["join_url"] == f"https://zoom.sandbox.invalid/j/{meeting['id']}?pwd={meeting['encrypted_password']}"
    assert re.fullmatch(r"\d{6}", meeting["password"])
    assert meeting["start_time"] == "2030-05-01T09:30:00Z" and meeting["duration"] == 30
    assert meeting["host_email"] == EMAIL and meeting["type"] == 2 and meeting["uuid"]
    assert meeting["settings"]["waiting_room"] is True
    assert meeting["settings"]["join_before_host"] is False  # a waiting room disables it
    assert api(base, "GET", f"/meetings/{meeting['id']}", tokens["access_token"]).json() == meeting


def test_a_local_start_time_is_read_in_the_given_timezone(base):
    tokens = connect(base)

    meeting = create_meeting(base, tokens["access_token"], start_time="2030-05-01T09:30:00").json()

    assert meeting["start_time"] == "2030-05-01T07:30:00Z"  # Berlin is UTC+2 in May


def test_invalid_meetings_fail_validation_field_by_field(base):
    tokens = connect(base)
    bad = {"type": 1, "start_time": "tomorrow", "duration": 0, "topic": "x" * 201, "agenda": "y" * 2001}

    response = create_meeting(base, tokens["access_token"], **bad)

    assert response.status_code == 400
    body = response.json()
    assert (body["code"], body["message"]) == (300, "Validation Failed.")
    assert {error["field"] for error in body["errors"]} == {"type", "start_time", "duration", "topic", "agenda"}


def test_a_local_start_time_without_timezone_fails_validation(base):
    tokens = connect(base)
    meeting = {key: value for key, value in MEETING.items() if key != "timezone"}
    meeting["start_time"] = "2030-05-01T09:30:00"

    response = api(base, "POST", "/users/me/meetings", tokens["access_token"], json=meeting)

    assert response.status_code == 400
    assert [error["field"] for error in response.json()["errors"]] == ["start_time"]


def test_updating_a_meeting_answers_204_and_applies_the_changes(base):
    tokens = connect(base)
    meeting_id = create_meeting(base, tokens["access_token"]).json()["id"]
    changes = {"topic": "Moved call", "start_time": "2030-05-02T10:00:00Z", "duration": 45, "agenda": "New agenda"}

    response = api(base, "PATCH", f"/meetings/{meeting_id}", tokens["access_token"], json=changes)

    assert response.status_code == 204
    assert response.content == b""
    meeting = zoom.get_meeting(meeting_id)
    assert {key: meeting[key] for key in changes} == changes


def test_listing_upcoming_meetings_pages_with_a_token_and_shortens_agendas(base):
    token = zoom.issue_tokens(EMAIL)["access_token"]  # classic meeting:write: "view and manage"
    for day in range(1, 36):
        assert create_meeting(base, token, start_time=f"2030-05-{day % 28 + 1:02d}T09:{day:02d}:00Z").status_code == 201
    assert create_meeting(base, token, start_time="2020-01-01T09:00:00Z", agenda="x" * 600).status_code == 201  # over

    first = api(base, "GET", "/users/me/meetings", token, params={"type": "upcoming", "page_size": 30})
    assert first.status_code == 200
    body = first.json()
    assert body["total_records"] == 35 and body["page_size"] == 30 and len(body["meetings"]) == 30
    assert body["next_page_token"]
    page_two = {"type": "upcoming", "next_page_token": body["next_page_token"]}
    second = api(base, "GET", "/users/me/meetings", token, params=page_two).json()
    assert len(second["meetings"]) == 5 and second["next_page_token"] == ""
    ids = [m["id"] for m in body["meetings"] + second["meetings"]]
    assert len(set(ids)) == 35
    every = api(base, "GET", "/users/me/meetings", token, params={"type": "scheduled", "page_size": 300}).json()
    assert every["total_records"] == 36
    assert max(len(m["agenda"]) for m in every["meetings"]) == 250  # lists shorten agendas
    assert set(every["meetings"][0]) >= {"id", "uuid", "host_id", "topic", "start_time", "join_url", "agenda"}


def test_listing_meetings_needs_a_scope_that_grants_it_and_a_valid_page_token(base):
    granular = zoom.issue_tokens(EMAIL, scope="meeting:write:meeting")["access_token"]
    refused = api(base, "GET", "/users/me/meetings", granular, params={"type": "upcoming"})
    assert refused.status_code == 400 and refused.json()["code"] == 4711
    token = zoom.issue_tokens(EMAIL)["access_token"]
    for params in ({"type": "everything"}, {"page_size": 301}, {"next_page_token": "forged"}):
        answer = api(base, "GET", "/users/me/meetings", token, params=params)
        assert answer.status_code == 400 and answer.json()["code"] == 300


def test_deleting_a_meeting_answers_204_then_404_code_3001(base):
    tokens = connect(base)
    meeting_id = create_meeting(base, tokens["access_token"]).json()["id"]

    deleted = api(base, "DELETE", f"/meetings/{meeting_id}", tokens["access_token"])
    again = api(base, "DELETE", f"/meetings/{meeting_id}", tokens["access_token"])
    patched = api(base, "PATCH", f"/meetings/{meeting_id}", tokens["access_token"], json={"topic": "x"})

    assert deleted.status_code == 204 and deleted.content == b""
    assert again.status_code == 404
    assert again.json() == {"code": 3001, "message": f"Meeting does not exist: {meeting_id}."}
    assert patched.status_code == 404 and patched.json()["code"] == 3001


def test_another_users_meeting_does_not_exist_for_you(base):
    host = connect(base)
    meeting_id = create_meeting(base, host["access_token"]).json()["id"]
    other = connect(base, email="someone.else@example.com")

    for method in ("GET", "PATCH", "DELETE"):
        response = api(base, method, f"/meetings/{meeting_id}", other["access_token"], json={"topic": "mine now"})
        assert response.status_code == 404
        assert response.json()["code"] == 3001
    assert zoom.get_meeting(meeting_id)["topic"] == MEETING["topic"]


def test_a_user_may_create_or_update_100_meetings_a_day(base):
    tokens = connect(base)
    with requests.Session() as session:
        session.headers["Authorization"] = f"Bearer {tokens['access_token']}"
        statuses = {session.post(f"{base}/v2/users/me/meetings", json=MEETING).status_code for _ in range(100)}
        over = session.post(f"{base}/v2/users/me/meetings", json=MEETING)

    assert statuses == {201}
    assert over.status_code == 429
    assert over.json() == {
        "code": 429,
        "message": "You have exceeded the daily rate limit (100) of Meeting Create/Update API requests "
        "permitted for this particular user.",
    }
    zoom.advance_clock(86400)  # the limit resets at 00:00 UTC
    assert create_meeting(base, zoom.issue_tokens(EMAIL)["access_token"]).status_code == 201


# --- Failure injection -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "retry_after",
    ["1", format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)],
    ids=["seconds", "date"],
)
def test_an_injected_429_carries_retry_after_and_then_the_call_succeeds(base, retry_after):
    tokens = connect(base)
    inject(base, path_contains="/users/me/meetings", method="POST", status=429, times=2, retry_after=retry_after)

    first, second, third = (create_meeting(base, tokens["access_token"]) for _ in range(3))

    for response in (first, second):
        assert response.status_code == 429
        assert response.headers["Retry-After"] == retry_after
        assert response.json()["code"] == 429
    assert third.status_code == 201
    assert requests.get(f"{base}/control/state").json()["users"][0]["meetings"] == 1


def test_an_injected_failure_can_have_a_non_json_body(base):
    tokens = connect(base)
    inject(base, path_contains="/users/me", status=500, raw_body="<html><body>Bad gateway</body></html>")

    response = api(base, "GET", "/users/me", tokens["access_token"])

    assert response.status_code == 500
    assert response.headers["Content-Type"].startswith("text/html")
    with pytest.raises(ValueError):
        response.json()
    assert api(base, "GET", "/users/me", tokens["access_token"]).status_code == 200


def test_an_injected_failure_can_carry_a_json_body_and_hit_the_token_endpoint(base):
    tokens = connect(base)
    body = {"reason": "Internal Error", "error": "server_error"}
    inject(base, path_contains="/oauth/token", status=503, body=body)

    response = refresh(base, tokens["refresh_token"])

    assert (response.status_code, response.json()) == (503, body)
    assert refresh(base, tokens["refresh_token"]).status_code == 200  # the failed call changed nothing


def test_an_injected_delay_without_status_is_slow_but_still_does_the_work(base):
    tokens = connect(base)
    inject(base, path_contains="/users/me/meetings", method="POST", delay_seconds=1.0)

    with pytest.raises(requests.exceptions.ReadTimeout):
        api(base, "POST", "/users/me/meetings", tokens["access_token"], json=MEETING, timeout=(3, 0.3))

    deadline = time.monotonic() + 5
    while not zoom.state_summary()["meetings"] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(zoom.state_summary()["meetings"]) == 1


def test_control_fail_refuses_nonsense(base):
    response = requests.post(f"{base}/control/fail", json={"path_contains": "/users/me", "status": 42})

    assert response.status_code == 400


# --- Deauthorization and control ---------------------------------------------------------------


def test_deauthorize_revokes_tokens_and_delivers_a_correctly_signed_webhook(base, hook_url, settings):
    settings.ZOOM_SANDBOX_WEBHOOK_URL = hook_url
    tokens = connect(base)
    me = api(base, "GET", "/users/me", tokens["access_token"]).json()

    response = requests.post(f"{base}/control/deauthorize", json={"email": EMAIL})

    assert response.status_code == 200
    assert response.json()["webhook_status"] == 204
    assert api(base, "GET", "/users/me", tokens["access_token"]).status_code == 401
    [delivery] = received_webhooks
    headers, raw_body = delivery["headers"], delivery["body"]
    timestamp = headers["x-zm-request-timestamp"]
    assert abs(int(timestamp) - time.time()) < 60
    assert hmac.compare_digest(headers["x-zm-signature"], expected_signature(timestamp, raw_body))
    assert headers["Content-Type"] == "application/json"
    event = json.loads(raw_body)
    assert event["event"] == "app_deauthorized" and isinstance(event["event_ts"], int)
    payload = event["payload"]
    assert (payload["user_id"], payload["account_id"], payload["client_id"]) == (me["id"], me["account_id"], CLIENT_ID)
    assert payload["deauthorization_time"].endswith("Z") and re.fullmatch(r"[0-9a-f]{64}", payload["signature"])


def test_deauthorize_of_an_unknown_user_is_404(base, hook_url, settings):
    settings.ZOOM_SANDBOX_WEBHOOK_URL = hook_url
    response = requests.post(f"{base}/control/deauthorize", json={"email": "nobody@example.com"})

    assert response.status_code == 404
    assert received_webhooks == []


def test_deliver_deauthorization_helper_sends_the_same_event_again(base, hook_url):
    zoom.get_or_create_user(EMAIL)

    assert zoom.deliver_deauthorization(EMAIL, hook_url) == 204
    assert zoom.deliver_deauthorization(EMAIL, hook_url) == 204  # what a Zoom retry looks like

    assert len(received_webhooks) == 2


def test_the_control_page_has_a_remove_app_button_per_user(base, hook_url, settings):
    settings.ZOOM_SANDBOX_WEBHOOK_URL = hook_url
    tokens = connect(base)
    session = requests.Session()
    page = session.get(f"{base}/control/")
    assert page.status_code == 200 and EMAIL in page.text and "Remove app (send app_deauthorized)" in page.text
    csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)

    response = session.post(f"{base}/control/remove-app", data={"csrfmiddlewaretoken": csrf, "email": EMAIL})

    assert response.status_code == 200  # back on the control page
    assert "app_deauthorized delivered: HTTP 204" in response.text
    assert len(received_webhooks) == 1
    assert api(base, "GET", "/users/me", tokens["access_token"]).status_code == 401


def test_control_state_summarizes_without_exposing_tokens(base):
    tokens = connect(base)
    create_meeting(base, tokens["access_token"])

    response = requests.get(f"{base}/control/state")

    state = response.json()
    assert state["users"][0]["email"] == EMAIL and state["users"][0]["meetings"] == 1
    assert state["users"][0]["live_access_tokens"] == 1 and state["users"][0]["refresh_tokens"] == 1
    assert len(state["meetings"]) == 1 and state["meetings"][0]["id"] > 2**32
    assert tokens["access_token"] not in response.text and tokens["refresh_token"] not in response.text
    assert {token["prefix"] for token in state["tokens"]} == {tokens["access_token"][:4], tokens["refresh_token"][:4]}


def test_control_reset_forgets_everything(base):
    tokens = connect(base)

    assert requests.post(f"{base}/control/reset").status_code == 200

    assert api(base, "GET", "/users/me", tokens["access_token"]).status_code == 401
    assert requests.get(f"{base}/control/state").json()["users"] == []


def test_unknown_api_paths_answer_json_404(base):
    response = requests.get(f"{base}/v2/users/me/recordings")

    assert response.status_code == 404
    assert response.json()["code"] == 404


# --- Who may use it: the security review's findings ----------------------------------------------

FROM_ELSEWHERE = {"REMOTE_ADDR": "203.0.113.9"}


@pytest.mark.django_db
@pytest.mark.parametrize(
    "method, path",
    [
        ("post", "/sandbox/zoom/control/reset"),
        ("post", "/sandbox/zoom/control/fail"),
        ("post", "/sandbox/zoom/control/expire-tokens"),
        ("post", "/sandbox/zoom/control/deauthorize"),
        ("get", "/sandbox/zoom/control/state"),
        ("get", "/sandbox/zoom/control/"),
        ("post", "/sandbox/zoom/control/remove-app"),
    ],
)
def test_the_controls_refuse_anonymous_callers_from_the_network(client, method, path):
    zoom.inject_failure("/users/me", status=503)

    response = getattr(client, method)(path, data={}, content_type="application/json", **FROM_ELSEWHERE)

    assert response.status_code == 403
    assert zoom.state_summary()["failures"]  # nothing was reset


@pytest.mark.django_db
def test_the_controls_refuse_a_loopback_request_relayed_by_a_proxy(client):
    response = client.get("/sandbox/zoom/control/state", HTTP_X_FORWARDED_FOR="203.0.113.9")

    assert response.status_code == 403


@pytest.mark.django_db
def test_the_controls_refuse_a_cross_site_post_from_a_browser_on_this_machine(client):
    zoom.inject_failure("/users/me", status=503)

    response = client.post("/sandbox/zoom/control/reset", HTTP_ORIGIN="https://attacker.example")

    assert response.status_code == 403
    assert zoom.state_summary()["failures"]


@pytest.mark.django_db
def test_a_signed_in_admin_may_use_the_controls_from_anywhere_but_a_member_may_not(client, admin, member):
    client.force_login(member.user)
    assert client.get("/sandbox/zoom/control/state", **FROM_ELSEWHERE).status_code == 403

    client.force_login(admin.user)
    assert client.get("/sandbox/zoom/control/state", **FROM_ELSEWHERE).status_code == 200


def test_deauthorize_delivers_only_to_the_configured_webhook_never_to_a_url_from_the_request(base, hook_url, settings):
    settings.ZOOM_SANDBOX_WEBHOOK_URL = None
    connect(base)

    response = requests.post(f"{base}/control/deauthorize", json={"email": EMAIL, "webhook_url": hook_url})

    assert response.status_code == 400 and "webhook_url" in response.json()["message"]
    assert received_webhooks == []
    assert zoom.state_summary()["users"][0]["live_access_tokens"] == 1  # nothing was done


@pytest.mark.parametrize(
    "redirect_uri",
    [
        "https://attacker.example/integrations/zoom/callback/",
        "http://app.example.test/elsewhere/",
        "http://app.example.test.attacker.example/integrations/zoom/callback/",
    ],
)
def test_authorize_sends_codes_only_to_the_registered_callback(base, redirect_uri):
    params = {"response_type": "code", "client_id": CLIENT_ID, "redirect_uri": redirect_uri, "state": "s"}

    page = requests.get(f"{base}/oauth/authorize", params=params)

    assert page.status_code == 400
    assert "redirect_uri" in page.text and "csrfmiddlewaretoken" not in page.text


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="the state is shared across processes through Redis")
def test_every_process_of_the_site_sees_the_same_zoom(tmp_path, settings):
    """Under gunicorn with several workers, a token issued by one worker works on every other."""
    port = _free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith(("DATABASE_URL", "CELERY_"))}
    env.update(
        DEBUG="1",
        PROVIDER_SANDBOX="1",
        DATABASE_URL=f"sqlite:///{tmp_path / 'empty.sqlite3'}",
        PORT=str(port),
        ZOOM_CLIENT_ID=CLIENT_ID,
        ZOOM_CLIENT_SECRET=CLIENT_SECRET,
    )
    command = [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "--workers", "3", "tsp.wsgi:application"]
    server = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        base = f"http://127.0.0.1:{port}/sandbox/zoom"
        deadline = time.monotonic() + 30
        while True:
            try:
                requests.get(f"http://127.0.0.1:{port}/healthz", timeout=5)
                break
            except (requests.ConnectionError, requests.Timeout):  # not listening yet, or still loading the site
                assert server.poll() is None and time.monotonic() < deadline
                time.sleep(0.2)
        tokens = zoom.issue_tokens(EMAIL)  # this process (the test) issues them

        # Separate connections: gunicorn hands them to whichever worker is free.
        answers = [api(base, "POST", "/users/me/meetings", tokens["access_token"], json=MEETING) for _ in range(12)]

        assert [answer.status_code for answer in answers] == [201] * 12
        assert len(zoom.state_summary()["meetings"]) == 12  # and this process sees what the workers made
    finally:
        server.terminate()
        server.wait(timeout=20)
