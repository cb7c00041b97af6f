from celery import shared_task

from integrations.tasks import backoff_seconds
from integrations.video import RetryLater

from . import followup

VIDEO_MAX_RETRIES = 6


@shared_task(bind=True, acks_late=True, max_retries=VIDEO_MAX_RETRIES)
def booking_changed(self, booking_id: int, change: str) -> None:
    """Everything that follows a committed booking change, in order: video meeting, then emails.

    Retried with backoff while the provider is unavailable; the emails wait for the outcome, so
    they carry the link (or say plainly that there is none).
    """
    try:
        outcome = followup.sync_video(booking_id, change)
    except RetryLater as later:
        if self.request.retries < VIDEO_MAX_RETRIES:
            raise self.retry(countdown=backoff_seconds(self.request.retries, retry_after=later.retry_after)) from later
        outcome = followup.video_gave_up(booking_id, str(later))
    followup.notify(booking_id, change, outcome)
