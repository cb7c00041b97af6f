"""Benchmark: how many month pages a busy organization serves from the cache.

An organization of 200 hosts and 20 round-robin meeting types takes one booking a second (through
`bookings.services.book`, so the real invalidation runs after each) while clients load 50 month
pages a second through the real slots view, for BENCH_CACHE_LOAD_SECONDS (default 60) of real time.

Hosts and meeting types: each meeting type has a team of its own 10 hosts and borrows the first 2
of the next type's team (12 hosts in all), so 40 of the 200 hosts are on two meeting types, as
people who cover for a neighbouring team are. Clients open the months as they do: 60 % the current
month (half of them by opening the page without a month), 30 % the next, 10 % the one after.

A page is a hit when it was served without working its month out: the month's computation (the
`compute` handed to `bookings.cache.remember`) is wrapped and counted. The same load then runs again
with every booking forgetting all of the organization's meeting types, as the cache did when it kept
one version per organization, and both hit ratios are reported.

The cache is Redis when BENCH_REDIS_URL names a database of its own (it is emptied), otherwise the
in-process cache with room for every key (its default 300 entries would evict values for room,
which Redis, sized for the site, does not).

Run alone: `.venv/bin/python bench/cache_under_load.py` (drops and re-creates BENCH_DATABASE_URL's
database, as `make bench` does); `make bench` runs it as part of bench/slots_bench.py.
"""

import logging
import os
import random
import statistics
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

HOSTS = 200
MEETING_TYPES = 20
TEAM = HOSTS // MEETING_TYPES  # each meeting type's own hosts
BORROWED = 2  # hosts of the next meeting type's team it shares
BOOKINGS_PER_S = 1.0
PAGES_PER_S = 50.0
EARLIER_BOOKINGS_PER_HOST = 20  # the calendar is not empty when the day starts
CLIENT_ZONES = ["Europe/Berlin", "America/New_York", "Asia/Kolkata", "UTC", "America/Los_Angeles", "Europe/London"]
HOST_ZONES = ["Europe/Berlin", "America/New_York", "Asia/Kolkata", "Australia/Adelaide", "UTC", "America/Los_Angeles"]
SECONDS = float(os.environ.get("BENCH_CACHE_LOAD_SECONDS", "60"))


@dataclass
class Tally:
    """What the page clients saw. Only the page clients' thread counts: the booking client's own
    engine calls (checking its slot) are not page loads."""

    pages: int = 0
    pages_worked_out: int = 0
    computations: int = 0
    hit_ms: list[float] = field(default_factory=list)
    miss_ms: list[float] = field(default_factory=list)
    bookings: int = 0
    refused: int = 0


def make_organization(label: str):
    """200 hosts in six time zones, 20 meeting types of 12 hosts each (see the module docstring)."""
    from accounts.models import Organization, User
    from meetingtypes.models import MeetingType, MeetingTypeHost
    from members.models import TeamMember, WorkingHours
    from members.services import DEFAULT_WORKING_HOURS

    organization = Organization.objects.create(name=f"Bench {label}", slug=f"bench-{label}")
    users = User.objects.bulk_create(User(email=f"host{n}@{label}.bench", password="!") for n in range(HOSTS))
    members = TeamMember.objects.bulk_create(
        TeamMember(organization=organization, user=user, display_name=f"Host {n}", time_zone=HOST_ZONES[n % 6])
        for n, user in enumerate(users)
    )
    WorkingHours.objects.bulk_create(
        WorkingHours(member=member, weekday=weekday, start=start, end=end)
        for member in members
        for weekday, start, end in DEFAULT_WORKING_HOURS
    )
    meeting_types = [
        MeetingType.objects.create(
            organization=organization,
            name=f"Team {n} call",
            slug=f"team-{n}",
            duration_minutes=30,
            slot_interval_minutes=30,
            buffer_before_minutes=5,
            buffer_after_minutes=5,
            minimum_notice_minutes=120,
            booking_window_days=90,  # the two months after this one are always bookable
            location=MeetingType.Location.PHONE,
            location_detail="+1 555 0100",
            assignment=MeetingType.Assignment.ROUND_ROBIN,
        )
        for n in range(MEETING_TYPES)
    ]
    hosts_of = {
        meeting_type.pk: members[n * TEAM : (n + 1) * TEAM]
        + [members[((n + 1) % MEETING_TYPES) * TEAM + k] for k in range(BORROWED)]
        for n, meeting_type in enumerate(meeting_types)
    }
    MeetingTypeHost.objects.bulk_create(
        MeetingTypeHost(meeting_type_id=meeting_type_id, member=member, position=position)
        for meeting_type_id, hosts in hosts_of.items()
        for position, member in enumerate(hosts)
    )
    return organization, meeting_types, hosts_of


def add_earlier_bookings(meeting_types, hosts_of, now: datetime, rng: random.Random) -> int:
    """Bookings already made before the measured minute: a few per host in the next weeks."""
    from bookings.models import Booking, BookingHost

    rows = []
    for meeting_type in meeting_types:
        for member in hosts_of[meeting_type.pk][:TEAM]:
            # On the hour only: two of them, buffers included, never overlap.
            on_the_hour = _candidate_starts(member, now, days=45)[::2]
            for start in rng.sample(on_the_hour, EARLIER_BOOKINGS_PER_HOST):
                rows.append((meeting_type, member, start))
    bookings = Booking.objects.bulk_create(
        Booking(
            organization_id=meeting_type.organization_id,
            meeting_type=meeting_type,
            start=start,
            end=start + timedelta(minutes=30),
            client_name="Earlier client",
            client_email=f"earlier{n}@bench.example",
            client_time_zone="UTC",
        )
        for n, (meeting_type, _member, start) in enumerate(rows)
    )
    BookingHost.objects.bulk_create(
        BookingHost(
            booking=booking,
            member=member,
            occupied_start=booking.start - timedelta(minutes=5),
            occupied_end=booking.end + timedelta(minutes=5),
        )
        for booking, (_type, member, _start) in zip(bookings, rows, strict=True)
    )
    # Written around the booking services: the hosts' last booking is worked out as they would keep it.
    from bookings import last_booked
    from meetingtypes.models import MeetingTypeHost

    last_booked.refresh(MeetingTypeHost.objects.filter(meeting_type__in=meeting_types))
    return len(bookings)


def _candidate_starts(member, now: datetime, *, days: int) -> list[datetime]:
    """Half hours inside the member's default hours (Mon-Fri 09:00-17:00 in their zone), from a
    day after `now` on: the times a client of theirs can pick."""
    zone = ZoneInfo(member.time_zone)
    first = now.astimezone(zone).date() + timedelta(days=1)
    starts = []
    for offset in range(days):
        day = first + timedelta(days=offset)
        if day.weekday() < 5:
            for half_hour in range(16):
                local = datetime(day.year, day.month, day.day, 9 + half_hour // 2, 30 * (half_hour % 2), tzinfo=zone)
                starts.append(local.astimezone(UTC))
    return starts


def _months_clients_open(now: datetime) -> list[tuple[str | None, float]]:
    """(month parameter, share of page loads): None is a client opening the page (its first month)."""
    this = date(now.year, now.month, 1)
    following = [this]
    for _ in range(2):
        last = following[-1]
        following.append(date(last.year + (last.month == 12), last.month % 12 + 1, 1))
    return [(None, 0.3), (f"{following[0]:%Y-%m}", 0.3), (f"{following[1]:%Y-%m}", 0.3), (f"{following[2]:%Y-%m}", 0.1)]


@contextmanager
def _counted_computations(tally: Tally, page_thread: threading.local):
    """`bookings.cache.remember` with its `compute` counted (in the page clients' thread only)."""
    from bookings import cache as page_cache

    original = page_cache.remember

    def remember(meeting_type, rules, month, what, compute):
        def counted():
            if getattr(page_thread, "active", False):
                tally.computations += 1
            return compute()

        return original(meeting_type, rules, month, what, counted)

    page_cache.remember = remember
    try:
        yield
    finally:
        page_cache.remember = original


@contextmanager
def _organization_wide_forgetting(meeting_types):
    """The scheme this replaced: every booking forgot every page of the organization."""
    from bookings import cache as page_cache

    original = page_cache.booking_changed
    all_ids = [meeting_type.pk for meeting_type in meeting_types]

    def booking_changed(booking, *, previous_host_ids=(), previous_start=None):
        for meeting_type_id in all_ids:
            page_cache.meeting_type_changed(meeting_type_id)

    page_cache.booking_changed = booking_changed
    try:
        yield
    finally:
        page_cache.booking_changed = original


def _run_load(organization, meeting_types, hosts_of, *, seconds: float, seed: int) -> tuple[Tally, float]:
    """Page clients and a booking client side by side for `seconds`; (what they saw, seconds taken)."""
    from django.db import connections
    from django.test import Client
    from django.urls import reverse
    from django.utils import timezone

    from bookings import services

    tally = Tally()
    page_thread = threading.local()
    rng_pages, rng_bookings = random.Random(seed), random.Random(seed + 1)
    urls = [reverse("bookings:slots", args=[organization.slug, meeting_type.slug]) for meeting_type in meeting_types]
    months = _months_clients_open(timezone.now())
    errors: list[str] = []

    def load_pages(started: float) -> None:
        page_thread.active = True
        client = Client()
        n = 0
        try:
            while (due := started + n / PAGES_PER_S) < started + seconds:
                time.sleep(max(0.0, due - time.perf_counter()))
                month = rng_pages.choices([m for m, _ in months], weights=[w for _, w in months])[0]
                params = {"tz": rng_pages.choice(CLIENT_ZONES)} | ({"month": month} if month else {})
                before = tally.computations
                began = time.perf_counter()
                # 100 client addresses: 30 requests a minute each, under the per-IP limit on slots.
                response = client.get(rng_pages.choice(urls), params, secure=True, REMOTE_ADDR=f"10.8.0.{n % 100 + 1}")
                elapsed = (time.perf_counter() - began) * 1000
                if response.status_code != 200:
                    errors.append(f"page {response.status_code}")
                tally.pages += 1
                if tally.computations == before:
                    tally.hit_ms.append(elapsed)
                else:
                    tally.pages_worked_out += 1
                    tally.miss_ms.append(elapsed)
                n += 1
        finally:
            connections.close_all()

    def book(started: float) -> None:
        n = 0
        try:
            while (due := started + n / BOOKINGS_PER_S) < started + seconds:
                time.sleep(max(0.0, due - time.perf_counter()))
                meeting_type = rng_bookings.choice(meeting_types)
                for _attempt in range(5):  # a time someone took meanwhile: the client picks another
                    host = rng_bookings.choice(hosts_of[meeting_type.pk])
                    start = rng_bookings.choice(_candidate_starts(host, timezone.now(), days=45))
                    try:
                        services.book(
                            meeting_type=meeting_type,
                            start=start,
                            client_name=f"Load client {n}",
                            client_email=f"load{n}@bench.example",
                            client_notes="",
                            client_time_zone="UTC",
                        )
                        tally.bookings += 1
                        break
                    except services.SlotUnavailable:
                        tally.refused += 1
                n += 1
        except Exception as error:  # reported, not hidden: a benchmark that books nothing measures nothing
            errors.append(f"booking {error!r}")
        finally:
            connections.close_all()

    started = time.perf_counter() + 0.1
    threads = [threading.Thread(target=load_pages, args=(started,)), threading.Thread(target=book, args=(started,))]
    with _counted_computations(tally, page_thread):
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    elapsed = time.perf_counter() - started
    assert not errors, errors[:5]
    return tally, elapsed


def _warm(organization, meeting_types) -> None:
    """Every meeting type's months loaded once, as they are on a day already under way."""
    from django.test import Client
    from django.urls import reverse
    from django.utils import timezone

    client = Client()
    for meeting_type in meeting_types:
        url = reverse("bookings:slots", args=[organization.slug, meeting_type.slug])
        for month, _share in _months_clients_open(timezone.now()):
            client.get(url, {"tz": "UTC"} | ({"month": month} if month else {}), secure=True, REMOTE_ADDR="10.7.0.1")


def _summary(tally: Tally, elapsed: float) -> dict:
    return {
        "hit_ratio": round(1 - tally.pages_worked_out / tally.pages, 3) if tally.pages else None,
        "pages": tally.pages,
        "pages_worked_out": tally.pages_worked_out,
        "pages_per_s": round(tally.pages / elapsed, 1),
        "bookings": tally.bookings,
        "bookings_per_s": round(tally.bookings / elapsed, 2),
        "times_refused_as_taken": tally.refused,
        "hit_median_ms": round(statistics.median(tally.hit_ms), 1) if tally.hit_ms else None,
        "miss_median_ms": round(statistics.median(tally.miss_ms), 1) if tally.miss_ms else None,
    }


def _cache_settings() -> tuple[dict, str]:
    from django.conf import settings

    redis_url = os.environ.get("BENCH_REDIS_URL")
    if redis_url:
        default = {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": redis_url}
        return {**settings.CACHES, "default": default}, "redis"
    default = {
        "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
        "LOCATION": "cache-under-load",
        "OPTIONS": {"MAX_ENTRIES": 1_000_000},
    }
    return {**settings.CACHES, "default": default}, "in-process"


def cache_under_load(seconds: float = SECONDS, seed: int = 13) -> dict:
    """Both runs (forgetting per meeting type, then per organization) on one organization; prints a
    line and returns {hosts, meeting_types, bookings_per_s, pages_per_s, hit_ratio, …}."""
    from django.test import override_settings

    caches, backend = _cache_settings()
    # One line per booking's follow-up task would bury the figures.
    task_log = logging.getLogger("celery.app.trace")
    level = task_log.level
    task_log.setLevel(logging.WARNING)
    try:
        with override_settings(CACHES=caches):
            return _both_runs(seconds, seed, backend)
    finally:
        task_log.setLevel(level)


def _both_runs(seconds: float, seed: int, backend: str) -> dict:
    from django.conf import settings
    from django.core.cache import cache
    from django.utils import timezone

    organization, meeting_types, hosts_of = make_organization("cache-load")
    earlier = add_earlier_bookings(meeting_types, hosts_of, timezone.now(), random.Random(seed))
    runs = {}
    for scheme in ("per_meeting_type", "organization_wide"):
        cache.clear()
        _warm(organization, meeting_types)
        if scheme == "organization_wide":
            with _organization_wide_forgetting(meeting_types):
                runs[scheme] = _summary(*_run_load(organization, meeting_types, hosts_of, seconds=seconds, seed=seed))
        else:
            runs[scheme] = _summary(*_run_load(organization, meeting_types, hosts_of, seconds=seconds, seed=seed))
    ours, before = runs["per_meeting_type"], runs["organization_wide"]
    result = {
        "hosts": HOSTS,
        "meeting_types": MEETING_TYPES,
        "bookings_per_s": ours["bookings_per_s"],
        "pages_per_s": ours["pages_per_s"],
        "hit_ratio": ours["hit_ratio"],
        "organization_wide_hit_ratio": before["hit_ratio"],
        "seconds": seconds,
        "cache_seconds": settings.SLOTS_CACHE_SECONDS,
        "cache": backend,
        "assignment": f"each meeting type {TEAM} hosts of its own + {BORROWED} of the next type's "
        f"({MEETING_TYPES * BORROWED} hosts on two types), round robin",
        "months": "60% current (half by opening the page), 30% next, 10% the one after",
        "earlier_bookings": earlier,
        "per_meeting_type": ours,
        "organization_wide": before,
    }
    print(
        f"  cache under load ({HOSTS} hosts, {MEETING_TYPES} meeting types, {ours['bookings_per_s']} bookings/s, "
        f"{ours['pages_per_s']} pages/s, {seconds:.0f} s): hit ratio {ours['hit_ratio']} "
        f"(forgetting the whole organization per booking: {before['hit_ratio']}); "
        f"page from the cache {ours['hit_median_ms']} ms, worked out {ours['miss_median_ms']} ms (medians)",
        flush=True,
    )
    return result


def main() -> None:
    import json

    import slots_bench  # its environment (production settings, the bench database) is set at import

    slots_bench.recreate_database()
    slots_bench.setup_django()
    print(json.dumps(cache_under_load(), indent=2))


if __name__ == "__main__":
    main()
