from datetime import datetime

from celery import shared_task
from django.utils import timezone

from integrations.models import VideoMeeting
from integrations.tasks import backoff_seconds
from integrations.video import RetryLater

from . import emails, followup

VIDEO_MAX_RETRIES = 6
EMAIL_MAX_RETRIES = 6


@shared_task(bind=True, acks_late=True, max_retries=VIDEO_MAX_RETRIES)
def booking_changed(
    self,
    booking_id: int,
    change: str,
    sequence: int | None = None,
    previous_start: str | None = None,
    previous_host_ids: list[int] | None = None,
) -> None:
    """Everything that follows a committed booking change, in order: the video meeting, then the
    emails (queued only once the video step is settled, so they carry the link or say there is none).
    """
    try:
        outcome = followup.sync_video(booking_id, change)
        if outcome.state == VideoMeeting.State.CREATING:
            # Another worker is creating the meeting right now. Come back once it is settled:
            # emails sent now would lack the link, and each email goes out only once.
            raise RetryLater("another worker is creating the video meeting")
    except RetryLater as later:
        if self.request.retries < VIDEO_MAX_RETRIES:
            raise self.retry(countdown=backoff_seconds(self.request.retries, retry_after=later.retry_after)) from later
        outcome = followup.video_gave_up(booking_id, str(later))
    send_booking_emails.delay(
        booking_id, change, sequence, previous_start, previous_host_ids or [], outcome.needs_host_action
    )


@shared_task(bind=True, acks_late=True, max_retries=EMAIL_MAX_RETRIES)
def send_booking_emails(
    self,
    booking_id: int,
    change: str,
    sequence: int | None,
    previous_start: str | None,
    previous_host_ids: list[int],
    action_needed: bool,
) -> None:
    booking = followup.load(booking_id)
    if booking is None:
        return
    if sequence is not None and booking.sequence != sequence:
        return  # changed again since: the newer event sends the emails for the current time
    old = datetime.fromisoformat(previous_start) if previous_start else None
    try:
        followup.send_emails(
            booking, change, previous_start=old, previous_host_ids=previous_host_ids, action_needed=action_needed
        )
    except emails.TemporaryEmailFailure as error:
        if self.request.retries < EMAIL_MAX_RETRIES:
            raise self.retry(countdown=backoff_seconds(self.request.retries, base=30)) from error
        emails.give_up(booking, change)


@shared_task(acks_late=True)
def send_due_reminders() -> int:
    """Run by celery beat every few minutes: reminders that are due and not yet sent."""
    return followup.send_due_reminders(now=timezone.now())


@shared_task(acks_late=True)
def resend_missed_follow_ups() -> int:
    """Run by celery beat: queue again the follow-up of booking changes that never got queued
    (the broker was down at the commit). The previous time and hosts of a reschedule are not
    known any more: the email says the meeting has a new time without naming the old one."""
    missed = followup.missed_follow_ups(now=timezone.now())
    for booking_id, change, sequence in missed:
        booking_changed.delay(booking_id, change, sequence, None, [])
    return len(missed)
