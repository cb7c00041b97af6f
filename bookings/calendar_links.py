"""'Add to calendar' for the client's booking page: Google Calendar, Outlook and an .ics file.

The .ics is the invitation the emails carry (same UID and SEQUENCE), so a calendar that files it
and later gets an update email changes the same event. The Google and Outlook links hand the
event to another company in a URL: they get the description a host's invitation has, without
the client's reschedule and cancel links (the manage link is the key to the booking).
"""

from datetime import UTC
from urllib.parse import urlencode

from . import emails
from .invitations import to_ics
from .models import Booking, EmailDelivery

GOOGLE_URL = "https://calendar.google.com/calendar/render"
OUTLOOK_URLS = {
    "outlook_live": "https://outlook.live.com/calendar/0/deeplink/compose",
    "outlook_office": "https://outlook.office.com/calendar/0/deeplink/compose",
}
# Long notes would make a URL some browsers and servers refuse.
DETAILS_MAX_LENGTH = 1000


def _event(booking: Booking, *, for_client: bool):
    recipient = emails.client_of(booking)
    if not for_client:
        recipient = emails.Recipient(booking.client_email, booking.client_name, booking.client_time_zone, False)
    kind = EmailDelivery.Kind.CANCELLATION if booking.is_cancelled else EmailDelivery.Kind.CONFIRMATION
    return emails.invitation(booking, kind=kind, recipient=recipient)


def ics(booking: Booking) -> bytes:
    """The booking's calendar file for its client: the invitation of the emails, with their manage links."""
    return to_ics(_event(booking, for_client=True))


def _details(description: str) -> str:
    if len(description) <= DETAILS_MAX_LENGTH:
        return description
    return description[: DETAILS_MAX_LENGTH - 1] + "…"


def links(booking: Booking) -> dict[str, str]:
    """{"google": url, "outlook_live": url, "outlook_office": url}: times in UTC, the join link as
    the location, and no manage link anywhere."""
    event = _event(booking, for_client=False)
    start, end = event.start.astimezone(UTC), event.end.astimezone(UTC)
    google = {
        "action": "TEMPLATE",
        "text": event.summary,
        "dates": f"{start:%Y%m%dT%H%M%SZ}/{end:%Y%m%dT%H%M%SZ}",
        "details": _details(event.description),
        "location": event.location,
    }
    outlook = {
        "path": "/calendar/action/compose",
        "rru": "addevent",
        "subject": event.summary,
        "startdt": f"{start:%Y-%m-%dT%H:%M:%SZ}",
        "enddt": f"{end:%Y-%m-%dT%H:%M:%SZ}",
        "body": _details(event.description),
        "location": event.location,
    }
    result = {"google": f"{GOOGLE_URL}?{urlencode(google)}"}
    result.update({name: f"{url}?{urlencode(outlook)}" for name, url in OUTLOOK_URLS.items()})
    return result
