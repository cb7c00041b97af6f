"""Round-robin's order (least recently booked first) from the hosts' stored last booking: the same
order the bookings themselves give, through bookings, cancellations and moves to another host,
read in one query whatever the history."""

import importlib
import random
import threading
from datetime import UTC, date, datetime, timedelta
from types import SimpleNamespace

import pytest
import time_machine
from django.apps import apps
from django.db import connection, connections
from django.db.models import Max
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from bookings import selectors, services
from bookings.models import Booking, BookingHost
from meetingtypes.models import MeetingType, MeetingTypeHost

from .booking_helpers import (
    NOW,
    TUESDAY,
    WEDNESDAY,
    at,
    book_through_service,
    book_via_page,
    iso,
    make_booking,
    make_meeting_type,
)

pytestmark = pytest.mark.django_db

ONE_PERSON, COLLECTIVE = MeetingType.Assignment.ONE_PERSON, MeetingType.Assignment.COLLECTIVE
NEVER = datetime.min.replace(tzinfo=UTC)


@pytest.fixture
def hosts(make_member, organization):
    """Four hosts with the same hours (Mon-Fri 09:00-17:00 UTC), in ascending id order."""
    return [make_member(organization, name=f"Host {n}", time_zone="UTC") for n in range(4)]


def _last_booked_from_the_bookings(meeting_type) -> dict[int, datetime]:
    """The rule restated over the bookings: each host's latest confirmed booking of the type."""
    return dict(
        BookingHost.objects.filter(booking__meeting_type=meeting_type, booking__status=Booking.Status.CONFIRMED)
        .values_list("member_id")
        .annotate(last=Max("booking__created_at"))
    )


def _order_from_the_bookings(meeting_type, candidate_ids) -> list[int]:
    last = _last_booked_from_the_bookings(meeting_type)
    position = dict(meeting_type.host_links.values_list("member_id", "position"))
    return sorted(candidate_ids, key=lambda m: (m in last, last.get(m, NEVER), position[m], m))


def _assert_in_step_with_the_bookings(*meeting_types) -> None:
    for meeting_type in meeting_types:
        expected = _last_booked_from_the_bookings(meeting_type)
        stored = dict(meeting_type.host_links.values_list("member_id", "last_booked_at"))
        assert stored == {member_id: expected.get(member_id) for member_id in stored}, meeting_type.name
        everyone = list(stored)
        assert selectors.least_recently_booked_first(meeting_type, everyone) == _order_from_the_bookings(
            meeting_type, everyone
        )


def _hosts_of(booking) -> set[int]:
    return set(booking.host_rows.filter(is_active=True).values_list("member_id", flat=True))


def test_cancelling_or_moving_away_a_hosts_latest_booking_gives_them_their_previous_one_back(hosts, frozen_now):
    ana, ben, _cy, _dee = hosts
    pool = make_meeting_type(ana.organization, [ana, ben])
    ana_desk = make_meeting_type(ana.organization, [ana], name="Ana's desk", assignment=ONE_PERSON)
    earlier = make_booking(pool, [ana], at(TUESDAY, "09:00"), created_at=NOW - timedelta(days=3))
    assert selectors.least_recently_booked_first(pool, [ana.pk, ben.pk]) == [ben.pk, ana.pk]

    frozen_now.shift(timedelta(minutes=1))
    ben_first = book_through_service(pool, at(TUESDAY, "10:00"))  # ben: never booked
    frozen_now.shift(timedelta(minutes=1))
    latest = book_through_service(pool, at(TUESDAY, "11:00"))  # ana: booked three days ago
    assert (_hosts_of(ben_first), _hosts_of(latest)) == ({ben.pk}, {ana.pk})
    assert selectors.least_recently_booked_first(pool, [ana.pk, ben.pk]) == [ben.pk, ana.pk]

    services.cancel(booking=latest)  # ana's latest: three days ago again, before ben's
    assert MeetingTypeHost.objects.get(meeting_type=pool, member=ana).last_booked_at == earlier.created_at
    assert selectors.least_recently_booked_first(pool, [ana.pk, ben.pk]) == [ana.pk, ben.pk]

    # Ana is away at the new time: the earlier booking moves to ben, and ana has none left.
    book_through_service(ana_desk, at(TUESDAY, "14:00"))
    moved = services.reschedule(booking=earlier, start=at(TUESDAY, "14:00"))
    assert _hosts_of(moved) == {ben.pk}
    assert MeetingTypeHost.objects.get(meeting_type=pool, member=ana).last_booked_at is None
    assert MeetingTypeHost.objects.get(meeting_type=pool, member=ben).last_booked_at == ben_first.created_at
    assert selectors.least_recently_booked_first(pool, [ana.pk, ben.pk]) == [ana.pk, ben.pk]
    _assert_in_step_with_the_bookings(pool, ana_desk)


@pytest.mark.parametrize("assignment", [ONE_PERSON, COLLECTIVE])
def test_a_booking_made_before_the_hosts_latest_but_written_after_it_leaves_the_latest(hosts, frozen_now, assignment):
    """A booking's created_at is taken before its transaction commits: a later booking can be
    written first, and the earlier one must not move the host's last booking back."""
    ana, ben, _cy, _dee = hosts
    its_hosts = [ana] if assignment == ONE_PERSON else [ana, ben]
    meeting_type = make_meeting_type(ana.organization, its_hosts, assignment=assignment)
    later = make_booking(meeting_type, its_hosts, at(TUESDAY, "09:00"), created_at=NOW + timedelta(seconds=1))
    booked = book_through_service(meeting_type, at(TUESDAY, "10:00"))

    assert booked.created_at < later.created_at
    assert set(meeting_type.host_links.values_list("last_booked_at", flat=True)) == {later.created_at}
    _assert_in_step_with_the_bookings(meeting_type)


@pytest.mark.parametrize("seed", range(4))
def test_through_any_bookings_cancellations_and_moves_the_order_is_the_bookings_order(hosts, seed):
    """Random bookings, cancellations and moves (to the same host, and to another when the
    current one is away at the new time), of a round-robin, a collective and one-person types,
    some at the same instant: after each, every host's stored last booking and the order are
    what the bookings themselves say."""
    rng = random.Random(seed)
    organization = hosts[0].organization
    shuffled = rng.sample(hosts, len(hosts))  # the admin's order is not the id order
    pool = make_meeting_type(organization, shuffled)
    panel = make_meeting_type(organization, shuffled[:2], name="Panel", assignment=COLLECTIVE)
    desks = {
        host.pk: make_meeting_type(organization, [host], name=f"Desk {host.pk}", assignment=ONE_PERSON)
        for host in hosts
    }
    types = [pool, panel, *desks.values()]
    starts = [
        at(date(2026, 12, day), f"{hour:02d}:{minute:02d}")
        for day in (8, 9, 10, 11, 14, 15)
        for hour in range(9, 17)
        for minute in (0, 30)
    ]
    done: dict[str, int] = {"booked": 0, "cancelled": 0, "moved": 0, "reassigned": 0}
    clock = NOW
    for _step in range(60):
        clock += timedelta(minutes=rng.choice([0, 0, 1, 2]))  # a quarter of the steps at the same instant
        with time_machine.travel(clock, tick=False):
            confirmed = list(Booking.objects.filter(meeting_type__in=[pool, panel], status=Booking.Status.CONFIRMED))
            action = rng.choice(["book", "book", "book_panel", "cancel", "move", "move"]) if confirmed else "book"
            try:
                if action in ("book", "book_panel"):
                    book_through_service(pool if action == "book" else panel, rng.choice(starts))
                    done["booked"] += 1
                elif action == "cancel":
                    services.cancel(booking=rng.choice(confirmed))
                    done["cancelled"] += 1
                else:
                    booking, start = rng.choice(confirmed), rng.choice(starts)
                    before = _hosts_of(booking)
                    if booking.meeting_type == pool and rng.random() < 0.6:
                        # Its host is away then: the booking has to go to another host.
                        book_through_service(desks[next(iter(before))], start)
                    services.reschedule(booking=booking, start=start)
                    done["moved"] += 1
                    done["reassigned"] += _hosts_of(booking) != before
            except services.SlotUnavailable:
                pass
        _assert_in_step_with_the_bookings(*types)
    assert min(done.values()) >= 2, done


def test_choosing_a_host_reads_one_row_per_host_whatever_the_history(hosts, django_assert_num_queries):
    pool = make_meeting_type(hosts[0].organization, hosts)
    ids = [host.pk for host in hosts]
    for n in range(40):
        make_booking(pool, [hosts[n % 3]], at(date(2026, 12, 8 + n // 16), f"{9 + n % 16 // 2:02d}:{n % 2 * 30:02d}"))

    with django_assert_num_queries(1) as queries:
        order = selectors.least_recently_booked_first(pool, ids)

    assert order == _order_from_the_bookings(pool, ids)
    assert order[0] == hosts[3].pk  # never booked
    # The host links alone: not the bookings, which grow with every month.
    assert "bookings_" not in queries.captured_queries[0]["sql"]


def test_a_booking_costs_the_same_queries_with_a_short_or_a_long_history(client, hosts, frozen_now):
    pool = make_meeting_type(hosts[0].organization, hosts)
    make_booking(pool, [hosts[0]], at(date(2026, 12, 1), "09:00"), created_at=NOW - timedelta(days=30))

    def queries_of_a_booking(start) -> int:
        with CaptureQueriesContext(connection) as queries:
            response = book_via_page(client, pool, iso(start))
        assert "booked=1" in response["Location"]
        return len(queries)

    short = queries_of_a_booking(at(TUESDAY, "10:00"))
    for n in range(60):
        created_at = NOW - timedelta(days=30, minutes=n)
        make_booking(
            pool,
            [hosts[n % 4]],
            at(date(2026, 11, 2 + n // 16), "09:00") + n % 16 * timedelta(minutes=30),
            created_at=created_at,
        )
    assert queries_of_a_booking(at(TUESDAY, "11:00")) == short


def test_a_host_taken_off_a_meeting_type_and_put_back_keeps_their_place(client, login, admin, hosts):
    ana, ben, _cy, _dee = hosts
    pool = make_meeting_type(admin.organization, [ana, ben], slug="intro")
    booked = make_booking(pool, [ana], at(TUESDAY, "10:00"), created_at=NOW)
    login(admin)
    form = {
        "name": pool.name,
        "slug": "intro",
        "duration_minutes": "30",
        "location": "in_person",
        "location_detail": "1 Harbour Street, Springfield",
        "assignment": "round_robin",
        "buffer_before_minutes": "0",
        "buffer_after_minutes": "0",
        "minimum_notice_minutes": "0",
        "booking_window_days": "60",
        "is_active": "on",
    }
    edit = reverse("meetingtypes:edit", args=[pool.pk])
    assert client.post(edit, {**form, "hosts": [ben.pk]}).status_code == 302
    assert client.post(edit, {**form, "hosts": [ben.pk, ana.pk]}).status_code == 302

    assert MeetingTypeHost.objects.get(meeting_type=pool, member=ana).last_booked_at == booked.created_at
    assert selectors.least_recently_booked_first(pool, [ana.pk, ben.pk]) == [ben.pk, ana.pk]


def test_the_migration_works_out_the_hosts_last_booking_from_the_bookings_already_there(hosts):
    ana, ben, cy, _dee = hosts
    pool = make_meeting_type(ana.organization, hosts)
    panel = make_meeting_type(ana.organization, [ana, ben], name="Panel", assignment=COLLECTIVE)
    make_booking(pool, [ana], at(TUESDAY, "09:00"), created_at=NOW - timedelta(days=2))
    make_booking(pool, [ana], at(TUESDAY, "10:00"), created_at=NOW - timedelta(days=1))
    make_booking(pool, [cy], at(TUESDAY, "11:00"), created_at=NOW, status=Booking.Status.CANCELLED)
    make_booking(panel, [ana, ben], at(TUESDAY, "12:00"), created_at=NOW - timedelta(days=5))
    MeetingTypeHost.objects.update(last_booked_at=None)  # as the column was when it was added
    migration = importlib.import_module("meetingtypes.migrations.0004_meetingtypehost_last_booked_at")

    migration.backfill(apps, SimpleNamespace(connection=connection))

    assert MeetingTypeHost.objects.filter(last_booked_at__isnull=False).count() == 3
    _assert_in_step_with_the_bookings(pool, panel)


needs_postgres = pytest.mark.skipif(connection.vendor != "postgresql", reason="needs concurrent transactions")


@needs_postgres
@pytest.mark.django_db(transaction=True)
def test_two_cancellations_of_one_hosts_bookings_at_once_leave_the_one_before_both(hosts, monkeypatch):
    """The later of the two cancels the host's latest booking and looks up the one before it, the
    other's booking, still confirmed then. Held at the host's row until the first commits, the
    other then sees both cancelled and goes one further back."""
    ana, ben, _cy, _dee = hosts
    pool = make_meeting_type(ana.organization, [ana, ben])
    # On different days: each cancellation's busy-day locks (bookings.models.BusyDay) are its own.
    oldest = make_booking(pool, [ana], at(TUESDAY, "09:00"), created_at=NOW - timedelta(days=3))
    middle = make_booking(pool, [ana], at(WEDNESDAY, "10:00"), created_at=NOW - timedelta(days=2))
    latest = make_booking(pool, [ana], at(WEDNESDAY + timedelta(days=1), "11:00"), created_at=NOW - timedelta(days=1))
    holding, release = threading.Event(), threading.Event()
    record = services.after_booking_change

    def after_change(booking, change, **kwargs):
        if booking.pk == latest.pk:  # the first cancellation waits here, its transaction open
            holding.set()
            assert release.wait(10)
        record(booking, change, **kwargs)

    monkeypatch.setattr(services, "after_booking_change", after_change)
    errors: list[Exception] = []

    def cancel(booking):
        try:
            services.cancel(booking=booking, now=NOW)
        except Exception as error:  # reported by the assertion below
            errors.append(error)
        finally:
            connections.close_all()

    first = threading.Thread(target=cancel, args=(latest,))
    first.start()
    assert holding.wait(10)
    second = threading.Thread(target=cancel, args=(middle,))
    second.start()
    second.join(0.5)  # long enough to finish if nothing held it back
    release.set()
    first.join(10)
    second.join(10)

    assert not errors
    assert MeetingTypeHost.objects.get(meeting_type=pool, member=ana).last_booked_at == oldest.created_at
    _assert_in_step_with_the_bookings(pool)
