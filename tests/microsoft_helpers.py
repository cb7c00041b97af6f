"""Shared pieces of the Microsoft Teams tests: the product talks real HTTP to the Microsoft fake
(integrations/sandbox/microsoft.py) on the live server. Test modules use::

    pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("microsoft_sandbox")]

The member's browser is Django's test client (our pages) plus a `requests.Session` (the consent page),
as in tests/zoom_helpers.py, whose steps these reuse.
"""

import json
import re

import requests
from django.conf import settings
from django.http import HttpResponse
from django.urls import path, reverse
from django.views.decorators.csrf import csrf_exempt

from integrations.base import Account, TokenSet
from integrations.models import Connection
from integrations.sandbox import microsoft
from integrations.services import save_connection
from meetingtypes.models import MeetingType

from .booking_helpers import make_meeting_type
from .zoom_helpers import browser_for, csrf_token_on_team_members, local_path

WORK_OR_SCHOOL_APPS = "https://myapps.microsoft.com"
PERSONAL_APPS = "https://account.live.com/consent/Manage"


def start_connect(browser) -> str:
    """Press "Connect Microsoft" on one's card: the URL of Microsoft's sign-in page we are sent to."""
    data = {"csrfmiddlewaretoken": csrf_token_on_team_members(browser)}
    response = browser.post(reverse("integrations:connect", kwargs={"provider": "microsoft"}), data)
    assert response.status_code == 302, response.content[:500]
    return response["Location"]


def consent(authorize_url: str, *, email: str, decision: str = "allow", personal: bool = False) -> str:
    """On Microsoft's consent page, sign in as `email` (a personal account if `personal`) and press
    Accept (or Deny): where Microsoft sends the browser next."""
    with requests.Session() as session:
        page = session.get(authorize_url, timeout=10)
        assert page.status_code == 200, page.text[:500]
        csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
        form = {"csrfmiddlewaretoken": csrf, "email": email, "decision": decision}
        if personal:
            form[microsoft.PERSONAL_CHOICE] = "on"
        answer = session.post(page.url, data=form, allow_redirects=False, timeout=10)
    assert answer.status_code == 302, answer.text[:500]
    return answer.headers["Location"]


def return_from_microsoft(browser, callback_url: str):
    """Microsoft's redirect lands in the member's browser: our callback (which calls Microsoft)."""
    return browser.get(local_path(callback_url))


def connect_microsoft(browser, member, email: str, *, personal: bool = False) -> Connection:
    """The whole journey: Connect Microsoft → Accept as `email` → back on Team Members, connected."""
    response = return_from_microsoft(browser, consent(start_connect(browser), email=email, personal=personal))
    assert response.status_code == 302, response.content[:500]
    assert response["Location"].startswith(reverse("members:list")), response["Location"]
    return Connection.objects.get(member=member, provider="microsoft")


def connect_member(member, email: str, *, personal: bool = False) -> Connection:
    return connect_microsoft(browser_for(member), member, email, personal=personal)


def connected_in_sandbox(member, email: str, *, personal: bool = False) -> Connection:
    """A Microsoft connection with tokens the fake really issued, saved without the consent pages."""
    tokens = microsoft.issue_tokens(email, personal=personal)
    user = microsoft.get_or_create_user(email)
    return save_connection(
        member=member,
        provider="microsoft",
        tokens=TokenSet(tokens["access_token"], tokens["refresh_token"], tokens["expires_in"], tokens["scope"]),
        account=Account(user["id"], "", user["mail"], can_host_meetings=not personal),
    )


def sandbox_user(email: str) -> dict:
    """The fake's summary of one Microsoft user (tokens issued, spent and live; meetings)."""
    users = [user for user in microsoft.state_summary()["users"] if user["email"] == email]
    assert users, f"the Microsoft fake has no user {email}"
    return users[0]


def teams_meetings(organizer_email: str | None = None) -> list[dict]:
    """The online meetings at the fake (of one organizer, if given)."""
    return [
        meeting
        for meeting in microsoft.state_summary()["meetings"]
        if organizer_email in (None, meeting["organizer_email"])
    ]


def graph_api(method: str, path: str, access_token: str, *, headers=None, **kwargs) -> requests.Response:
    headers = {**(headers or {}), "Authorization": f"Bearer {access_token}"}
    return requests.request(method, settings.MICROSOFT_API_BASE_URL + path, headers=headers, timeout=10, **kwargs)


def has_a_teams_link(body: str) -> bool:
    return microsoft.TEAMS_HOST in body


def teams_meeting_type(organization, hosts, **overrides) -> MeetingType:
    fields = {"name": "Intro call", "location": MeetingType.Location.MICROSOFT_TEAMS, "location_detail": ""}
    fields.update(overrides)
    return make_meeting_type(organization, hosts, **fields)


# --- A stand-in for a notification endpoint, for tests of Graph subscriptions alone ---------------
# A test module mounts `receiver_urlpatterns` in its own urlconf (the product's URLs after them).

notifications_received: list[dict] = []


@csrf_exempt
def _echoing_receiver(request):
    """Answers Graph's validation handshake as a notification endpoint must (the token, as
    text/plain) and keeps every notification's JSON."""
    if "validationToken" in request.GET:
        return HttpResponse(request.GET["validationToken"], content_type="text/plain")
    notifications_received.append(json.loads(request.body))
    return HttpResponse(status=202)


@csrf_exempt
def _refusing_receiver(request):
    return HttpResponse("not the token", content_type="text/plain")


receiver_urlpatterns = [
    path("test-graph-receiver/", _echoing_receiver),
    path("test-graph-refuser/", _refusing_receiver),
]


def receiver_url() -> str:
    return settings.SITE_URL + "/test-graph-receiver/"


def refuser_url() -> str:
    return settings.SITE_URL + "/test-graph-refuser/"
