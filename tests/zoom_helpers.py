"""Shared pieces of the Zoom end-to-end tests: the product talks real HTTP to the Zoom sandbox.

The sandbox (integrations/sandbox/zoom.py) runs inside pytest-django's live server; the product's
own Zoom client reaches it over loopback, exactly as it would reach zoom.us. A member's browser is
played by Django's test client (our pages) plus a `requests.Session` (Zoom's consent page).

Its fixtures reach every test through `pytest_plugins` in tests/conftest.py; test modules use::

    pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("zoom_sandbox")]

This module is also the urlconf of those tests: the product's URLs with every provider's fake
mounted under /sandbox/, whatever PROVIDER_SANDBOX was when tsp.urls was first imported.
"""

import gc
import re
import threading
from datetime import UTC, datetime, time, timedelta
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests
from cryptography.fernet import Fernet
from django.core import mail
from django.db import connection as database
from django.test import Client, TestCase
from django.urls import reverse
from django.utils import timezone

from bookings import followup
from bookings import services as booking_services
from integrations import http
from integrations.base import Account, TokenSet
from integrations.models import Connection, Provider, VideoMeeting
from integrations.sandbox import urls as sandbox_urls
from integrations.sandbox import zoom
from integrations.services import save_connection
from meetingtypes.models import MeetingType
from tsp import urls as product_urls

from .booking_helpers import make_meeting_type

urlpatterns = sandbox_urls.mounts() + [
    pattern for pattern in product_urls.urlpatterns if getattr(pattern, "app_name", None) not in sandbox_urls.APP_NAMES
]

CLIENT_ID = "tsp-e2e-zoom-client-id"
CLIENT_SECRET = "tsp-e2e-zoom-client-secret-7c1f0a"
WEBHOOK_SECRET = "tsp-e2e-zoom-webhook-secret-51be2d"
ENCRYPTION_KEY = Fernet.generate_key().decode()
CLIENT = {"client_name": "Casey Client", "client_email": "casey@example.com", "client_time_zone": "UTC"}


@pytest.fixture
def live_server_released():
    """At the end of a test that talked HTTP to the live server: drop the product's kept-alive
    connections to it now, while the test still owns the database (a server thread that only ends
    at shutdown trips over the shared SQLite connection). Once per test, however many sandboxes
    it used, and only on SQLite: a full garbage collection takes a tenth of a second, and a server
    thread waiting on a PostgreSQL test database holds nothing the flush needs."""
    yield
    if database.vendor == "sqlite":
        gc.collect()  # responses kept alive by tracebacks of retried tasks hold their sockets open
    http._session.close()


@pytest.fixture
def zoom_sandbox(live_server, settings, live_server_released):
    """The product pointed at an empty Zoom sandbox on the live server; the live server's URL."""
    settings.ROOT_URLCONF = __name__
    settings.SITE_URL = live_server.url
    settings.ZOOM_OAUTH_BASE_URL = live_server.url + "/sandbox/zoom"
    settings.ZOOM_API_BASE_URL = live_server.url + "/sandbox/zoom/v2"
    settings.ZOOM_CLIENT_ID = CLIENT_ID
    settings.ZOOM_CLIENT_SECRET = CLIENT_SECRET
    settings.ZOOM_WEBHOOK_SECRET_TOKEN = WEBHOOK_SECRET
    settings.ZOOM_SANDBOX_WEBHOOK_URL = None  # no background webhook deliveries outliving a test
    settings.TOKEN_ENCRYPTION_KEYS = [ENCRYPTION_KEY]
    # The live server speaks plain HTTP, also when the suite runs without DEBUG.
    settings.CSRF_COOKIE_SECURE = settings.SESSION_COOKIE_SECURE = settings.SECURE_SSL_REDIRECT = False
    zoom.reset()
    yield live_server.url
    zoom.reset()


@pytest.fixture
def eager_retries():
    """Let a task's `self.retry()` re-run it at once, in-process.

    Eager Celery re-runs a retried task immediately only when eager exceptions don't propagate;
    with propagation on (tests/conftest.py) the Retry itself would escape into the caller."""
    from tsp.celery import app

    previous = app.conf.task_eager_propagates
    app.conf.task_eager_propagates = False
    yield
    app.conf.task_eager_propagates = previous


def webhook_url() -> str:
    from django.conf import settings

    return settings.SITE_URL + reverse("integrations:zoom_webhook")


# --- A member's browser ----------------------------------------------------------------------


def browser_for(member, *, enforce_csrf_checks: bool = False) -> Client:
    """A browser of its own (own cookies, own session), signed in as `member`."""
    browser = Client(enforce_csrf_checks=enforce_csrf_checks)
    browser.force_login(member.user)
    return browser


def csrf_token_on_team_members(browser) -> str:
    """The CSRF token of the forms on the Team Members page, as the browser holds it."""
    page = browser.get(reverse("members:list"))
    assert page.status_code == 200
    return re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.content.decode()).group(1)


def start_connect(browser, **extra) -> str:
    """Press "Connect Zoom" on one's card: the URL of Zoom's consent page that we are sent to."""
    data = {"csrfmiddlewaretoken": csrf_token_on_team_members(browser), **extra}
    response = browser.post(reverse("integrations:connect", kwargs={"provider": "zoom"}), data)
    assert response.status_code == 302, response.content[:500]
    return response["Location"]


def consent(authorize_url: str, *, email: str, decision: str = "allow") -> str:
    """On Zoom's consent page, enter the Zoom account and press Allow (or Deny): where Zoom sends us."""
    with requests.Session() as session:
        page = session.get(authorize_url, timeout=10)
        assert page.status_code == 200, page.text[:500]
        csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
        answer = session.post(
            page.url,
            data={"csrfmiddlewaretoken": csrf, "email": email, "decision": decision},
            allow_redirects=False,
            timeout=10,
        )
    assert answer.status_code == 302, answer.text[:500]
    return answer.headers["Location"]


def local_path(url: str) -> str:
    """The path and query of an absolute URL of our site, for the test client."""
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}" if parts.query else parts.path


def query_of(url: str) -> dict:
    return {key: values[0] for key, values in parse_qs(urlsplit(url).query, keep_blank_values=True).items()}


def return_from_zoom(browser, callback_url: str):
    """Zoom's redirect lands in the member's browser: our callback (which calls Zoom over HTTP)."""
    return browser.get(local_path(callback_url))


def connect_zoom(browser, member, email: str) -> Connection:
    """The whole journey: Connect Zoom → Allow as `email` → back on Team Members, connected."""
    response = return_from_zoom(browser, consent(start_connect(browser), email=email))
    assert response.status_code == 302, response.content[:500]
    assert response["Location"].startswith(reverse("members:list")), response["Location"]
    return Connection.objects.get(member=member, provider=Provider.ZOOM)


def connect_member(member, email: str) -> Connection:
    return connect_zoom(browser_for(member), member, email)


def connected_in_sandbox(member, email: str) -> Connection:
    """A Zoom connection with tokens the sandbox really issued, saved without the consent pages
    (the OAuth journey has tests of its own)."""
    tokens = zoom.issue_tokens(email)
    user = zoom.get_or_create_user(email)
    return save_connection(
        member=member,
        provider=Provider.ZOOM,
        tokens=TokenSet(tokens["access_token"], tokens["refresh_token"], tokens["expires_in"], tokens["scope"]),
        account=Account(user["id"], user["account_id"], user["email"]),
    )


@pytest.fixture
def maya(make_member, organization):
    """A member who connects her own accounts."""
    return make_member(organization, name="Maya Member", email="maya@acme.example")


@pytest.fixture
def oscar(make_member, organization):
    """Maya's colleague."""
    return make_member(organization, name="Oscar Other", email="oscar@acme.example")


def follow(browser, response) -> str:
    """Follow our redirect back to the Team Members page; its HTML."""
    assert response.status_code == 302, response.content[:500]
    page = browser.get(response["Location"])
    assert page.status_code == 200
    return page_text(page)


def with_query(url: str, **changes) -> str:
    """`url` with some query parameters changed."""
    parts = urlsplit(url)
    return parts._replace(query=urlencode({**query_of(url), **changes})).geturl()


def member_card(html: str, member) -> str:
    """The HTML of `member`'s card on the Team Members page."""
    found = re.search(rf'<li[^>]*\bid="member-{member.pk}".*?</li>', html, re.S)
    assert found, f"no card for member {member.pk}"
    return found.group(0)


def card_as_seen_by(viewer, member) -> str:
    response = browser_for(viewer).get(reverse("members:list"))
    assert response.status_code == 200
    return member_card(response.content.decode(), member)


def page_text(response) -> str:
    return response.content.decode()


# --- Zoom's side -------------------------------------------------------------------------------


def sandbox_user(email: str) -> dict:
    """The sandbox's summary of one Zoom user (tokens and meetings counted)."""
    users = [user for user in zoom.state_summary()["users"] if user["email"] == email]
    assert users, f"the sandbox has no user {email}"
    return users[0]


def sandbox_meetings(host_email: str | None = None) -> list[dict]:
    meetings = zoom.state_summary()["meetings"]
    return [meeting for meeting in meetings if host_email in (None, meeting["host_email"])]


def zoom_api(method: str, path: str, access_token: str, **kwargs) -> requests.Response:
    from django.conf import settings

    headers = {"Authorization": f"Bearer {access_token}"}
    return requests.request(method, settings.ZOOM_API_BASE_URL + path, headers=headers, timeout=10, **kwargs)


class CallRecorder:
    """Wraps a function (monkeypatched in place) and records each call's arguments and result."""

    def __init__(self, monkeypatch, owner, name: str):
        self.calls: list[tuple] = []
        self.results: list = []
        self._lock = threading.Lock()
        original = getattr(owner, name)

        def recorded(*args, **kwargs):
            with self._lock:
                self.calls.append((args, kwargs))
            result = original(*args, **kwargs)
            with self._lock:
                self.results.append(result)
            return result

        monkeypatch.setattr(owner, name, recorded)

    @property
    def count(self) -> int:
        return len(self.calls)


# --- Bookings ----------------------------------------------------------------------------------


@pytest.fixture
def hana(make_member, organization):
    """A host in Berlin."""
    return make_member(organization, name="Hana Host", email="hana@acme.example", time_zone="Europe/Berlin")


@pytest.fixture
def ivo(make_member, organization):
    """A host in UTC."""
    return make_member(organization, name="Ivo Host", email="ivo@acme.example", time_zone="UTC")


def video(booking) -> VideoMeeting:
    return VideoMeeting.objects.get(booking=booking)


def sweep_later(seconds: float) -> int:
    """The periodic sweep, as it runs `seconds` from now."""
    return followup.sweep(now=timezone.now() + timedelta(seconds=seconds))


def expire_in_our_records(connection: Connection) -> None:
    """Our record of the access token says it expired a minute ago (the provider's doesn't)."""
    Connection.objects.filter(pk=connection.pk).update(expires_at=timezone.now() - timedelta(minutes=1))


def weekday_at(hour: int, minute: int = 0, *, days_ahead: int = 3) -> datetime:
    """A weekday at least `days_ahead` days from now at hour:minute UTC: inside default working hours
    (Mon-Fri 09:00-17:00) of hosts in UTC or Europe/Berlin for hours 10-14."""
    day = datetime.now(UTC).date() + timedelta(days=days_ahead)
    while day.weekday() >= 5:
        day += timedelta(days=1)
    return datetime.combine(day, time(hour, minute), tzinfo=UTC)


def zoom_meeting_type(organization, hosts, **overrides) -> MeetingType:
    fields = {"name": "Intro call", "location": MeetingType.Location.ZOOM, "location_detail": ""}
    fields.update(overrides)
    return make_meeting_type(organization, hosts, **fields)


def book_zoom_meeting(meeting_type, start: datetime, **fields):
    """A client books through the booking service; what follows the commit (video meeting, emails)
    runs at once, in-process."""
    values = {**CLIENT, "client_notes": ""}
    values.update(fields)
    with TestCase.captureOnCommitCallbacks(execute=True):
        booking = booking_services.book(meeting_type=meeting_type, start=start, **values)
    booking.refresh_from_db()
    return booking


def reschedule(booking, start: datetime):
    with TestCase.captureOnCommitCallbacks(execute=True):
        booking_services.reschedule(booking=booking, start=start)
    booking.refresh_from_db()
    return booking


def cancel(booking):
    with TestCase.captureOnCommitCallbacks(execute=True):
        booking_services.cancel(booking=booking, reason="Something came up")
    booking.refresh_from_db()
    return booking


def mails_to(address: str, *, since: int = 0) -> list:
    """Booking emails to `address` (not the "reconnect your account" ones), from mail.outbox[since:]."""
    return [
        message
        for message in mail.outbox[since:]
        if address in message.to and "reconnect" not in message.subject.lower()
    ]


def reconnect_mails_to(address: str) -> list:
    return [message for message in mail.outbox if address in message.to and "reconnect" in message.subject.lower()]


def only_mail_to(address: str, *, since: int = 0):
    messages = mails_to(address, since=since)
    assert len(messages) == 1, [message.subject for message in messages]
    return messages[0]


def says_action_needed(messages) -> bool:
    return any("action needed" in f"{message.subject}\n{message.body}".lower() for message in messages)


def says_host_will_send_the_link(body: str) -> bool:
    return re.search(r"\bhost\b.*\bwill send\b", body, re.I | re.S) is not None


def has_a_zoom_link(body: str) -> bool:
    return zoom.MEETING_HOST in body
