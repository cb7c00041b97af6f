"""Benchmark: month of slots for a big round-robin team, the same with the hosts' own calendar meetings,
and 50 clients racing for one slot.

Run with `make bench` (needs PostgreSQL; BENCH_DATABASE_URL, default postgres://postgres@127.0.0.1:5432/tsp_bench).
The database named there is dropped and re-created. Prints a table and writes bench/results/latest.json.
The calendar case serves the product with its Google sandbox on a local port, so that one changed
event goes the whole way a real one does: push notification, sync over HTTP, busy table, month page.
"""

import json
import os
import random
import socket
import statistics
import sys
import threading
import time
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

BENCH_DATABASE_URL = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/tsp_bench")
os.environ["DATABASE_URL"] = BENCH_DATABASE_URL
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tsp.settings")
os.environ["DEBUG"] = "0"  # production settings; DEBUG=1 would also log every query
os.environ.setdefault("SECRET_KEY", "benchmark-only-secret-key-not-for-production-0123456789")
os.environ.setdefault("ALLOWED_HOSTS", "testserver")
os.environ.pop("REDIS_URL", None)
os.environ.pop("CELERY_BROKER_URL", None)
os.environ["EMAIL_URL"] = "memory://"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# The Google sandbox, served with the product on a local port (see serve_in_background): the
# calendar case's one changed event is notified, fetched and stored over real HTTP. Push "on",
# because the sandbox posts its notifications over plain http.
SITE_PORT = _free_port()
os.environ["SITE_URL"] = f"http://127.0.0.1:{SITE_PORT}"
os.environ["ALLOWED_HOSTS"] = "testserver,127.0.0.1"
os.environ["SECURE_SSL_REDIRECT"] = "0"  # the local server speaks http; the measured requests say https
os.environ["PROVIDER_SANDBOX"] = "1"
os.environ["CALENDAR_PUSH"] = "on"
os.environ.pop("GOOGLE_CLIENT_ID", None)  # a real Google app would take Google out of the sandbox
os.environ.setdefault("TOKEN_ENCRYPTION_KEYS", "YmVuY2htYXJrLW9ubHktZmVybmV0LWtleS0wMDAwMDA=")

RUNS = int(os.environ.get("BENCH_RUNS", "15"))
HOST_COUNTS = [int(n) for n in os.environ.get("BENCH_HOSTS", "5,50,200").split(",")]
BOOKING_COUNTS = [int(n) for n in os.environ.get("BENCH_BOOKINGS", "1000,10000,100000").split(",")]
TIME_ZONES = ["Europe/Berlin", "America/New_York", "Asia/Kolkata", "Australia/Adelaide", "UTC", "America/Los_Angeles"]
QUARTER = timedelta(minutes=15)
# Cold month pages, as multiples of the machine reference (which travels between machines).
PER_REFERENCE_TARGETS = {(50, 10_000): 0.25, (200, 100_000): 1.0}
# The calendar case: 50 hosts, 10,000 bookings and this many meetings in their own calendars.
EXTERNAL_BUSY = int(os.environ.get("BENCH_EXTERNAL_BUSY", "20000"))


def recreate_database() -> None:
    import psycopg2

    parts = urlsplit(BENCH_DATABASE_URL)
    name = parts.path.lstrip("/")
    admin = psycopg2.connect(
        host=parts.hostname,
        port=parts.port or 5432,
        user=parts.username or "postgres",
        password=parts.password,
        dbname="postgres",
    )
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        cursor.execute(f'CREATE DATABASE "{name}"')
    admin.close()


def setup_django() -> None:
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)


def target_month(now: datetime) -> date:
    first = now.date().replace(day=1)
    return date(first.year + (first.month == 12), first.month % 12 + 1, 1)


def make_team(n_hosts: int, label: str):
    from accounts.models import Organization, User
    from meetingtypes.models import MeetingType, MeetingTypeHost
    from members.models import TeamMember
    from members.services import add_default_working_hours

    organization = Organization.objects.create(name=f"Bench {label}", slug=f"bench-{label}")
    users = User.objects.bulk_create(User(email=f"host{i}@{label}.bench", password="!") for i in range(n_hosts))
    members = TeamMember.objects.bulk_create(
        TeamMember(organization=organization, user=user, display_name=f"Host {i}", time_zone=TIME_ZONES[i % 6])
        for i, user in enumerate(users)
    )
    for member in members:
        add_default_working_hours(member)
    meeting_type = MeetingType.objects.create(
        organization=organization,
        name="Discovery call",
        slug="discovery",
        duration_minutes=30,
        slot_interval_minutes=15,
        buffer_before_minutes=5,
        buffer_after_minutes=5,
        minimum_notice_minutes=120,
        booking_window_days=90,
        location=MeetingType.Location.PHONE,
        location_detail="+1 555 0100",
        assignment=MeetingType.Assignment.ROUND_ROBIN,
    )
    MeetingTypeHost.objects.bulk_create(
        MeetingTypeHost(meeting_type=meeting_type, member=member, position=i) for i, member in enumerate(members)
    )
    return organization, meeting_type, members


def add_bookings(meeting_type, members, count: int, month: date, taken: dict, rng: random.Random) -> None:
    """`count` more 15-minute bookings at distinct quarter hours of each host, all in `month`."""
    from bookings.models import Booking, BookingHost

    month_start = datetime.combine(month, clock(0), tzinfo=UTC)
    quarters = 28 * 24 * 4
    bookings, hosts = [], []
    for n in range(count):
        member = members[n % len(members)]
        used = taken.setdefault(member.pk, set())
        while True:
            quarter = rng.randrange(quarters)
            if quarter not in used:
                used.add(quarter)
                break
        start = month_start + quarter * QUARTER
        bookings.append(
            Booking(
                organization_id=meeting_type.organization_id,
                meeting_type=meeting_type,
                start=start,
                end=start + QUARTER,
                client_name="Bench client",
                client_email=f"client{n}@bench.example",
                client_time_zone="UTC",
            )
        )
        hosts.append(member)
    for offset in range(0, len(bookings), 5000):
        chunk = Booking.objects.bulk_create(bookings[offset : offset + 5000])
        BookingHost.objects.bulk_create(
            BookingHost(booking=booking, member=member, occupied_start=booking.start, occupied_end=booking.end)
            for booking, member in zip(chunk, hosts[offset : offset + 5000], strict=True)
        )
    # Written around the booking services: the hosts' last booking is worked out as they would keep it.
    from bookings import last_booked

    last_booked.refresh(meeting_type.host_links.all())
    # A live database has planner statistics and a visibility map (autovacuum keeps them);
    # a freshly bulk-loaded one has neither until autovacuum gets round to it.
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE bookings_booking")
        cursor.execute("VACUUM ANALYZE bookings_bookinghost")
        cursor.execute("VACUUM ANALYZE bookings_busyday")


def measure_month(meeting_type, month: date) -> dict:
    """Server time of one month of slots: worked out from the database ("cold", the cache
    emptied before each request) and served from the page cache ("cached", nothing changed)."""
    return measure_months([meeting_type], month)[0]


def measure_months(meeting_types: list, month: date) -> list[dict]:
    """`measure_month` of several meeting types, their requests taken in turn within each run, so
    that a machine getting busier or quieter meanwhile weighs on each of them alike."""
    from django.core.cache import cache
    from django.db import connection
    from django.test import Client
    from django.urls import reverse

    client = Client()
    params = {"month": month.strftime("%Y-%m"), "tz": "Europe/Berlin"}
    urls = [reverse("bookings:slots", args=[item.organization.slug, item.slug]) for item in meeting_types]

    def timed_request(url: str, executed: list[str]) -> float:
        def count(execute, sql, params, many, context):
            executed.append(sql)
            return execute(sql, params, many, context)

        with connection.execute_wrapper(count):
            started = time.perf_counter()
            response = client.get(url, params, secure=True)
            elapsed = (time.perf_counter() - started) * 1000
        assert response.status_code == 200, response.content[:200]
        return elapsed

    cache.clear()
    n_slots = [sum(len(day) for day in client.get(url, params, secure=True).json()["days"].values()) for url in urls]
    cold: list[list[float]] = [[] for _ in urls]
    cached: list[list[float]] = [[] for _ in urls]
    cold_queries: list[list[str]] = [[] for _ in urls]
    cached_queries: list[list[str]] = [[] for _ in urls]
    for _ in range(RUNS):
        for n, url in enumerate(urls):
            cache.clear()
            cold_queries[n].clear()
            cold[n].append(timed_request(url, cold_queries[n]))
            cached_queries[n].clear()
            cached[n].append(timed_request(url, cached_queries[n]))
    return [
        {
            "median_ms": round(statistics.median(cold[n]), 1),
            "p90_ms": round(sorted(cold[n])[int(len(cold[n]) * 0.9) - 1], 1),
            "queries": len(cold_queries[n]),
            "cached_median_ms": round(statistics.median(cached[n]), 1),
            "cached_queries": len(cached_queries[n]),
            "slots": n_slots[n],
        }
        for n in range(len(urls))
    ]


def serve_in_background():
    """The product (with its provider sandbox) on SITE_PORT, in a thread, as `make run` serves it."""
    from django.core.handlers.wsgi import WSGIHandler
    from django.core.servers.basehttp import ThreadedWSGIServer, WSGIRequestHandler

    class Quiet(WSGIRequestHandler):
        def log_message(self, *args) -> None:
            pass

    server = ThreadedWSGIServer(("127.0.0.1", SITE_PORT), Quiet)
    server.set_app(WSGIHandler())
    threading.Thread(target=server.serve_forever, name="bench-site", daemon=True).start()
    return server


def random_meetings(count: int, month: date, rng: random.Random) -> list[tuple[datetime, datetime]]:
    """`count` meetings of 30 or 60 minutes at random quarter hours of `month` (they may overlap
    bookings and each other, as real calendars do)."""
    month_start = datetime.combine(month, clock(0), tzinfo=UTC)
    meetings = []
    for _ in range(count):
        start = month_start + rng.randrange(28 * 24 * 4) * QUARTER
        meetings.append((start, start + rng.choice((2, 4)) * QUARTER))
    return meetings


def connect_google_calendar(member, meetings):
    """The member's Google account in the sandbox, its meetings in its primary calendar, connected,
    listed and synced by the product (which also opens its push channel)."""
    from integrations.base import Account, TokenSet
    from integrations.calendars import sync
    from integrations.models import Calendar
    from integrations.sandbox import google
    from integrations.services import save_connection

    email = f"host0.{member.pk}@bench.example"
    for start, end in meetings:
        google.add_event(email, start, end)
    tokens = google.issue_tokens(email)
    user = google.get_or_create_user(email)
    connection = save_connection(
        member=member,
        provider="google",
        tokens=TokenSet(tokens["access_token"], tokens["refresh_token"], tokens["expires_in"], tokens["scope"]),
        account=Account(user["sub"], "", email),
    )
    sync.refresh_calendar_list(connection.pk)
    calendar = Calendar.objects.get(connection=connection, is_primary=True)
    assert calendar.channel_id, "no push channel: the notification path can't be measured"
    return email, calendar


def add_external_busy(members, meetings_per_member: list[list[tuple[datetime, datetime]]]) -> None:
    """Meetings in the members' own calendars as the sync stores them (written straight to the table)."""
    from django.db import connection

    from integrations.models import BusyInterval, Calendar, Connection

    connections = Connection.objects.bulk_create(
        Connection(member=member, provider="google", external_user_id=f"bench-{member.pk}", email="h@bench.example")
        for member in members
    )
    calendars = Calendar.objects.bulk_create(
        Calendar(
            connection=row, member=row.member, external_id="primary", name="Work", is_primary=True, checks_busy=True
        )
        for row in connections
    )
    rows = [
        BusyInterval(calendar=calendar, member=calendar.member, event_id=f"e{n}", start=start, end=end)
        for calendar, meetings in zip(calendars, meetings_per_member, strict=True)
        for n, (start, end) in enumerate(meetings)
    ]
    BusyInterval.objects.bulk_create(rows, batch_size=5000)
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE integrations_busyinterval")
        cursor.execute("VACUUM ANALYZE integrations_calendar")
        cursor.execute("VACUUM ANALYZE bookings_busyday")


def measure_sync_one_event(meeting_type, month: date, email: str, calendar, rng: random.Random) -> dict:
    """Median ms from a meeting put in the host's Google calendar to the month page worked out
    again with it: the sandbox's push notification to our webhook, the incremental sync it
    triggers (events.list over HTTP, the busy table updated, the page cache forgotten), then the
    month page computed from the database. Also the parts: the sandbox making the event (the
    provider's own work, not ours), notification and sync, and the month page."""
    from django.test import Client
    from django.urls import reverse

    from integrations.models import BusyInterval
    from integrations.sandbox import google

    client = Client()
    url = reverse("bookings:slots", args=[meeting_type.organization.slug, meeting_type.slug])
    params = {"month": month.strftime("%Y-%m"), "tz": "Europe/Berlin"}
    client.get(url, params, secure=True)  # cached, as a busy page is
    totals, made, synced, pages = [], [], [], []
    for start, end in random_meetings(RUNS, month, rng):
        before = BusyInterval.objects.filter(calendar=calendar).count()
        started = time.perf_counter()
        google.add_event(email, start, end)
        added = time.perf_counter()
        assert google.wait_for_deliveries(timeout=30), "the notification was not delivered"
        delivered = time.perf_counter()
        response = client.get(url, params, secure=True)
        done = time.perf_counter()
        assert response.status_code == 200
        assert BusyInterval.objects.filter(calendar=calendar).count() == before + 1, "the event was not synced"
        totals.append((done - started) * 1000)
        made.append((added - started) * 1000)
        synced.append((delivered - added) * 1000)
        pages.append((done - delivered) * 1000)
    return {
        "total": round(statistics.median(totals), 1),
        "sandbox_makes_the_event": round(statistics.median(made), 1),
        "notification_and_sync": round(statistics.median(synced), 1),
        "month_page": round(statistics.median(pages), 1),
    }


def external_busy_case(month: date, rng: random.Random) -> dict:
    """Two teams alike (50 hosts, the same 10,000 bookings), one of them with EXTERNAL_BUSY meetings
    in its members' own calendars: their cold month pages measured in turn, then one changed event
    of the second synced."""
    from integrations.models import BusyInterval

    seed = rng.randrange(2**32)
    teams = []
    for label in ("without-calendars", "calendars"):
        _org, meeting_type, members = make_team(50, label)
        add_bookings(meeting_type, members, 10_000, month, {}, random.Random(seed))
        teams.append((meeting_type, members))
    (plain, _), (meeting_type, members) = teams

    per_member = [random_meetings(EXTERNAL_BUSY // 50 + (n < EXTERNAL_BUSY % 50), month, rng) for n in range(50)]
    server = serve_in_background()
    try:
        email, calendar = connect_google_calendar(members[0], per_member[0])
        add_external_busy(members[1:], per_member[1:])
        busy_intervals = BusyInterval.objects.filter(member__in=members).count()
        without, with_busy = measure_months([plain, meeting_type], month)
        print(f"  measured 50 hosts / 10,000 bookings, no calendars: {without}", flush=True)
        print(f"  measured 50 hosts / 10,000 bookings / {busy_intervals:,} calendar meetings: {with_busy}", flush=True)
        sync = measure_sync_one_event(meeting_type, month, email, calendar, rng)
    finally:
        server.shutdown()
        server.server_close()
    return {
        "hosts": 50,
        "bookings": 10_000,
        "busy_intervals": busy_intervals,
        "median_ms": with_busy["median_ms"],
        "queries": with_busy["queries"],
        "ratio_to_without": round(with_busy["median_ms"] / without["median_ms"], 2),
        "sync_one_event_ms": sync["total"],
        "sync_one_event_parts_ms": {part: ms for part, ms in sync.items() if part != "total"},
        "without": {"median_ms": without["median_ms"], "queries": without["queries"], "slots": without["slots"]},
        "p90_ms": with_busy["p90_ms"],
        "slots": with_busy["slots"],
    }


def race(n_clients: int = 50) -> dict:
    """n clients post the same slot of a one-person type at the same moment, over real PostgreSQL."""
    from django.db import connections
    from django.test import Client
    from django.urls import reverse

    from bookings.models import Booking
    from meetingtypes.models import MeetingType

    organization, meeting_type, members = make_team(1, "race")
    MeetingType.objects.filter(pk=meeting_type.pk).update(assignment=MeetingType.Assignment.ONE_PERSON)
    client = Client()
    slots_url = reverse("bookings:slots", args=[organization.slug, meeting_type.slug])
    days = client.get(slots_url, {"tz": "UTC"}, secure=True).json()["days"]
    start = days[sorted(days)[0]][0]["start"]
    book_url = reverse("bookings:book", args=[organization.slug, meeting_type.slug])
    barrier = threading.Barrier(n_clients)
    outcomes: list[str] = []
    lock = threading.Lock()

    def attempt(n: int) -> None:
        thread_client = Client(REMOTE_ADDR=f"10.9.{n // 200}.{n % 200 + 1}")
        try:
            barrier.wait()
            response = thread_client.post(
                book_url,
                {"name": f"Racer {n}", "email": f"racer{n}@bench.example", "start": start, "time_zone": "UTC"},
                secure=True,
            )
            location = response.get("Location", "")
            outcome = (
                "booked" if "booked=1" in location else "taken" if "taken=1" in location else str(response.status_code)
            )
        except Exception as error:  # a crash is an outcome to report, not to hide
            outcome = f"error:{error.__class__.__name__}"
        finally:
            connections.close_all()
        with lock:
            outcomes.append(outcome)

    threads = [threading.Thread(target=attempt, args=(n,)) for n in range(n_clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return {
        "clients": n_clients,
        "booked": outcomes.count("booked"),
        "taken": outcomes.count("taken"),
        "other": sorted(o for o in outcomes if o not in ("booked", "taken")),
        "bookings_in_db": Booking.objects.filter(meeting_type=meeting_type).count(),
    }


def machine_reference_ms(runs: int = 7) -> float:
    """Median time of a fixed pure-Python workload: divide the slots time by it to compare runs
    made on machines of different speed."""
    timings = []
    for _ in range(runs):
        started = time.perf_counter()
        sum(i * i for i in range(1_000_000))
        timings.append((time.perf_counter() - started) * 1000)
    return round(statistics.median(timings), 1)


def main() -> None:
    reference = machine_reference_ms()
    recreate_database()
    setup_django()
    from django.conf import settings

    settings.BOOKING_RATE_LIMIT = 10_000
    now = datetime.now(UTC)
    month = target_month(now)
    rng = random.Random(42)
    table: dict[tuple[int, int], dict | None] = {}
    for n_hosts in HOST_COUNTS:
        _org, meeting_type, members = make_team(n_hosts, f"h{n_hosts}")
        taken: dict = {}
        so_far = 0
        for n_bookings in BOOKING_COUNTS:
            # Each host has 28 × 96 quarter hours in the month; keep them at most 75 % full.
            if n_bookings > n_hosts * 28 * 96 * 0.75:
                table[(n_hosts, n_bookings)] = None
                continue
            add_bookings(meeting_type, members, n_bookings - so_far, month, taken, rng)
            so_far = n_bookings
            table[(n_hosts, n_bookings)] = measure_month(meeting_type, month)
            print(f"  measured {n_hosts} hosts / {n_bookings} bookings: {table[(n_hosts, n_bookings)]}", flush=True)

    external_busy = external_busy_case(month, rng) if EXTERNAL_BUSY else None
    race_result = race(50)
    from cache_under_load import cache_under_load  # beside this script (run as bench/slots_bench.py)

    under_load = cache_under_load()

    print()
    print(f"One month of slots ({month:%Y-%m}), round-robin, 30-min meetings every 15 min, buffers 5/5 min;")
    print(f"server time per request, median of {RUNS} runs: worked out (ms, SQL queries) / from the page cache (ms):")
    header = "| hosts \\ bookings | " + " | ".join(f"{n:,}" for n in BOOKING_COUNTS) + " |"
    print(header)
    print("|" + "---|" * (len(BOOKING_COUNTS) + 1))
    for n_hosts in HOST_COUNTS:
        cells = []
        for n_bookings in BOOKING_COUNTS:
            result = table[(n_hosts, n_bookings)]
            cells.append(
                "n/a (does not fit)"
                if result is None
                else f"{result['median_ms']} ms, {result['queries']} q / {result['cached_median_ms']} ms"
            )
        print(f"| {n_hosts} | " + " | ".join(cells) + " |")
    print()
    print(f"Machine reference (1M-square sum in pure Python, median): {reference} ms")
    if external_busy:
        print(
            f"With the hosts' own calendars (50 hosts, 10,000 bookings, {external_busy['busy_intervals']:,} meetings): "
            f"{external_busy['median_ms']} ms, {external_busy['queries']} q; without them "
            f"{external_busy['without']['median_ms']} ms, {external_busy['without']['queries']} q "
            f"(ratio {external_busy['ratio_to_without']}); one changed event, notification to recomputed month page: "
            f"{external_busy['sync_one_event_ms']} ms"
        )
    print(
        f"Race: {race_result['clients']} parallel attempts on one slot → {race_result['booked']} booked, "
        f"{race_result['taken']} told 'just taken', other outcomes: {race_result['other'] or 'none'}; "
        f"bookings in the database: {race_result['bookings_in_db']}"
    )
    print(
        f"Cache under load ({under_load['hosts']} hosts, {under_load['meeting_types']} meeting types, "
        f"{under_load['bookings_per_s']} bookings/s, {under_load['pages_per_s']} month pages/s): hit ratio "
        f"{under_load['hit_ratio']}; with the whole organization forgotten per booking it would be "
        f"{under_load['organization_wide_hit_ratio']}"
    )

    main_cell = table.get((50, 10_000))
    if main_cell is None:
        print("(50 hosts / 10,000 bookings not in this run: nothing written)")
        return
    results = {
        "recorded_at": now.isoformat(timespec="seconds"),
        "runs": RUNS,
        "machine_reference_ms": reference,
        "slots_month": {
            "hosts": 50,
            "bookings": 10_000,
            **main_cell,
            "per_reference": round(main_cell["median_ms"] / reference, 2),
        },
        "growth": [
            {
                "hosts": h,
                "bookings": b,
                **(
                    {**table[(h, b)], "per_reference": round(table[(h, b)]["median_ms"] / reference, 2)}
                    if table[(h, b)]
                    else {"skipped": "does not fit in one month"}
                ),
            }
            for h in HOST_COUNTS
            for b in BOOKING_COUNTS
        ],
        "race": race_result,
        "cache_under_load": under_load,
        "targets": {
            "slots_month_median_ms": 50,
            "slots_month_queries": 6,
            "external_busy_ratio_to_without": 1.5,
            "per_reference": {f"{h}x{b}": target for (h, b), target in PER_REFERENCE_TARGETS.items()},
        },
        "notes": "median_ms: worked out from the database; cached_median_ms: served from the page cache; "
        "external_busy: the month page of a team whose hosts have calendar meetings (ratio_to_without: against a "
        "team alike without them, their requests taken in turn in the same run); sync_one_event_ms: a meeting added "
        "in a host's Google sandbox calendar -> push notification -> incremental sync over HTTP -> busy table -> "
        "page cache forgotten -> month page worked out again",
    }
    if external_busy:
        results["external_busy"] = external_busy
    out = ROOT / "bench" / "results" / "latest.json"
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nWritten to {out.relative_to(ROOT)}")
    race_ok = race_result["booked"] == 1 and race_result["taken"] == race_result["clients"] - 1
    for label, median in (
        ("worked out", main_cell["median_ms"]),
        ("from the page cache", main_cell["cached_median_ms"]),
    ):
        met = median <= 50 and main_cell["queries"] <= 6
        print(f"50 hosts / 10,000 bookings, {label}: {median} ms, target 50 ms: {'met' if met else 'MISSED'}")
    print(f"Queries: {main_cell['queries']} (target 6). Race: {'as required' if race_ok else 'FAILED'}.")
    hit_ratio = under_load["hit_ratio"]
    print(f"Cache under load: hit ratio {hit_ratio}, target 0.90: {'met' if hit_ratio >= 0.90 else 'MISSED'}")
    for (hosts, bookings), target in PER_REFERENCE_TARGETS.items():
        cell = table.get((hosts, bookings))
        if cell:
            ratio = cell["median_ms"] / reference
            print(
                f"{hosts} hosts / {bookings:,} bookings worked out: {cell['median_ms']} ms = {ratio:.2f}x the machine "
                f"reference, target {target}x: {'met' if ratio <= target else 'MISSED'}"
            )
    if external_busy:
        met = (
            external_busy["ratio_to_without"] <= 1.5 and external_busy["queries"] == external_busy["without"]["queries"]
        )
        print(
            f"Calendars: {external_busy['ratio_to_without']}x the page without them (target 1.5x), "
            f"{external_busy['queries']} queries (without: {external_busy['without']['queries']}): "
            f"{'met' if met else 'MISSED'}"
        )


if __name__ == "__main__":
    main()
