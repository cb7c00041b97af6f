"""Booking emails: who gets what, in their own time zone, with a calendar invitation — once.

Each email is recorded as an EmailDelivery row (booking, kind, sequence, recipient) and claimed
before the SMTP call, so a retried or duplicated task sends nothing twice. A claim left behind by
a worker that died mid-send is taken over after STALE_CLAIM (the email may then go out twice in
that one crash case: a missing confirmation is worse than a duplicate).
"""

import logging
import smtplib
import socket
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db.models import F, Q
from django.template.loader import render_to_string
from django.utils import timezone, translation

from tsp.formatting import override_format_locale

from .invitations import Invitation, Person, to_ics
from .models import Booking, EmailDelivery

logger = logging.getLogger(__name__)

STALE_CLAIM = timedelta(minutes=10)
Kind = EmailDelivery.Kind


class TemporaryEmailFailure(Exception):
    """The mail server could not take the message now; try again later."""


@dataclass(frozen=True)
class Recipient:
    email: str
    name: str
    time_zone: str
    is_client: bool
    locale: str = ""  # BCP 47; empty: not known, the default format is used
    # A host handed the booking on a reschedule: it was never theirs at the old time.
    newly_assigned: bool = False


def _hosts(booking: Booking):
    """The booking's hosts in the meeting type's host order (as integrations.video picks the video
    host): the first is the invitation's organizer."""
    members = [row.member for row in booking.host_rows.all() if row.is_active or booking.is_cancelled]
    if len(members) > 1:
        order = dict(booking.meeting_type.host_links.values_list("member_id", "position"))
        members.sort(key=lambda member: (order.get(member.pk, 1_000), member.pk))
    return members


def client_of(booking: Booking) -> Recipient:
    return Recipient(booking.client_email, booking.client_name, booking.client_time_zone, True, booking.client_locale)


def hosts_of(booking: Booking, members=None) -> list[Recipient]:
    members = _hosts(booking) if members is None else members
    return [Recipient(m.user.email, m.display_name, m.time_zone, False, m.locale) for m in members]


# ---------------------------------------------------------------- composing


def _video(booking: Booking):
    meeting = booking.video_meeting_or_none
    return meeting if meeting is not None and meeting.is_ready else None


def _where(booking: Booking) -> str:
    meeting = _video(booking)
    if meeting is not None:
        return meeting.join_url
    return booking.meeting_type.location_detail or booking.meeting_type.get_location_display()


def _link_missing(booking: Booking) -> bool:
    """A video meeting type whose link is not there: the emails must say so plainly."""
    return booking.meeting_type.is_video and not booking.is_cancelled and _video(booking) is None


def invitation(booking: Booking, *, kind: str, recipient: Recipient) -> Invitation:
    hosts = _hosts(booking)
    organizer = (
        Person(hosts[0].display_name, hosts[0].user.email)
        if hosts
        else Person(booking.organization.name, settings.DEFAULT_FROM_EMAIL)
    )
    meeting = _video(booking)
    lines = [f"{booking.meeting_type.name}: {booking.client_name} with {', '.join(h.display_name for h in hosts)}"]
    if meeting is not None:
        lines.append(f"Join: {meeting.join_url}")
        if meeting.passcode:
            lines.append(f"Passcode: {meeting.passcode}")
    elif _link_missing(booking):
        lines.append("The video link will be sent by the host.")
    elif booking.meeting_type.location_detail:
        lines.append(f"{booking.meeting_type.get_location_display()}: {booking.meeting_type.location_detail}")
    if booking.client_notes:
        lines.append(f"Notes: {booking.client_notes}")
    if recipient.is_client and not booking.is_cancelled:
        lines.append(f"Reschedule: {settings.SITE_URL}{booking.reschedule_url()}")
        lines.append(f"Cancel: {settings.SITE_URL}{booking.cancel_url()}")
    attendees = [Person(booking.client_name, booking.client_email)]
    attendees += [Person(h.display_name, h.user.email) for h in hosts]
    if kind == Kind.CANCELLATION and recipient.email not in {person.email for person in attendees}:
        # A host removed from the booking (moved to another host): RFC 5546 wants the CANCEL to
        # list the attendee it removes.
        attendees.append(Person(recipient.name, recipient.email))
    return Invitation(
        uid=f"{booking.uid}@teamschedulerpro",
        sequence=booking.sequence,
        method="CANCEL" if kind == Kind.CANCELLATION else "REQUEST",
        start=booking.start,
        end=booking.end,
        summary=f"{booking.meeting_type.name} ({booking.organization.name})",
        description="\n".join(lines),
        location=_where(booking),
        url=meeting.join_url if meeting is not None else "",
        organizer=organizer,
        attendees=tuple(attendees),
    )


def compose(booking: Booking, *, kind: str, recipient: Recipient, previous_start: datetime | None = None):
    context = {
        "booking": booking,
        "kind": kind,
        "recipient": recipient,
        "hosts": _hosts(booking),
        "meeting": _video(booking),
        "link_missing": _link_missing(booking),
        "previous_start": previous_start,
        "site_url": settings.SITE_URL,
    }
    # Dates and times as the recipient's own browser shows them: their zone and their locale.
    with (
        translation.override(settings.LANGUAGE_CODE),
        timezone.override(recipient.time_zone),
        override_format_locale(recipient.locale),
    ):
        subject = render_to_string("bookings/email/subject.txt", context).strip()
        text = render_to_string("bookings/email/body.txt", context)
        html = render_to_string("bookings/email/body.html", context)
    message = EmailMultiAlternatives(subject, text, settings.DEFAULT_FROM_EMAIL, [recipient.email])
    message.attach_alternative(html, "text/html")
    if kind != Kind.ACTION_NEEDED:
        method = "CANCEL" if kind == Kind.CANCELLATION else "REQUEST"
        ics = to_ics(invitation(booking, kind=kind, recipient=recipient))
        # Django adds the charset parameter itself; naming it here too would repeat it.
        message.attach("invite.ics", ics, f"text/calendar; method={method}")
    return message


# ---------------------------------------------------------------- sending once


def _claim(delivery: EmailDelivery) -> bool:
    stale = timezone.now() - STALE_CLAIM
    claimable = Q(state=EmailDelivery.State.PENDING) | Q(state=EmailDelivery.State.SENDING, claimed_at__lt=stale)
    return (
        EmailDelivery.objects.filter(claimable, pk=delivery.pk).update(
            state=EmailDelivery.State.SENDING, claimed_at=timezone.now(), attempts=F("attempts") + 1
        )
        == 1
    )


def _is_temporary(error: Exception) -> bool:
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        return all(400 <= code < 500 for code, _ in error.recipients.values())
    if isinstance(error, smtplib.SMTPResponseException):
        return 400 <= error.smtp_code < 500
    return isinstance(error, smtplib.SMTPServerDisconnected | smtplib.SMTPConnectError | socket.error | TimeoutError)


def deliver(booking: Booking, *, kind: str, recipient: Recipient, previous_start: datetime | None = None) -> str:
    """Send one email unless it was sent (or is being sent) already. Returns the final state."""
    delivery, _ = EmailDelivery.objects.get_or_create(
        booking=booking, kind=kind, sequence=booking.sequence, recipient=recipient.email
    )
    if not _claim(delivery):
        return EmailDelivery.objects.values_list("state", flat=True).get(pk=delivery.pk)
    try:
        compose(booking, kind=kind, recipient=recipient, previous_start=previous_start).send()
    except (smtplib.SMTPException, OSError) as error:
        temporary = _is_temporary(error)
        state = EmailDelivery.State.PENDING if temporary else EmailDelivery.State.FAILED
        EmailDelivery.objects.filter(pk=delivery.pk).update(
            state=state, last_error=f"{error.__class__.__name__}: {error}"[:500]
        )
        logger.warning("booking %s: %s email not sent (%s)", booking.pk, kind, error.__class__.__name__)
        if temporary:
            raise TemporaryEmailFailure(str(error)) from error
        return state
    EmailDelivery.objects.filter(pk=delivery.pk).update(
        state=EmailDelivery.State.SENT, sent_at=timezone.now(), last_error=""
    )
    return EmailDelivery.State.SENT


def give_up(booking: Booking, kind: str) -> None:
    """After the last retry: what the event left unsent is failed, and shown to admins on the booking.
    Its emails are those of recipients_for() and the hosts' "action needed"."""
    kinds = {kind, Kind.ACTION_NEEDED} | ({Kind.CANCELLATION} if kind == Kind.UPDATE else set())
    EmailDelivery.objects.filter(
        booking=booking, kind__in=kinds, sequence=booking.sequence, state=EmailDelivery.State.PENDING
    ).update(state=EmailDelivery.State.FAILED)


def recipients_for(booking: Booking, kind: str, *, previous_host_ids=()) -> list[tuple[Recipient, str]]:
    """(recipient, kind) pairs for an event. On a reschedule that changed hosts, a host who lost the
    booking gets a cancellation and one who was handed it is told it was moved to them."""
    members = _hosts(booking)
    hosts = hosts_of(booking, members)
    if kind == Kind.UPDATE and previous_host_ids:
        before = set(previous_host_ids)
        hosts = [replace(host, newly_assigned=m.pk not in before) for host, m in zip(hosts, members, strict=True)]
    pairs = [(client_of(booking), kind)] + [(host, kind) for host in hosts]
    if kind == Kind.UPDATE and previous_host_ids:
        current = {row.member_id for row in booking.host_rows.all()}
        from members.models import TeamMember

        gone = TeamMember.objects.select_related("user").filter(pk__in=set(previous_host_ids) - current)
        pairs += [(host, Kind.CANCELLATION) for host in hosts_of(booking, list(gone))]
    return pairs
