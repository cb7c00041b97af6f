"""What every fake of the provider sandbox shares (integrations/sandbox/common.py): the controls
only for admins or this machine, JSON errors in each provider's own format, and one state per
provider. Each provider's own behaviour is in tests/test_<provider>_sandbox.py."""

import pytest

from integrations.sandbox import google, microsoft, zoom

pytestmark = [pytest.mark.urls("tests.zoom_helpers"), pytest.mark.django_db]

PROVIDERS = {"zoom": zoom, "google": google, "microsoft": microsoft}
FROM_ELSEWHERE = {"REMOTE_ADDR": "203.0.113.9"}


@pytest.fixture(autouse=True)
def empty_fakes():
    for fake in PROVIDERS.values():
        fake.reset()
    yield
    for fake in PROVIDERS.values():
        fake.reset()


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize(
    "method, path",
    [
        ("post", "control/reset"),
        ("post", "control/fail"),
        ("post", "control/expire-tokens"),
        ("get", "control/state"),
        ("get", "control/"),
        ("post", "control/remove-app"),
    ],
)
def test_every_providers_controls_refuse_anonymous_callers_from_the_network(client, provider, method, path):
    PROVIDERS[provider].inject_failure("/anything", status=503)

    response = getattr(client, method)(f"/sandbox/{provider}/{path}", data={}, **FROM_ELSEWHERE)

    assert response.status_code == 403
    assert PROVIDERS[provider].state_summary()["failures"]  # nothing was reset


@pytest.mark.parametrize("provider", PROVIDERS)
def test_every_providers_controls_answer_a_caller_on_this_machine(client, provider):
    PROVIDERS[provider].get_or_create_user("someone@example.com")

    state = client.get(f"/sandbox/{provider}/control/state").json()
    page = client.get(f"/sandbox/{provider}/control/")

    assert [user["email"] for user in state["users"]] == ["someone@example.com"]
    assert page.status_code == 200 and "someone@example.com" in page.content.decode()


@pytest.mark.parametrize(
    "path, error",
    [
        ("/sandbox/zoom/v2/users/me/recordings", {"code": 404, "message": "Not found (Zoom sandbox)."}),
        ("/sandbox/google/calendar/v3/colors", {"code": 404, "status": "NOT_FOUND"}),
        ("/sandbox/microsoft/v1.0/me/messages", {"code": "NotFound"}),
    ],
)
def test_an_unknown_api_path_answers_json_404_in_the_providers_format(client, path, error):
    response = client.get(path)

    assert response.status_code == 404
    body = response.json()
    found = body.get("error", body)
    assert {key: found[key] for key in error} == error


@pytest.mark.parametrize(
    "path, allowed",
    [
        ("/sandbox/google/calendar/v3/calendars/primary/events", "GET, POST"),
        ("/sandbox/microsoft/v1.0/me/onlineMeetings", "POST"),
        ("/sandbox/zoom/oauth/token", "POST"),
    ],
)
def test_a_wrong_method_is_405_with_allow(client, path, allowed):
    response = client.put(path)

    assert response.status_code == 405 and response["Allow"] == allowed


def test_injected_failures_and_clocks_stay_with_their_provider():
    google.inject_failure("/token", status=500)
    microsoft.advance_clock(3600)

    assert zoom.state_summary()["failures"] == [] and microsoft.state_summary()["failures"] == []
    assert google.state_summary()["clock_offset_seconds"] == 0
    assert microsoft.state_summary()["clock_offset_seconds"] == 3600


def test_control_fail_queues_a_failure_for_that_provider_only(client):
    response = client.post(
        "/sandbox/microsoft/control/fail",
        {"path_contains": "/onlineMeetings", "status": 429, "retry_after": "5"},
        content_type="application/json",
    )

    assert response.status_code == 200
    assert [failure["status"] for failure in microsoft.state_summary()["failures"]] == [429]
    assert google.state_summary()["failures"] == [] and zoom.state_summary()["failures"] == []
