"""Calendar invitations (iCalendar, RFC 5545 / iTIP RFC 5546), built with the icalendar library.

One UID per booking for its whole life; SEQUENCE goes up with every change, so calendar apps
update the event in place. A cancellation is METHOD:CANCEL with the same UID (calendar apps
handle it better than a REQUEST with STATUS:CANCELLED).
"""

from dataclasses import dataclass, field
from datetime import UTC, datetime

from icalendar import Calendar, Event, vCalAddress, vText

PRODID = "-//TeamSchedulerPro//Bookings//EN"


@dataclass(frozen=True)
class Person:
    name: str
    email: str


@dataclass(frozen=True)
class Invitation:
    uid: str
    sequence: int
    method: str  # "REQUEST" or "CANCEL"
    start: datetime
    end: datetime
    summary: str
    description: str
    location: str
    organizer: Person
    attendees: tuple[Person, ...]
    url: str = ""
    stamp: datetime = field(default_factory=lambda: datetime.now(UTC))


def _address(person: Person, **params) -> vCalAddress:
    address = vCalAddress(f"mailto:{person.email}")
    address.params["CN"] = vText(person.name)
    for key, value in params.items():
        address.params[key] = vText(value)
    return address


def to_ics(invitation: Invitation) -> bytes:
    if invitation.method not in ("REQUEST", "CANCEL"):
        raise ValueError(f"unsupported METHOD {invitation.method!r}")
    calendar = Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("method", invitation.method)

    event = Event()
    event.add("uid", invitation.uid)
    event.add("sequence", invitation.sequence)
    event.add("dtstamp", invitation.stamp.astimezone(UTC))
    event.add("dtstart", invitation.start.astimezone(UTC))
    event.add("dtend", invitation.end.astimezone(UTC))
    event.add("summary", invitation.summary)
    event.add("description", invitation.description)
    if invitation.location:
        event.add("location", invitation.location)
    if invitation.url:
        event.add("url", invitation.url)
    event.add("status", "CANCELLED" if invitation.method == "CANCEL" else "CONFIRMED")
    event.add("transp", "OPAQUE")
    event.add("organizer", _address(invitation.organizer))
    for attendee in invitation.attendees:
        event.add("attendee", _address(attendee, ROLE="REQ-PARTICIPANT", PARTSTAT="ACCEPTED", RSVP="FALSE"))
    calendar.add_component(event)
    return calendar.to_ical()
