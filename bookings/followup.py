"""What follows a booking change: the video meeting, the emails and the events in the hosts' own
calendars (integrations/calendars/events.py), as steps that can't be lost.

One rule for all of it. Every step is a row with a state: the booking's VideoMeeting, one
EmailDelivery per recipient and one BookingCalendarEvent per host with a booking calendar, all
written in the transaction that records the change. A row says when it is due
(`next_attempt_at`): never tried yet, failed temporarily and its retry time has come, or
claimed by a worker longer ago than any attempt can take. The task queued at the commit runs
the new steps at once; one periodic sweep (`sweep`, every FOLLOW_UP_SWEEP_SECONDS) runs every
step that is due, whatever happened to the task: the broker was down, a worker died, the
database connection was cut, SMTP or Zoom was away for hours. Running a step twice is harmless,
because each is claimed with a conditional UPDATE first.

Emails wait for the video step, so that they carry the link, but at most
EMAIL_WAIT_FOR_LINK_SECONDS: a client's confirmation must not wait for a provider outage. When
the link is made after emails went out without it, those recipients get a "New video link"
email (a new sequence, so calendars update the event).
"""

import logging
import time
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import (
    DateTimeField,
    DurationField,
    Exists,
    ExpressionWrapper,
    F,
    IntegerField,
    Min,
    OuterRef,
    Prefetch,
)
from django.db.models.functions import Cast
from django.utils import timezone

from integrations import video
from integrations.calendars import events as calendar_events
from integrations.models import BookingCalendarEvent, VideoMeeting

from . import emails
from .models import Booking, BookingChange, BookingHost, EmailDelivery

logger = logging.getLogger(__name__)
Kind = EmailDelivery.Kind
State = EmailDelivery.State
SWEEP_BATCH = 500


def load(booking_id: int) -> Booking | None:
    """The booking with what its steps read, and whether it has calendar steps left (`has_calendar_steps`,
    so that a booking without any, the usual case, costs no query for them)."""
    calendar_steps = BookingCalendarEvent.objects.filter(booking=OuterRef("pk"), next_attempt_at__isnull=False)
    try:
        return (
            Booking.objects.select_related("meeting_type", "organization", "video_meeting__host")
            .prefetch_related(Prefetch("host_rows", queryset=BookingHost.objects.select_related("member__user")))
            .annotate(has_calendar_steps=Exists(calendar_steps))
            .get(pk=booking_id)
        )
    except Booking.DoesNotExist:
        return None


def _first_try_at(now: datetime) -> datetime:
    """New steps are due a little later for the sweep: the task queued at the commit runs them
    first, and the sweep only steps in when it never ran (the broker was down)."""
    return now + timedelta(seconds=settings.FOLLOW_UP_SWEEP_SECONDS / 2)


# ---------------------------------------------------------------- recording a change


def record_change(
    booking: Booking, change: str, *, previous_start: datetime | None = None, previous_host_ids=()
) -> None:
    """Write every step the change needs. Call inside the transaction that changes the booking."""
    change = BookingChange(change)
    now = timezone.now()
    first_try = _first_try_at(now)
    wait_until = now + timedelta(seconds=settings.EMAIL_WAIT_FOR_LINK_SECONDS)
    with transaction.atomic():
        video_pending = _record_video_step(booking, change, first_try)
        calendar_events.record_change(booking, due=first_try, only_new=change == BookingChange.CREATED)
        pairs = emails.recipients_for(booking, change.email_kind, previous_host_ids=previous_host_ids)
        EmailDelivery.objects.bulk_create(
            [
                _email_row(
                    booking,
                    recipient,
                    kind,
                    previous_start=previous_start,
                    due=wait_until if video_pending and kind in emails.LINK_KINDS else first_try,
                )
                for recipient, kind in pairs
            ],
            ignore_conflicts=True,  # recorded already (a repeated call): once is enough
        )


def _email_row(booking: Booking, recipient: emails.Recipient, kind: str, *, previous_start=None, due) -> EmailDelivery:
    return EmailDelivery(
        booking=booking,
        kind=kind,
        sequence=booking.sequence,
        recipient=recipient.email,
        member_id=recipient.member_id,
        previous_start=previous_start if kind == Kind.UPDATE else None,
        newly_assigned=recipient.newly_assigned,
        next_attempt_at=due,
    )


def _record_video_step(booking: Booking, change: BookingChange, first_try: datetime) -> bool:
    """The video work the change calls for. True when emails should wait for it."""
    if not booking.meeting_type.is_video or change == BookingChange.LINK_CHANGED:
        return False  # a typed link was stored by the change itself
    meeting = VideoMeeting.objects.select_for_update().filter(booking=booking).first()
    if meeting is None:
        if booking.is_cancelled:
            return False
        VideoMeeting.objects.create(booking=booking, next_attempt_at=first_try)
        return True
    if change == BookingChange.CREATED:
        return not meeting.is_settled  # recorded already
    if meeting.is_manual and change == BookingChange.RESCHEDULED:
        return False  # a typed link is not tied to a time: it stays
    fields = {"needs_sync": True, "updated_at": timezone.now()}
    if meeting.state == VideoMeeting.State.FAILED and not booking.is_cancelled:
        # A new time is a new chance: a host may have connected an account since.
        fields.update(state=VideoMeeting.State.PENDING, needs_sync=False, last_error="", passed_over=[])
    if meeting.state not in (VideoMeeting.State.CREATING, VideoMeeting.State.UNKNOWN):
        fields.update(attempts=0, next_attempt_at=first_try)  # a claim keeps its own expiry
    VideoMeeting.objects.filter(pk=meeting.pk).update(**fields)
    return not booking.is_cancelled


def video_gave_up(booking: Booking) -> None:
    """No link will be made: the hosts are asked to send one (inside the video step's transaction)."""
    if booking.is_cancelled:
        return
    now = timezone.now()
    EmailDelivery.objects.bulk_create(
        [_email_row(booking, host, Kind.ACTION_NEEDED, due=now) for host in emails.hosts_of(booking)],
        ignore_conflicts=True,
    )
    _emails_stop_waiting(booking, now)
    calendar_events.video_changed(booking, now=now)


def link_made(booking: Booking) -> None:
    """The video link was just stored (inside that transaction, the booking locked). Whoever got
    this sequence's email without it gets a "New video link" email, under a new sequence."""
    got_it_without = list(
        EmailDelivery.objects.filter(booking=booking, sequence=booking.sequence, kind__in=emails.LINK_KINDS)
        .filter(state__in=[State.SENT, State.SENDING])
        .select_related("member__user")
    )
    now = timezone.now()
    if got_it_without:
        booking.sequence += 1
        booking.save(update_fields=["sequence", "updated_at"])
        EmailDelivery.objects.bulk_create(
            [
                _email_row(booking, emails.recipient_of(row, booking), Kind.LINK_CHANGED, due=_first_try_at(now))
                for row in got_it_without
            ],
            ignore_conflicts=True,
        )
        _queue(booking.pk)
    _emails_stop_waiting(booking, now)
    calendar_events.video_changed(booking, now=now)


def _emails_stop_waiting(booking: Booking, now: datetime) -> None:
    """The video step is settled: the emails that waited for it are due now."""
    EmailDelivery.objects.filter(booking=booking, state=State.PENDING, attempts=0, next_attempt_at__gt=now).update(
        next_attempt_at=now
    )


def _queue(booking_id: int) -> None:
    from tsp.tasks import enqueue_after_commit

    from .tasks import booking_changed

    enqueue_after_commit(booking_changed, booking_id)


# ---------------------------------------------------------------- running the steps


class Round:
    """What one sweep learned: a server that is failing now gets one try a round, not one per step."""

    # Temporary refusals in a row (e.g. 451 to every message) that count as the server being down.
    REFUSALS_FOR_DOWN = 3

    def __init__(self):
        # One mail server connection for the round's emails; closed by whoever made the round.
        self.mailer = emails.Mailer()
        self.mail_down = False
        self.mail_works = False
        self.refusals = 0
        self.providers_down: set[str] = set()
        self.providers_work: set[str] = set()

    def mail_sent(self, now: datetime) -> None:
        """The mail server takes messages again: emails waiting out a backoff go in the next round."""
        if not self.mail_works:
            self.mail_works = True
            EmailDelivery.objects.filter(state=State.PENDING, attempts__gt=0, next_attempt_at__gt=now).update(
                next_attempt_at=now
            )

    def provider_answered(self, provider: str, now: datetime) -> None:
        if provider not in self.providers_work:
            self.providers_work.add(provider)
            VideoMeeting.objects.filter(
                provider=provider, state=VideoMeeting.State.PENDING, attempts__gt=0, next_attempt_at__gt=now
            ).update(next_attempt_at=now)


def run(booking_id: int, *, now: datetime | None = None, first_run: bool = False, round: Round | None = None) -> None:
    """Run the booking's steps that are due: the video meeting first, then the emails, then the
    events in the hosts' calendars (which carry the link too, and matter less than the emails)."""
    now = now or timezone.now()
    if round is not None:
        _run(booking_id, now=now, first_run=first_run, round=round)
        return
    round = Round()
    with round.mailer:  # a round of its own: its mail server connection ends with it
        _run(booking_id, now=now, first_run=first_run, round=round)


def _run(booking_id: int, *, now: datetime, first_run: bool, round: Round) -> None:
    booking = load(booking_id)
    if booking is None:
        return
    meeting = booking.video_meeting_or_none
    if meeting is not None and meeting.provider not in round.providers_down:
        outcome = video.run_step(booking, now=now, first_run=first_run)
        if outcome.outage:
            round.providers_down.add(meeting.provider)
        elif outcome.state == VideoMeeting.State.READY and meeting.provider:
            round.provider_answered(meeting.provider, now)
        booking = load(booking_id)
        meeting = booking.video_meeting_or_none
        if meeting is not None and meeting.is_settled:
            _emails_stop_waiting(booking, now)
    if not round.mail_down:
        _run_emails(booking, now=now, first_run=first_run, round=round)
    if booking.has_calendar_steps:
        round.providers_down |= calendar_events.run(
            booking, now=now, first_run=first_run, providers_down=round.providers_down
        )


def _run_emails(booking: Booking, *, now: datetime, first_run: bool, round: Round) -> None:
    meeting = booking.video_meeting_or_none
    link_coming = booking.meeting_type.is_video and meeting is not None and not meeting.is_settled
    # Every email of the booking in one query (a booking has a few per change): the ones to send, and
    # the newest sequence each recipient has.
    every = list(EmailDelivery.objects.filter(booking=booking).select_related("member__user").order_by("id"))
    rows = [row for row in every if row.state in (State.PENDING, State.SENDING)]
    if not rows:
        return
    newest = {}
    for row in every:
        newest[row.recipient] = max(row.sequence, newest.get(row.recipient, 0))
    for row in rows:
        due = row.next_attempt_at is not None and row.next_attempt_at <= now
        fresh = first_run and row.state == State.PENDING and row.attempts == 0
        if not (due or (fresh and not (link_coming and row.kind in emails.LINK_KINDS))):
            continue
        if newest[row.recipient] > row.sequence:
            # Changed again since: the newer email tells this recipient what holds now.
            EmailDelivery.objects.filter(pk=row.pk, state=row.state).update(state=State.SKIPPED, next_attempt_at=None)
            continue
        if not _claim(row, booking, now):
            continue
        outcome = emails.send(row, booking, now=now, mailer=round.mailer)
        round.refusals = round.refusals + 1 if outcome == emails.Outcome.RETRY else 0
        if outcome == emails.Outcome.OUTAGE or round.refusals >= round.REFUSALS_FOR_DOWN:
            round.mail_down = True
            return
        if outcome == emails.Outcome.SENT:
            round.mail_sent(now)


def _claim(row: EmailDelivery, booking: Booking, now: datetime) -> bool:
    """Claim the row; for an email that carries the video link, under the booking's lock, which
    the video step takes to store a link: so either this email has the link, or the video step
    sees it was sent without and follows it with the link."""
    if not (booking.meeting_type.is_video and row.kind in emails.LINK_KINDS):
        return emails.claim(row, now=now)
    with transaction.atomic():
        Booking.objects.select_for_update().filter(pk=booking.pk).values_list("pk").first()
        if not emails.claim(row, now=now):
            return False
        meeting = VideoMeeting.objects.select_related("host").filter(booking=booking).first()
    if meeting is not None:
        booking.video_meeting = meeting
    return True


def due_bookings(*, now: datetime, limit: int = SWEEP_BATCH) -> list[int]:
    """Bookings with a step that is due, the longest waiting first."""
    due = {}
    for model in (VideoMeeting, EmailDelivery, BookingCalendarEvent):
        rows = (
            model.objects.filter(next_attempt_at__lte=now)
            .values("booking_id")
            .annotate(first=Min("next_attempt_at"))
            .order_by("first")[:limit]
        )
        for row in rows:
            due[row["booking_id"]] = min(row["first"], due.get(row["booking_id"], row["first"]))
    return sorted(due, key=lambda booking_id: due[booking_id])[:limit]


def sweep(*, now: datetime | None = None) -> int:
    """Run every step that is due. Stops starting new bookings after one sweep interval, so
    sweeps don't pile up; the next one goes on. Returns how many bookings it ran."""
    now = now or timezone.now()
    stop_at = time.monotonic() + settings.FOLLOW_UP_SWEEP_SECONDS
    round = Round()
    done = 0
    with round.mailer:
        for booking_id in due_bookings(now=now):
            if time.monotonic() > stop_at:
                break
            try:
                run(booking_id, now=now, round=round)
            except Exception:  # one booking's trouble must not stop the others
                logger.exception("booking %s: follow-up step failed; it stays due", booking_id)
            done += 1
    return done


def resend(booking: Booking, *, now: datetime | None = None) -> int:
    """An admin's "Send again": the booking's failed steps are due again, with a fresh budget.
    Returns how many were failed."""
    now = now or timezone.now()
    rows = list(EmailDelivery.objects.filter(booking=booking).values_list("pk", "recipient", "sequence", "state"))
    newest = {}
    for _pk, recipient, sequence, _state in rows:
        newest[recipient] = max(sequence, newest.get(recipient, 0))
    # Only what still holds: a failed email whose recipient got a newer one since stays as it is.
    failed = [pk for pk, recipient, sequence, state in rows if state == State.FAILED and sequence == newest[recipient]]
    count = EmailDelivery.objects.filter(pk__in=failed).update(
        state=State.PENDING, attempts=0, next_attempt_at=now, created_at=now
    )
    if booking.meeting_type.is_video and not booking.is_cancelled:
        # The whole chain again: the account that failed may work now (reconnected, fixed).
        count += VideoMeeting.objects.filter(booking=booking, state=VideoMeeting.State.FAILED).update(
            state=VideoMeeting.State.PENDING, attempts=0, next_attempt_at=now, updated_at=now, passed_over=[]
        )
        # An outcome that could not be looked up: look again (it adopts a meeting that was made).
        count += VideoMeeting.objects.filter(
            booking=booking, state=VideoMeeting.State.UNKNOWN, next_attempt_at=None
        ).update(next_attempt_at=now, updated_at=now)
    count += calendar_events.resend(booking, now=now)
    if count:
        _queue(booking.pk)
    return count


# ---------------------------------------------------------------- reminders


def send_due_reminders(*, now: datetime) -> int:
    """Reminders for confirmed bookings whose reminder time has come, for their current time only
    (the delivery is keyed by the booking's sequence: a moved booking gets a reminder for its new
    time, never one for the old). They are recorded as steps: a failed one is retried by the sweep."""
    # (Cast: SQLite's duration arithmetic refuses a PositiveIntegerField operand.)
    minutes = Cast("meeting_type__reminder_minutes_before", IntegerField())
    before = ExpressionWrapper(minutes * timedelta(minutes=1), output_field=DurationField())
    reminders = EmailDelivery.objects.filter(booking=OuterRef("pk"), kind=Kind.REMINDER, sequence=OuterRef("sequence"))
    due = (
        Booking.objects.filter(
            status=Booking.Status.CONFIRMED,
            start__gt=now,
            meeting_type__reminder_minutes_before__isnull=False,
            start__lte=now + timedelta(days=14),
        )
        .alias(reminder_at=ExpressionWrapper(F("start") - before, output_field=DateTimeField()))
        .filter(reminder_at__lte=now)
        .filter(~Exists(reminders))
        .values_list("pk", flat=True)
    )
    sent = 0
    for booking_id in list(due):
        booking = load(booking_id)
        if booking is None or booking.is_cancelled or booking.start <= now:
            continue
        EmailDelivery.objects.bulk_create(
            [
                _email_row(booking, recipient, Kind.REMINDER, due=now)
                for recipient, _kind in emails.recipients_for(booking, Kind.REMINDER)
            ],
            ignore_conflicts=True,
        )
        run(booking_id, now=now)
        sent += 1
    return sent
