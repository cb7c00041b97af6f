"""A member connects their own Zoom account, end to end over real HTTP against the Zoom sandbox."""

import base64
import logging
from datetime import timedelta
from urllib.parse import urlencode

import pytest
from django.conf import settings
from django.db import connection as db
from django.urls import reverse
from django.utils import timezone

from integrations import urls as integration_urls
from integrations.models import Connection, PendingRevocation, Provider
from integrations.sandbox import zoom
from integrations.zoom import client as zoom_client

from .zoom_helpers import (
    CLIENT_ID,
    CLIENT_SECRET,
    CallRecorder,
    browser_for,
    card_as_seen_by,
    connect_zoom,
    consent,
    follow,
    local_path,
    page_text,
    query_of,
    return_from_zoom,
    sandbox_user,
    start_connect,
    zoom_api,
)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("zoom_sandbox")]

MAYA_ZOOM = "maya.zoom@zoom-account.example"
OSCAR_ZOOM = "oscar.zoom@zoom-account.example"


def zoom_rows():
    return Connection.objects.filter(provider=Provider.ZOOM)


def raw_connection_row(pk: int) -> str:
    with db.cursor() as cursor:
        cursor.execute("SELECT * FROM integrations_connection WHERE id = %s", [pk])
        return " ".join(str(value) for value in cursor.fetchone())


# --- The consent request -----------------------------------------------------------------------


def test_connect_sends_the_member_to_zoom_with_exactly_the_registered_request(maya):
    authorize_url = start_connect(browser_for(maya))

    assert authorize_url.startswith(settings.ZOOM_OAUTH_BASE_URL + "/oauth/authorize?")
    query = query_of(authorize_url)
    assert query["response_type"] == "code"
    assert query["client_id"] == CLIENT_ID
    assert query["redirect_uri"] == settings.SITE_URL + "/integrations/zoom/callback/"
    assert query["scope"] == settings.ZOOM_SCOPES
    assert set(query["scope"].split()) == {"meeting:write", "user:read"}  # the user guide's promise
    assert len(query["state"]) >= 32
    assert len(query["code_challenge"]) >= 43 and query["code_challenge_method"] == "S256"
    assert CLIENT_SECRET not in authorize_url


def test_connect_is_a_post_only_action(maya):
    assert browser_for(maya).get(reverse("integrations:connect", kwargs={"provider": "zoom"})).status_code == 405
    assert not zoom_rows().exists()


# --- Allow -------------------------------------------------------------------------------------


def test_after_allow_the_member_lands_on_team_members_with_their_card_connected(maya, oscar):
    browser = browser_for(maya)
    callback_url = consent(start_connect(browser), email=MAYA_ZOOM)
    assert callback_url.startswith(settings.SITE_URL + "/integrations/zoom/callback/?")

    response = return_from_zoom(browser, callback_url)

    assert response.status_code == 302
    assert response["Location"] == reverse("members:list") + f"#member-{maya.pk}"
    assert response["Referrer-Policy"] == "same-origin"
    page = follow(browser, response)
    assert "Zoom connected · " + MAYA_ZOOM in page  # the confirmation message
    own_card = card_as_seen_by(maya, maya)
    assert "Zoom connected · " + MAYA_ZOOM in own_card
    assert "Disconnect Zoom" in own_card and "Connect Zoom" not in own_card


def test_other_members_see_zoom_connected_on_that_card_but_no_buttons(maya, oscar, admin):
    connect_zoom(browser_for(maya), maya, MAYA_ZOOM)

    for viewer in (oscar, admin):
        card = card_as_seen_by(viewer, maya)
        assert "Zoom connected" in card
        assert "Disconnect Zoom" not in card and "Connect Zoom" not in card
        assert reverse("integrations:disconnect", kwargs={"provider": "zoom"}) not in card
        assert reverse("integrations:connect", kwargs={"provider": "zoom"}) not in card
    # …while Oscar's own card offers him his own button.
    assert "Connect Zoom" in card_as_seen_by(oscar, oscar)


def test_the_stored_connection_holds_the_zoom_account_and_unreadable_tokens(maya):
    before = timezone.now()
    connection = connect_zoom(browser_for(maya), maya, MAYA_ZOOM)

    zoom_user = zoom.get_or_create_user(MAYA_ZOOM)
    assert connection.external_user_id == zoom_user["id"]
    assert connection.external_account_id == zoom_user["account_id"]
    assert connection.email == MAYA_ZOOM
    assert set(connection.scopes.split()) == {"meeting:write", "user:read"}
    assert connection.is_active
    assert before + timedelta(seconds=3500) < connection.expires_at <= timezone.now() + timedelta(seconds=3600)
    # The stored tokens are Zoom's real ones…
    assert zoom_api("GET", "/users/me", connection.access_token).json()["email"] == MAYA_ZOOM
    # …and nobody reading the table can see them.
    raw = raw_connection_row(connection.pk)
    assert connection.access_token not in raw and connection.refresh_token not in raw
    assert connection.access_token[:12] not in raw and connection.refresh_token[:12] not in raw


# --- Refusal and broken callbacks --------------------------------------------------------------


def test_deny_brings_the_member_back_with_a_clear_message_and_nothing_stored(maya):
    browser = browser_for(maya)
    callback_url = consent(start_connect(browser), email=MAYA_ZOOM, decision="deny")
    assert query_of(callback_url)["error"] == "access_denied"

    response = return_from_zoom(browser, callback_url)

    assert response["Referrer-Policy"] == "same-origin"
    page = follow(browser, response)
    assert "You did not allow access, so Zoom is not connected." in page
    assert not zoom_rows().exists()
    assert "Connect Zoom" in card_as_seen_by(maya, maya)


def _callback_with(callback_url: str, **changes) -> str:
    """Our callback path with Zoom's query, some parameters changed (None: left out)."""
    query = {key: value for key, value in {**query_of(callback_url), **changes}.items() if value is not None}
    return reverse("integrations:callback", kwargs={"provider": "zoom"}) + "?" + urlencode(query)


@pytest.mark.parametrize(
    "state",
    [pytest.param(None, id="missing-state"), pytest.param("forged-" + "x" * 40, id="forged-state")],
)
def test_a_callback_without_our_state_is_refused_and_stores_nothing(maya, state):
    browser = browser_for(maya)
    callback_url = consent(start_connect(browser), email=MAYA_ZOOM)

    response = browser.get(_callback_with(callback_url, state=state))

    assert response.status_code == 403
    assert response["Referrer-Policy"] == "same-origin"
    assert "not valid or was already used" in page_text(response)
    assert not zoom_rows().exists()


def test_a_replayed_callback_is_refused_and_changes_nothing(maya):
    browser = browser_for(maya)
    callback_url = consent(start_connect(browser), email=MAYA_ZOOM)
    assert return_from_zoom(browser, callback_url).status_code == 302
    first = Connection.objects.get(member=maya)

    replay = return_from_zoom(browser, callback_url)

    assert replay.status_code == 403
    assert replay["Referrer-Policy"] == "same-origin"
    assert zoom_rows().count() == 1
    again = Connection.objects.get(member=maya)
    assert (again.pk, again.access_token, again.refresh_token) == (first.pk, first.access_token, first.refresh_token)


def test_a_callback_started_by_another_members_session_is_refused(maya, oscar):
    maya_browser = browser_for(maya)
    callback_url = consent(start_connect(maya_browser), email=MAYA_ZOOM)

    # Oscar is tricked into opening Maya's callback link in his own browser.
    stolen = return_from_zoom(browser_for(oscar), callback_url)

    assert stolen.status_code == 403
    assert not zoom_rows().exists()
    # Maya's own flow is untouched and still finishes, for Maya only.
    assert return_from_zoom(maya_browser, callback_url).status_code == 302
    assert list(zoom_rows().values_list("member_id", "email")) == [(maya.pk, MAYA_ZOOM)]


def test_a_callback_with_our_state_but_no_code_is_refused(maya):
    browser = browser_for(maya)
    callback_url = consent(start_connect(browser), email=MAYA_ZOOM)

    response = browser.get(_callback_with(callback_url, code=None))

    assert response.status_code == 400
    assert "Nothing was saved" in page_text(response)
    assert not zoom_rows().exists()


# --- Zoom failing during the exchange ----------------------------------------------------------


def _secrets_in(text: str, *values: str) -> list[str]:
    basic = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
    return [value for value in (CLIENT_SECRET, basic, *values) if value and value in text]


@pytest.mark.parametrize(
    "failure",
    [
        pytest.param({"status": 500}, id="500"),
        pytest.param(
            {"status": 400, "body": {"reason": "Invalid authorization code", "error": "invalid_grant"}},
            id="400-invalid_grant",
        ),
        pytest.param({"status": 502, "raw_body": "<html><h1>502 Bad Gateway</h1></html>"}, id="502-html"),
        pytest.param({"status": 200, "raw_body": "<html>Zoom is under maintenance</html>"}, id="200-not-json"),
    ],
)
def test_a_failed_code_exchange_says_so_stores_nothing_and_logs_no_secret(maya, caplog, failure):
    caplog.set_level(logging.DEBUG)
    browser = browser_for(maya)
    callback_url = consent(start_connect(browser), email=MAYA_ZOOM)
    zoom.inject_failure("/oauth/token", method="POST", **failure)

    response = return_from_zoom(browser, callback_url)

    assert response["Referrer-Policy"] == "same-origin"
    page = follow(browser, response)
    assert "Zoom did not accept the connection. Please try again." in page
    assert not zoom_rows().exists()
    assert zoom.state_summary()["failures"] == []  # the exchange really reached Zoom
    assert "Zoom connect for member" in caplog.text  # the failure was logged…
    assert _secrets_in(caplog.text, query_of(callback_url)["code"]) == []  # …without any secret


@pytest.mark.parametrize(
    "failure",
    [
        pytest.param({"status": 500}, id="500"),
        pytest.param({"status": 401, "body": {"code": 124, "message": "Invalid access token."}}, id="401"),
        pytest.param({"status": 200, "body": {"email": "no-id@zoom-account.example"}}, id="no-user-id"),
    ],
)
def test_a_failed_users_me_stores_nothing(maya, caplog, monkeypatch, failure):
    caplog.set_level(logging.DEBUG)
    exchanges = CallRecorder(monkeypatch, zoom_client, "exchange_code")
    browser = browser_for(maya)
    callback_url = consent(start_connect(browser), email=MAYA_ZOOM)
    zoom.inject_failure("/v2/users/me", method="GET", **failure)

    page = follow(browser, return_from_zoom(browser, callback_url))

    assert exchanges.count == 1  # the tokens were obtained…
    assert "Zoom did not accept the connection. Please try again." in page
    assert not zoom_rows().exists()  # …and not kept
    # …nor left alive at Zoom: they were revoked.
    user = sandbox_user(MAYA_ZOOM)
    assert (user["live_access_tokens"], user["refresh_tokens"]) == (0, 0)
    assert not PendingRevocation.objects.exists()
    tokens = exchanges.results[0]
    assert _secrets_in(caplog.text, query_of(callback_url)["code"], tokens.access_token, tokens.refresh_token) == []


# --- Reconnecting ------------------------------------------------------------------------------


def test_reconnecting_replaces_the_connection_never_two_rows(maya):
    browser = browser_for(maya)
    first = connect_zoom(browser, maya, MAYA_ZOOM)
    first_tokens = (first.access_token, first.refresh_token)

    second = connect_zoom(browser, maya, MAYA_ZOOM)

    assert Connection.objects.filter(member=maya, provider=Provider.ZOOM).count() == 1
    assert (second.access_token, second.refresh_token) != first_tokens
    # Zoom revoked the earlier tokens at the new authorization; the stored ones are the new ones.
    assert zoom_api("GET", "/users/me", first_tokens[0]).status_code == 401
    assert zoom_api("GET", "/users/me", second.access_token).status_code == 200


def test_connecting_a_different_zoom_account_replaces_the_first(maya):
    browser = browser_for(maya)
    connect_zoom(browser, maya, MAYA_ZOOM)

    other = connect_zoom(browser, maya, "maya.second@zoom-account.example")

    assert list(zoom_rows().values_list("member_id", "email")) == [(maya.pk, "maya.second@zoom-account.example")]
    assert other.external_user_id == zoom.get_or_create_user("maya.second@zoom-account.example")["id"]
    assert "Zoom connected · maya.second@zoom-account.example" in card_as_seen_by(maya, maya)
    # The first account's tokens were revoked, not merely forgotten here.
    first = sandbox_user(MAYA_ZOOM)
    assert (first["live_access_tokens"], first["refresh_tokens"]) == (0, 0)
    second = sandbox_user("maya.second@zoom-account.example")
    assert (second["live_access_tokens"], second["refresh_tokens"]) == (1, 1)


# --- Only one's own card -----------------------------------------------------------------------


def test_no_integration_url_names_a_member():
    for pattern in integration_urls.urlpatterns:
        assert set(pattern.pattern.converters) <= {"provider"}, f"{pattern.pattern} takes parameters"


def test_naming_another_member_when_connecting_connects_only_ones_own_card(maya, oscar):
    browser = browser_for(maya)
    authorize_url = start_connect(browser, member_id=oscar.pk, member=oscar.pk, pk=oscar.pk)

    return_from_zoom(browser, consent(authorize_url, email=MAYA_ZOOM))

    assert list(zoom_rows().values_list("member_id", flat=True)) == [maya.pk]
    assert "Connect Zoom" in card_as_seen_by(oscar, oscar)


def test_naming_another_member_when_disconnecting_disconnects_only_ones_own_card(maya, oscar):
    connect_zoom(browser_for(oscar), oscar, OSCAR_ZOOM)
    maya_browser = browser_for(maya)
    connect_zoom(maya_browser, maya, MAYA_ZOOM)

    response = maya_browser.post(
        reverse("integrations:disconnect", kwargs={"provider": "zoom"}),
        {"member_id": oscar.pk, "member": oscar.pk, "pk": oscar.pk},
    )

    assert response.status_code == 302
    assert list(zoom_rows().values_list("member_id", "email")) == [(oscar.pk, OSCAR_ZOOM)]


def test_a_callback_link_cannot_be_bent_to_another_member(maya, oscar):
    """Extra parameters on the way back from Zoom don't change whose card gets connected."""
    browser = browser_for(maya)
    callback_url = consent(start_connect(browser), email=MAYA_ZOOM)

    response = browser.get(local_path(callback_url) + f"&member_id={oscar.pk}")

    assert response.status_code == 302
    assert list(zoom_rows().values_list("member_id", flat=True)) == [maya.pk]


def test_signed_out_visitors_cannot_start_or_finish_a_connection(client, maya):
    callback_url = consent(start_connect(browser_for(maya)), email=MAYA_ZOOM)

    assert (
        client.post(reverse("integrations:connect", kwargs={"provider": "zoom"})).status_code == 302
    )  # to the login page
    response = client.get(local_path(callback_url))
    assert response.status_code == 302 and "login" in response["Location"]
    assert not zoom_rows().exists()
