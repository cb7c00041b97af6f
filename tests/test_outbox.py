"""The development outbox: with DEBUG on and no mail server, the emails the app sends are kept as
.eml files and shown at /dev/outbox/, so a demo booking can be followed to its email and invitation.
Never with DEBUG off.
"""

import os
import re
import subprocess
import sys
from html import unescape
from pathlib import Path

import pytest
from django.urls import NoReverseMatch, reverse
from icalendar import Calendar

from bookings import services

from .booking_helpers import (
    TUESDAY,
    at,
    make_meeting_type,
)

ROOT = Path(__file__).resolve().parent.parent
CLIENT_EMAIL = "casey@example.com"
UNKNOWN = "20261207T060000-" + "0" * 32 + ".eml"


@pytest.fixture
def outbox(settings, tmp_path):
    try:
        reverse("outbox:list")
    except NoReverseMatch:
        pytest.skip("the outbox URLs are mounted only when the settings load with DEBUG=1 (as `make test` runs)")
    settings.EMAIL_BACKEND = "tsp.outbox.OutboxEmailBackend"
    settings.EMAIL_OUTBOX_DIR = str(tmp_path / "outbox")
    return tmp_path / "outbox"


@pytest.fixture
def booking(outbox, make_member, organization, django_capture_on_commit_callbacks):
    host = make_member(organization, name="Hana Host", email="hana@acme.example", time_zone="UTC")
    meeting_type = make_meeting_type(organization, [host], name="Intro call")
    with django_capture_on_commit_callbacks(execute=True):
        return services.book(
            meeting_type=meeting_type,
            start=at(TUESDAY, "09:00"),
            client_name="Casey Client",
            client_email=CLIENT_EMAIL,
            client_notes="<script>alert('notes')</script>",
            client_time_zone="Europe/Berlin",
        )


def detail_path_of_mail_to(client, address: str) -> str:
    page = client.get(reverse("outbox:list")).content.decode()
    items = re.findall(r'<li><a href="([^"]+)"><strong>[^<]*</strong></a><br><span[^>]*>to ([^<]+) ·', page)
    paths = [path for path, to in items if unescape(to).strip() == address]
    assert len(paths) == 1, items
    return paths[0]


@pytest.mark.django_db
@pytest.mark.usefixtures("frozen_now")
def test_the_outbox_lists_a_bookings_emails_and_shows_the_clients_with_its_invitation(client, outbox, booking):
    assert len(list(outbox.glob("*.eml"))) == 2  # the client's and the host's

    listing = client.get(reverse("outbox:list"))
    assert listing.status_code == 200
    page = listing.content.decode()
    assert "Confirmed: Intro call on Tue, Dec 8, 2026, 10:00 AM GMT+1" in page  # the client's, in the client's zone
    assert "New booking: Intro call with Casey Client" in page  # the host's

    detail = client.get(detail_path_of_mail_to(client, CLIENT_EMAIL))
    assert detail.status_code == 200
    page = detail.content.decode()
    # The HTML body is shown inside a sandboxed frame, never as part of this page.
    (frame,) = re.findall(r"<iframe[^>]*>", page)
    assert 'sandbox=""' in frame
    srcdoc = unescape(re.search(r'srcdoc="([^"]*)"', frame).group(1))
    assert "Your meeting is booked." in srcdoc and "Tuesday, December 8, 2026, 10:00 AM" in srcdoc
    assert "&lt;script&gt;alert" in srcdoc and "<script>" not in srcdoc  # the notes are text in the email too
    assert '<table role="presentation"' in srcdoc and '<table role="presentation"' not in page
    assert "<script>alert" not in page  # the client's notes stay text, on every level
    text = unescape(re.search(r'<pre class="outbox-text">(.*?)</pre>', page, re.S).group(1))
    assert "Your meeting is booked." in text and "Hana Host" in text
    assert "Notes: <script>alert('notes')</script>" in text
    assert f"/booking/{booking.uid}/" in text  # the client's manage links

    (link,) = re.findall(r'href="([^"]+/attachments/\d+/)">invite\.ics</a>', page)
    download = client.get(unescape(link))
    assert download.status_code == 200
    assert download["Content-Type"].startswith("text/calendar")
    assert 'filename="invite.ics"' in download["Content-Disposition"]
    calendar = Calendar.from_ical(download.content)
    assert str(calendar["METHOD"]) == "REQUEST"
    (event,) = calendar.walk("VEVENT")
    assert str(booking.uid) in str(event["UID"])
    assert event.decoded("DTSTART") == booking.start


@pytest.mark.django_db
@pytest.mark.usefixtures("frozen_now")
def test_only_the_outbox_files_can_be_read_through_it(client, outbox, booking):
    (outbox / "notes.txt").write_text("not an email")
    (outbox.parent / "secret.eml").write_text("Subject: outside the outbox\n\nsecret")
    name = detail_path_of_mail_to(client, CLIENT_EMAIL).rstrip("/").rsplit("/", 1)[1]

    for path in (
        reverse("outbox:detail", args=[UNKNOWN]),
        reverse("outbox:detail", args=["notes.txt"]),
        reverse("outbox:list") + "..%2Fsecret.eml/",
        reverse("outbox:list") + "..%2F..%2Fetc%2Fpasswd/",
        reverse("outbox:list") + "%2E%2E/secret.eml/",
        reverse("outbox:attachment", args=[UNKNOWN, 0]),
        reverse("outbox:attachment", args=[name, 7]),
    ):
        response = client.get(path)
        assert response.status_code == 404, path
        assert b"secret" not in response.content
    assert client.get(reverse("outbox:attachment", args=[name, 0])).status_code == 200


def test_with_debug_off_there_is_no_outbox_even_when_asked_for():
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "REDIS_URL", "CELERY_", "EMAIL_"))}
    env.update(DEBUG="0", SECRET_KEY="a-production-secret-key-for-this-check-only", ALLOWED_HOSTS="scheduling.example")
    env["EMAIL_OUTBOX"] = "1"  # even set by mistake
    code = (
        "from django.conf import settings\n"
        "from django.urls import NoReverseMatch, Resolver404, resolve, reverse\n"
        "try:\n    reverse('outbox:list'); mounted = True\n"
        "except NoReverseMatch:\n    mounted = False\n"
        "try:\n    view = resolve('/dev/outbox/').view_name\n"
        "except Resolver404:\n    view = None\n"
        "print(repr((settings.DEBUG, settings.EMAIL_OUTBOX, settings.EMAIL_BACKEND, mounted, view)))\n"
    )
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "--no-imports", "-c", code],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    debug, email_outbox, backend, mounted, view = eval(result.stdout.strip().splitlines()[-1])  # noqa: S307
    assert (debug, email_outbox, mounted) == (False, False, False)
    assert backend != "tsp.outbox.OutboxEmailBackend"
    assert view is None or not view.startswith("outbox:")  # at most the public booking pages' catch-all
