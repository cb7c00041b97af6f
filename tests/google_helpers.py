"""Shared pieces of the Google Meet tests: the product talks real HTTP to the Google fake
(integrations/sandbox/google.py) on the live server. Test modules use::

    pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("google_sandbox")]

The browser steps (sign in, the consent page, our callback) are Zoom's, in tests/zoom_helpers.py.
"""

from datetime import UTC, datetime

import requests
from django.conf import settings
from django.urls import reverse

from integrations.base import Account, MeetingRequest, TokenSet
from integrations.models import Connection
from integrations.sandbox import google
from integrations.services import save_connection
from meetingtypes.models import MeetingType

from .booking_helpers import make_meeting_type
from .zoom_helpers import consent, csrf_token_on_team_members, local_path

CALENDAR_SCOPE = "https://www.googleapis.com/auth/calendar.events"


def start_connect(browser) -> str:
    """Press "Connect Google" on one's card: the URL of Google's consent page that we are sent to."""
    data = {"csrfmiddlewaretoken": csrf_token_on_team_members(browser)}
    response = browser.post(reverse("integrations:connect", kwargs={"provider": "google"}), data)
    assert response.status_code == 302, response.content[:500]
    return response["Location"]


def return_from_google(browser, callback_url: str):
    """Google's redirect lands in the member's browser: our callback (which calls Google over HTTP)."""
    return browser.get(local_path(callback_url))


def connect_google(browser, member, email: str) -> Connection:
    """The whole journey: Connect Google → Allow as `email` → back on Team Members, connected."""
    response = return_from_google(browser, consent(start_connect(browser), email=email))
    assert response.status_code == 302, response.content[:500]
    assert response["Location"].startswith(reverse("members:list")), response["Location"]
    return Connection.objects.get(member=member, provider="google")


def connected_in_sandbox(member, email: str) -> Connection:
    """A Google connection with tokens the fake really issued, saved without the consent pages."""
    tokens = google.issue_tokens(email)
    user = google.get_or_create_user(email)
    return save_connection(
        member=member,
        provider="google",
        tokens=TokenSet(tokens["access_token"], tokens["refresh_token"], tokens["expires_in"], tokens["scope"]),
        account=Account(user["sub"], user.get("hd", ""), user["email"]),
    )


def grant_of(email: str) -> dict | None:
    """The fake's record of this user's grant to our app (None when it has none left)."""
    grants = [grant for grant in google.state_summary()["grants"] if grant["email"] == email]
    assert len(grants) <= 1, grants
    return grants[0] if grants else None


def sandbox_events(email: str | None = None, *, deleted: bool = False) -> list[dict]:
    """Events on the fake's calendars (of one user's primary calendar, if given), live or deleted."""
    wanted = "cancelled" if deleted else "confirmed"
    return [
        event
        for event in google.state_summary()["events"]
        if event["status"] == wanted and email in (None, event["calendar_id"])
    ]


def calendar_api(method: str, path: str, access_token: str, **kwargs) -> requests.Response:
    headers = {"Authorization": f"Bearer {access_token}"}
    url = settings.GOOGLE_API_BASE_URL + "/calendar/v3" + path
    return requests.request(method, url, headers=headers, timeout=10, **kwargs)


def userinfo(access_token: str) -> requests.Response:
    headers = {"Authorization": f"Bearer {access_token}"}
    return requests.get(settings.GOOGLE_USERINFO_URL, headers=headers, timeout=10)


def meeting_request(request_id: str = "booking-1-0", *, start: datetime | None = None, minutes: int = 30, **fields):
    values = {
        "topic": "Intro call with Casey Client",
        "start": start or datetime(2030, 5, 6, 9, 30, tzinfo=UTC),
        "duration_minutes": minutes,
        "time_zone": "Europe/Berlin",
        "agenda": "Intro call booked by Casey Client <casey@example.com>",
        "request_id": request_id,
    }
    values.update(fields)
    return MeetingRequest(**values)


def utc_z(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def meet_meeting_type(organization, hosts, **overrides) -> MeetingType:
    fields = {"name": "Intro call", "location": MeetingType.Location.GOOGLE_MEET, "location_detail": ""}
    fields.update(overrides)
    return make_meeting_type(organization, hosts, **fields)


def has_a_meet_link(body: str) -> bool:
    return google.MEET_HOST in body
