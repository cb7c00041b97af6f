"""What happens after a booking is created, moved or cancelled (runs in a Celery task)."""

import logging

from django.conf import settings
from django.core.mail import send_mail
from django.template.loader import render_to_string
from django.utils import timezone, translation

from .models import Booking

logger = logging.getLogger(__name__)


def run(booking_id: int, change: str) -> None:
    booking = (
        Booking.objects.select_related("meeting_type", "organization")
        .prefetch_related("host_rows__member__user")
        .filter(pk=booking_id)
        .first()
    )
    if booking is None:
        logger.info("booking %s no longer exists; nothing to follow up", booking_id)
        return
    notify(booking, change)


def notify(booking: Booking, change: str) -> None:
    """A plain notice to the client and each host, each in their own time zone."""
    hosts = [row.member for row in booking.host_rows.all()]
    recipients = [(booking.client_email, booking.client_time_zone, True)]
    recipients += [(host.user.email, host.time_zone, False) for host in hosts]
    for email, zone, is_client in recipients:
        context = {
            "booking": booking,
            "change": change,
            "hosts": hosts,
            "is_client": is_client,
            "site_url": settings.SITE_URL,
        }
        with translation.override(settings.LANGUAGE_CODE), timezone.override(zone):
            subject = render_to_string("bookings/email/notice_subject.txt", context).strip()
            body = render_to_string("bookings/email/notice.txt", context)
        send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, [email])
