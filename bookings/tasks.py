from celery import shared_task

from . import followup


@shared_task(acks_late=True)
def booking_changed(booking_id: int, change: str) -> None:
    """Everything that follows a committed booking change, in order: video meeting, then emails."""
    followup.run(booking_id, change)
