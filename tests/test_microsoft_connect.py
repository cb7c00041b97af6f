"""A member connects, reconnects and disconnects their own Microsoft account, end to end over real
HTTP against the Microsoft fake."""

import logging
from datetime import timedelta
from urllib.parse import urlencode

import pytest
from django.conf import settings
from django.db import connection as db
from django.urls import reverse
from django.utils import timezone

from integrations import oauth
from integrations.microsoft import client as microsoft_client
from integrations.models import Connection, PendingRevocation
from integrations.sandbox import microsoft

from .microsoft_helpers import (
    PERSONAL_APPS,
    WORK_OR_SCHOOL_APPS,
    connect_microsoft,
    consent,
    graph_api,
    return_from_microsoft,
    sandbox_user,
    start_connect,
)
from .zoom_helpers import (
    CallRecorder,
    browser_for,
    card_as_seen_by,
    csrf_token_on_team_members,
    follow,
    page_text,
    query_of,
    with_query,
)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("microsoft_sandbox")]

MAYA_MICROSOFT = "maya@contoso.example"
MAYA_PERSONAL = "maya.private@outlook.example"


def microsoft_rows():
    return Connection.objects.filter(provider="microsoft")


# --- The consent request -----------------------------------------------------------------------


def test_connect_sends_the_member_to_microsoft_with_pkce_a_fresh_state_and_an_account_choice(maya):
    browser = browser_for(maya)
    first, second = start_connect(browser), start_connect(browser)

    assert first.startswith(settings.MICROSOFT_OAUTH_BASE_URL + "/oauth2/v2.0/authorize?")
    query = query_of(first)
    assert query["response_type"] == "code" and query["response_mode"] == "query"
    assert query["client_id"] == settings.MICROSOFT_CLIENT_ID
    assert query["redirect_uri"] == settings.SITE_URL + "/integrations/microsoft/callback/"
    meetings = ["openid", "email", "offline_access", "User.Read", "OnlineMeetings.ReadWrite"]
    assert query["scope"].split() == [*meetings, "Calendars.ReadWrite"]
    assert query["prompt"] == "select_account"
    assert query["code_challenge_method"] == "S256" and len(query["code_challenge"]) == 43
    assert len(query["state"]) >= 32
    assert query_of(second)["state"] != query["state"]  # one state per attempt
    assert query_of(second)["code_challenge"] != query["code_challenge"]
    assert settings.MICROSOFT_CLIENT_SECRET not in first


def test_connect_is_a_post_only_action(maya):
    url = reverse("integrations:connect", kwargs={"provider": "microsoft"})
    assert browser_for(maya).get(url).status_code == 405
    assert not microsoft_rows().exists()


# --- Accept ------------------------------------------------------------------------------------


def test_after_accept_the_card_says_microsoft_connected_with_the_account_email(maya):
    browser = browser_for(maya)
    callback_url = consent(start_connect(browser), email=MAYA_MICROSOFT)
    assert callback_url.startswith(settings.SITE_URL + "/integrations/microsoft/callback/?")

    response = return_from_microsoft(browser, callback_url)

    assert response["Location"] == reverse("members:list") + f"#member-{maya.pk}"
    assert response["Referrer-Policy"] == "same-origin"  # the code in our URL goes nowhere else
    assert "Microsoft connected · " + MAYA_MICROSOFT in follow(browser, response)
    card = card_as_seen_by(maya, maya)
    assert "Microsoft connected · " + MAYA_MICROSOFT in card
    assert "Disconnect Microsoft" in card and "Connect Microsoft" not in card
    assert "can't host" not in card


def test_the_stored_connection_is_the_graph_user_with_its_live_rotating_grant_unreadable_at_rest(maya):
    before = timezone.now()
    connection = connect_microsoft(browser_for(maya), maya, MAYA_MICROSOFT)

    me = microsoft.get_or_create_user(MAYA_MICROSOFT)
    assert (connection.external_user_id, connection.email) == (me["id"], MAYA_MICROSOFT)
    assert "OnlineMeetings.ReadWrite" in connection.scopes.split()
    assert connection.is_active and connection.can_host_meetings
    assert before + timedelta(seconds=3500) < connection.expires_at <= timezone.now() + timedelta(seconds=3600)
    assert graph_api("GET", "/me", connection.access_token).json()["id"] == me["id"]
    assert sandbox_user(MAYA_MICROSOFT)["refresh_tokens"] == 1
    microsoft_client.refresh(connection.refresh_token)  # the one we hold is the live one
    with db.cursor() as cursor:
        cursor.execute("SELECT * FROM integrations_connection WHERE id = %s", [connection.pk])
        raw = " ".join(str(value) for value in cursor.fetchone())
    assert connection.access_token[:12] not in raw and connection.refresh_token[:12] not in raw


def test_a_personal_account_is_connected_and_the_card_says_it_cannot_host_teams_meetings(maya):
    connection = connect_microsoft(browser_for(maya), maya, MAYA_PERSONAL, personal=True)

    assert connection.is_active and not connection.can_host_meetings
    card = card_as_seen_by(maya, maya)
    assert "Microsoft connected · " + MAYA_PERSONAL in card
    assert "This account can't host Microsoft Teams meetings" in card
    assert "connect a work or school account" in card


def test_reconnecting_with_a_work_account_lifts_the_cannot_host_mark(maya):
    browser = browser_for(maya)
    connect_microsoft(browser, maya, MAYA_PERSONAL, personal=True)

    again = connect_microsoft(browser, maya, MAYA_MICROSOFT)

    assert microsoft_rows().count() == 1
    assert again.can_host_meetings and again.email == MAYA_MICROSOFT
    assert "can't host" not in card_as_seen_by(maya, maya)


def test_other_members_see_microsoft_connected_on_that_card_but_no_email_nor_buttons(maya, oscar, admin):
    connect_microsoft(browser_for(maya), maya, MAYA_MICROSOFT)

    for viewer in (oscar, admin):
        card = card_as_seen_by(viewer, maya)
        assert "Microsoft connected" in card and MAYA_MICROSOFT not in card
        assert "Disconnect Microsoft" not in card and "Connect Microsoft" not in card
    assert "Connect Microsoft" in card_as_seen_by(oscar, oscar)


# --- Refusals: deny, state, PKCE, failed exchanges -----------------------------------------------


def test_deny_brings_the_member_back_with_a_clear_message_and_nothing_stored_anywhere(maya):
    browser = browser_for(maya)
    callback_url = consent(start_connect(browser), email=MAYA_MICROSOFT, decision="deny")
    assert query_of(callback_url)["error"] == "access_denied"

    page = follow(browser, return_from_microsoft(browser, callback_url))

    assert "You did not allow access, so Microsoft is not connected." in page
    assert not microsoft_rows().exists()
    assert microsoft.state_summary()["tokens"] == [] and microsoft.state_summary()["pending_codes"] == 0
    assert "Connect Microsoft" in card_as_seen_by(maya, maya)


@pytest.mark.parametrize("state", [None, "forged-" + "x" * 40], ids=["missing-state", "forged-state"])
def test_a_callback_without_our_state_is_refused_and_the_code_never_exchanged(maya, monkeypatch, state):
    exchanges = CallRecorder(monkeypatch, microsoft_client, "exchange_code")
    browser = browser_for(maya)
    callback_url = consent(start_connect(browser), email=MAYA_MICROSOFT)
    query = {key: value for key, value in {**query_of(callback_url), "state": state}.items() if value is not None}

    url = reverse("integrations:callback", kwargs={"provider": "microsoft"}) + "?" + urlencode(query)
    response = browser.get(url)

    assert response.status_code == 403
    assert "not valid or was already used" in page_text(response)
    assert exchanges.count == 0 and not microsoft_rows().exists()


def test_the_state_is_single_use_a_replayed_callback_changes_nothing(maya, monkeypatch):
    browser = browser_for(maya)
    callback_url = consent(start_connect(browser), email=MAYA_MICROSOFT)
    assert return_from_microsoft(browser, callback_url).status_code == 302
    first = Connection.objects.get(member=maya, provider="microsoft")
    exchanges = CallRecorder(monkeypatch, microsoft_client, "exchange_code")

    replay = return_from_microsoft(browser, callback_url)

    assert replay.status_code == 403 and exchanges.count == 0
    again = Connection.objects.get(member=maya, provider="microsoft")
    assert (again.pk, again.access_token, again.refresh_token) == (first.pk, first.access_token, first.refresh_token)


def test_another_members_callback_is_refused_in_this_session(maya, oscar, monkeypatch):
    """A code Maya got cannot be finished in Oscar's browser: the state belongs to Maya's session."""
    callback_url = consent(start_connect(browser_for(maya)), email=MAYA_MICROSOFT)
    exchanges = CallRecorder(monkeypatch, microsoft_client, "exchange_code")

    response = return_from_microsoft(browser_for(oscar), callback_url)

    assert response.status_code == 403 and exchanges.count == 0
    assert not microsoft_rows().exists()


def test_the_pkce_verifier_we_send_must_match_the_challenge_microsoft_was_given(maya):
    browser = browser_for(maya)
    authorize_url = start_connect(browser)
    # Someone swaps the challenge on the way to Microsoft: the code is then bound to their verifier.
    swapped = with_query(authorize_url, code_challenge=oauth.pkce_challenge("x" * 64))
    callback_url = consent(swapped, email=MAYA_MICROSOFT)

    page = follow(browser, return_from_microsoft(browser, callback_url))

    assert "Microsoft did not accept the connection. Please try again." in page
    assert not microsoft_rows().exists()
    assert sandbox_user(MAYA_MICROSOFT)["live_access_tokens"] == 0


@pytest.mark.parametrize(
    "failure",
    [
        pytest.param({"status": 500}, id="500"),
        pytest.param(
            {"status": 400, "body": {"error": "invalid_grant", "error_description": "AADSTS54005: code redeemed"}},
            id="400",
        ),
        pytest.param({"status": 200, "raw_body": "<html>Sign-in is down</html>"}, id="200-not-json"),
        pytest.param({"status": 200, "body": {"access_token": "a", "expires_in": 3599}}, id="no-refresh-token"),
    ],
)
def test_a_failed_code_exchange_says_so_and_stores_nothing(maya, failure, caplog):
    caplog.set_level(logging.DEBUG)
    browser = browser_for(maya)
    callback_url = consent(start_connect(browser), email=MAYA_MICROSOFT)
    microsoft.inject_failure("/oauth2/v2.0/token", method="POST", **failure)

    page = follow(browser, return_from_microsoft(browser, callback_url))

    assert "Microsoft did not accept the connection. Please try again." in page
    assert not microsoft_rows().exists() and not PendingRevocation.objects.exists()
    assert microsoft.state_summary()["failures"] == []  # the exchange did reach Microsoft
    assert query_of(callback_url)["code"] not in caplog.text


def test_a_grant_without_the_meetings_permission_says_which_and_stores_nothing(maya, settings):
    settings.MICROSOFT_SCOPES = "openid email offline_access User.Read"  # as if consent left one out
    browser = browser_for(maya)

    page = follow(browser, return_from_microsoft(browser, consent(start_connect(browser), email=MAYA_MICROSOFT)))

    assert "a permission that meeting links need was not allowed" in page
    assert not microsoft_rows().exists() and not PendingRevocation.objects.exists()


def test_a_failed_account_lookup_stores_nothing_and_queues_no_revocation_microsoft_has_none(maya):
    browser = browser_for(maya)
    callback_url = consent(start_connect(browser), email=MAYA_MICROSOFT)
    microsoft.inject_failure("/v1.0/me", method="GET", status=503)

    page = follow(browser, return_from_microsoft(browser, callback_url))

    assert "Microsoft did not accept the connection. Please try again." in page
    assert not microsoft_rows().exists() and not PendingRevocation.objects.exists()


# --- Broken and reconnected --------------------------------------------------------------------


def test_a_broken_connection_offers_reconnect_and_reconnecting_makes_it_work_again(maya):
    browser = browser_for(maya)
    first = connect_microsoft(browser, maya, MAYA_MICROSOFT)
    microsoft.revoke_grant(MAYA_MICROSOFT)  # the member removed the app in their Microsoft account
    Connection.objects.filter(pk=first.pk).update(status=Connection.Status.BROKEN)
    card = card_as_seen_by(maya, maya)
    assert "Reconnect Microsoft" in card and "Needs reconnecting" in card

    second = connect_microsoft(browser, maya, MAYA_MICROSOFT)

    assert microsoft_rows().count() == 1
    assert second.is_active and second.refresh_token != first.refresh_token
    assert graph_api("GET", "/me", second.access_token).status_code == 200
    card = card_as_seen_by(maya, maya)
    assert "Microsoft connected · " + MAYA_MICROSOFT in card and "Reconnect Microsoft" not in card


# --- Disconnect --------------------------------------------------------------------------------


def press_disconnect(browser):
    token = csrf_token_on_team_members(browser)
    url = reverse("integrations:disconnect", kwargs={"provider": "microsoft"})
    return browser.post(url, {"csrfmiddlewaretoken": token})


def test_the_card_of_a_connected_member_says_where_to_remove_the_app_for_each_kind_of_account(maya):
    connect_microsoft(browser_for(maya), maya, MAYA_MICROSOFT)

    card = card_as_seen_by(maya, maya)

    assert f'href="{WORK_OR_SCHOOL_APPS}"' in card and f'href="{PERSONAL_APPS}"' in card
    assert "Work or school account" in card and "Personal Microsoft account" in card


def test_disconnect_asks_first_and_says_the_tokens_go_and_where_to_remove_the_app(maya):
    browser = browser_for(maya, enforce_csrf_checks=True)
    connect_microsoft(browser, maya, MAYA_MICROSOFT)

    page = page_text(browser.get(reverse("integrations:disconnect_confirm", kwargs={"provider": "microsoft"})))

    assert "Disconnect Microsoft from your account?" in page and MAYA_MICROSOFT in page
    assert "The Microsoft access stored here is deleted at once." in page
    assert "revoked at Microsoft" not in page  # nothing we could promise
    assert f'href="{WORK_OR_SCHOOL_APPS}"' in page and f'href="{PERSONAL_APPS}"' in page
    assert microsoft_rows().exists()


def test_disconnect_deletes_the_tokens_at_once_queues_no_revocation_and_says_where_to_remove_the_app(maya):
    browser = browser_for(maya, enforce_csrf_checks=True)
    connection = connect_microsoft(browser, maya, MAYA_MICROSOFT)
    before = sandbox_user(MAYA_MICROSOFT)

    response = press_disconnect(browser)

    assert response["Location"] == reverse("members:list") + f"#member-{maya.pk}"
    assert not microsoft_rows().exists() and not PendingRevocation.objects.exists()
    with db.cursor() as cursor:
        cursor.execute("SELECT COUNT(*) FROM integrations_connection WHERE provider = 'microsoft'")
        assert cursor.fetchone()[0] == 0
    # Microsoft was not called: there is no endpoint to call. Its grant lives on until the member
    # removes the app there, which is why we say where.
    assert sandbox_user(MAYA_MICROSOFT)["refresh_tokens"] == before["refresh_tokens"] == 1
    assert graph_api("GET", "/me", connection.access_token).status_code == 200
    page = follow(browser, response)
    assert "Microsoft disconnected" in page
    assert WORK_OR_SCHOOL_APPS in page and PERSONAL_APPS in page
    assert "Connect Microsoft" in card_as_seen_by(maya, maya)


def test_after_disconnecting_the_member_can_connect_again(maya):
    browser = browser_for(maya, enforce_csrf_checks=True)
    first = connect_microsoft(browser, maya, MAYA_MICROSOFT)
    press_disconnect(browser)

    second = connect_microsoft(browser, maya, MAYA_MICROSOFT)

    assert second.pk != first.pk and second.is_active
    assert graph_api("GET", "/me", second.access_token).status_code == 200
