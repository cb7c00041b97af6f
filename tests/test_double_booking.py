"""No double booking, ever: the database refuses it, even under concurrent requests (PostgreSQL)."""

import threading
import time
from datetime import datetime, timedelta

import pytest
from django.db import IntegrityError, connection, connections, transaction
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from bookings import selectors, services
from bookings.models import Booking, BookingHost
from integrations.calendars import live
from integrations.models import Calendar, Connection
from meetingtypes.models import MeetingType, MeetingTypeHost

from .booking_helpers import book_through_service

needs_postgres = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="exclusion constraints exist only on PostgreSQL"
)


def _meeting_type(organization, hosts, **overrides) -> MeetingType:
    fields = {
        "name": "Intro call",
        "slug": "intro",
        "duration_minutes": 30,
        "minimum_notice_minutes": 0,
        "location": MeetingType.Location.PHONE,
        "location_detail": "+1 555 0100",
        "assignment": MeetingType.Assignment.ONE_PERSON,
    }
    fields.update(overrides)
    meeting_type = MeetingType.objects.create(organization=organization, **fields)
    for position, host in enumerate(hosts):
        MeetingTypeHost.objects.create(meeting_type=meeting_type, member=host, position=position)
    return meeting_type


def _first_slot(client, meeting_type) -> str:
    url = reverse("bookings:slots", args=[meeting_type.organization.slug, meeting_type.slug])
    days = client.get(url, {"tz": "UTC"}).json()["days"]
    first_day = sorted(days)[0]
    return days[first_day][0]["start"]


def _booking(meeting_type, start, **extra) -> Booking:
    return Booking.objects.create(
        organization=meeting_type.organization,
        meeting_type=meeting_type,
        start=start,
        end=start + timedelta(minutes=30),
        client_name="Client",
        client_email="client@example.com",
        client_time_zone="UTC",
        **extra,
    )


def race(book_url: str, starts: list[str], *, network: str) -> list[str]:
    """One client per start, each from its own address, all posting the booking form at once:
    "won", "taken" (sent back to the calendar with "just taken") or the HTTP status of anything else."""
    barrier = threading.Barrier(len(starts))
    statuses: list[str] = []
    lock = threading.Lock()

    def attempt(n: int) -> None:
        client = Client(REMOTE_ADDR=f"{network}.{n + 1}")
        try:
            barrier.wait()
            response = client.post(
                book_url, {"name": "C", "email": f"c{n}@example.com", "start": starts[n], "time_zone": "UTC"}
            )
            location = response.get("Location", "") if response.status_code == 302 else ""
            outcome = "won" if "booked=1" in location else "taken" if "taken=1" in location else "other"
            with lock:
                statuses.append(outcome if outcome != "other" else f"HTTP {response.status_code}")
        finally:
            connections.close_all()

    threads = [threading.Thread(target=attempt, args=(n,)) for n in range(len(starts))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return statuses


@needs_postgres
@pytest.mark.django_db
def test_the_database_refuses_two_overlapping_bookings_of_one_host_even_across_meeting_types(member):
    intro = _meeting_type(member.organization, [member])
    review = _meeting_type(member.organization, [member], name="Review", slug="review")
    start = timezone.now() + timedelta(days=3)
    first = _booking(intro, start)
    BookingHost.objects.create(
        booking=first, member=member, occupied_start=start, occupied_end=start + timedelta(minutes=30)
    )
    second = _booking(review, start + timedelta(minutes=15))
    with pytest.raises(IntegrityError), transaction.atomic():
        BookingHost.objects.create(
            booking=second,
            member=member,
            occupied_start=start + timedelta(minutes=15),
            occupied_end=start + timedelta(minutes=45),
        )


@needs_postgres
@pytest.mark.django_db
def test_touching_bookings_and_cancelled_ones_do_not_conflict(member, other_member):
    intro = _meeting_type(member.organization, [member])
    start = timezone.now() + timedelta(days=3)
    end = start + timedelta(minutes=30)
    first = _booking(intro, start)
    BookingHost.objects.create(booking=first, member=member, occupied_start=start, occupied_end=end)
    # Back to back is fine: ranges are half-open.
    second = _booking(intro, end)
    BookingHost.objects.create(
        booking=second, member=member, occupied_start=end, occupied_end=end + timedelta(minutes=30)
    )
    # Another host at the same time is fine.
    BookingHost.objects.create(booking=first, member=other_member, occupied_start=start, occupied_end=end)
    # A cancelled booking no longer holds its time.
    BookingHost.objects.filter(booking=first, member=member).update(is_active=False)
    third = _booking(intro, start)
    BookingHost.objects.create(booking=third, member=member, occupied_start=start, occupied_end=end)
    assert BookingHost.objects.filter(member=member, is_active=True).count() == 2


@needs_postgres
@pytest.mark.django_db(transaction=True)
def test_fifty_clients_racing_for_one_slot_get_one_booking_and_49_clear_answers(member):
    meeting_type = _meeting_type(member.organization, [member])
    start = _first_slot(Client(), meeting_type)
    url = reverse("bookings:book", args=[member.organization.slug, meeting_type.slug])

    statuses = race(url, [start] * 50, network="10.0.0")

    assert sorted(statuses) == ["taken"] * 49 + ["won"]
    assert Booking.objects.count() == 1
    assert BookingHost.objects.filter(member=member, is_active=True).count() == 1


@needs_postgres
@pytest.mark.django_db(transaction=True)
def test_a_round_robin_race_gives_each_free_host_one_booking(member, other_member):
    # Same working hours for both, so the first slot is free for both.
    other_member.time_zone = member.time_zone
    other_member.save()
    meeting_type = _meeting_type(
        member.organization, [member, other_member], assignment=MeetingType.Assignment.ROUND_ROBIN
    )
    start = _first_slot(Client(), meeting_type)
    url = reverse("bookings:book", args=[member.organization.slug, meeting_type.slug])
    statuses = race(url, [start] * 10, network="10.1.0")

    assert sorted(statuses) == ["taken"] * 8 + ["won"] * 2
    hosts = sorted(BookingHost.objects.filter(is_active=True).values_list("member_id", flat=True))
    assert hosts == sorted([member.pk, other_member.pk])


@needs_postgres
@pytest.mark.django_db(transaction=True)
def test_clients_racing_for_different_times_of_one_day_never_pass_the_daily_limit(member):
    meeting_type = _meeting_type(member.organization, [member], daily_limit_per_host=1)
    url = reverse("bookings:slots", args=[member.organization.slug, meeting_type.slug])
    days = Client().get(url, {"tz": member.time_zone}).json()["days"]
    day = next(day for day in sorted(days) if len(days[day]) >= 10)
    starts = [slot["start"] for slot in days[day][:10]]
    book_url = reverse("bookings:book", args=[member.organization.slug, meeting_type.slug])

    statuses = race(book_url, starts, network="10.2.0")

    assert sorted(statuses) == ["taken"] * 9 + ["won"]
    assert Booking.objects.filter(status=Booking.Status.CONFIRMED).count() == 1


@needs_postgres
@pytest.mark.django_db(transaction=True)
def test_a_booking_that_loses_a_deadlock_on_the_constraint_is_told_just_taken(member, other_member):
    """A collective booking of both hosts inserts its rows host by host. Another transaction holds
    an overlapping row of the second host and then asks for the first host's time: each waits for
    the other, and PostgreSQL cancels our booking (the other waits longer before it checks)."""
    first, second = sorted([member, other_member], key=lambda host: host.pk)
    second.time_zone = first.time_zone
    second.save()
    meeting_type = _meeting_type(member.organization, [first, second], assignment=MeetingType.Assignment.COLLECTIVE)
    start = datetime.fromisoformat(_first_slot(Client(), meeting_type))
    other = _booking(meeting_type, start)
    holds_second, done = threading.Event(), threading.Event()
    errors: list[Exception] = []

    def rival() -> None:
        try:
            with transaction.atomic():
                with connection.cursor() as cursor:
                    cursor.execute("SET LOCAL deadlock_timeout = '10s'")
                row = {"booking": other, "occupied_start": start, "occupied_end": start + timedelta(minutes=30)}
                BookingHost.objects.create(member=second, **row)
                holds_second.set()
                time.sleep(0.5)  # our booking is now waiting for this transaction
                BookingHost.objects.create(member=first, **row)
        except Exception as error:  # recorded: the rival must have won
            errors.append(error)
        finally:
            connections.close_all()
            done.set()

    thread = threading.Thread(target=rival)
    thread.start()
    assert holds_second.wait(10)
    with pytest.raises(services.SlotUnavailable):
        book_through_service(meeting_type, start)
    assert done.wait(30) and not errors
    thread.join()
    assert not Booking.objects.exclude(pk=other.pk).exists()
    assert BookingHost.objects.filter(booking=other).count() == 2


# ---------------------------------------------------------------- reading the hosts' availability


@pytest.fixture
def availability_reads(monkeypatch) -> list[bool]:
    """Each read of the hosts' availability a booking makes: whether a transaction was open."""
    reads: list[bool] = []
    load = selectors.load_availability

    def counted(*args, **kwargs):
        reads.append(connection.in_atomic_block)
        return load(*args, **kwargs)

    monkeypatch.setattr(selectors, "load_availability", counted)
    return reads


def _round_robin(first, second) -> MeetingType:
    second.time_zone = first.time_zone  # the same hours, so the first slot is free for both
    second.save()
    return _meeting_type(first.organization, [first, second], assignment=MeetingType.Assignment.ROUND_ROBIN)


@pytest.mark.django_db(transaction=True)
def test_with_no_calendar_to_ask_the_transaction_reads_the_hosts_once(member, other_member, availability_reads):
    meeting_type = _round_robin(member, other_member)
    start = datetime.fromisoformat(_first_slot(Client(), meeting_type))
    availability_reads.clear()

    booking = book_through_service(meeting_type, start)

    assert availability_reads == [True]
    assert list(booking.host_rows.values_list("member_id", flat=True)) == [member.pk]


@pytest.mark.django_db(transaction=True)
def test_with_a_calendar_to_ask_the_hosts_are_read_before_it_is_asked_and_again_inside_the_transaction(
    member, other_member, availability_reads, monkeypatch
):
    meeting_type = _round_robin(member, other_member)
    account = Connection.objects.create(member=member, provider="google", external_user_id="g-1", email="m@example.com")
    Calendar.objects.create(
        connection=account, member=member, external_id="primary", name="Work", is_primary=True, checks_busy=True
    )
    asked: list[int] = []
    monkeypatch.setattr(live, "_ask", lambda calendars, *, start, end: asked.append(calendars[0].member_id) or [])
    start = datetime.fromisoformat(_first_slot(Client(), meeting_type))
    availability_reads.clear()

    booking = book_through_service(meeting_type, start)

    assert availability_reads == [False, True]
    assert asked == [member.pk]
    assert list(booking.host_rows.values_list("member_id", flat=True)) == [member.pk]


@needs_postgres
@pytest.mark.django_db(transaction=True)
def test_a_host_taken_after_the_transactions_read_is_passed_over_for_the_next(member, other_member, monkeypatch):
    meeting_type = _round_robin(member, other_member)
    start = datetime.fromisoformat(_first_slot(Client(), meeting_type))
    # Another meeting type's booking takes the first host at that time, as if it had committed
    # just after the read: the read still says both hosts are free.
    elsewhere = _meeting_type(member.organization, [member], slug="elsewhere")
    taken = _booking(elsewhere, start)
    BookingHost.objects.create(booking=taken, member=member, occupied_start=start, occupied_end=taken.end)
    monkeypatch.setattr(services, "_free_hosts", lambda *args, **kwargs: (member.pk, other_member.pk))

    booking = book_through_service(meeting_type, start)

    assert list(booking.host_rows.values_list("member_id", flat=True)) == [other_member.pk]
    # The refused attempt left nothing: no booking without hosts.
    assert sorted(Booking.objects.values_list("pk", flat=True)) == sorted([taken.pk, booking.pk])
