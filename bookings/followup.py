"""What happens after a booking is created, moved or cancelled (runs in a Celery task)."""

import logging

from django.conf import settings
from django.core.mail import send_mail
from django.template.loader import render_to_string
from django.utils import timezone, translation

from integrations import video

from .models import Booking

logger = logging.getLogger(__name__)


def _load(booking_id: int) -> Booking | None:
    return (
        Booking.objects.select_related("meeting_type", "organization")
        .prefetch_related("host_rows__member__user")
        .filter(pk=booking_id)
        .first()
    )


def sync_video(booking_id: int, change: str) -> video.Outcome:
    booking = _load(booking_id)
    if booking is None:
        return video.NOT_NEEDED
    if change == "cancelled":
        return video.delete_meeting(booking)
    if change == "rescheduled":
        return video.move_meeting(booking)
    return video.ensure_meeting(booking)


def video_gave_up(booking_id: int, reason: str) -> video.Outcome:
    booking = _load(booking_id)
    if booking is None:
        return video.NOT_NEEDED
    return video.give_up(booking, reason)


def notify(booking_id: int, change: str, outcome: video.Outcome = video.NOT_NEEDED) -> None:
    """A notice to the client and each host, each in their own time zone."""
    booking = _load(booking_id)
    if booking is None:
        logger.info("booking %s no longer exists; nothing to tell", booking_id)
        return
    meeting = getattr(booking, "video_meeting", None)
    hosts = [row.member for row in booking.host_rows.all()]
    recipients = [(booking.client_email, booking.client_time_zone, True)]
    recipients += [(host.user.email, host.time_zone, False) for host in hosts]
    for email, zone, is_client in recipients:
        context = {
            "booking": booking,
            "change": change,
            "hosts": hosts,
            "is_client": is_client,
            "meeting": meeting if meeting is not None and meeting.is_ready else None,
            "link_missing": booking.meeting_type.is_video and change != "cancelled" and outcome.needs_host_action,
            "site_url": settings.SITE_URL,
        }
        with translation.override(settings.LANGUAGE_CODE), timezone.override(zone):
            subject = render_to_string("bookings/email/notice_subject.txt", context).strip()
            body = render_to_string("bookings/email/notice.txt", context)
        send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, [email])
