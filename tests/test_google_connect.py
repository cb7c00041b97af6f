"""A member connects, reconnects and disconnects their own Google account, end to end over real
HTTP against the Google fake."""

import logging
from datetime import timedelta
from urllib.parse import urlencode

import pytest
from django.conf import settings
from django.db import connection as db
from django.urls import reverse
from django.utils import timezone

from integrations import oauth
from integrations.google import client as google_client
from integrations.models import Connection, PendingRevocation
from integrations.sandbox import google

from .google_helpers import CALENDAR_SCOPE, connect_google, grant_of, return_from_google, start_connect, userinfo
from .zoom_helpers import (
    CallRecorder,
    browser_for,
    card_as_seen_by,
    consent,
    csrf_token_on_team_members,
    follow,
    page_text,
    query_of,
    with_query,
)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("google_sandbox")]

MAYA_GOOGLE = "maya@acme-workspace.example"
OSCAR_GOOGLE = "oscar.private@gmail.com"


def google_rows():
    return Connection.objects.filter(provider="google")


# --- The consent request -----------------------------------------------------------------------


def test_connect_sends_the_member_to_google_for_offline_access_with_pkce_and_a_fresh_state(maya):
    browser = browser_for(maya)
    first, second = start_connect(browser), start_connect(browser)

    assert first.startswith(settings.GOOGLE_OAUTH_BASE_URL + "/o/oauth2/v2/auth?")
    query = query_of(first)
    assert query["response_type"] == "code"
    assert query["client_id"] == settings.GOOGLE_CLIENT_ID
    assert query["redirect_uri"] == settings.SITE_URL + "/integrations/google/callback/"
    assert query["scope"].split() == ["openid", "email", CALENDAR_SCOPE, *settings.GOOGLE_CALENDAR_SCOPES.split()]
    assert (query["access_type"], query["prompt"]) == ("offline", "consent")
    assert query["code_challenge_method"] == "S256" and len(query["code_challenge"]) == 43
    assert len(query["state"]) >= 32
    assert query_of(second)["state"] != query["state"]  # one state per attempt
    assert query_of(second)["code_challenge"] != query["code_challenge"]
    assert settings.GOOGLE_CLIENT_SECRET not in first


def test_connect_is_a_post_only_action(maya):
    assert browser_for(maya).get(reverse("integrations:connect", kwargs={"provider": "google"})).status_code == 405
    assert not google_rows().exists()


# --- Allow -------------------------------------------------------------------------------------


def test_after_allow_the_card_says_google_connected_with_the_account_email(maya):
    browser = browser_for(maya)
    callback_url = consent(start_connect(browser), email=MAYA_GOOGLE)
    assert callback_url.startswith(settings.SITE_URL + "/integrations/google/callback/?")

    response = return_from_google(browser, callback_url)

    assert response["Location"] == reverse("members:list") + f"#member-{maya.pk}"
    assert response["Referrer-Policy"] == "same-origin"
    assert "Google connected · " + MAYA_GOOGLE in follow(browser, response)
    card = card_as_seen_by(maya, maya)
    assert "Google connected · " + MAYA_GOOGLE in card
    assert "Disconnect Google" in card and "Connect Google" not in card


def test_the_stored_connection_is_the_google_account_with_its_real_offline_grant_unreadable_at_rest(maya):
    before = timezone.now()
    connection = connect_google(browser_for(maya), maya, MAYA_GOOGLE)

    user = google.get_or_create_user(MAYA_GOOGLE)
    assert (connection.external_user_id, connection.email) == (user["sub"], MAYA_GOOGLE)
    assert connection.external_account_id == "acme-workspace.example"  # the Workspace domain
    assert CALENDAR_SCOPE in connection.scopes.split()
    assert connection.is_active and connection.can_host_meetings
    assert before + timedelta(seconds=3500) < connection.expires_at <= timezone.now() + timedelta(seconds=3600)
    assert userinfo(connection.access_token).json()["email"] == MAYA_GOOGLE
    assert grant_of(MAYA_GOOGLE)["refresh_tokens"] == 1  # offline access: a refresh token was issued
    google_client.refresh(connection.refresh_token)  # and it is the one we hold
    with db.cursor() as cursor:
        cursor.execute("SELECT * FROM integrations_connection WHERE id = %s", [connection.pk])
        raw = " ".join(str(value) for value in cursor.fetchone())
    assert connection.access_token[:12] not in raw and connection.refresh_token[:12] not in raw


def test_other_members_see_google_connected_on_that_card_but_no_email_nor_buttons(maya, oscar, admin):
    connect_google(browser_for(maya), maya, MAYA_GOOGLE)

    for viewer in (oscar, admin):
        card = card_as_seen_by(viewer, maya)
        assert "Google connected" in card and MAYA_GOOGLE not in card
        assert "Disconnect Google" not in card and "Connect Google" not in card
    assert "Connect Google" in card_as_seen_by(oscar, oscar)


# --- Refusals: deny, state, PKCE, an unticked calendar -------------------------------------------


def test_deny_brings_the_member_back_with_a_clear_message_and_nothing_stored_anywhere(maya):
    browser = browser_for(maya)
    callback_url = consent(start_connect(browser), email=MAYA_GOOGLE, decision="deny")
    assert query_of(callback_url)["error"] == "access_denied"

    page = follow(browser, return_from_google(browser, callback_url))

    assert "You did not allow access, so Google is not connected." in page
    assert not google_rows().exists()
    assert google.state_summary()["grants"] == [] and google.state_summary()["pending_codes"] == 0
    assert "Connect Google" in card_as_seen_by(maya, maya)


@pytest.mark.parametrize("state", [None, "forged-" + "x" * 40], ids=["missing-state", "forged-state"])
def test_a_callback_without_our_state_is_refused_and_the_code_never_exchanged(maya, monkeypatch, state):
    exchanges = CallRecorder(monkeypatch, google_client, "exchange_code")
    browser = browser_for(maya)
    callback_url = consent(start_connect(browser), email=MAYA_GOOGLE)
    query = {key: value for key, value in {**query_of(callback_url), "state": state}.items() if value is not None}

    response = browser.get(reverse("integrations:callback", kwargs={"provider": "google"}) + "?" + urlencode(query))

    assert response.status_code == 403
    assert "not valid or was already used" in page_text(response)
    assert exchanges.count == 0 and not google_rows().exists()


def test_the_state_is_single_use_a_replayed_callback_changes_nothing(maya, monkeypatch):
    browser = browser_for(maya)
    callback_url = consent(start_connect(browser), email=MAYA_GOOGLE)
    assert return_from_google(browser, callback_url).status_code == 302
    first = Connection.objects.get(member=maya, provider="google")
    exchanges = CallRecorder(monkeypatch, google_client, "exchange_code")

    replay = return_from_google(browser, callback_url)

    assert replay.status_code == 403 and exchanges.count == 0
    again = Connection.objects.get(member=maya, provider="google")
    assert (again.pk, again.access_token) == (first.pk, first.access_token)


def test_the_pkce_verifier_we_send_must_match_the_challenge_google_was_given(maya):
    browser = browser_for(maya)
    authorize_url = start_connect(browser)
    # Someone swaps the challenge on the way to Google: the code is then bound to their verifier.
    callback_url = consent(with_query(authorize_url, code_challenge=oauth.pkce_challenge("x" * 64)), email=MAYA_GOOGLE)

    page = follow(browser, return_from_google(browser, callback_url))

    assert "Google did not accept the connection. Please try again." in page
    assert not google_rows().exists() and grant_of(MAYA_GOOGLE) is None


def test_a_grant_without_the_calendar_is_not_kept_here_nor_left_alive_at_google(maya, caplog):
    caplog.set_level(logging.DEBUG)
    browser = browser_for(maya)
    authorize_url = start_connect(browser)
    # The member unticks "See and edit events on your calendars" on Google's consent screen.
    callback_url = consent(with_query(authorize_url, scope="openid email"), email=MAYA_GOOGLE)

    page = follow(browser, return_from_google(browser, callback_url))

    assert "a permission that meeting links need was not allowed" in page
    assert "leave every box on its consent page ticked" in page
    assert not google_rows().exists() and not PendingRevocation.objects.exists()
    assert grant_of(MAYA_GOOGLE) is None  # revoked at once
    assert "Google connect for member" in caplog.text and query_of(callback_url)["code"] not in caplog.text


@pytest.mark.parametrize(
    "failure",
    [
        pytest.param({"status": 500}, id="500"),
        pytest.param({"status": 400, "body": {"error": "invalid_grant", "error_description": "Bad Request"}}, id="400"),
        pytest.param({"status": 200, "raw_body": "<html>Google is down</html>"}, id="200-not-json"),
        pytest.param({"status": 200, "body": {"access_token": "a", "expires_in": 3599}}, id="no-refresh-token"),
    ],
)
def test_a_failed_code_exchange_says_so_and_stores_nothing(maya, failure):
    browser = browser_for(maya)
    callback_url = consent(start_connect(browser), email=MAYA_GOOGLE)
    google.inject_failure("/sandbox/google/token", method="POST", **failure)

    page = follow(browser, return_from_google(browser, callback_url))

    assert "Google did not accept the connection. Please try again." in page
    assert not google_rows().exists()
    assert google.state_summary()["failures"] == []  # the exchange did reach Google


def test_a_failed_userinfo_leaves_nothing_stored_and_the_new_grant_revoked(maya):
    browser = browser_for(maya)
    callback_url = consent(start_connect(browser), email=MAYA_GOOGLE)
    google.inject_failure("/v1/userinfo", method="GET", status=503)

    page = follow(browser, return_from_google(browser, callback_url))

    assert "Google did not accept the connection. Please try again." in page
    assert not google_rows().exists() and not PendingRevocation.objects.exists()
    assert grant_of(MAYA_GOOGLE) is None


# --- Broken and reconnected --------------------------------------------------------------------


def test_a_broken_connection_offers_reconnect_and_reconnecting_makes_it_work_again(maya):
    browser = browser_for(maya)
    first = connect_google(browser, maya, MAYA_GOOGLE)
    google.revoke_grant(MAYA_GOOGLE)  # removed in the Google account
    Connection.objects.filter(pk=first.pk).update(status=Connection.Status.BROKEN)
    assert "Reconnect Google" in card_as_seen_by(maya, maya)

    second = connect_google(browser, maya, MAYA_GOOGLE)

    assert google_rows().count() == 1
    assert second.is_active and second.refresh_token != first.refresh_token
    assert userinfo(second.access_token).status_code == 200
    card = card_as_seen_by(maya, maya)
    assert "Google connected · " + MAYA_GOOGLE in card and "Reconnect Google" not in card


def test_reconnecting_another_google_account_revokes_the_one_it_replaces(maya):
    browser = browser_for(maya)
    connect_google(browser, maya, MAYA_GOOGLE)

    connect_google(browser, maya, OSCAR_GOOGLE)

    assert list(google_rows().values_list("email", flat=True)) == [OSCAR_GOOGLE]
    assert grant_of(MAYA_GOOGLE) is None and grant_of(OSCAR_GOOGLE) is not None


# --- Disconnect --------------------------------------------------------------------------------


def press_disconnect(browser):
    token = csrf_token_on_team_members(browser)
    url = reverse("integrations:disconnect", kwargs={"provider": "google"})
    return browser.post(url, {"csrfmiddlewaretoken": token})


def test_disconnect_asks_first_and_says_the_access_is_revoked_at_google(maya):
    browser = browser_for(maya, enforce_csrf_checks=True)
    connect_google(browser, maya, MAYA_GOOGLE)

    page = page_text(browser.get(reverse("integrations:disconnect_confirm", kwargs={"provider": "google"})))

    assert "Disconnect Google from your account?" in page and MAYA_GOOGLE in page
    assert "the authorization is revoked at Google" in page
    assert google_rows().exists() and grant_of(MAYA_GOOGLE) is not None


def test_disconnect_deletes_the_tokens_at_once_and_revokes_the_grant_at_google(maya):
    browser = browser_for(maya, enforce_csrf_checks=True)
    connection = connect_google(browser, maya, MAYA_GOOGLE)

    response = press_disconnect(browser)

    assert response["Location"] == reverse("members:list") + f"#member-{maya.pk}"
    assert not google_rows().exists() and not PendingRevocation.objects.exists()
    assert grant_of(MAYA_GOOGLE) is None
    assert userinfo(connection.access_token).status_code == 401
    with pytest.raises(Exception, match="400"):
        google_client.refresh(connection.refresh_token)
    assert "Google disconnected" in follow(browser, response)
    assert "Connect Google" in card_as_seen_by(maya, maya)


@pytest.mark.usefixtures("eager_retries")
def test_when_google_cannot_revoke_now_the_tokens_are_gone_at_once_and_the_revocation_retried(maya):
    browser = browser_for(maya, enforce_csrf_checks=True)
    connect_google(browser, maya, MAYA_GOOGLE)
    google.inject_failure("/sandbox/google/revoke", method="POST", status=503, times=2)

    press_disconnect(browser)

    assert not google_rows().exists()
    assert google.state_summary()["failures"] == []  # both failures were met…
    assert grant_of(MAYA_GOOGLE) is None  # …and the third try revoked the grant
    assert not PendingRevocation.objects.exists()


def test_disconnecting_a_grant_the_member_already_removed_at_google_is_simply_done(maya):
    browser = browser_for(maya, enforce_csrf_checks=True)
    connect_google(browser, maya, MAYA_GOOGLE)
    google.revoke_grant(MAYA_GOOGLE)

    press_disconnect(browser)

    assert not google_rows().exists() and not PendingRevocation.objects.exists()
