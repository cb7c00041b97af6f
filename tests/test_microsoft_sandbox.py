"""The Microsoft fake of the provider sandbox (integrations/sandbox/microsoft.py), over real HTTP on
the live server, as the product's Microsoft client meets it: sign-in with PKCE, refresh tokens that
rotate, personal accounts that can't host Teams meetings, and Graph's online meetings."""

import base64
import hashlib
import json
import re
import secrets
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from integrations.base import CannotHostMeetings, MeetingRequest
from integrations.microsoft import client as microsoft_client
from integrations.sandbox import microsoft
from tests.provider_sandbox_helpers import MICROSOFT_CLIENT_ID, MICROSOFT_CLIENT_SECRET

EMAIL = "mika.host@contoso.example"
SCOPE = "openid email offline_access User.Read OnlineMeetings.ReadWrite"
CONSUMER_TENANT_ID = "9188040d-6c67-4c5b-b112-36a304b66dad"
MEETING = {"startDateTime": "2030-05-01T09:30:00Z", "endDateTime": "2030-05-01T10:00:00Z", "subject": "Intro call"}
TEAMS_LINK = re.compile(r"^https://teams\.sandbox\.invalid/l/meetup-join/19%3ameeting_[\w-]+%40thread\.v2/0$")


@pytest.fixture
def site(microsoft_sandbox):
    return microsoft_sandbox


@pytest.fixture
def base(site):
    return site + "/sandbox/microsoft"


# --- Helpers -----------------------------------------------------------------------------------


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
    return verifier, challenge


def callback(site) -> str:
    return site + "/integrations/microsoft/callback/"


def authorize_params(site, challenge, **changes) -> dict:
    params = {
        "response_type": "code",
        "client_id": MICROSOFT_CLIENT_ID,
        "redirect_uri": callback(site),
        "scope": SCOPE,
        "state": "state-456",
        "response_mode": "query",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    params.update(changes)
    return {key: value for key, value in params.items() if value is not None}


def authorize_url(site) -> str:
    return f"{site}/sandbox/microsoft/common/oauth2/v2.0/authorize"


def consent(site, *, decision="allow", email=EMAIL, personal=False, challenge="c" * 43, **changes):
    """Open the consent page, tick "personal account" if asked, and press a button."""
    session = requests.Session()
    page = session.get(authorize_url(site), params=authorize_params(site, challenge, **changes))
    assert page.status_code == 200, page.text
    csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
    form = {"csrfmiddlewaretoken": csrf, "email": email, "decision": decision}
    if personal:
        form["personal"] = "on"
    return session.post(page.url, data=form, allow_redirects=False)


def redirect_query(site, response) -> dict:
    assert response.status_code == 302, response.text
    location = response.headers["Location"]
    assert location.startswith(callback(site) + "?")
    return {key: values[0] for key, values in parse_qs(urlsplit(location).query).items()}


def token_request(base, **form):
    data = {"client_id": MICROSOFT_CLIENT_ID, "client_secret": MICROSOFT_CLIENT_SECRET, "scope": SCOPE, **form}
    return requests.post(f"{base}/common/oauth2/v2.0/token", data={k: v for k, v in data.items() if v is not None})


def exchange(base, site, code, verifier, **changes):
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": callback(site), "code_verifier": verifier}
    return token_request(base, **{**form, **changes})


def refresh(base, refresh_token):
    return token_request(base, grant_type="refresh_token", refresh_token=refresh_token)


def connect(site, base, email=EMAIL, personal=False, **changes) -> dict:
    verifier, challenge = pkce_pair()
    code = redirect_query(site, consent(site, email=email, personal=personal, challenge=challenge, **changes))["code"]
    response = exchange(base, site, code, verifier)
    assert response.status_code == 200, response.text
    return response.json()


def graph(base, method, path, token, **kwargs):
    return requests.request(method, f"{base}/v1.0{path}", headers={"Authorization": f"Bearer {token}"}, **kwargs)


def create(base, token, **changes):
    return graph(base, "POST", "/me/onlineMeetings", token, json={**MEETING, **changes})


def claims(id_token: str) -> dict:
    header, payload, signature = id_token.split(".")
    assert header and signature
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def graph_code(response) -> str:
    return response.json()["error"]["code"]


# --- Sign-in -----------------------------------------------------------------------------------


def test_the_consent_page_asks_whether_the_account_is_a_personal_one(site):
    page = requests.get(authorize_url(site), params=authorize_params(site, "c" * 43))

    assert page.status_code == 200
    assert "Microsoft sandbox (local fake)" in page.text and "OnlineMeetings.ReadWrite" in page.text
    assert "This is a personal Microsoft account (it can&#x27;t host Teams meetings)" in page.text
    assert 'type="checkbox" id="id_personal" name="personal"' in page.text


def test_deny_sends_access_denied_with_a_description_and_the_state(site):
    query = redirect_query(site, consent(site, decision="deny"))

    assert query["error"] == "access_denied" and query["state"] == "state-456"
    assert query["error_description"].startswith("AADSTS65004")


@pytest.mark.parametrize(
    "changes",
    [
        {"client_id": "00000000-0000-0000-0000-000000000000"},
        {"redirect_uri": "https://attacker.example/integrations/microsoft/callback/"},
        {"code_challenge": None, "code_challenge_method": None},  # PKCE is required
        {"code_challenge_method": "plain"},
        {"scope": None},
    ],
)
def test_the_consent_page_refuses_a_request_it_must_not_answer(site, changes):
    page = requests.get(authorize_url(site), params=authorize_params(site, "c" * 43, **changes))

    assert page.status_code == 400 and "not valid" in page.text


def test_a_work_account_gets_tokens_and_an_id_token_of_its_own_tenant(site, base):
    tokens = connect(site, base)

    assert tokens["token_type"] == "Bearer" and tokens["expires_in"] == 3599 and tokens["ext_expires_in"] == 3599
    assert tokens["scope"] == SCOPE and tokens["access_token"] and tokens["refresh_token"]
    token_claims = claims(tokens["id_token"])
    assert token_claims["tid"] != CONSUMER_TENANT_ID and token_claims["preferred_username"] == EMAIL
    me = graph(base, "GET", "/me", tokens["access_token"]).json()
    assert (me["mail"], me["userPrincipalName"], me["displayName"]) == (EMAIL, EMAIL, "Mika Host")
    assert me["id"] == token_claims["oid"] == microsoft.get_or_create_user(EMAIL)["id"]


def test_a_personal_account_carries_the_consumer_tenant_in_its_id_token(site, base):
    tokens = connect(site, base, email="mika@outlook.example", personal=True)

    assert claims(tokens["id_token"])["tid"] == CONSUMER_TENANT_ID
    assert microsoft.state_summary()["users"][0]["personal"] is True


def test_without_offline_access_there_is_no_refresh_token(site, base):
    tokens = connect(site, base, scope="openid email User.Read OnlineMeetings.ReadWrite")

    assert tokens["access_token"] and "refresh_token" not in tokens


def test_a_code_works_once_and_only_with_its_verifier(site, base):
    verifier, challenge = pkce_pair()
    code = redirect_query(site, consent(site, challenge=challenge))["code"]
    wrong = exchange(base, site, code, "not-the-verifier-" + "x" * 40)

    code = redirect_query(site, consent(site, challenge=challenge))["code"]
    first, again = exchange(base, site, code, verifier), exchange(base, site, code, verifier)

    assert wrong.status_code == 400 and wrong.json()["error"] == "invalid_grant"
    assert first.status_code == 200
    assert again.status_code == 400 and again.json()["error_codes"] == [70000]


def test_a_wrong_client_secret_is_invalid_client(site, base):
    response = token_request(base, grant_type="refresh_token", refresh_token="x", client_secret="wrong")

    assert response.status_code == 401 and response.json()["error"] == "invalid_client"


def test_a_refresh_rotates_the_refresh_token_and_spends_the_old_one(site, base):
    tokens = connect(site, base)

    rotated = refresh(base, tokens["refresh_token"])
    reused = refresh(base, tokens["refresh_token"])

    assert rotated.status_code == 200
    assert rotated.json()["refresh_token"] != tokens["refresh_token"]
    assert reused.status_code == 400
    body = reused.json()
    assert body["error"] == "invalid_grant" and body["error_codes"] == [70000]
    assert body["error_description"].startswith("AADSTS70000: ")
    assert refresh(base, rotated.json()["refresh_token"]).status_code == 200  # the newest one works
    [user] = microsoft.state_summary()["users"]
    assert (user["refresh_tokens_issued"], user["refresh_tokens_spent"], user["refresh_tokens"]) == (3, 2, 1)


def test_removing_the_app_ends_the_grant_and_there_is_no_revoke_endpoint(site, base):
    tokens = connect(site, base)
    assert requests.post(f"{base}/common/oauth2/v2.0/revoke", data={"token": tokens["access_token"]}).status_code == 404

    assert microsoft.revoke_grant(EMAIL) == 2

    assert refresh(base, tokens["refresh_token"]).json()["error"] == "invalid_grant"
    assert graph(base, "GET", "/me", tokens["access_token"]).status_code == 401


def test_an_expired_access_token_is_invalid_authentication_token(base):
    tokens = microsoft.issue_tokens(EMAIL)
    microsoft.advance_clock(3600)

    response = graph(base, "GET", "/me", tokens["access_token"])

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "InvalidAuthenticationToken"
    assert response.json()["error"]["message"] == "Access token has expired or is not yet valid."


# --- Graph: online meetings --------------------------------------------------------------------


def test_a_work_account_creates_a_teams_meeting(base):
    token = microsoft.issue_tokens(EMAIL)["access_token"]

    response = create(base, token)

    assert response.status_code == 201
    meeting = response.json()
    assert TEAMS_LINK.match(meeting["joinWebUrl"])
    assert meeting["startDateTime"].startswith("2030-05-01T09:30:00") and meeting["subject"] == "Intro call"
    assert meeting["endDateTime"].startswith("2030-05-01T10:00:00") and meeting["creationDateTime"]
    settings = meeting["joinMeetingIdSettings"]
    assert re.fullmatch(r"\d{13}", settings["joinMeetingId"]) and settings["passcode"]
    assert microsoft.get_meeting(meeting["id"])["joinWebUrl"] == meeting["joinWebUrl"]


def test_a_personal_account_is_refused_teams_meetings_with_403(base):
    token = microsoft.issue_tokens("mika@outlook.example", personal=True)["access_token"]

    response = create(base, token)

    assert response.status_code == 403 and graph_code(response) == "Forbidden"
    assert microsoft.state_summary()["meetings"] == []


def test_moving_a_meeting_needs_start_and_end_together(base):
    token = microsoft.issue_tokens(EMAIL)["access_token"]
    meeting = create(base, token).json()
    path = f"/me/onlineMeetings/{meeting['id']}"

    start_only = graph(base, "PATCH", path, token, json={"startDateTime": "2030-05-02T14:00:00Z"})
    moved = graph(
        base,
        "PATCH",
        path,
        token,
        json={"startDateTime": "2030-05-02T14:00:00Z", "endDateTime": "2030-05-02T14:45:00Z"},
    )

    assert start_only.status_code == 400 and graph_code(start_only) == "BadRequest"
    assert moved.status_code == 200
    assert moved.json()["startDateTime"].startswith("2030-05-02T14:00:00")
    assert moved.json()["joinWebUrl"] == meeting["joinWebUrl"]


def test_a_deleted_or_unknown_meeting_is_404(base):
    token = microsoft.issue_tokens(EMAIL)["access_token"]
    meeting = create(base, token).json()
    path = f"/me/onlineMeetings/{meeting['id']}"

    assert graph(base, "DELETE", path, token).status_code == 204
    for method in ("DELETE", "GET", "PATCH"):
        response = graph(base, method, path, token, json=MEETING)
        assert response.status_code == 404 and graph_code(response) == "NotFound"
    assert graph(base, "DELETE", "/me/onlineMeetings/unknown", token).status_code == 404


def test_another_users_meeting_is_as_unknown_as_a_deleted_one(base):
    meeting = create(base, microsoft.issue_tokens(EMAIL)["access_token"]).json()
    other = microsoft.issue_tokens("someone.else@contoso.example")["access_token"]

    response = graph(base, "DELETE", f"/me/onlineMeetings/{meeting['id']}", other)

    assert response.status_code == 404 and microsoft.get_meeting(meeting["id"]) is not None


def test_an_injected_429_carries_retry_after_and_graph_json(base):
    token = microsoft.issue_tokens(EMAIL)["access_token"]
    microsoft.inject_failure("/onlineMeetings", method="POST", status=429, retry_after=3)

    limited, then = create(base, token), create(base, token)

    assert limited.status_code == 429 and limited.headers["Retry-After"] == "3"
    assert graph_code(limited) == "TooManyRequests"
    assert then.status_code == 201 and len(microsoft.state_summary()["meetings"]) == 1


def test_the_state_summary_shows_meetings_and_no_tokens(site, base):
    tokens = connect(site, base)
    create(base, tokens["access_token"])

    response = requests.get(f"{base}/control/state")

    state = response.json()
    assert state["users"][0]["meetings"] == 1 and state["meetings"][0]["organizer_email"] == EMAIL
    assert tokens["access_token"] not in response.text and tokens["refresh_token"] not in response.text


def test_the_products_microsoft_client_meets_the_fake(microsoft_sandbox):
    work = microsoft.issue_tokens(EMAIL)
    personal = microsoft.issue_tokens("mika@outlook.example", personal=True)
    meeting = MeetingRequest(
        topic="Intro call",
        start=datetime(2030, 5, 1, 9, 30, tzinfo=UTC),
        duration_minutes=30,
        time_zone="Europe/Berlin",
        agenda="",
        request_id="booking-41-host-7",
    )

    created = microsoft_client.create_meeting(work["access_token"], meeting)
    microsoft_client.update_meeting(work["access_token"], created.meeting_id, meeting)
    microsoft_client.delete_meeting(work["access_token"], created.meeting_id)
    microsoft_client.delete_meeting(work["access_token"], created.meeting_id)  # 404: already done
    with pytest.raises(CannotHostMeetings):
        microsoft_client.create_meeting(personal["access_token"], meeting)

    assert TEAMS_LINK.match(created.join_url) and created.passcode
    assert microsoft_client.is_personal_account(personal["id_token"])
    assert not microsoft_client.is_personal_account(work["id_token"])
    assert microsoft_client.refresh(work["refresh_token"]).refresh_token != work["refresh_token"]
    assert microsoft.state_summary()["meetings"] == []
