"""What happens after a booking is created, moved or cancelled (runs in Celery tasks)."""

import logging
from datetime import datetime, timedelta

from django.db.models import (
    DateTimeField,
    DurationField,
    Exists,
    ExpressionWrapper,
    F,
    IntegerField,
    OuterRef,
    Prefetch,
    Q,
)
from django.db.models.functions import Cast

from integrations import video

from . import emails
from .models import Booking, BookingHost, EmailDelivery

logger = logging.getLogger(__name__)
Kind = EmailDelivery.Kind


def load(booking_id: int) -> Booking | None:
    return (
        Booking.objects.select_related("meeting_type", "organization", "video_meeting__host")
        .prefetch_related(Prefetch("host_rows", queryset=BookingHost.objects.select_related("member__user")))
        .filter(pk=booking_id)
        .first()
    )


def sync_video(booking_id: int, change: str) -> video.Outcome:
    booking = load(booking_id)
    if booking is None:
        return video.NOT_NEEDED
    if change == "link_changed":
        return video.NOT_NEEDED  # the service stored the typed link already
    if change == "cancelled":
        return video.delete_meeting(booking)
    if change == "rescheduled":
        return video.move_meeting(booking)
    return video.ensure_meeting(booking)


def video_gave_up(booking_id: int, reason: str) -> video.Outcome:
    booking = load(booking_id)
    if booking is None:
        return video.NOT_NEEDED
    return video.give_up(booking, reason)


def send_emails(
    booking: Booking, change: str, *, previous_start: datetime | None, previous_host_ids, action_needed: bool
) -> None:
    """The client and every host, each once, each in their own time zone; the host also gets an
    "action needed" email when the video link could not be made."""
    pairs = emails.recipients_for(booking, change, previous_host_ids=previous_host_ids)
    if action_needed and change != Kind.CANCELLATION:
        pairs += [(host, Kind.ACTION_NEEDED) for host in emails.hosts_of(booking)]
    temporary_failure = None
    for recipient, kind in pairs:
        # One address the server can't take now must not hold back the others' emails.
        try:
            emails.deliver(booking, kind=kind, recipient=recipient, previous_start=previous_start)
        except emails.TemporaryEmailFailure as error:
            temporary_failure = temporary_failure or error
    if temporary_failure is not None:
        raise temporary_failure


def send_due_reminders(*, now: datetime) -> int:
    """Reminders for confirmed bookings whose reminder time has come, for their current time only
    (the delivery is keyed by the booking's sequence: a moved booking gets a reminder for its new
    time, never one for the old)."""
    # (Cast: SQLite's duration arithmetic refuses a PositiveIntegerField operand.)
    minutes = Cast("meeting_type__reminder_minutes_before", IntegerField())
    before = ExpressionWrapper(minutes * timedelta(minutes=1), output_field=DurationField())
    reminders = EmailDelivery.objects.filter(booking=OuterRef("pk"), kind=Kind.REMINDER, sequence=OuterRef("sequence"))
    # Still to send: one a temporary failure put back (PENDING), or one a dead worker left behind.
    unsent = Q(state=EmailDelivery.State.PENDING) | Q(
        state=EmailDelivery.State.SENDING, claimed_at__lt=now - emails.STALE_CLAIM
    )
    due = (
        Booking.objects.filter(
            status=Booking.Status.CONFIRMED,
            start__gt=now,
            meeting_type__reminder_minutes_before__isnull=False,
            start__lte=now + timedelta(days=14),
        )
        .alias(reminder_at=ExpressionWrapper(F("start") - before, output_field=DateTimeField()))
        .filter(reminder_at__lte=now)
        .filter(~Exists(reminders) | Exists(reminders.filter(unsent)))
        .values_list("pk", flat=True)
    )
    sent = 0
    for booking_id in list(due):
        booking = load(booking_id)
        if booking is None or booking.is_cancelled or booking.start <= now:
            continue
        for recipient, _kind in emails.recipients_for(booking, Kind.REMINDER):
            try:
                emails.deliver(booking, kind=Kind.REMINDER, recipient=recipient)
            except emails.TemporaryEmailFailure:
                logger.info("booking %s: reminder to be retried on the next run", booking_id)
        sent += 1
    return sent


# A follow-up still running (the video step retries for up to about 11 minutes) must not be
# taken for a missed one; a duplicate would do no harm (every step is claimed in the database),
# only extra work.
MISSED_AFTER = timedelta(minutes=30)
MISSED_LOOKBACK = timedelta(days=2)


def missed_follow_ups(*, now: datetime) -> list[tuple[int, str, int]]:
    """(booking id, change, sequence) of recent changes whose follow-up never ran: no email of the
    booking's current sequence exists. That happens when the broker was down at the commit."""
    emailed = EmailDelivery.objects.filter(booking=OuterRef("pk"), sequence=OuterRef("sequence"))
    rows = (
        Booking.objects.filter(updated_at__lte=now - MISSED_AFTER, updated_at__gte=now - MISSED_LOOKBACK, start__gt=now)
        .filter(~Exists(emailed))
        .values_list("pk", "status", "sequence")
        .order_by("pk")
    )
    return [(pk, _change_of(status, sequence), sequence) for pk, status, sequence in rows]


def _change_of(status: str, sequence: int) -> str:
    if status == Booking.Status.CANCELLED:
        return Kind.CANCELLATION.value
    return (Kind.CONFIRMATION if sequence == 0 else Kind.UPDATE).value
