"""A member disconnects Zoom in the app, or removes the app in Zoom: tokens go at once, meetings stay."""

import hashlib
import hmac
import json
import time

import pytest
import requests
from django.urls import reverse

from integrations.models import Connection, PendingRevocation, Provider
from integrations.sandbox import zoom
from integrations.zoom import client as zoom_client

from .zoom_helpers import (
    WEBHOOK_SECRET,
    CallRecorder,
    book_zoom_meeting,
    browser_for,
    card_as_seen_by,
    connect_member,
    connect_zoom,
    csrf_token_on_team_members,
    sandbox_user,
    webhook_url,
    weekday_at,
    zoom_api,
    zoom_meeting_type,
)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("zoom_sandbox")]

MAYA_ZOOM = "maya.zoom@zoom-account.example"
OSCAR_ZOOM = "oscar.zoom@zoom-account.example"


@pytest.fixture
def maya(make_member, organization):
    return make_member(organization, name="Maya Member", email="maya@acme.example", time_zone="UTC")


@pytest.fixture
def oscar(make_member, organization):
    return make_member(organization, name="Oscar Other", email="oscar@acme.example", time_zone="UTC")


def press_disconnect(browser):
    token = csrf_token_on_team_members(browser)
    return browser.post(reverse("integrations:disconnect", kwargs={"provider": "zoom"}), {"csrfmiddlewaretoken": token})


# --- Disconnect Zoom inside the app ------------------------------------------------------------


def test_disconnect_on_the_card_asks_first_and_asking_changes_nothing(maya):
    browser = browser_for(maya, enforce_csrf_checks=True)
    connect_zoom(browser, maya, MAYA_ZOOM)
    confirm_url = reverse("integrations:disconnect_confirm", kwargs={"provider": "zoom"})
    assert f'href="{confirm_url}"' in card_as_seen_by(maya, maya)

    question = browser.get(confirm_url)

    assert question.status_code == 200
    page = question.content.decode()
    assert "Disconnect Zoom from your account?" in page and MAYA_ZOOM in page
    assert "Meetings already created stay on your Zoom account." in page
    assert (
        f'action="{reverse("integrations:disconnect", kwargs={"provider": "zoom"})}"' in page
    )  # the button that does it
    assert Connection.objects.filter(member=maya, provider=Provider.ZOOM).exists()

    press_disconnect(browser)
    again = browser.get(confirm_url)
    assert again.status_code == 302  # nothing left to disconnect: back to the card
    assert again["Location"] == reverse("members:list") + f"#member-{maya.pk}"


def test_disconnect_without_the_csrf_token_is_refused(maya):
    browser = browser_for(maya, enforce_csrf_checks=True)
    connection = connect_zoom(browser, maya, MAYA_ZOOM)

    response = browser.post(reverse("integrations:disconnect", kwargs={"provider": "zoom"}))

    assert response.status_code == 403
    assert Connection.objects.filter(member=maya, provider=Provider.ZOOM).exists()
    assert zoom_api("GET", "/users/me", connection.access_token).status_code == 200  # not revoked either


def test_disconnect_deletes_the_tokens_at_once_and_revokes_them_at_zoom(maya):
    connection = connect_member(maya, MAYA_ZOOM)
    old_access = connection.access_token
    browser = browser_for(maya, enforce_csrf_checks=True)

    response = press_disconnect(browser)

    assert response.status_code == 302
    assert response["Location"] == reverse("members:list") + f"#member-{maya.pk}"
    assert not Connection.objects.filter(member=maya).exists()
    assert not PendingRevocation.objects.exists()
    # Zoom no longer accepts the old access token, and holds no token of Maya's at all.
    answer = zoom_api("GET", "/users/me", old_access)
    assert answer.status_code == 401 and answer.json()["code"] == 124
    user = sandbox_user(MAYA_ZOOM)
    assert (user["live_access_tokens"], user["expired_access_tokens"], user["refresh_tokens"]) == (0, 0, 0)
    page = browser.get(response["Location"]).content.decode()
    assert "Zoom disconnected" in page
    assert "Connect Zoom" in card_as_seen_by(maya, maya)


@pytest.mark.usefixtures("eager_retries")
def test_when_zoom_fails_to_revoke_the_tokens_are_gone_at_once_and_revocation_is_retried(maya, monkeypatch):
    connection = connect_member(maya, MAYA_ZOOM)
    old_access = connection.access_token
    zoom.inject_failure("/oauth/revoke", method="POST", status=500, times=3)
    seen = []
    original_revoke = zoom_client.revoke

    def revoke_watching_our_database(access_token):
        pending = PendingRevocation.objects.get()
        seen.append(
            {
                "connection_exists": Connection.objects.filter(member=maya).exists(),
                "attempts": pending.attempts,
                "token_kept_encrypted": old_access not in pending.access_token_encrypted,
            }
        )
        return original_revoke(access_token)

    monkeypatch.setattr(zoom_client, "revoke", revoke_watching_our_database)

    press_disconnect(browser_for(maya, enforce_csrf_checks=True))

    assert [call["attempts"] for call in seen] == [0, 1, 2, 3]  # three failures, then success
    assert all(not call["connection_exists"] for call in seen)  # deleted before the first try
    assert all(call["token_kept_encrypted"] for call in seen)
    assert not Connection.objects.filter(member=maya).exists()
    assert not PendingRevocation.objects.exists()
    assert zoom_api("GET", "/users/me", old_access).status_code == 401
    assert zoom.state_summary()["failures"] == []


def test_a_disconnect_while_the_broker_is_down_is_revoked_once_it_is_back(maya, monkeypatch):
    from datetime import timedelta

    from django.utils import timezone
    from kombu.exceptions import OperationalError

    from integrations import tasks as integration_tasks

    connection = connect_member(maya, MAYA_ZOOM)
    old_access = connection.access_token

    def unreachable(*args, **kwargs):
        raise OperationalError("Connection refused.")

    monkeypatch.setattr(integration_tasks.revoke_tokens, "delay", unreachable)
    response = press_disconnect(browser_for(maya, enforce_csrf_checks=True))

    assert response.status_code == 302
    assert not Connection.objects.filter(member=maya).exists()  # deleted here at once…
    assert zoom_api("GET", "/users/me", old_access).status_code == 200  # …but not yet revoked at Zoom
    monkeypatch.undo()  # the broker is back
    assert integration_tasks.resend_missed_revocations() == 0  # just now: may still be on its way
    PendingRevocation.objects.update(created_at=timezone.now() - timedelta(minutes=31))

    assert integration_tasks.resend_missed_revocations() == 1

    assert zoom_api("GET", "/users/me", old_access).status_code == 401
    assert not PendingRevocation.objects.exists()


def test_meetings_created_before_disconnecting_stay_on_the_zoom_account(maya):
    connect_member(maya, MAYA_ZOOM)
    booking = book_zoom_meeting(zoom_meeting_type(maya.organization, [maya]), weekday_at(10))
    meeting_id = booking.video_meeting.meeting_id
    assert zoom.get_meeting(meeting_id) is not None

    press_disconnect(browser_for(maya, enforce_csrf_checks=True))

    assert not Connection.objects.filter(member=maya).exists()
    assert zoom.get_meeting(meeting_id)["host_email"] == MAYA_ZOOM


def test_disconnecting_when_not_connected_changes_nothing(maya, oscar, monkeypatch):
    connect_member(oscar, OSCAR_ZOOM)
    revokes = CallRecorder(monkeypatch, zoom_client, "revoke")

    response = press_disconnect(browser_for(maya, enforce_csrf_checks=True))

    assert response.status_code == 302
    assert revokes.count == 0
    assert list(Connection.objects.values_list("member_id", flat=True)) == [oscar.pk]


# --- Removing the app in Zoom: the app_deauthorized webhook ------------------------------------


def signed_headers(raw_body: bytes, *, timestamp: str | None = None, secret: str = WEBHOOK_SECRET) -> dict:
    timestamp = timestamp or str(int(time.time()))
    signature = "v0=" + hmac.new(secret.encode(), f"v0:{timestamp}:".encode() + raw_body, hashlib.sha256).hexdigest()
    return {"Content-Type": "application/json", "x-zm-request-timestamp": timestamp, "x-zm-signature": signature}


def deauthorized_event(email: str) -> bytes:
    user = zoom.get_or_create_user(email)
    event = {
        "event": "app_deauthorized",
        "event_ts": int(time.time() * 1000),
        "payload": {
            "account_id": user["account_id"],
            "user_id": user["id"],
            "client_id": "whatever",
            "deauthorization_time": "2026-01-01T00:00:00.000Z",
            "signature": "legacy",
        },
    }
    return json.dumps(event).encode()


def connections_now() -> list[tuple]:
    return sorted(Connection.objects.values_list("member_id", "email", "status", "access_token_encrypted"))


def test_removing_the_app_in_zoom_deletes_that_members_connection_only(maya, oscar):
    connect_member(maya, MAYA_ZOOM)
    connect_member(oscar, OSCAR_ZOOM)

    started = time.monotonic()
    result = zoom.deauthorize(MAYA_ZOOM, webhook_url=webhook_url())
    elapsed = time.monotonic() - started

    assert result["webhook_status"] in (200, 204)
    assert elapsed < 3  # Zoom gives the receiver 3 seconds
    assert list(Connection.objects.values_list("member_id", "email")) == [(oscar.pk, OSCAR_ZOOM)]
    assert "Connect Zoom" in card_as_seen_by(maya, maya)
    assert "Zoom connected · " + OSCAR_ZOOM in card_as_seen_by(oscar, oscar)


def test_a_second_delivery_of_the_same_deauthorization_is_harmless(maya, oscar):
    connect_member(maya, MAYA_ZOOM)
    connect_member(oscar, OSCAR_ZOOM)
    zoom.deauthorize(MAYA_ZOOM, webhook_url=webhook_url())
    after_first = connections_now()

    status = zoom.deliver_deauthorization(MAYA_ZOOM, webhook_url())

    assert 200 <= status < 300
    assert connections_now() == after_first


def test_meetings_stay_on_the_zoom_account_after_removing_the_app(maya):
    connect_member(maya, MAYA_ZOOM)
    booking = book_zoom_meeting(zoom_meeting_type(maya.organization, [maya]), weekday_at(11))

    zoom.deauthorize(MAYA_ZOOM, webhook_url=webhook_url())

    assert not Connection.objects.exists()
    assert zoom.get_meeting(booking.video_meeting.meeting_id) is not None


def _forged(body: bytes) -> dict:
    return signed_headers(body, secret="not-our-secret")


def _stale(body: bytes) -> dict:
    return signed_headers(body, timestamp=str(int(time.time()) - 3600))


def _from_the_future(body: bytes) -> dict:
    return signed_headers(body, timestamp=str(int(time.time()) + 3600))


def _unsigned(body: bytes) -> dict:
    return {"Content-Type": "application/json", "x-zm-request-timestamp": str(int(time.time()))}


@pytest.mark.parametrize("make_headers", [_forged, _stale, _from_the_future, _unsigned])
def test_a_webhook_that_is_not_zooms_is_refused_and_changes_nothing(maya, make_headers):
    connect_member(maya, MAYA_ZOOM)
    before = connections_now()
    body = deauthorized_event(MAYA_ZOOM)

    response = requests.post(webhook_url(), data=body, headers=make_headers(body), timeout=5)

    assert response.status_code == 401
    assert connections_now() == before


def test_a_tampered_body_is_refused_and_changes_nothing(maya, oscar):
    connect_member(maya, MAYA_ZOOM)
    connect_member(oscar, OSCAR_ZOOM)
    before = connections_now()
    signed_for_maya = deauthorized_event(MAYA_ZOOM)
    # An attacker keeps Zoom's headers of a delivery about Maya but swaps in Oscar's user id.
    tampered = signed_for_maya.replace(
        zoom.get_or_create_user(MAYA_ZOOM)["id"].encode(), zoom.get_or_create_user(OSCAR_ZOOM)["id"].encode()
    )
    assert tampered != signed_for_maya

    response = requests.post(webhook_url(), data=tampered, headers=signed_headers(signed_for_maya), timeout=5)

    assert response.status_code == 401
    assert connections_now() == before


def test_a_genuine_delivery_posted_by_hand_is_answered_fast(maya):
    connect_member(maya, MAYA_ZOOM)
    body = deauthorized_event(MAYA_ZOOM)

    response = requests.post(webhook_url(), data=body, headers=signed_headers(body), timeout=5)

    assert response.status_code in (200, 204)
    assert response.elapsed.total_seconds() < 3
    assert not Connection.objects.exists()


def test_url_validation_is_answered_with_the_encrypted_token(maya):
    body = json.dumps({"event": "endpoint.url_validation", "payload": {"plainToken": "qgg8vlvZRS6UYooatFL8Aw"}})

    response = requests.post(webhook_url(), data=body.encode(), headers=signed_headers(body.encode()), timeout=5)

    assert response.status_code == 200
    expected = hmac.new(WEBHOOK_SECRET.encode(), b"qgg8vlvZRS6UYooatFL8Aw", hashlib.sha256).hexdigest()
    assert response.json() == {"plainToken": "qgg8vlvZRS6UYooatFL8Aw", "encryptedToken": expected}
    assert response.elapsed.total_seconds() < 3


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b'{"event": "app_deauthorized", "payload": {', id="truncated-json"),
        pytest.param(b"\xff\xfe not even text", id="binary"),
        pytest.param(b'["app_deauthorized"]', id="not-an-object"),
        pytest.param(b'{"payload": {}}', id="no-event-name"),
        pytest.param(b'{"event": "app_deauthorized", "payload": {"user_id": 42}}', id="user-id-not-a-string"),
        pytest.param(b'{"event": "app_deauthorized", "payload": ["user_id"]}', id="payload-not-an-object"),
        pytest.param(b'{"event": "endpoint.url_validation", "payload": "plainToken"}', id="payload-a-string"),
    ],
)
def test_malformed_json_with_a_valid_signature_is_a_400_and_changes_nothing(maya, body):
    connect_member(maya, MAYA_ZOOM)
    before = connections_now()

    response = requests.post(webhook_url(), data=body, headers=signed_headers(body), timeout=5)

    assert response.status_code == 400
    assert connections_now() == before


def test_the_webhook_takes_post_only(maya):
    connect_member(maya, MAYA_ZOOM)
    assert requests.get(webhook_url(), timeout=5).status_code == 405
    assert Connection.objects.exists()
