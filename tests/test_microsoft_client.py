"""The Microsoft client, called directly, over real HTTP against the Microsoft fake: the identity
platform's tokens (rotating refresh tokens), Graph's /me and its Teams online meetings."""

import base64
import json
import secrets
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings

from integrations import http, oauth
from integrations.base import CannotHostMeetings, MeetingRequest, PermissionNotGranted, ProviderResponseError
from integrations.microsoft import client
from integrations.microsoft.provider import provider
from integrations.sandbox import microsoft

from .microsoft_helpers import consent, graph_api, sandbox_user, teams_meetings
from .zoom_helpers import query_of

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("microsoft_sandbox")]

WORK = "ada@contoso-school.example"
PERSONAL = "ada.private@outlook.example"
START = datetime(2030, 3, 4, 9, 30, tzinfo=UTC)


@pytest.fixture
def tokens() -> dict:
    return microsoft.issue_tokens(WORK)


@pytest.fixture
def access(tokens) -> str:
    return tokens["access_token"]


def request_for(start: datetime = START, minutes: int = 45, topic: str = "Intro call with Casey Client"):
    return MeetingRequest(
        topic=topic,
        start=start,
        duration_minutes=minutes,
        time_zone="Europe/Berlin",
        agenda="Booking b-1\nIntro call booked by Casey Client <casey@example.com>.",
        request_id="b-1-0",
        marker="Booking b-1",
    )


def redirect_uri() -> str:
    return settings.SITE_URL + "/integrations/microsoft/callback/"


def a_code(*, email: str = WORK, personal: bool = False) -> tuple[str, str]:
    """Go through Microsoft's consent page as our connect does: an authorization code and its verifier."""
    verifier = secrets.token_urlsafe(64)
    query = {
        **client.authorize_params(redirect_uri()),
        "state": secrets.token_urlsafe(16),
        "code_challenge": oauth.pkce_challenge(verifier),
        "code_challenge_method": "S256",
    }
    back = consent(f"{client.authorize_url()}?{urlencode(query)}", email=email, personal=personal)
    return query_of(back)["code"], verifier


def jwt_with(claims: dict) -> str:
    def part(data: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")

    return f"{part({'alg': 'none'})}.{part(claims)}.signature"


# --- The consent request -----------------------------------------------------------------------


def test_the_consent_request_is_identity_platform_v2_with_the_configured_scopes_and_an_account_choice():
    assert client.authorize_url() == settings.MICROSOFT_OAUTH_BASE_URL + "/oauth2/v2.0/authorize"
    assert client.authorize_params("https://tsp.example/integrations/microsoft/callback/") == {
        "response_type": "code",
        "client_id": settings.MICROSOFT_CLIENT_ID,
        "redirect_uri": "https://tsp.example/integrations/microsoft/callback/",
        "scope": f"{settings.MICROSOFT_SCOPES} {settings.MICROSOFT_CALENDAR_SCOPES}",
        "response_mode": "query",
        "prompt": "select_account",
    }
    assert "offline_access" in settings.MICROSOFT_SCOPES.split()  # else no refresh token


# --- Exchanging the code -----------------------------------------------------------------------


def test_a_code_is_exchanged_with_its_pkce_verifier_for_a_rotating_pair_once_only():
    code, verifier = a_code()

    tokens, personal = client.exchange_code(code=code, redirect_uri=redirect_uri(), verifier=verifier)

    assert tokens.access_token and tokens.refresh_token and tokens.expires_in > 3000
    assert "OnlineMeetings.ReadWrite" in tokens.scope
    assert personal is False
    assert graph_api("GET", "/me", tokens.access_token).status_code == 200
    with pytest.raises(http.PermanentHTTPError) as replayed:
        client.exchange_code(code=code, redirect_uri=redirect_uri(), verifier=verifier)
    assert replayed.value.status == 400 and replayed.value.provider_code == "invalid_grant"


def test_a_code_with_another_verifier_than_the_challenge_is_refused():
    code, _ = a_code()

    with pytest.raises(http.PermanentHTTPError) as refused:
        client.exchange_code(code=code, redirect_uri=redirect_uri(), verifier=secrets.token_urlsafe(64))

    assert refused.value.status == 400 and refused.value.provider_code == "invalid_grant"
    assert sandbox_user(WORK)["live_access_tokens"] == 0


def test_the_id_token_of_a_personal_account_says_so():
    code, verifier = a_code(email=PERSONAL, personal=True)

    tokens, personal = client.exchange_code(code=code, redirect_uri=redirect_uri(), verifier=verifier)

    assert personal is True and tokens.refresh_token


def test_a_grant_without_offline_access_is_unusable_for_us_not_stored(settings):
    settings.MICROSOFT_SCOPES = "openid email User.Read OnlineMeetings.ReadWrite"
    code, verifier = a_code()

    with pytest.raises(ProviderResponseError, match="refresh_token"):
        client.exchange_code(code=code, redirect_uri=redirect_uri(), verifier=verifier)


def test_a_grant_without_the_meetings_permission_is_refused_as_such(settings):
    settings.MICROSOFT_SCOPES = "openid email offline_access User.Read"
    code, verifier = a_code()

    with pytest.raises(PermissionNotGranted):
        client.exchange_code(code=code, redirect_uri=redirect_uri(), verifier=verifier)


@pytest.mark.parametrize(
    "scope",
    [
        "openid email offline_access User.Read OnlineMeetings.ReadWrite",
        "https://graph.microsoft.com/OnlineMeetings.ReadWrite https://graph.microsoft.com/User.Read",
        "onlinemeetings.readwrite",
        "",
    ],
    ids=["plain", "with-graph-prefix", "lower-case", "no-scope-list"],
)
def test_the_meetings_permission_is_recognised_however_microsoft_writes_the_granted_scopes(scope):
    code, verifier = a_code()
    answer = {"access_token": "a" * 40, "refresh_token": "r" * 40, "expires_in": 3599, "scope": scope}
    microsoft.inject_failure("/oauth2/v2.0/token", method="POST", status=200, body=answer)

    tokens, _ = client.exchange_code(code=code, redirect_uri=redirect_uri(), verifier=verifier)

    assert tokens.scope == scope


@pytest.mark.parametrize(
    "id_token, personal",
    [
        (jwt_with({"tid": client.CONSUMER_TENANT_ID}), True),
        (jwt_with({"tid": "72f988bf-86f1-41af-91ab-2d7cd011db47"}), False),
        (jwt_with({}), False),
        ("not-a-jwt", False),
        ("a.%%%.c", False),
        (None, False),
    ],
    ids=["consumer-tenant", "organization", "no-tid", "no-dots", "bad-base64", "none"],
)
def test_only_an_id_token_naming_the_consumer_tenant_is_a_personal_account(id_token, personal):
    assert client.is_personal_account(id_token) is personal


# --- Refresh: Microsoft's refresh tokens rotate -------------------------------------------------


def test_a_refresh_returns_a_new_pair_and_spends_the_old_refresh_token(tokens):
    fresh = client.refresh(tokens["refresh_token"])

    assert fresh.refresh_token and fresh.refresh_token != tokens["refresh_token"]
    assert fresh.access_token != tokens["access_token"]
    assert graph_api("GET", "/me", fresh.access_token).status_code == 200
    with pytest.raises(http.PermanentHTTPError) as spent:
        client.refresh(tokens["refresh_token"])
    assert spent.value.status == 400 and spent.value.provider_code == "invalid_grant"
    assert "AADSTS70000" in spent.value.body["error_description"]
    assert provider.is_broken_grant(spent.value)
    user = sandbox_user(WORK)
    assert (user["refresh_tokens_issued"], user["refresh_tokens_spent"], user["refresh_tokens"]) == (2, 1, 1)
    assert client.refresh(fresh.refresh_token).access_token  # the newest one works


def test_a_grant_the_member_removed_is_broken_but_our_wrong_client_secret_is_not(tokens, monkeypatch):
    # The app's secret was renewed in Microsoft Entra but not here: our mistake, not the member's.
    with monkeypatch.context() as renewed:
        renewed.setattr(type(microsoft.SANDBOX), "client_secret", property(lambda sandbox: "the-new-secret"))
        with pytest.raises(http.PermanentHTTPError) as wrong_secret:
            client.refresh(tokens["refresh_token"])
    assert wrong_secret.value.status == 401 and wrong_secret.value.provider_code == "invalid_client"
    assert not provider.is_broken_grant(wrong_secret.value)  # else every member's connection would break

    microsoft.revoke_grant(WORK)  # the member removed the app in their Microsoft account
    with pytest.raises(http.PermanentHTTPError) as removed:
        client.refresh(tokens["refresh_token"])
    assert removed.value.status == 400 and removed.value.provider_code == "invalid_grant"
    assert provider.is_broken_grant(removed.value)


def test_a_sign_in_the_organization_now_requires_interactively_is_a_broken_grant(tokens):
    microsoft.inject_failure(
        "/oauth2/v2.0/token",
        status=400,
        body={
            "error": "interaction_required",
            "error_description": "AADSTS50076: Due to a configuration change made by your administrator, "
            "you must use multi-factor authentication.",
            "error_codes": [50076],
        },
    )

    with pytest.raises(http.PermanentHTTPError) as refused:
        client.refresh(tokens["refresh_token"])

    assert refused.value.status == 400 and provider.is_broken_grant(refused.value)


def test_a_token_endpoint_that_is_down_is_retried_later_not_a_broken_grant(tokens):
    microsoft.inject_failure("/oauth2/v2.0/token", status=503, raw_body="<html>Service unavailable</html>")

    with pytest.raises(http.TransientHTTPError):
        client.refresh(tokens["refresh_token"])

    assert client.refresh(tokens["refresh_token"]).refresh_token  # the refresh token was not spent


def test_a_token_answer_without_an_access_token_is_refused_not_stored(tokens):
    microsoft.inject_failure("/oauth2/v2.0/token", status=200, body={"token_type": "Bearer", "expires_in": 3599})

    with pytest.raises(ProviderResponseError):
        client.refresh(tokens["refresh_token"])


# --- The account -------------------------------------------------------------------------------


def test_the_account_is_graphs_user_id_and_mail(access):
    account = client.get_account(access)

    me = microsoft.get_or_create_user(WORK)
    assert (account.user_id, account.email, account.can_host_meetings) == (me["id"], WORK, True)


def test_an_account_without_a_mail_address_shows_its_sign_in_name(access):
    microsoft.inject_failure(
        "/v1.0/me", method="GET", status=200, body={"id": "4b1a2c3d", "mail": None, "userPrincipalName": WORK}
    )

    assert client.get_account(access).email == WORK


def test_an_account_answer_without_an_id_is_unusable(access):
    microsoft.inject_failure("/v1.0/me", method="GET", status=200, body={"mail": WORK})

    with pytest.raises(ProviderResponseError):
        client.get_account(access)


# --- Creating the Teams meeting ----------------------------------------------------------------


def test_a_meeting_is_an_online_meeting_in_utc_with_its_link_passcode_and_dial_in_id(access):
    made = client.create_meeting(access, request_for())

    at_microsoft = microsoft.get_meeting(made.meeting_id)
    assert at_microsoft["subject"] == "Intro call with Casey Client"
    assert at_microsoft["startDateTime"].startswith("2030-03-04T09:30:00")
    assert at_microsoft["endDateTime"].startswith("2030-03-04T10:15:00")
    assert made.join_url == at_microsoft["joinWebUrl"] and made.join_url.startswith("https://")
    assert made.passcode == at_microsoft["joinMeetingIdSettings"]["passcode"] and made.passcode
    assert made.external_ref == at_microsoft["joinMeetingIdSettings"]["joinMeetingId"]
    assert [meeting["organizer_email"] for meeting in teams_meetings()] == [WORK]


def test_a_start_given_in_another_zone_is_sent_as_the_same_instant_in_utc(access):
    berlin_afternoon = datetime(2030, 7, 1, 15, 0, tzinfo=ZoneInfo("Europe/Berlin"))  # summer time: UTC+2

    made = client.create_meeting(access, request_for(start=berlin_afternoon))

    assert microsoft.get_meeting(made.meeting_id)["startDateTime"].startswith("2030-07-01T13:00:00")


def test_a_very_long_topic_is_cut_to_what_teams_takes(access):
    made = client.create_meeting(access, request_for(topic="Strategy " * 60))

    assert len(microsoft.get_meeting(made.meeting_id)["subject"]) == client.SUBJECT_LIMIT


def test_a_personal_account_cannot_host_and_nothing_is_made():
    access = microsoft.issue_tokens(PERSONAL, personal=True)["access_token"]

    with pytest.raises(CannotHostMeetings):
        client.create_meeting(access, request_for())

    assert teams_meetings() == []


def test_find_meeting_never_claims_a_meeting_graph_cannot_look_up(access):
    client.create_meeting(access, request_for())

    assert provider.find_meeting(access, request_for()) is None


# --- Answers to retry, to refuse, and not to crash on ----------------------------------------------


@pytest.mark.parametrize("retry_after, seconds", [("30", 30), ("120", 120)])
def test_429_is_retried_later_with_graphs_retry_after(access, retry_after, seconds):
    microsoft.inject_failure("/me/onlineMeetings", method="POST", status=429, retry_after=retry_after)

    with pytest.raises(http.TransientHTTPError) as throttled:
        client.create_meeting(access, request_for())

    assert throttled.value.status == 429 and throttled.value.retry_after == seconds
    assert throttled.value.provider_code == "TooManyRequests"
    assert teams_meetings() == []


def test_a_5xx_with_an_html_page_is_retried_later_without_a_crash(access):
    microsoft.inject_failure("/me/onlineMeetings", method="POST", status=502, raw_body="<html>Bad gateway</html>")

    with pytest.raises(http.TransientHTTPError) as failed:
        client.create_meeting(access, request_for())

    assert failed.value.status == 502 and failed.value.body is None


def test_an_expired_access_token_is_a_401_for_the_caller_to_refresh(access):
    microsoft.expire_access_tokens(WORK)

    with pytest.raises(http.PermanentHTTPError) as expired:
        client.create_meeting(access, request_for())

    assert expired.value.status == 401 and expired.value.provider_code == "InvalidAuthenticationToken"


def test_a_meeting_answer_without_a_join_link_is_unusable(access):
    microsoft.inject_failure("/me/onlineMeetings", method="POST", status=201, body={"id": "MSo1", "joinWebUrl": None})

    with pytest.raises(ProviderResponseError):
        client.create_meeting(access, request_for())


def test_a_meeting_answer_with_a_link_that_is_not_https_is_unusable(access):
    microsoft.inject_failure(
        "/me/onlineMeetings", method="POST", status=201, body={"id": "MSo1", "joinWebUrl": "javascript:alert(1)"}
    )

    with pytest.raises(ProviderResponseError):
        client.create_meeting(access, request_for())


def test_a_meeting_without_passcode_settings_has_an_empty_passcode(access):
    link = microsoft.TEAMS_HOST + "/l/meetup-join/19%3ameeting_x%40thread.v2/0"
    microsoft.inject_failure(
        "/me/onlineMeetings",
        method="POST",
        status=201,
        body={"id": "MSo1", "joinWebUrl": link, "joinMeetingIdSettings": None},
    )

    made = client.create_meeting(access, request_for())

    assert (made.meeting_id, made.join_url, made.passcode, made.external_ref) == ("MSo1", link, "", "")


# --- Moving and deleting -----------------------------------------------------------------------


def test_moving_patches_start_and_end_together_and_the_link_stays(access):
    made = client.create_meeting(access, request_for())

    client.update_meeting(access, made.meeting_id, request_for(start=START + timedelta(days=2, hours=3), minutes=60))

    moved = microsoft.get_meeting(made.meeting_id)
    assert moved["startDateTime"].startswith("2030-03-06T12:30:00")
    assert moved["endDateTime"].startswith("2030-03-06T13:30:00")
    assert moved["joinWebUrl"] == made.join_url
    assert len(teams_meetings()) == 1


def test_moving_a_meeting_that_is_gone_is_a_refusal_for_the_caller(access):
    made = client.create_meeting(access, request_for())
    client.delete_meeting(access, made.meeting_id)

    with pytest.raises(http.PermanentHTTPError) as gone:
        client.update_meeting(access, made.meeting_id, request_for())

    assert gone.value.status == 404 and gone.value.provider_code == "NotFound"


def test_deleting_removes_the_meeting_and_again_or_unknown_counts_as_done(access):
    made = client.create_meeting(access, request_for())

    client.delete_meeting(access, made.meeting_id)
    assert microsoft.get_meeting(made.meeting_id) is None
    client.delete_meeting(access, made.meeting_id)  # 404: already gone
    client.delete_meeting(access, "MSpub3Qtb3Vycw")


def test_a_delete_graph_cannot_take_now_is_retried_later(access):
    made = client.create_meeting(access, request_for())
    microsoft.inject_failure("/me/onlineMeetings/", method="DELETE", status=503, retry_after="5")

    with pytest.raises(http.TransientHTTPError):
        client.delete_meeting(access, made.meeting_id)

    assert microsoft.get_meeting(made.meeting_id) is not None


@pytest.mark.parametrize("meeting_id", ["../../me", "a/b", "x?y=1", "#frag"])
def test_an_id_is_one_path_segment_whatever_it_holds(meeting_id):
    url = client._meeting_url(meeting_id)

    assert url.startswith(settings.MICROSOFT_API_BASE_URL + "/me/onlineMeetings/")
    assert not any(mark in url.rpartition("/onlineMeetings/")[2] for mark in "/?#")


def test_an_empty_id_never_reaches_a_url(access):
    with pytest.raises(ValueError):
        client.delete_meeting(access, "")


# --- Graph's error bodies ---------------------------------------------------------------------


def test_graphs_nested_error_code_is_the_provider_code_and_zooms_and_oauths_stay_as_they_were():
    graph = http.PermanentHTTPError("x", status=403, body={"error": {"code": "Forbidden", "message": "no"}})
    oauth_error = http.PermanentHTTPError("x", status=400, body={"error": "invalid_grant"})
    zoom_error = http.PermanentHTTPError("x", status=404, body={"code": 3001, "message": "gone"})
    html = http.PermanentHTTPError("x", status=400, body=None)

    assert [e.provider_code for e in (graph, oauth_error, zoom_error, html)] == [
        "Forbidden",
        "invalid_grant",
        3001,
        None,
    ]
