"""The client's booking page offers "Add to calendar": Google Calendar, Outlook and an .ics file.

The .ics is the invitation the emails carry (same UID and SEQUENCE); the Google and Outlook links
carry the meeting (title, times in UTC, the join link) but never the client's manage link.
"""

from email import policy
from email.parser import BytesParser
from urllib.parse import parse_qs, urlsplit

import pytest
from django.core import mail
from django.urls import reverse
from icalendar import Calendar

from bookings import services
from integrations.models import VideoMeeting
from meetingtypes.models import MeetingType

from .booking_helpers import (
    TUESDAY,
    WEDNESDAY,
    at,
    book_through_service,
    make_meeting_type,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("frozen_now")]

JOIN_URL = "https://meet.example.com/abc-defg-hij"


@pytest.fixture
def booking(committed, member):
    """A Zoom booking of Casey's on Tuesday 10:00 UTC whose host typed the join link in."""
    meeting_type = make_meeting_type(
        member.organization, [member], name="Strategy session", location=MeetingType.Location.ZOOM, location_detail=""
    )
    booking = committed(book_through_service, meeting_type=meeting_type, start=at(TUESDAY, "10:00"), notes="Agenda")
    booking = committed(services.set_video_link, booking=booking, by=member, join_url=JOIN_URL, passcode="4711")
    return booking


def _calendar_links(client, booking) -> dict[str, str]:
    page = client.get(booking.manage_url())
    assert page.status_code == 200
    links = {}
    for name in ("calendar.google.com", "outlook.live.com", "outlook.office.com"):
        (href,) = [part.split('"')[0] for part in page.content.decode().split('href="')[1:] if name in part[:60]]
        links[name] = href.replace("&amp;", "&")
    return links


def _query(url: str) -> dict[str, str]:
    return {key: values[0] for key, values in parse_qs(urlsplit(url).query).items()}


def test_google_and_outlook_links_carry_the_meeting_in_utc_with_the_join_link(client, booking):
    links = _calendar_links(client, booking)

    google = _query(links["calendar.google.com"])
    assert google["action"] == "TEMPLATE"
    assert google["text"] == f"Strategy session ({booking.organization.name})"
    assert google["dates"] == "20261208T100000Z/20261208T103000Z"
    assert google["location"] == JOIN_URL
    assert f"Join: {JOIN_URL}" in google["details"] and "Passcode: 4711" in google["details"]

    for host in ("outlook.live.com", "outlook.office.com"):
        outlook = _query(links[host])
        assert urlsplit(links[host]).path == "/calendar/0/deeplink/compose"
        assert outlook["rru"] == "addevent"
        assert outlook["subject"] == google["text"]
        assert (outlook["startdt"], outlook["enddt"]) == ("2026-12-08T10:00:00Z", "2026-12-08T10:30:00Z")
        assert outlook["location"] == JOIN_URL and JOIN_URL in outlook["body"]


def test_the_manage_link_never_goes_to_google_or_microsoft(client, booking):
    for url in _calendar_links(client, booking).values():
        assert booking.manage_token not in url
        assert "Reschedule" not in url and "Cancel:" not in url


def test_the_ics_download_is_the_invitation_the_emails_carry(client, committed, booking):
    response = client.get(reverse("bookings:calendar_file", args=[booking.uid, booking.manage_token]))
    assert response.status_code == 200
    assert response["Content-Type"] == "text/calendar; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="strategy-session.ics"'
    assert response["Referrer-Policy"] == "same-origin"
    (event,) = Calendar.from_ical(response.content).walk("VEVENT")

    (emailed,) = [message for message in mail.outbox if message.to == [booking.client_email]][-1:]
    raw = BytesParser(policy=policy.default).parsebytes(emailed.message().as_bytes())
    (part,) = [part for part in raw.iter_attachments() if part.get_filename() == "invite.ics"]
    (emailed_event,) = Calendar.from_ical(part.get_content().encode()).walk("VEVENT")

    assert str(event["UID"]) == str(emailed_event["UID"]) == f"{booking.uid}@teamschedulerpro"
    assert event["SEQUENCE"] == emailed_event["SEQUENCE"] == booking.sequence == 1
    assert event.decoded("DTSTART") == at(TUESDAY, "10:00") and event.decoded("DTEND") == at(TUESDAY, "10:30")
    assert str(event["LOCATION"]) == JOIN_URL
    # The file goes to the client only: it keeps their reschedule and cancel links, as the email's does.
    assert booking.reschedule_url() in str(event["DESCRIPTION"])

    moved = committed(services.reschedule, booking=booking, start=at(WEDNESDAY, "11:00"))
    response = client.get(reverse("bookings:calendar_file", args=[moved.uid, moved.manage_token]))
    (event,) = Calendar.from_ical(response.content).walk("VEVENT")
    assert event["SEQUENCE"] == 2 and event.decoded("DTSTART") == at(WEDNESDAY, "11:00")


def test_a_cancelled_booking_offers_no_calendar_links_and_its_file_removes_the_event(client, committed, booking):
    cancelled = committed(services.cancel, booking=booking)
    page = client.get(cancelled.manage_url()).content.decode()
    assert "calendar.google.com" not in page and "invite.ics" not in page
    response = client.get(reverse("bookings:calendar_file", args=[cancelled.uid, cancelled.manage_token]))
    calendar = Calendar.from_ical(response.content)
    assert str(calendar["METHOD"]) == "CANCEL"
    assert calendar.walk("VEVENT")[0]["SEQUENCE"] == cancelled.sequence


def test_the_ics_needs_the_bookings_own_link(client, booking, make_member):
    other = book_through_service(booking.meeting_type, at(WEDNESDAY, "10:00"), email="someone@example.com")
    assert client.get(reverse("bookings:calendar_file", args=[booking.uid, other.manage_token])).status_code == 404
    assert client.get(reverse("bookings:calendar_file", args=[booking.uid, "forged"])).status_code == 404


def test_a_booking_without_a_link_yet_points_the_calendar_at_the_meeting_type(client, committed, member):
    phone = make_meeting_type(member.organization, [member], name="Call", location=MeetingType.Location.PHONE)
    booking = committed(book_through_service, meeting_type=phone, start=at(TUESDAY, "09:00"))
    assert not VideoMeeting.objects.filter(booking=booking).exists()
    google = _query(_calendar_links(client, booking)["calendar.google.com"])
    assert google["location"] == phone.location_detail
