from celery import shared_task
from django.utils import timezone

from . import followup


@shared_task(acks_late=True)
def booking_changed(booking_id: int, *_earlier_arguments) -> None:
    """Run the steps a committed booking change recorded (video meeting, then emails), at once.

    Whatever this run leaves undone (a temporary failure, a crash, a message the broker lost) is
    due in its row and done by `sweep_follow_ups`: this task never retries itself. Messages
    queued by earlier versions carried the change and its details; the rows carry them now."""
    followup.run(booking_id, first_run=True)


@shared_task(acks_late=True)
def sweep_follow_ups() -> int:
    """Run by celery beat every FOLLOW_UP_SWEEP_SECONDS: every follow-up step that is due."""
    return followup.sweep()


@shared_task(acks_late=True)
def send_due_reminders() -> int:
    """Run by celery beat every few minutes: reminders that are due and not yet sent."""
    return followup.send_due_reminders(now=timezone.now())
