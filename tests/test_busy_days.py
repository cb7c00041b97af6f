"""The per-day sums of busy time the booking pages read (`BusyDay`), kept by PostgreSQL itself.

Whatever writes the busy rows — a booking, a cancel, a move to another time or host, a calendar
sync, a bulk insert, a plain UPDATE, a member removed — the sums afterwards are exactly what the
rows say, day by day; two bookings of one host on one day, in two transactions at once, both
count; and the month page offers the same times read from the sums as read from the rows.
"""

import random
import threading
from collections import defaultdict
from dataclasses import replace
from datetime import UTC, datetime, time, timedelta

import pytest
from django.db import connection, connections, transaction

from bookings import availability, selectors, services
from bookings.models import Booking, BookingHost, BusyDay
from integrations.models import BusyInterval, Calendar, Connection
from tests.booking_helpers import NOW, TUESDAY, at, book_through_service, make_booking, make_meeting_type

pytestmark = [pytest.mark.postgres]

ONE_DAY = timedelta(days=1)


def overlapping_days(start: datetime, end: datetime):
    """The UTC dates whose [00:00, 24:00) the interval [start, end) overlaps."""
    day = start.astimezone(UTC).date() - ONE_DAY
    while day <= end.astimezone(UTC).date() + ONE_DAY:
        day_start = datetime.combine(day, time(0), UTC)
        if start < day_start + ONE_DAY and end > day_start:
            yield day
        day += ONE_DAY


def busy_days_from_the_rows() -> dict:
    """{(member id, day): [(start, end), …]}: the rows restated, day by day, merged."""
    spans = list(BookingHost.objects.filter(is_active=True).values_list("member_id", "occupied_start", "occupied_end"))
    spans += list(BusyInterval.objects.values_list("member_id", "start", "end"))
    days = defaultdict(list)
    for member_id, start, end in spans:
        for day in overlapping_days(start, end):
            days[(member_id, day)].append((start, end))
    return {key: merged(value) for key, value in days.items()}


def merged(spans: list) -> list:
    """Sorted, empty ones left out, overlapping or touching ones joined."""
    result = []
    for start, end in sorted(spans):
        if end <= start:
            continue
        if result and start <= result[-1][1]:
            result[-1] = (result[-1][0], max(result[-1][1], end))
        else:
            result.append((start, end))
    return result


def busy_days_stored() -> dict:
    def moments(data) -> list[datetime]:
        return [
            datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=n) for n in selectors._instants(data).tolist()
        ]

    return {
        (row.member_id, row.day): sorted(zip(moments(bytes(row.starts)), moments(bytes(row.ends)), strict=True))
        for row in BusyDay.objects.all()
    }


def assert_sums_match_the_rows():
    assert busy_days_stored() == busy_days_from_the_rows()


def calendar_of(member) -> Calendar:
    account = Connection.objects.create(
        member=member, provider="google", external_user_id=f"g-{member.pk}", email="h@example.com"
    )
    return Calendar.objects.create(
        connection=account, member=member, external_id="primary", name="Work", is_primary=True, checks_busy=True
    )


@pytest.mark.django_db
@pytest.mark.usefixtures("frozen_now")
def test_the_day_sums_follow_every_kind_of_change_to_the_busy_rows(make_member, organization):
    ana, ben = make_member(organization), make_member(organization)
    intro = make_meeting_type(organization, [ana, ben], buffer_before_minutes=10, buffer_after_minutes=5)

    first = book_through_service(intro, at(TUESDAY, "10:00"))
    second = book_through_service(intro, at(TUESDAY, "10:00"))  # the other host
    assert BusyDay.objects.count() == 2
    assert_sums_match_the_rows()

    services.reschedule(booking=first, start=at(TUESDAY + ONE_DAY, "16:30"))  # to another day
    assert_sums_match_the_rows()
    services.cancel(booking=second)
    assert_sums_match_the_rows()

    # Written straight to the table, several at once, and changed with plain UPDATEs.
    make_booking(intro, [ana], at(TUESDAY, "23:45"))  # its buffer runs past midnight
    # Back to back: 11:20-12:05 and 12:05-12:50 with their buffers, kept as one span.
    make_booking(intro, [ana], at(TUESDAY, "11:30"))
    make_booking(intro, [ana], at(TUESDAY, "12:15"))
    assert (at(TUESDAY, "11:20"), at(TUESDAY, "12:50")) in busy_days_stored()[(ana.pk, TUESDAY)]
    afternoon = [make_booking(intro, [], at(TUESDAY, clock)) for clock in ("13:00", "14:00", "15:00")]
    BookingHost.objects.bulk_create(
        BookingHost(booking=booking, member=ben, occupied_start=booking.start, occupied_end=booking.end)
        for booking in afternoon
    )
    assert_sums_match_the_rows()
    BookingHost.objects.filter(member=ben).update(member=ana)  # handed to another host
    assert_sums_match_the_rows()
    BookingHost.objects.filter(occupied_start__gte=at(TUESDAY, "14:00")).update(is_active=False)
    assert_sums_match_the_rows()

    # Calendar meetings: a short one, one across midnight, a three-day trip; moved, then deleted.
    calendar = calendar_of(ben)
    trip = BusyInterval.objects.create(
        calendar=calendar,
        member=ben,
        event_id="trip",
        start=at(TUESDAY, "18:00"),
        end=at(TUESDAY, "18:00") + 3 * ONE_DAY,
    )
    BusyInterval.objects.bulk_create(
        [
            BusyInterval(
                calendar=calendar, member=ben, event_id="standup", start=at(TUESDAY, "09:00"), end=at(TUESDAY, "09:15")
            ),
            BusyInterval(
                calendar=calendar,
                member=ben,
                event_id="late",
                start=at(TUESDAY, "23:30"),
                end=at(TUESDAY, "23:30") + ONE_DAY / 24,
            ),
        ]
    )
    assert_sums_match_the_rows()
    BusyInterval.objects.filter(pk=trip.pk).update(start=at(TUESDAY, "20:00"), end=at(TUESDAY, "20:00") + ONE_DAY)
    assert_sums_match_the_rows()
    BusyInterval.objects.filter(event_id="standup").delete()
    assert_sums_match_the_rows()

    # A member removed takes their sums along; nothing is left once nothing is busy.
    ben.delete()
    assert_sums_match_the_rows()
    Booking.objects.all().delete()
    assert BusyDay.objects.count() == 0


@pytest.mark.django_db(transaction=True)
def test_two_bookings_of_one_host_on_one_day_made_at_the_same_time_both_count(make_member, organization):
    """The second transaction's trigger waits for the first's lock on that host's day, then reads
    the day again, with the first booking committed: neither overwrites the other."""
    ana = make_member(organization)
    intro = make_meeting_type(organization, [ana])
    first_written, first_may_commit = threading.Event(), threading.Event()
    errors = []

    def book_at(clock: str, *, hold: bool) -> None:
        try:
            with transaction.atomic():
                make_booking(intro, [ana], at(TUESDAY, clock))
                if hold:
                    first_written.set()
                    first_may_commit.wait(timeout=10)
        except Exception as error:  # reported below: the test must fail, not hang
            errors.append(error)
            first_written.set()
        finally:
            connections.close_all()

    first = threading.Thread(target=book_at, args=("10:00",), kwargs={"hold": True})
    first.start()
    assert first_written.wait(timeout=10)
    second = threading.Thread(target=book_at, args=("15:00",), kwargs={"hold": False})
    second.start()
    second.join(timeout=0.5)
    assert second.is_alive(), "the second booking's trigger did not wait for the first's lock"
    first_may_commit.set()
    first.join(timeout=10)
    second.join(timeout=10)

    assert errors == []
    stored = busy_days_stored()
    assert [start for start, _end in stored[(ana.pk, TUESDAY)]] == [at(TUESDAY, "10:00"), at(TUESDAY, "15:00")]
    assert_sums_match_the_rows()


@pytest.mark.django_db
@pytest.mark.usefixtures("frozen_now")
def test_the_month_page_offers_the_same_times_from_the_day_sums_as_from_the_rows(make_member, organization):
    """A round-robin team with random bookings and calendar meetings: the engine gets busy time
    from the sums (the month page) and from the rows (the path a moving client takes, here
    with nothing to leave out) and offers the same starts."""
    rng = random.Random(7)
    team = [make_member(organization, time_zone=zone) for zone in ("UTC", "Europe/Berlin", "Asia/Kolkata")]
    intro = make_meeting_type(organization, team, buffer_before_minutes=5, buffer_after_minutes=10)
    for member in team:
        calendar = calendar_of(member)
        taken: set[int] = set()
        for n in range(60):
            quarter = rng.randrange(20 * 96)
            if any(abs(quarter - other) < 4 for other in taken):  # 45 minutes occupied
                continue
            taken.add(quarter)
            start = NOW + quarter * timedelta(minutes=15)
            make_booking(intro, [member], start)
            if n % 3 == 0:
                meeting = start + timedelta(hours=rng.randrange(1, 30))
                BusyInterval.objects.create(
                    calendar=calendar,
                    member=member,
                    event_id=f"e{n}",
                    start=meeting,
                    end=meeting + timedelta(minutes=45),
                )
    start, end = NOW, NOW + 21 * ONE_DAY

    rules, from_sums = selectors.load_availability(intro, start=start, end=end)
    _rules, from_rows = selectors.load_availability(intro, start=start, end=end, exclude_booking_id=0)
    offered = availability.available_start_instants(rules, from_sums, start=start, end=end, now=NOW)
    assert offered == availability.available_start_instants(rules, from_rows, start=start, end=end, now=NOW)
    nothing_busy = [replace(host, busy=()) for host in from_rows]
    assert (
        0
        < len(offered)
        < len(availability.available_start_instants(rules, nothing_busy, start=start, end=end, now=NOW))
    )


@pytest.mark.django_db
@pytest.mark.usefixtures("frozen_now")
def test_a_booking_longer_than_two_days_is_refused_by_the_database(make_member, organization):
    """The busy read starts two days before the month: the database holds every booking to that."""
    from django.db import IntegrityError

    ana = make_member(organization)
    intro = make_meeting_type(organization, [ana])
    booking = make_booking(intro, [ana], at(TUESDAY, "10:00"))
    with pytest.raises(IntegrityError), transaction.atomic():
        BookingHost.objects.filter(booking=booking).update(
            occupied_end=at(TUESDAY, "10:00") + 2 * ONE_DAY + ONE_DAY / 24
        )
    assert connection.vendor == "postgresql"
