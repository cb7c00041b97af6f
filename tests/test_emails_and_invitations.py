"""What the client and the hosts receive when a meeting is booked, moved or cancelled: one email each,
in their own time zone, with a calendar invitation their calendar app can file, update and remove.

The clock stands at NOW, Monday 2026-12-07 06:00 UTC; hosts work Mon-Fri 09:00-17:00 in their own
zone. What follows a booking change (the video step, then the emails) runs in-process once the
transaction commits; Django's locmem backend collects the emails in mail.outbox unless a test
sends through a real SMTP server.
"""

import email
import re
import smtplib
import socket
from datetime import timedelta
from email import policy
from email.parser import BytesParser
from urllib.parse import urlsplit

import pytest
import time_machine
from aiosmtpd.controller import Controller
from django.conf import settings as django_settings
from django.core import mail
from django.core.mail.backends.locmem import EmailBackend as LocmemBackend
from django.urls import reverse
from icalendar import Calendar

from bookings import services, tasks
from bookings.models import Booking, EmailDelivery
from integrations import http
from integrations.models import VideoMeeting
from meetingtypes.models import MeetingType

from .booking_helpers import (
    NOW,
    TUESDAY,
    WEDNESDAY,
    at,
    make_booking,
    make_meeting_type,
)
from .zoom_helpers import (
    connect_member,
    sandbox_meetings,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("frozen_now")]

CLIENT_EMAIL = "casey@example.com"
TUESDAY_9_UTC = at(TUESDAY, "09:00")  # 04:00 in New York, 10:00 in Berlin
JOIN_URL = "https://us05web.zoom.us/j/81234567890?pwd=Zk9xRzVqT2h"
PASSCODE = "h7Kp2x"
Kind, State = EmailDelivery.Kind, EmailDelivery.State


@pytest.fixture
def bea(make_member, organization):
    return make_member(organization, name="Bea Berlin", email="bea@acme.example", time_zone="Europe/Berlin")


@pytest.fixture
def uma(make_member, organization):
    return make_member(organization, name="Uma Utc", email="uma@acme.example", time_zone="UTC")


@pytest.fixture
def book(committed):
    def make(meeting_type, start=TUESDAY_9_UTC, **client) -> Booking:
        return committed(
            services.book,
            meeting_type=meeting_type,
            start=start,
            client_name=client.get("name", "Casey Client"),
            client_email=client.get("email", CLIENT_EMAIL),
            client_notes=client.get("notes", ""),
            client_time_zone=client.get("time_zone", "America/New_York"),
        )

    return make


def zoom_type(organization, hosts, **overrides) -> MeetingType:
    fields = {"name": "Strategy session", "location": MeetingType.Location.ZOOM, "location_detail": ""}
    return make_meeting_type(organization, hosts, **{**fields, **overrides})


# ---------------------------------------------------------------- reading what was sent


def mails_to(address: str) -> list:
    return [message for message in mail.outbox if message.to == [address]]


def only_mail_to(address: str):
    messages = mails_to(address)
    assert len(messages) == 1, [message.subject for message in messages]
    return messages[0]


def html_of(message) -> str:
    bodies = [content for content, mimetype in message.alternatives if mimetype == "text/html"]
    assert len(bodies) == 1, message.alternatives
    return bodies[0]


def invitation_part(parsed):
    parts = [part for part in parsed.iter_attachments() if part.get_filename() == "invite.ics"]
    assert len(parts) == 1, [part.get_filename() for part in parsed.iter_attachments()]
    return parts[0]


def invitation(message, method: str = "REQUEST"):
    """The invite.ics of a sent email, checked as a calendar app sees it: its one VEVENT."""
    raw = message.message().as_bytes()
    part = invitation_part(BytesParser(policy=policy.default).parsebytes(raw))
    assert part.get_content_type() == "text/calendar"
    assert part.get_param("method") == method
    # Each MIME parameter once (a repeated one is ambiguous for mail clients), read without the
    # modern parser's tidying.
    (raw_part,) = [p for p in email.message_from_bytes(raw).walk() if p.get_filename() == "invite.ics"]
    names = [name.lower() for name, _value in raw_part.get_params()[1:]]
    assert sorted(names) == sorted(set(names)), raw_part["Content-Type"]
    return event_of(part.get_content().encode(), method)


def event_of(ics: bytes, method: str = "REQUEST"):
    calendar = Calendar.from_ical(ics)
    assert str(calendar["METHOD"]) == method
    events = calendar.walk("VEVENT")
    assert len(events) == 1
    return events[0]


def people(event, name: str) -> dict[str, str]:
    """{'mailto:…': 'Common Name'} of the event's ATTENDEEs (or ORGANIZER)."""
    values = event.get(name, [])
    values = values if isinstance(values, list) else [values]
    return {str(value).lower(): str(value.params.get("CN")) for value in values}


def links_in(text: str) -> list[str]:
    return re.findall(r"https?://[^\s\"'<>]+", text)


def manage_paths(text: str) -> dict[str, str]:
    """The client's reschedule and cancel links in a body, as paths for the test client."""
    found = {}
    for url in links_in(text.replace("&amp;", "&")):
        path = urlsplit(url).path
        if path.startswith("/booking/") and path.endswith(("/reschedule/", "/cancel/")):
            found[path.rstrip("/").rsplit("/", 1)[1]] = path
    return found


def add_zoom_meeting(booking, host) -> VideoMeeting:
    """The booking's meeting, made (as if by Zoom) before its follow-up runs."""
    meeting, _ = VideoMeeting.objects.update_or_create(
        booking=booking,
        defaults={
            "state": VideoMeeting.State.READY,
            "provider": "zoom",
            "host": host,
            "meeting_id": 81234567890,
            "join_url": JOIN_URL,
            "passcode": PASSCODE,
            "next_attempt_at": None,
        },
    )
    return meeting


def book_with_zoom_link(django_capture_on_commit_callbacks, meeting_type, host, start=TUESDAY_9_UTC) -> Booking:
    """A Zoom booking whose meeting is ready by the time the emails are written."""
    with django_capture_on_commit_callbacks(execute=False) as queued:
        booking = services.book(
            meeting_type=meeting_type,
            start=start,
            client_name="Casey Client",
            client_email=CLIENT_EMAIL,
            client_notes="",
            client_time_zone="America/New_York",
        )
    add_zoom_meeting(booking, host)
    for callback in queued:
        callback()
    booking.refresh_from_db()
    return booking


def deliveries(booking, **filters) -> list[tuple[str, str, int, str]]:
    rows = EmailDelivery.objects.filter(booking=booking, **filters).order_by("recipient", "kind", "sequence")
    return [(row.recipient, row.kind, row.sequence, row.state) for row in rows]


# ---------------------------------------------------------------- booking: who gets what


@pytest.mark.parametrize(
    "location, detail",
    [(MeetingType.Location.PHONE, "+49 30 901820"), (MeetingType.Location.IN_PERSON, "1 Harbour Street, Springfield")],
)
def test_a_booking_emails_the_client_and_the_host_once_each_in_their_own_time_zone(client, book, bea, location, detail):
    meeting_type = make_meeting_type(
        bea.organization, [bea], name="Intro call", location=location, location_detail=detail
    )

    book(meeting_type, notes="Bring the Q3 numbers.", time_zone="America/New_York")

    assert sorted(message.to[0] for message in mail.outbox) == sorted([CLIENT_EMAIL, "bea@acme.example"])
    to_client, to_host = only_mail_to(CLIENT_EMAIL), only_mail_to("bea@acme.example")
    where = str(MeetingType.Location(location).label)

    # The client: their own time (09:00 UTC is 04:00 in New York), who they meet, where, and their links.
    assert to_client.subject == "Confirmed: Intro call on Tue, Dec 8, 2026, 4:00 AM GMT-5"
    client_html = html_of(to_client)
    for body in (to_client.body, client_html):
        assert "Intro call" in body
        assert "Tuesday, December 8, 2026, 4:00 AM – 4:30 AM" in body and "Eastern Time — New York (GMT−5)" in body
        assert "10:00" not in body and "09:00" not in body
        assert "Bea Berlin" in body
        assert where in body and detail in body
    assert "Your meeting is booked." in to_client.body
    # Working links: the same in the text and the HTML, and they open the client's pages.
    links = manage_paths(to_client.body)
    assert set(links) == {"reschedule", "cancel"}
    assert manage_paths(client_html) == links
    for path in links.values():
        assert client.get(path).status_code == 200, path

    # The host: their own time (10:00 in Berlin), who booked, their notes, where; no client links.
    assert to_host.subject == "New booking: Intro call with Casey Client on Tue, Dec 8, 2026, 10:00 AM GMT+1"
    host_html = html_of(to_host)
    for body in (to_host.body, host_html):
        assert "Tuesday, December 8, 2026, 10:00 AM – 10:30 AM" in body
        assert "Central European Time — Berlin (GMT+1)" in body
        assert "04:00" not in body
        assert "Casey Client" in body and CLIENT_EMAIL in body
        assert "Bring the Q3 numbers." in body
        assert where in body and detail in body
        assert "/booking/" not in body
    assert "A client booked a meeting with you." in to_host.body


def test_names_and_notes_read_as_typed_in_the_text_and_subject_and_stay_text_in_the_html(book, bea):
    meeting_type = make_meeting_type(bea.organization, [bea], name="Intro call")

    book(meeting_type, name="Seán O'Brien & Co", notes='Budget < 5k & "urgent" <b>please</b>')

    to_host = only_mail_to("bea@acme.example")
    assert to_host.subject == "New booking: Intro call with Seán O'Brien & Co on Tue, Dec 8, 2026, 10:00 AM GMT+1"
    assert "Seán O'Brien & Co <casey@example.com>" in to_host.body
    assert 'Budget < 5k & "urgent" <b>please</b>' in to_host.body
    assert "&amp;" not in to_host.body and "&#x27;" not in to_host.body and "&lt;" not in to_host.body
    html = html_of(to_host)
    assert "Seán O&#x27;Brien &amp; Co" in html
    assert "&lt;b&gt;please&lt;/b&gt;" in html and "<b>please</b>" not in html
    assert "Hello Seán O'Brien & Co," in only_mail_to(CLIENT_EMAIL).body
    event = invitation(to_host)
    assert people(event, "ATTENDEE")[f"mailto:{CLIENT_EMAIL}"] == "Seán O'Brien & Co"
    assert 'Budget < 5k & "urgent" <b>please</b>' in str(event["DESCRIPTION"])


def test_every_email_carries_an_invitation_a_calendar_app_can_file(book, make_member, organization):
    # A collective meeting: Ola is first in the admin's host order though she joined the team later.
    ben = make_member(organization, name="Ben Second", email="ben@acme.example", time_zone="UTC")
    ola = make_member(organization, name="Ola First", email="ola@acme.example", time_zone="Europe/Berlin")
    meeting_type = make_meeting_type(
        organization,
        [ola, ben],
        name="Kick-off",
        location=MeetingType.Location.IN_PERSON,
        location_detail="1 Harbour Street, Springfield",
        assignment=MeetingType.Assignment.COLLECTIVE,
        duration_minutes=60,
    )

    booking = book(meeting_type, notes="Second floor, please.")

    # The client and each host: one email each, each host in their own zone, naming the others.
    assert sorted(m.to[0] for m in mail.outbox) == sorted([CLIENT_EMAIL, "ola@acme.example", "ben@acme.example"])
    assert "With: Ola First, Ben Second" in only_mail_to(CLIENT_EMAIL).body
    to_ola, to_ben = only_mail_to("ola@acme.example").body, only_mail_to("ben@acme.example").body
    assert "Tuesday, December 8, 2026, 10:00 AM – 11:00 AM" in to_ola
    assert "Central European Time — Berlin (GMT+1)" in to_ola
    assert "Tuesday, December 8, 2026, 9:00 AM – 10:00 AM" in to_ben
    assert "Coordinated Universal Time — UTC (GMT+0)" in to_ben
    events = {}
    for message in mail.outbox:
        attachment = message.attachments[0]
        assert attachment.filename == "invite.ics"
        assert attachment.mimetype.startswith("text/calendar") and "method=REQUEST" in attachment.mimetype
        events[message.to[0]] = invitation(message, "REQUEST")

    uids = {str(event["UID"]) for event in events.values()}
    assert len(uids) == 1 and str(booking.uid) in uids.pop()  # one UID, the booking's, in every copy
    for event in events.values():
        assert event["SEQUENCE"] == booking.sequence == 0
        assert event.get("DTSTAMP") is not None
        assert event.decoded("DTSTART") == booking.start == TUESDAY_9_UTC
        assert event.decoded("DTEND") == booking.end == TUESDAY_9_UTC + timedelta(minutes=60)
        assert event["DTSTART"].to_ical().endswith(b"Z") and event["DTEND"].to_ical().endswith(b"Z")
        assert people(event, "ORGANIZER") == {"mailto:ola@acme.example": "Ola First"}
        assert people(event, "ATTENDEE") == {
            f"mailto:{CLIENT_EMAIL}": "Casey Client",
            "mailto:ola@acme.example": "Ola First",
            "mailto:ben@acme.example": "Ben Second",
        }
        assert str(event["LOCATION"]) == "1 Harbour Street, Springfield"
        assert str(event["STATUS"]) == "CONFIRMED"
        assert "Kick-off" in str(event["SUMMARY"])
        assert "Second floor, please." in str(event["DESCRIPTION"])
        assert "URL" not in event  # no video link to give
    # Only the client's copy carries the links to change the booking.
    assert set(manage_paths(str(events[CLIENT_EMAIL]["DESCRIPTION"]))) == {"reschedule", "cancel"}
    assert manage_paths(str(events["ola@acme.example"]["DESCRIPTION"])) == {}


def test_a_zoom_booking_gives_the_join_link_and_passcode_everywhere(django_capture_on_commit_callbacks, bea):
    meeting_type = zoom_type(bea.organization, [bea])

    book_with_zoom_link(django_capture_on_commit_callbacks, meeting_type, bea)

    assert len(mail.outbox) == 2  # no "action needed": the link is there
    for address in (CLIENT_EMAIL, "bea@acme.example"):
        message = only_mail_to(address)
        for body in (message.body, html_of(message)):
            assert JOIN_URL in body
            assert PASSCODE in body
            assert "will send" not in body
        event = invitation(message)
        assert str(event["LOCATION"]) == JOIN_URL
        assert str(event["URL"]) == JOIN_URL
        assert JOIN_URL in str(event["DESCRIPTION"]) and PASSCODE in str(event["DESCRIPTION"])
    assert "Hosted on Bea Berlin's Zoom account." in only_mail_to("bea@acme.example").body


# ---------------------------------------------------------------- rescheduling


def test_a_moved_booking_updates_the_same_calendar_event_and_says_what_changed(committed, book, bea):
    meeting_type = make_meeting_type(bea.organization, [bea], name="Intro call")
    booking = book(meeting_type)
    first = invitation(only_mail_to(CLIENT_EMAIL))
    mail.outbox.clear()

    new_start = at(WEDNESDAY, "14:00")  # 09:00 in New York, 15:00 in Berlin
    booking = committed(services.reschedule, booking=booking, start=new_start)

    assert booking.sequence == 1
    assert sorted(message.to[0] for message in mail.outbox) == sorted([CLIENT_EMAIL, "bea@acme.example"])
    to_client, to_host = only_mail_to(CLIENT_EMAIL), only_mail_to("bea@acme.example")
    assert to_client.subject == "New time: Intro call on Wed, Dec 9, 2026, 9:00 AM GMT-5"
    assert "This meeting has a new time." in to_client.body
    assert "Wednesday, December 9, 2026, 9:00 AM – 9:30 AM" in to_client.body
    assert "It was on Tuesday, December 8, 2026, 4:00 AM." in to_client.body
    assert "It was on Tuesday, December 8, 2026, 4:00 AM." in html_of(to_client)
    assert "It was on Tuesday, December 8, 2026, 10:00 AM." in to_host.body
    assert set(manage_paths(to_client.body)) == {"reschedule", "cancel"}
    for message in (to_client, to_host):
        event = invitation(message, "REQUEST")
        assert event["UID"] == first["UID"]
        assert event["SEQUENCE"] == 1 > first["SEQUENCE"]
        assert event.decoded("DTSTART") == new_start
        assert event.decoded("DTEND") == new_start + timedelta(minutes=30)
        assert str(event["STATUS"]) == "CONFIRMED"


def test_a_round_robin_booking_moved_to_another_host_leaves_the_first_hosts_calendar(committed, book, bea, uma):
    meeting_type = make_meeting_type(bea.organization, [bea, uma], assignment=MeetingType.Assignment.ROUND_ROBIN)
    booking = book(meeting_type)
    first_host = booking.host_rows.get().member
    other_host = uma if first_host == bea else bea
    uid = invitation(only_mail_to(CLIENT_EMAIL))["UID"]
    mail.outbox.clear()
    # The first host is busy at the new time, so the booking goes to the other host.
    new_start = at(WEDNESDAY, "10:00")
    make_booking(meeting_type, [first_host], new_start)

    booking = committed(services.reschedule, booking=booking, start=new_start)

    assert booking.host_rows.get().member == other_host
    assert sorted(message.to[0] for message in mail.outbox) == sorted(
        [CLIENT_EMAIL, first_host.user.email, other_host.user.email]
    )
    # The host who lost the booking: the event leaves their calendar (same UID, METHOD:CANCEL).
    to_first = only_mail_to(first_host.user.email)
    assert "This meeting was moved to another host" in to_first.body
    cancel = invitation(to_first, "CANCEL")
    assert cancel["UID"] == uid and cancel["SEQUENCE"] == 1
    assert str(cancel["STATUS"]) == "CANCELLED"
    # RFC 5546: a CANCEL that removes an attendee lists that attendee.
    assert f"mailto:{first_host.user.email}" in people(cancel, "ATTENDEE")
    # The new host and the client: an update of the same event, with the new host in it.
    for address in (other_host.user.email, CLIENT_EMAIL):
        event = invitation(only_mail_to(address), "REQUEST")
        assert event["UID"] == uid and event["SEQUENCE"] == 1
        assert event.decoded("DTSTART") == new_start
        assert f"mailto:{other_host.user.email}" in people(event, "ATTENDEE")
        assert f"mailto:{first_host.user.email}" not in people(event, "ATTENDEE")
    assert other_host.display_name in only_mail_to(CLIENT_EMAIL).body
    # The new host never had it at the old time: told it was moved to them, not "It was on …".
    to_new = only_mail_to(other_host.user.email)
    assert to_new.subject.startswith("Moved to you: Intro call with Casey Client on ")
    for text in (to_new.body, html_of(to_new)):
        assert "A booking was moved to you." in text
        assert "It was on" not in text and "This meeting has a new time." not in text
    # The client still hears what changed.
    assert "It was on Tuesday, December 8, 2026, 4:00 AM." in only_mail_to(CLIENT_EMAIL).body


@pytest.fixture
def zoom_over_http(request):
    """The Zoom sandbox on the live server; afterwards the product's pooled keep-alive connection to
    it is closed, so no server thread is left waiting on it when the test database goes away."""
    yield request.getfixturevalue("zoom_sandbox")
    http._session.close()


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("zoom_over_http")
def test_a_moved_zoom_meeting_keeps_its_join_link_in_the_update_and_is_deleted_on_cancel(committed, bea):
    connect_member(bea, "bea.zoom@zoom-account.example")
    meeting_type = zoom_type(bea.organization, [bea])
    mail.outbox.clear()
    booking = committed(
        services.book,
        meeting_type=meeting_type,
        start=TUESDAY_9_UTC,
        client_name="Casey Client",
        client_email=CLIENT_EMAIL,
        client_notes="",
        client_time_zone="America/New_York",
    )
    meeting = VideoMeeting.objects.get(booking=booking)
    assert meeting.state == VideoMeeting.State.READY and meeting.join_url.startswith("http")
    join_url, passcode = meeting.join_url, meeting.passcode
    assert join_url in only_mail_to(CLIENT_EMAIL).body
    mail.outbox.clear()

    new_start = at(WEDNESDAY, "14:00")
    booking = committed(services.reschedule, booking=booking, start=new_start)

    assert VideoMeeting.objects.get(booking=booking).join_url == join_url  # moved, not replaced
    for address in (CLIENT_EMAIL, "bea@acme.example"):
        message = only_mail_to(address)
        assert message.subject.startswith("New time:")
        assert join_url in message.body and passcode in message.body
        event = invitation(message)
        assert str(event["LOCATION"]) == join_url and str(event["URL"]) == join_url
        assert event.decoded("DTSTART") == new_start and event["SEQUENCE"] == 1
    mail.outbox.clear()

    booking = committed(services.cancel, booking=booking, reason="Budget freeze")

    assert sandbox_meetings("bea.zoom@zoom-account.example") == []
    for address in (CLIENT_EMAIL, "bea@acme.example"):
        message = only_mail_to(address)
        assert join_url not in message.body  # a deleted meeting is not advertised
        event = invitation(message, "CANCEL")
        assert str(event["STATUS"]) == "CANCELLED" and event["SEQUENCE"] == 2


# ---------------------------------------------------------------- cancelling


def test_a_cancelled_booking_is_removed_from_every_calendar_with_the_reason(committed, book, bea):
    meeting_type = make_meeting_type(bea.organization, [bea], name="Intro call")
    booking = book(meeting_type)
    uid = invitation(only_mail_to(CLIENT_EMAIL))["UID"]
    mail.outbox.clear()

    booking = committed(services.cancel, booking=booking, reason="Our office is closed that day.")

    assert booking.status == Booking.Status.CANCELLED and booking.sequence == 1
    assert sorted(message.to[0] for message in mail.outbox) == sorted([CLIENT_EMAIL, "bea@acme.example"])
    for message in mail.outbox:
        assert message.subject.startswith("Cancelled: Intro call on Tue, Dec 8, 2026")
        for body in (message.body, html_of(message)):
            assert "This meeting was cancelled." in body
            assert "Our office is closed that day." in body
            assert "/booking/" not in body  # nothing left to reschedule or cancel
        event = invitation(message, "CANCEL")
        assert event["UID"] == uid
        assert str(event["STATUS"]) == "CANCELLED"
        assert event["SEQUENCE"] == 1
        assert event.decoded("DTSTART") == TUESDAY_9_UTC
        assert set(people(event, "ATTENDEE")) == {f"mailto:{CLIENT_EMAIL}", "mailto:bea@acme.example"}
    assert "Tuesday, December 8, 2026, 4:00 AM" in only_mail_to(CLIENT_EMAIL).body
    assert "Tuesday, December 8, 2026, 10:00 AM" in only_mail_to("bea@acme.example").body


# ---------------------------------------------------------------- no video link


def test_without_a_connected_zoom_the_booking_stands_the_client_is_told_and_the_host_asked_to_act(book, bea):
    meeting_type = zoom_type(bea.organization, [bea])  # Bea has not connected Zoom

    booking = book(meeting_type)

    assert booking.status == Booking.Status.CONFIRMED
    assert VideoMeeting.objects.get(booking=booking).state == VideoMeeting.State.FAILED
    to_client = only_mail_to(CLIENT_EMAIL)
    for body in (to_client.body, html_of(to_client)):
        assert re.search(r"Your host\b.*\bwill send", body), body
        assert "zoom.us" not in body and "Join" not in body and "Passcode" not in body
        assert 'href=""' not in body and "None" not in body
        # The only links are the client's own reschedule and cancel links.
        assert all("/booking/" in link for link in links_in(body))
    event = invitation(to_client)
    assert "URL" not in event
    assert "zoom.us" not in str(event["LOCATION"]) and "http" not in str(event["LOCATION"])
    assert "will be sent by the host" in str(event["DESCRIPTION"])

    host_mail = mails_to("bea@acme.example")
    assert sorted(message.subject.split(":")[0] for message in host_mail) == ["Action needed", "New booking"]
    action = next(message for message in host_mail if message.subject.startswith("Action needed"))
    assert "Strategy session" in action.subject
    assert "ACTION NEEDED" in action.body and "Casey Client" in action.body and CLIENT_EMAIL in action.body
    # Where to fix it: the booking's video link page (hosts and admins only, behind the login).
    add_link = reverse("bookings:video_link", args=[booking.pk])
    assert add_link in action.body and f'href="{django_settings.SITE_URL}{add_link}"' in html_of(action)
    assert "Tuesday, December 8, 2026, 10:00 AM" in action.body  # in the host's zone
    confirmation = next(message for message in host_mail if message.subject.startswith("New booking"))
    assert "please send one to the client" in confirmation.body
    assert "URL" not in invitation(confirmation)


# ---------------------------------------------------------------- exactly once


def sweep_at(moment):
    """The periodic sweep, run at `moment`."""
    with time_machine.travel(moment, tick=False):
        return tasks.sweep_follow_ups.apply().get()


def test_running_the_follow_up_again_sends_nothing_more(book, bea):
    meeting_type = make_meeting_type(bea.organization, [bea])
    booking = book(meeting_type)
    assert len(mail.outbox) == 2

    tasks.booking_changed.apply(args=[booking.pk])
    tasks.booking_changed.apply(args=[booking.pk, "created", 0, None, []])  # as queued by the previous version
    sweep_at(NOW + timedelta(minutes=5))

    assert len(mail.outbox) == 2
    assert deliveries(booking) == [
        ("bea@acme.example", Kind.CONFIRMATION, 0, State.SENT),
        (CLIENT_EMAIL, Kind.CONFIRMATION, 0, State.SENT),
    ]
    assert set(EmailDelivery.objects.values_list("attempts", flat=True)) == {1}
    assert set(EmailDelivery.objects.values_list("next_attempt_at", flat=True)) == {None}  # nothing left due


def test_an_email_a_dead_worker_was_sending_is_taken_over_once_its_claim_expires(
    django_capture_on_commit_callbacks, bea
):
    meeting_type = make_meeting_type(bea.organization, [bea])
    with django_capture_on_commit_callbacks(execute=False):  # the worker never got to run
        services.book(
            meeting_type=meeting_type,
            start=TUESDAY_9_UTC,
            client_name="Casey Client",
            client_email=CLIENT_EMAIL,
            client_notes="",
            client_time_zone="UTC",
        )
    # A worker claimed the client's email at NOW and died in the middle of the SMTP call.
    claim_ends = NOW + timedelta(seconds=3 * django_settings.EMAIL_TIMEOUT)
    EmailDelivery.objects.filter(recipient=CLIENT_EMAIL).update(
        state=State.SENDING, claimed_at=NOW, attempts=1, next_attempt_at=claim_ends
    )

    sweep_at(claim_ends - timedelta(seconds=1))
    # It may still be on its way: not sent a second time; the host's email is not held up by it.
    assert mails_to(CLIENT_EMAIL) == [] and len(mails_to("bea@acme.example")) == 1
    assert EmailDelivery.objects.get(recipient=CLIENT_EMAIL).state == State.SENDING

    sweep_at(claim_ends + timedelta(seconds=1))
    sweep_at(claim_ends + timedelta(seconds=2))
    assert len(mails_to(CLIENT_EMAIL)) == 1 and len(mails_to("bea@acme.example")) == 1
    assert EmailDelivery.objects.get(recipient=CLIENT_EMAIL).state == State.SENT


def test_an_event_overtaken_by_a_later_change_sends_nothing(committed, book, bea):
    meeting_type = make_meeting_type(bea.organization, [bea])
    booking = book(meeting_type)
    booking = committed(services.reschedule, booking=booking, start=at(WEDNESDAY, "10:00"))
    sent = len(mail.outbox)
    assert sent == 4

    # The confirmation's task arrives late, e.g. redelivered by the broker.
    tasks.booking_changed.apply(args=[booking.pk, "created", 0])
    assert len(mail.outbox) == sent

    booking = committed(services.cancel, booking=booking)
    sent = len(mail.outbox)
    tasks.booking_changed.apply(args=[booking.pk, "rescheduled", 1, TUESDAY_9_UTC.isoformat(), []])
    sweep_at(NOW + timedelta(minutes=5))
    assert len(mail.outbox) == sent
    assert not EmailDelivery.objects.filter(booking=booking, kind=Kind.CONFIRMATION, sequence__gt=0).exists()
    assert not EmailDelivery.objects.filter(booking=booking, kind=Kind.UPDATE, sequence=2).exists()


def test_an_email_still_unsent_when_the_booking_changes_again_gives_way_to_the_newer_one(
    monkeypatch, committed, book, bea
):
    server_down = [True]
    failing_server(
        monkeypatch, lambda message: smtplib.SMTPConnectError(421, "down") if server_down[0] else None
    )
    booking = book(make_meeting_type(bea.organization, [bea]))
    booking = committed(services.reschedule, booking=booking, start=at(WEDNESDAY, "10:00"))
    assert mail.outbox == []

    server_down[0] = False
    sweep_at(NOW + timedelta(minutes=2))

    # Each gets the email about the time that holds now, and nothing about the time that doesn't.
    assert sorted(message.subject.split(":")[0] for message in mail.outbox) == ["New time", "New time"]
    assert {state for *_, state in deliveries(booking, sequence=0)} == {State.SKIPPED}


# ---------------------------------------------------------------- the mail server fails


def failing_server(monkeypatch, error_for):
    """The SMTP connection raises error_for(message) when it returns an exception; records every try."""
    original = LocmemBackend.send_messages
    tries: list[str] = []

    def send_messages(self, messages):
        for message in messages:
            tries.append(message.to[0])
            error = error_for(message)
            if error is not None:
                raise error
        return original(self, messages)

    monkeypatch.setattr(LocmemBackend, "send_messages", send_messages)
    return tries


def badges(client, viewer) -> list[str]:
    client.force_login(viewer.user)
    response = client.get(reverse("bookings:list"))
    assert response.status_code == 200
    page = response.content.decode()
    assert "Casey Client" in page  # the viewer sees the booking itself
    return re.findall(r"[A-Z][a-z ]+ email to \S+ failed", page)


def test_a_server_that_hangs_up_is_tried_again_later_and_nobody_gets_two_emails(monkeypatch, book, bea):
    hang_ups = [smtplib.SMTPServerDisconnected("Connection unexpectedly closed")] * 3
    tries = failing_server(monkeypatch, lambda message: hang_ups.pop() if hang_ups else None)
    meeting_type = make_meeting_type(bea.organization, [bea])

    booking = book(meeting_type)
    waits = {}
    moment = NOW
    while EmailDelivery.objects.exclude(state=State.SENT).exists():
        retried = EmailDelivery.objects.filter(state=State.PENDING, attempts__gt=0, next_attempt_at__gt=moment)
        waits |= {(row.pk, row.attempts): (row.next_attempt_at - row.claimed_at).total_seconds() for row in retried}
        moment = min(EmailDelivery.objects.exclude(next_attempt_at=None).values_list("next_attempt_at", flat=True))
        sweep_at(moment)
        assert len(waits) < 10

    assert len(tries) == 5  # three hang-ups, then each email once
    assert len(mails_to(CLIENT_EMAIL)) == 1 and len(mails_to("bea@acme.example")) == 1
    assert {state for *_, state in deliveries(booking)} == {State.SENT}
    # Tried again after a jittered delay that is never shorter than the base, nor longer than a sweep.
    base, cap = django_settings.RETRY_BASE_SECONDS, django_settings.FOLLOW_UP_SWEEP_SECONDS
    assert len(waits) == 3 and all(base <= wait <= cap for wait in waits.values()), waits
    assert EmailDelivery.objects.get(recipient=CLIENT_EMAIL).last_error == ""


def test_a_refused_address_fails_at_once_and_only_admins_see_it_on_the_bookings_page(
    monkeypatch, client, book, bea, admin
):
    tries = failing_server(
        monkeypatch,
        lambda message: (
            smtplib.SMTPRecipientsRefused({CLIENT_EMAIL: (550, b"5.1.1 no such user")})
            if message.to == [CLIENT_EMAIL]
            else None
        ),
    )
    meeting_type = make_meeting_type(bea.organization, [bea])

    booking = book(meeting_type)
    sweep_at(NOW + timedelta(hours=1))

    assert tries.count(CLIENT_EMAIL) == 1  # a permanent failure is not retried
    assert mails_to(CLIENT_EMAIL) == [] and len(mails_to("bea@acme.example")) == 1
    failed = EmailDelivery.objects.get(booking=booking, recipient=CLIENT_EMAIL)
    assert failed.state == State.FAILED and failed.next_attempt_at is None
    assert "550" in failed.last_error and "no such user" in failed.last_error
    assert booking.status == Booking.Status.CONFIRMED  # the booking itself stands

    assert badges(client, admin) == [f"Confirmation email to {CLIENT_EMAIL} failed"]
    assert badges(client, bea) == []  # a host who isn't an admin sees the booking, not the badge


def test_when_the_server_stays_down_for_a_day_every_unsent_email_ends_failed_for_admins_to_see(
    monkeypatch, client, book, bea, admin
):
    tries = failing_server(
        monkeypatch, lambda message: smtplib.SMTPServerDisconnected("Connection unexpectedly closed")
    )
    meeting_type = zoom_type(bea.organization, [bea])  # no Zoom connected: Bea is also asked to act

    booking = book(meeting_type)
    for hours in (1, 12, 23.9):
        sweep_at(NOW + timedelta(hours=hours))
        assert {state for *_, state in deliveries(booking)} == {State.PENDING}  # still trying

    sweep_at(NOW + timedelta(hours=24, minutes=1))

    assert mail.outbox == []
    assert booking.status == Booking.Status.CONFIRMED
    # A server that is down is tried with one email a round, not with every email.
    assert len(tries) == 4 + 3
    assert deliveries(booking) == [
        ("bea@acme.example", Kind.ACTION_NEEDED, 0, State.FAILED),
        ("bea@acme.example", Kind.CONFIRMATION, 0, State.FAILED),
        (CLIENT_EMAIL, Kind.CONFIRMATION, 0, State.FAILED),
    ]
    assert all("SMTPServerDisconnected" in row.last_error for row in EmailDelivery.objects.all())
    assert sorted(badges(client, admin)) == [
        "Action needed email to bea@acme.example failed",
        "Confirmation email to bea@acme.example failed",
        f"Confirmation email to {CLIENT_EMAIL} failed",
    ]


# ---------------------------------------------------------------- a real SMTP server


class Collector:
    def __init__(self):
        self.envelopes = []

    async def handle_DATA(self, server, session, envelope):
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content))
        return "250 Message accepted for delivery"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def smtp_server(settings):
    collector = Collector()
    controller = Controller(collector, hostname="127.0.0.1", port=free_port())
    controller.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", controller.port
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    settings.EMAIL_TIMEOUT = 5
    yield collector
    controller.stop()


def test_the_emails_go_through_a_real_smtp_server_with_their_invitation(smtp_server, book, bea):
    meeting_type = make_meeting_type(bea.organization, [bea], name="Intro call")

    booking = book(meeting_type, name="Zoë Ångström", notes="Über den Vertrag sprechen. " * 8)

    assert mail.outbox == []  # this time it really went out
    assert sorted(rcpt for _sender, rcpts, _data in smtp_server.envelopes for rcpt in rcpts) == sorted(
        [CLIENT_EMAIL, "bea@acme.example"]
    )
    received = {
        rcpts[0]: BytesParser(policy=policy.default).parsebytes(data) for _, rcpts, data in smtp_server.envelopes
    }
    for sender, _rcpts, _data in smtp_server.envelopes:
        assert sender == "no-reply@teamschedulerpro.local"
    to_client, to_host = received[CLIENT_EMAIL], received["bea@acme.example"]
    assert to_client["Subject"] == "Confirmed: Intro call on Tue, Dec 8, 2026, 4:00 AM GMT-5"
    assert "Zoë Ångström" in to_host["Subject"]
    assert "Tuesday, December 8, 2026, 4:00 AM" in to_client.get_body(preferencelist=("plain",)).get_content()
    assert "Zoë Ångström" in to_host.get_body(preferencelist=("html",)).get_content()
    for message in (to_client, to_host):
        part = invitation_part(message)
        assert part.get_content_type() == "text/calendar" and part.get_param("method") == "REQUEST"
        event = event_of(part.get_content().encode())
        assert str(booking.uid) in str(event["UID"])
        assert event.decoded("DTSTART") == TUESDAY_9_UTC
        assert people(event, "ATTENDEE")[f"mailto:{CLIENT_EMAIL}"] == "Zoë Ångström"
        assert ("Über den Vertrag sprechen. " * 8).strip() in str(event["DESCRIPTION"])
    assert {state for *_, state in deliveries(booking)} == {State.SENT}
