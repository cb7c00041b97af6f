"""A client's manage link does not work for ever, and never moves a booking to a meeting type that
no longer takes bookings.

Once the meeting has started the link only shows the booking; a week (MANAGE_LINK_GRACE_DAYS)
after it ended, it answers 410 Gone and shows nothing of it: a link that leaked (a forwarded
email, a shared computer) stops giving away who booked and the join link.

The clock starts at NOW, Monday 2026-12-07 06:00 UTC; the booking is Tuesday 10:00-10:30 UTC.
"""

from datetime import timedelta

import pytest
from django.urls import reverse

from bookings import services
from bookings.models import Booking
from meetingtypes.models import MeetingType

from .booking_helpers import (
    TUESDAY,
    WEDNESDAY,
    at,
    book_through_service,
    iso,
    make_meeting_type,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("frozen_now")]

ENDED = at(TUESDAY, "10:30")


@pytest.fixture
def booking(member):
    meeting_type = make_meeting_type(member.organization, [member], assignment=MeetingType.Assignment.ONE_PERSON)
    member.working_hours.update(start="00:00", end="00:00")  # around the clock, whatever the member's zone
    return book_through_service(meeting_type, at(TUESDAY, "10:00"), email="casey@example.com")


@pytest.fixture
def clock(request):
    """The frozen clock (the frozen_now fixture), to move on."""
    return request.getfixturevalue("frozen_now")


def link(booking, name: str = "manage") -> str:
    return reverse(f"bookings:{name}", args=[booking.uid, booking.manage_token])


# ---------------------------------------------------------------- expiry


def test_after_the_meeting_the_link_shows_the_booking_without_ways_to_change_it(client, booking, clock):
    clock.move_to(ENDED + timedelta(days=6))

    page = client.get(link(booking))

    assert page.status_code == 200
    content = page.content.decode()
    assert "casey@example.com" in content
    assert link(booking, "cancel") not in content and link(booking, "reschedule") not in content


def test_a_week_after_the_meeting_the_link_has_expired_and_shows_nothing_of_the_booking(client, booking, clock):
    clock.move_to(ENDED + timedelta(days=7))

    for name in ("manage", "cancel", "reschedule", "reschedule_confirm", "calendar_file"):
        response = client.get(link(booking, name))

        assert response.status_code == 410, name
        content = response.content.decode()
        assert "This link has expired" in content, name
        assert "casey@example.com" not in content and "Casey" not in content, name

    slots = client.get(link(booking, "reschedule_slots"), {"tz": "UTC"})
    assert slots.status_code == 410 and "expired" in slots.json()["error"]


def test_an_expired_link_changes_nothing(client, booking, clock):
    clock.move_to(ENDED + timedelta(days=30))

    cancelled = client.post(link(booking, "cancel"), {"reason": "changed my mind"})
    moved = client.post(link(booking, "reschedule_confirm"), {"start": iso(at(WEDNESDAY, "10:00")), "tz": "UTC"})

    assert cancelled.status_code == 410 and moved.status_code == 410
    booking.refresh_from_db()
    assert (booking.status, booking.start, booking.sequence) == (Booking.Status.CONFIRMED, at(TUESDAY, "10:00"), 0)


def test_the_grace_period_is_a_setting(client, booking, clock, settings):
    settings.MANAGE_LINK_GRACE_DAYS = 1
    clock.move_to(ENDED + timedelta(days=1, seconds=-1))
    assert client.get(link(booking)).status_code == 200

    clock.move_to(ENDED + timedelta(days=1))
    response = client.get(link(booking))
    assert response.status_code == 410 and "more than 1 day ago" in response.content.decode()


def test_a_cancelled_bookings_link_expires_the_same_way(client, booking, clock):
    services.cancel(booking=booking)
    assert client.get(link(booking)).status_code == 200

    clock.move_to(ENDED + timedelta(days=8))
    assert client.get(link(booking)).status_code == 410


# ---------------------------------------------------------------- a meeting type that takes no bookings


@pytest.fixture
def closed(booking):
    MeetingType.objects.filter(pk=booking.meeting_type_id).update(is_active=False)
    return booking


CLOSED_MESSAGE = "no longer takes bookings, so this booking can't be moved"


def test_a_booking_of_a_closed_meeting_type_is_not_moved(client, closed):
    response = client.post(link(closed, "reschedule_confirm"), {"start": iso(at(WEDNESDAY, "10:00")), "tz": "UTC"})

    assert response.status_code == 409
    assert CLOSED_MESSAGE in response.content.decode().replace("&#x27;", "'")
    closed.refresh_from_db()
    assert (closed.start, closed.sequence) == (at(TUESDAY, "10:00"), 0)


def test_the_client_is_told_why_and_can_still_cancel(client, closed):
    page = client.get(link(closed)).content.decode()
    assert link(closed, "reschedule") not in page and link(closed, "cancel") in page

    calendar = client.get(link(closed, "reschedule"))
    slots = client.get(link(closed, "reschedule_slots"), {"tz": "UTC"})
    confirm = client.get(link(closed, "reschedule_confirm"), {"start": iso(at(WEDNESDAY, "10:00")), "tz": "UTC"})

    assert calendar.status_code == confirm.status_code == slots.status_code == 409
    assert CLOSED_MESSAGE in slots.json()["error"]
    assert client.post(link(closed, "cancel")).status_code == 302
    closed.refresh_from_db()
    assert closed.is_cancelled


def test_the_service_refuses_to_move_a_booking_of_a_closed_meeting_type(closed):
    with pytest.raises(services.MeetingTypeClosed):
        services.reschedule(booking=closed, start=at(WEDNESDAY, "10:00"))
