"""Fast samples of `make chaos` (bench/chaos.py) with a real worker, Redis, PostgreSQL and an SMTP server:
one that answers 451 for a few seconds, and a slow one while the worker's database connections are cut under
each email. Every email arrives, and only once.

The whole set of faults (SMTP down or slow with the database cut, Zoom down, a worker killed mid-create, the
broker or the database down) runs with `make chaos`: minutes, not seconds, so it is kept out of `make test`.
"""

import os
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest
from django.db import connection
from django.urls import reverse

from bench.chaos import SmtpSink, terminate_backends, wait_until
from bookings.models import Booking, EmailDelivery

from .booking_helpers import make_meeting_type, work_every_day

ROOT = Path(__file__).resolve().parent.parent

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        connection.vendor != "postgresql", reason="the worker process needs a shared PostgreSQL database"
    ),
    pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs Redis (REDIS_URL) as the Celery broker"),
]

CLIENTS = 3


def _database_url() -> str:
    db = connection.settings_dict
    credentials = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    return f"postgres://{credentials}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


@pytest.fixture
def smtp():
    sink = SmtpSink().start()
    yield sink
    sink.stop()


@pytest.fixture
def worker(smtp, tmp_path):
    """A Celery worker (with beat inside, sweeping every 2 s) on a queue of its own, sending through the
    SMTP server above."""
    from tsp.celery import app

    queue = f"tsp-chaos-{uuid.uuid4().hex[:12]}"
    previous = app.conf.task_always_eager, app.conf.task_default_queue
    app.conf.task_always_eager, app.conf.task_default_queue = False, queue
    env = {
        **os.environ,
        "DATABASE_URL": _database_url(),
        "DEBUG": "1",
        "EMAIL_URL": smtp.url,
        "DB_CONN_MAX_AGE": "0",
        "CELERY_QUEUE": queue,
        "RETRY_BASE_SECONDS": "1",
        "FOLLOW_UP_SWEEP_SECONDS": "2",
        "PGAPPNAME": "chaos-worker",  # so that a test can cut this worker's database connections
    }
    command = [sys.executable, "-m", "celery", "-A", "tsp", "worker", "--pool=solo", "-Q", queue, "--loglevel=INFO"]
    command += ["--without-heartbeat", "--without-gossip", "--without-mingle", "--beat", "-s", str(tmp_path / "beat")]
    log = tmp_path / "worker.log"
    with open(log, "wb") as output:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT)
    try:
        yield
    finally:
        app.conf.task_always_eager, app.conf.task_default_queue = previous
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
        print(log.read_text(errors="replace")[-3000:])


@pytest.fixture
def host(make_member, organization):
    host = make_member(organization, name="Hana Host", email="hana@acme.example")
    work_every_day(host)
    return host


def book(client, meeting_type, count: int) -> None:
    """`count` clients book through the public form, one time each."""
    organization = meeting_type.organization
    days = client.get(reverse("bookings:slots", args=[organization.slug, meeting_type.slug]), {"tz": "UTC"}).json()
    starts = [slot["start"] for day in sorted(days["days"]) for slot in days["days"][day]][:count]
    for n, start in enumerate(starts):
        response = client.post(
            reverse("bookings:book", args=[organization.slug, meeting_type.slug]),
            {"name": f"Client {n}", "email": f"client{n}@example.com", "start": start, "time_zone": "UTC"},
        )
        assert response.status_code == 302 and "booked=1" in response["Location"]


def assert_each_got_one_email(smtp, *, within: float) -> None:
    """Each client one confirmation, the host one per booking: none missing, none twice."""
    expected = Counter([(f"client{n}@example.com", "Confirmed") for n in range(CLIENTS)])
    expected.update([("hana@acme.example", "New booking")] * CLIENTS)
    wait_until(lambda: len(smtp.emails()) >= 2 * CLIENTS, timeout=within, what="every booking's two emails")
    time.sleep(3)  # a duplicate would show up now
    emails = smtp.emails()
    assert Counter((email.recipients[0], email.kind) for email in emails) == expected
    for uid in Booking.objects.values_list("uid", flat=True):
        assert sum(str(uid) in email.booking_keys() for email in emails) == 2  # the client's and the host's
    assert set(EmailDelivery.objects.values_list("state", flat=True)) == {EmailDelivery.State.SENT}


def test_clients_booking_while_smtp_answers_451_each_get_one_confirmation_and_so_does_the_host(
    client, host, smtp, worker
):
    smtp.temporary_failure()
    book(client, make_meeting_type(host.organization, [host]), CLIENTS)
    wait_until(
        lambda: EmailDelivery.objects.filter(last_error__contains="451").exists(), timeout=20, what="a 451 answer"
    )
    time.sleep(2)
    smtp.accept()

    assert_each_got_one_email(smtp, within=40)


def test_the_host_still_gets_their_email_when_the_database_connection_is_cut_while_the_clients_is_sent(
    client, host, smtp, worker
):
    cut = Counter()

    def cut_the_workers_connections():
        cut["connections"] += terminate_backends(_database_url(), "chaos-worker")

    # Slow SMTP: the worker waits for the server's answer when its database connection goes.
    smtp.slow(1, on_message=cut_the_workers_connections)
    book(client, make_meeting_type(host.organization, [host]), CLIENTS)

    assert_each_got_one_email(smtp, within=40)
    assert cut["connections"] >= CLIENTS
