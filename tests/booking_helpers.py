"""Shared helpers for the booking tests: meeting types, a frozen clock and the public booking URLs.

Its fixtures reach every test through `pytest_plugins` in tests/conftest.py; a module uses the clock with::

    pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("frozen_now")]
"""

from datetime import UTC, datetime, time, timedelta

import pytest
import time_machine
from django.urls import reverse
from django.utils.text import slugify

from bookings import last_booked, services
from bookings.models import Booking, BookingHost
from meetingtypes.models import MeetingType, MeetingTypeHost
from members.models import WorkingHours

# A Monday morning in the future. In UTC the default hosts' day (09:00-17:00) has not started yet.
NOW = datetime(2026, 12, 7, 6, 0, tzinfo=UTC)
MONDAY = NOW.date()  # 2026-12-07
TUESDAY = MONDAY + timedelta(days=1)  # 2026-12-08
WEDNESDAY = MONDAY + timedelta(days=2)  # 2026-12-09

CLIENT = {"name": "Casey Client", "email": "casey@example.com", "notes": ""}


@pytest.fixture
def frozen_now():
    """The clock stands still at NOW for the whole test (nest time_machine.travel to move it)."""
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


def at(day, clock: str, tz=UTC) -> datetime:
    """at(TUESDAY, "10:00") -> 2026-12-08 10:00 UTC (or wall clock in `tz`, converted to UTC)."""
    hours, minutes = map(int, clock.split(":"))
    return datetime(day.year, day.month, day.day, hours, minutes, tzinfo=tz).astimezone(UTC)


def iso(moment: datetime) -> str:
    """The instant as the slots JSON gives it: '2026-12-08T10:00:00Z'."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def make_meeting_type(organization, hosts, **overrides) -> MeetingType:
    """A bookable meeting type; `hosts` in the admin's order (position 0, 1, …)."""
    fields = {
        "name": "Intro call",
        "duration_minutes": 30,
        "minimum_notice_minutes": 0,
        "booking_window_days": 60,
        "location": MeetingType.Location.IN_PERSON,
        "location_detail": "1 Harbour Street, Springfield",
        "assignment": MeetingType.Assignment.ROUND_ROBIN,
    }
    fields.update(overrides)
    fields.setdefault("slug", slugify(fields["name"]))
    meeting_type = MeetingType.objects.create(organization=organization, **fields)
    for position, host in enumerate(hosts):
        MeetingTypeHost.objects.create(meeting_type=meeting_type, member=host, position=position)
    return meeting_type


def work_every_day(member, start: time = time(0), end: time = time(0)) -> None:
    """Replace the member's weekly hours with start-end on all seven days (00:00-00:00: around the clock)."""
    WorkingHours.objects.filter(member=member).delete()
    WorkingHours.objects.bulk_create(WorkingHours(member=member, weekday=day, start=start, end=end) for day in range(7))


def public_url(meeting_type, name: str = "public_page") -> str:
    return reverse(f"bookings:{name}", args=[meeting_type.organization.slug, meeting_type.slug])


def book_via_page(client, meeting_type, start_iso: str, tz: str = "UTC", **fields):
    """POST the public booking form as the browser sends it (form-encoded, hidden start/time_zone)."""
    data = {**CLIENT, "start": start_iso, "time_zone": tz}
    data.update(fields)
    return client.post(public_url(meeting_type, "book"), data)


def get_slots(client, meeting_type, tz: str = "UTC", month: str | None = None, url: str | None = None):
    """GET the slots JSON (of the public page, or of `url`, e.g. a reschedule page)."""
    params = {"tz": tz}
    if month is not None:
        params["month"] = month
    return client.get(url or public_url(meeting_type, "slots"), params)


def slots(client, meeting_type, tz: str = "UTC", month: str | None = None, url: str | None = None) -> dict:
    """{'2026-12-08': ['09:00', '09:30', …], …}: the offered local times per local date."""
    response = get_slots(client, meeting_type, tz=tz, month=month, url=url)
    assert response.status_code == 200, response.content
    return {day: [slot["time"] for slot in times] for day, times in response.json()["days"].items()}


def book_through_service(meeting_type, start: datetime, **client) -> Booking:
    """A booking made through the service, as the public view makes it."""
    return services.book(
        meeting_type=meeting_type,
        start=start,
        client_name=client.get("name", "Casey Client"),
        client_email=client.get("email", "casey@example.com"),
        client_notes=client.get("notes", ""),
        client_time_zone=client.get("time_zone", "UTC"),
    )


def make_booking(meeting_type, hosts, start: datetime, *, created_at: datetime | None = None, **fields) -> Booking:
    """A booking written straight to the database (history for fairness, dashboards), hosts as given."""
    values = {
        "client_name": "Earlier Client",
        "client_email": "earlier@example.com",
        "client_time_zone": "UTC",
    }
    values.update(fields)
    booking = Booking.objects.create(
        organization=meeting_type.organization,
        meeting_type=meeting_type,
        start=start,
        end=start + meeting_type.duration,
        **values,
    )
    occupied_start = start - timedelta(minutes=meeting_type.buffer_before_minutes)
    occupied_end = booking.end + timedelta(minutes=meeting_type.buffer_after_minutes)
    for host in hosts:
        BookingHost.objects.create(
            booking=booking, member=host, occupied_start=occupied_start, occupied_end=occupied_end
        )
    if created_at is not None:
        Booking.objects.filter(pk=booking.pk).update(created_at=created_at)
        booking.refresh_from_db()
    # Written around the services, so the hosts' last booking is worked out as after a bulk load.
    last_booked.refresh(MeetingTypeHost.objects.filter(meeting_type=meeting_type, member__in=hosts))
    return booking
