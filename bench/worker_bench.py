"""What the Celery worker costs per booking, with no web load around it.

`.venv/bin/python bench/worker_bench.py` (PostgreSQL and redis-server needed; the database named by
WORKER_BENCH_DATABASE_URL, default tsp_worker_bench, is dropped and re-created) seeds `make bench`'s
50-host round-robin type by phone, records the follow-ups of WORKER_BENCH_BOOKINGS bookings (default
300; one host each, so two emails each) as the booking service records them, without running them, and
starts what `make loadtest` starts for the worker: the Celery worker as the Procfile starts it (4
processes, DEBUG=0), a redis-server of its own as the broker and an SMTP server that notes each
message's arrival. Each pool process first follows one booking up (imports, templates, connections);
then every other booking's task is queued at once and the run waits for their emails.

Prints, per booking: the worker's CPU (user + system of its main process and its pool, from /proc), the
CPU of the PostgreSQL backends serving it (a backend that ended within the window is not counted), and
how much CPU the whole machine was busy for over the same time (the worker, PostgreSQL, Redis, the SMTP
server, and whatever else runs on the machine). Writes nothing.
"""

import os
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.chaos import wait_until  # noqa: E402  (the repository root on the path first)
from bench.loadtest import (  # noqa: E402
    CELERY_PROCESSES,
    CLOCK_TICKS,
    Stack,
    bench_helpers,
    children_of,
    cpu_snapshot,
    cpu_used,
    database_backends,
    machine_ticks,
    setup_django,
)

DATABASE_URL = os.environ.get("WORKER_BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/tsp_worker_bench")
BOOKINGS = int(os.environ.get("WORKER_BENCH_BOOKINGS", "300"))
HOSTS = 50
EMAIL_WAIT_SECONDS = 300


def record_follow_ups(meeting_type, members, count: int) -> list[int]:
    """`count` bookings, each with one host (the hosts in turn, an hour apart) and its follow-up recorded
    as the booking service records it, in one transaction; no task is queued."""
    from django.db import transaction

    from bookings import followup
    from bookings.models import Booking, BookingChange, BookingHost

    first = (datetime.now(UTC) + timedelta(days=30)).replace(minute=0, second=0, microsecond=0)
    booking_ids = []
    with transaction.atomic():
        for n in range(count):
            start = first + timedelta(hours=n)
            booking = Booking.objects.create(
                organization_id=meeting_type.organization_id,
                meeting_type=meeting_type,
                start=start,
                end=start + meeting_type.duration,
                client_name=f"Bench client {n}",
                client_email=f"client{n}@worker.bench",
                client_time_zone="Europe/Berlin",
                client_locale="en-US",
            )
            host = members[n % len(members)]
            BookingHost.objects.create(booking=booking, member=host, occupied_start=start, occupied_end=booking.end)
            followup.record_change(booking, BookingChange.CREATED)
            booking_ids.append(booking.pk)
    return booking_ids


def follow_up(booking_ids: list[int], stack: Stack) -> None:
    """Queue each booking's task and wait for its two emails."""
    from bookings.tasks import booking_changed

    expected = stack.sink.count() + 2 * len(booking_ids)
    for booking_id in booking_ids:
        booking_changed.delay(booking_id)
    wait_until(lambda: stack.sink.count() >= expected, timeout=EMAIL_WAIT_SECONDS, interval=0.1, what="the emails")


def main() -> int:
    stack = Stack(DATABASE_URL)
    print(f"logs: {stack.log_dir}", flush=True)
    try:
        stack.prepare()
        setup_django(stack)
        _organization, meeting_type, members = bench_helpers().make_team(HOSTS, "workerbench")
        booking_ids = record_follow_ups(meeting_type, members, CELERY_PROCESSES + BOOKINGS)
        worker = stack.start_worker()

        from tsp.celery import app

        # The harness was set up without a broker (its tasks would run in-process): this one queues them.
        app.conf.broker_url = worker.env["CELERY_BROKER_URL"]
        app.conf.task_always_eager = False

        follow_up(booking_ids[:CELERY_PROCESSES], stack)
        pids = [worker.popen.pid, *children_of(worker.popen.pid)]

        def backends() -> dict[int, float]:
            return cpu_snapshot(database_backends(worker.env["DATABASE_URL"], worker.env["PGAPPNAME"]))

        worker_before, database_before, machine_before = cpu_snapshot(pids), backends(), machine_ticks()
        began = time.monotonic()
        follow_up(booking_ids[CELERY_PROCESSES:], stack)
        elapsed = time.monotonic() - began
        worker_cpu, database_cpu = cpu_used(worker_before, cpu_snapshot(pids)), cpu_used(database_before, backends())
        machine_busy = (machine_ticks()[0] - machine_before[0]) / CLOCK_TICKS
    finally:
        stack.stop()

    per_booking = 1000 / BOOKINGS
    print(
        f"{BOOKINGS} bookings followed up (two emails each) in {elapsed:.1f} s by {CELERY_PROCESSES} worker "
        f"processes; CPU ms per booking: worker {worker_cpu * per_booking:.1f}, its PostgreSQL backends "
        f"{database_cpu * per_booking:.1f}, the whole machine {machine_busy * per_booking:.1f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
