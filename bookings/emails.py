"""Booking emails: who gets what, in their own time zone, with a calendar invitation — once.

Each email is an EmailDelivery row (booking, kind, sequence, recipient), written when the change
is recorded and claimed before the SMTP call, so a retried or duplicated task sends nothing
twice. A claim left behind by a worker that died mid-send is taken over once it is older than
any send can take (the email may then go out twice in that one crash case: a missing
confirmation is worse than a duplicate). Whatever goes wrong while sending ends in a recorded
state: waiting for a retry (temporary), or failed (permanent), never a row left `sending`.
"""

import contextlib
import logging
import re
import smtplib
import socket
import time
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from django.conf import settings
from django.core.mail import EmailMessage, EmailMultiAlternatives, get_connection
from django.core.mail.backends.smtp import EmailBackend as SmtpBackend
from django.db import DatabaseError, connection
from django.db.models import F, Q
from django.template.loader import render_to_string
from django.utils import timezone, translation

from tsp.formatting import override_format_locale
from tsp.tasks import backoff_seconds

from .invitations import Invitation, Person, to_ics
from .models import Booking, EmailDelivery

logger = logging.getLogger(__name__)

Kind = EmailDelivery.Kind
State = EmailDelivery.State
# The emails that carry the video link: they wait (a little) for the meeting to be made.
LINK_KINDS = frozenset({Kind.CONFIRMATION, Kind.UPDATE})
# How long a failed write of an email's outcome is retried (e.g. the database connection was cut
# while the message was on its way): giving up leaves the claim to expire, and the email could
# then go out twice.
RECORD_RETRY_SECONDS = 30


def claim_timeout() -> timedelta:
    """Longer than any one send can take (connect, greeting, TLS, login, data: each may take up to
    EMAIL_TIMEOUT), so a claim older than this belongs to a worker that died."""
    return timedelta(seconds=3 * settings.EMAIL_TIMEOUT)


class Outcome:
    SENT = "sent"
    BUSY = "busy"  # another worker has it
    RETRY = "retry"  # this recipient, later
    OUTAGE = "outage"  # the mail server is not taking anything now
    FAILED = "failed"


@dataclass(frozen=True)
class Recipient:
    email: str
    name: str
    time_zone: str
    is_client: bool
    locale: str = ""  # BCP 47; empty: not known, the default format is used
    # A host handed the booking on a reschedule: it was never theirs at the old time.
    newly_assigned: bool = False
    member_id: int | None = None  # the host's TeamMember; None for the client


def client_of(booking: Booking) -> Recipient:
    return Recipient(booking.client_email, booking.client_name, booking.client_time_zone, True, booking.client_locale)


def host_recipient(member, *, newly_assigned: bool = False) -> Recipient:
    return Recipient(
        member.user.email, member.display_name, member.time_zone, False, member.locale, newly_assigned, member.pk
    )


def hosts_of(booking: Booking, members=None) -> list[Recipient]:
    members = booking.hosts_in_order() if members is None else members
    return [host_recipient(member) for member in members]


def recipient_of(row: EmailDelivery, booking: Booking) -> Recipient:
    """Who a recorded email goes to, with their current name, zone and locale."""
    if row.member is not None:
        return host_recipient(row.member, newly_assigned=row.newly_assigned)
    if row.recipient == booking.client_email:
        return client_of(booking)
    return Recipient(row.recipient, row.recipient, "UTC", False)  # a host since removed from the team


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


def invitation(booking: Booking, *, kind: str, recipient: Recipient, hosts=None) -> Invitation:
    hosts = booking.hosts_in_order() if hosts is None else hosts
    organizer = (
        Person(hosts[0].display_name, hosts[0].user.email)
        if hosts
        else Person(booking.organization.name, settings.DEFAULT_FROM_EMAIL)
    )
    meeting = _video(booking)
    lines = [f"{booking.meeting_type.name}: {booking.client_name} with {', '.join(h.display_name for h in hosts)}"]
    if meeting is not None:
        label = f" ({meeting.provider_label})" if meeting.provider_label else ""
        lines.append(f"Join{label}: {meeting.join_url}")
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
    # Read once for the email and its invitation: with several hosts, their order is a query.
    hosts = booking.hosts_in_order()
    context = {
        "booking": booking,
        "kind": kind,
        "recipient": recipient,
        "hosts": hosts,
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
        subject = one_line(render_to_string("bookings/email/subject.txt", context))
        text = render_to_string("bookings/email/body.txt", context)
        html = render_to_string("bookings/email/body.html", context)
    message = EmailMultiAlternatives(subject, text, settings.DEFAULT_FROM_EMAIL, [recipient.email])
    message.attach_alternative(html, "text/html")
    if kind != Kind.ACTION_NEEDED:
        method = "CANCEL" if kind == Kind.CANCELLATION else "REQUEST"
        ics = to_ics(invitation(booking, kind=kind, recipient=recipient, hosts=hosts))
        # Django adds the charset parameter itself; naming it here too would repeat it.
        message.attach("invite.ics", ics, f"text/calendar; method={method}")
    return message


def one_line(text: str) -> str:
    """A header value: control characters (a newline in a client's name) become spaces, so the
    subject can never break the message's headers."""
    return " ".join(re.sub(r"[\x00-\x1f\x7f]", " ", text).split())


# ---------------------------------------------------------------- the mail server connection


class Mailer:
    """One connection to the mail server for the emails of a run (a booking's client and hosts, or a
    sweep's), instead of a connect, greeting, TLS and login (and a QUIT) for each email.

    A connection used before is asked first whether it is still there (NOOP: the server may have closed
    it while the worker did something else), and a new one is opened when it is not. After any failure
    the connection is dropped, so a broken one never carries the next email. A server that refuses one
    more message on a connection it already took one on (421 to MAIL: nothing was sent) gets the message
    again on a new connection. Other email backends (the outbox, a file, the console, tests) get one
    backend per email, as before."""

    def __init__(self):
        self._smtp: SmtpBackend | None = None

    def __enter__(self) -> "Mailer":
        return self

    def __exit__(self, *_exc) -> None:
        self.close()

    def send(self, message: EmailMessage) -> None:
        reused = self._smtp is not None and self._still_open()
        try:
            self._backend().send_messages([message])
        except smtplib.SMTPSenderRefused as error:
            self.close()
            if not (reused and error.smtp_code == 421):
                raise
            self._send_on_new_connection(message)
        except BaseException:
            self.close()
            raise

    def _send_on_new_connection(self, message: EmailMessage) -> None:
        try:
            self._backend().send_messages([message])
        except BaseException:
            self.close()
            raise

    def _backend(self):
        if self._smtp is not None:
            return self._smtp
        backend = get_connection()
        if isinstance(backend, SmtpBackend):
            # Opened here, not by send_messages, which would close a connection it opened itself.
            backend.open()
            self._smtp = backend
        return backend

    def _still_open(self) -> bool:
        try:
            if self._smtp.connection is not None and self._smtp.connection.noop()[0] == 250:
                return True
        except (smtplib.SMTPException, OSError):
            pass
        self.close()
        return False

    def close(self) -> None:
        backend, self._smtp = self._smtp, None
        if backend is not None:
            # The emails sent on it are recorded already; a server that hangs up on QUIT changes nothing.
            with contextlib.suppress(smtplib.SMTPException, OSError):
                backend.close()


# ---------------------------------------------------------------- sending once


def claim(row: EmailDelivery, *, now: datetime) -> bool:
    """Take the row for sending: waiting, or claimed by a worker that has died since."""
    claimable = Q(state=State.PENDING) | Q(state=State.SENDING, next_attempt_at__lte=now)
    return (
        EmailDelivery.objects.filter(claimable, pk=row.pk).update(
            state=State.SENDING,
            claimed_at=now,
            attempts=F("attempts") + 1,
            next_attempt_at=now + claim_timeout(),
        )
        == 1
    )


def _classify(error: Exception) -> str:
    """OUTAGE (the server takes nothing now: retry, and try no other email in this round),
    RETRY (this recipient, later) or FAILED (permanent)."""
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        temporary = all(400 <= code < 500 for code, _ in error.recipients.values())
        return Outcome.RETRY if temporary else Outcome.FAILED
    if isinstance(error, smtplib.SMTPAuthenticationError):
        return Outcome.OUTAGE  # our credentials, not this email: sent once they are fixed
    if isinstance(error, smtplib.SMTPResponseException):
        return Outcome.RETRY if 400 <= error.smtp_code < 500 else Outcome.FAILED
    if isinstance(error, smtplib.SMTPServerDisconnected | smtplib.SMTPConnectError | socket.error | TimeoutError):
        return Outcome.OUTAGE
    if isinstance(error, DatabaseError):
        return Outcome.RETRY
    return Outcome.FAILED  # a message that can't be built (BadHeaderError, a template error…)


def _record(row_id: int, **fields) -> None:
    """Write an email's outcome, reconnecting if the database connection was lost meanwhile."""
    deadline = time.monotonic() + RECORD_RETRY_SECONDS
    while True:
        try:
            EmailDelivery.objects.filter(pk=row_id).update(**fields)
            return
        except DatabaseError:
            if time.monotonic() > deadline or connection.in_atomic_block:
                raise
            logger.warning("email %s: could not record its outcome; reconnecting", row_id, exc_info=True)
            connection.close()
            time.sleep(1)


def retry_delay(attempts: int, *, retry_after: float | None = None) -> timedelta:
    return timedelta(
        seconds=backoff_seconds(
            max(0, attempts - 1),
            base=settings.RETRY_BASE_SECONDS,
            cap=max(settings.RETRY_BASE_SECONDS, settings.FOLLOW_UP_SWEEP_SECONDS),
            retry_after=retry_after,
        )
    )


def send(row: EmailDelivery, booking: Booking, *, now: datetime, mailer: Mailer | None = None) -> str:
    """Send a claimed row's email (on the mailer's connection, or one of its own) and record how it
    went. Never raises for the email itself."""
    recipient = recipient_of(row, booking)
    try:
        message = compose(booking, kind=row.kind, recipient=recipient, previous_start=row.previous_start)
        if mailer is None:
            message.send()
        else:
            mailer.send(message)
    except Exception as error:  # noqa: BLE001  (every failure must end in a recorded state)
        return _failed(row, error, now=now)
    _record(row.pk, state=State.SENT, sent_at=timezone.now(), last_error="", next_attempt_at=None)
    return Outcome.SENT


def _failed(row: EmailDelivery, error: Exception, *, now: datetime) -> str:
    outcome = _classify(error)
    message = f"{error.__class__.__name__}: {error}"
    budget = timedelta(hours=settings.EMAIL_RETRY_HOURS)
    if outcome != Outcome.FAILED and now - row.created_at >= budget:
        outcome, message = Outcome.FAILED, f"Still failing after {settings.EMAIL_RETRY_HOURS:g} h. {message}"
    if outcome == Outcome.FAILED:
        _record(row.pk, state=State.FAILED, last_error=message[:500], next_attempt_at=None)
        logger.warning(
            "booking %s: %s email not sent (%s)",
            row.booking_id,
            row.kind,
            error.__class__.__name__,
            exc_info=not isinstance(error, smtplib.SMTPException),
        )
        return outcome
    attempts = EmailDelivery.objects.values_list("attempts", flat=True).get(pk=row.pk)
    _record(row.pk, state=State.PENDING, last_error=message[:500], next_attempt_at=now + retry_delay(attempts))
    logger.info("booking %s: %s email to be retried (%s)", row.booking_id, row.kind, error.__class__.__name__)
    return outcome


def recipients_for(booking: Booking, kind: str, *, previous_host_ids=()) -> list[tuple[Recipient, str]]:
    """(recipient, kind) pairs for an event. On a reschedule that changed hosts, a host who lost the
    booking gets a cancellation and one who was handed it is told it was moved to them."""
    members = booking.hosts_in_order()
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
