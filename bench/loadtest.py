"""Load test: the public booking flow served the way production serves it, measured from outside.

`make loadtest` (PostgreSQL needed; the database named by LOADTEST_DATABASE_URL, default tsp_loadtest, is
dropped and re-created) starts on loopback:

- a redis-server of its own (page cache and rate limits in database 0, the Celery broker in database 1),
- the app under gunicorn with the production settings (DEBUG=0, WhiteNoise, gunicorn.conf.py and its access
  log), LOADTEST_WEB_WORKERS sync workers (default 2 per core),
- a real Celery worker (prefork, 4 processes as in the Procfile) that sends the emails to an SMTP server run
  here (aiosmtpd),
- for the cold phase only, a second gunicorn alike on the same database and Redis whose page cache keeps
  nothing (SLOTS_CACHE_SECONDS=0), so that every request works its month out from the database,

seeds the organization of `make bench` (a round-robin meeting type by phone over 50 hosts in six time zones,
10,000 bookings next month), then runs the load generator (bench/loadgen.py, asyncio + aiohttp) in a
process of its own, one phase after the other, each for LOADTEST_SECONDS with N concurrent clients:

    booking_page   GET of the public calendar page                                  (page clients)
    slots_cached   GET of next month's times as JSON, served from the page cache     (page clients)
    slots_cold     the same, worked out at every request (the second gunicorn)      (page clients)
    booking_post   POST of the booking form, each on a time nobody has used yet     (booking clients)

Each phase reports requests/s, latency percentiles, errors and the server's CPU milliseconds per request:
the user + system CPU time of the gunicorn worker processes (from /proc/<pid>/stat) over the measured
window, divided by the requests completed in it. That figure travels between machines; requests/s and
latencies depend on the machine and on what else runs on it (the load generator shares its cores).
emails_p50_s is the median time from a booking's answer to the moment both its emails (to the client and to
the host) reached the SMTP server, with bookings coming at a steady 20 a second (booking_paced: 4 clients, one
booking every 0.2 s each; 72,000 bookings an hour, more than the booking phase reached before this load test
existed): a rate the worker keeps up with, so the figure is the emails' own delay. The booking phase's
bookings come as fast as 20 clients can make them, faster than the worker on the same two cores follows them
up, so their delay (emails_p50_s_saturated, with the medians of the phase's first and second halves beside
it) is a queue that grows through the phase: it depends on how long the phase lasted, and says how far the
worker's throughput is from the web nodes'. The SMTP server notes when each message arrives and reads
them only once all have come, so that reading them takes no CPU from the worker it is timing. The worker's
CPU per booking (and that of the PostgreSQL backends serving it) counts the warm-up's bookings too: the
worker followed them up within the same CPU time. Each phase also says how busy the whole machine was
(machine_busy_share, from /proc/stat: whatever else runs on it counts too).

Prints a table and the targets, and writes bench/results/loadtest.json.

    .venv/bin/python bench/loadtest.py
    LOADTEST_SECONDS=5 LOADTEST_PHASES=booking_page,booking_post .venv/bin/python bench/loadtest.py
    LOADTEST_PROFILE=1 .venv/bin/python bench/loadtest.py   # py-spy on the web workers: where their CPU goes
"""

import contextlib
import json
import logging
import os
import platform
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.chaos import (  # noqa: E402  (the repository root on the path first)
    MANAGE_LINK,
    Process,
    ReceivedEmail,
    SmtpSink,
    _parse,
    free_port,
    recreate_database,
    redis_server,
    wait_for_http,
    wait_for_port,
    wait_until,
)

PYTHON = sys.executable
RESULTS = ROOT / "bench" / "results" / "loadtest.json"

DATABASE_URL = os.environ.get("LOADTEST_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/tsp_loadtest")
SECONDS = float(os.environ.get("LOADTEST_SECONDS", "20"))
WARMUP_SECONDS = float(os.environ.get("LOADTEST_WARMUP_SECONDS", "3"))
PAGE_CLIENTS = int(os.environ.get("LOADTEST_PAGE_CLIENTS", "50"))
BOOKING_CLIENTS = int(os.environ.get("LOADTEST_BOOKING_CLIENTS", "20"))
WEB_WORKERS = int(os.environ.get("LOADTEST_WEB_WORKERS", str(2 * (os.cpu_count() or 1))))
# The Procfile's default (CELERY_CONCURRENCY).
CELERY_PROCESSES = int(os.environ.get("LOADTEST_CELERY_PROCESSES", "4"))
HOSTS = int(os.environ.get("LOADTEST_HOSTS", "50"))
BOOKINGS = int(os.environ.get("LOADTEST_BOOKINGS", "10000"))
EMAIL_WAIT_SECONDS = float(os.environ.get("LOADTEST_EMAIL_WAIT_SECONDS", "90"))
# After the booking phase: one client booking at a steady rate (the emails not queued behind a load test's).
PACED_CLIENTS = int(os.environ.get("LOADTEST_PACED_CLIENTS", "4"))
PACED_INTERVAL = float(os.environ.get("LOADTEST_PACED_INTERVAL", "0.2"))  # per client: 20 bookings/s in all
PACED_SECONDS = float(os.environ.get("LOADTEST_PACED_SECONDS", "15"))
PROFILE = os.environ.get("LOADTEST_PROFILE", "") == "1"
PROFILE_TOP = int(os.environ.get("LOADTEST_PROFILE_TOP", "40"))
PHASES = ["booking_page", "slots_cached", "slots_cold", "booking_post"]
CHOSEN = [name for name in os.environ.get("LOADTEST_PHASES", ",".join(PHASES)).split(",") if name]
SECRET_KEY = "loadtest-run-only-secret-key-not-for-production-" + "0" * 20
# Server CPU per request (ms), and the median time from a booking's answer to both its emails (s).
TARGETS = {"booking_page": 10.0, "slots_cached": 4.0, "booking_post": 30.0, "emails_p50_s": 2.0}
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


# ---------------------------------------------------------------- CPU time of processes, from /proc


def _stat_fields(pid: int) -> list[str] | None:
    """The fields of /proc/<pid>/stat after the command name (which may hold spaces and parentheses)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2 :].split()


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time the process has used so far (fields 14 and 15 of /proc/<pid>/stat)."""
    fields = _stat_fields(pid)
    return None if fields is None else (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def children_of(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _stat_fields(int(entry.name))
            if fields is not None and int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


def cpu_snapshot(pids: list[int]) -> dict[int, float]:
    return {pid: seconds for pid in pids if (seconds := cpu_seconds(pid)) is not None}


def cpu_used(before: dict[int, float], after: dict[int, float]) -> float:
    """Seconds of CPU between two snapshots; a process that appeared in between counts from its start."""
    return sum(seconds - before.get(pid, 0.0) for pid, seconds in after.items())


def machine_ticks() -> tuple[int, int]:
    """(busy, total) clock ticks of every core so far, from /proc/stat: how busy the whole machine was,
    this run's processes and anything else on it."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]  # idle, iowait
    return sum(values) - idle, sum(values)


def database_backends(database_url: str, application_name: str) -> list[int]:
    """The PostgreSQL server processes serving the app's connections (named by PGAPPNAME)."""
    from bench.chaos import _admin_connection, database_name

    with contextlib.closing(_admin_connection(database_url)) as admin, admin.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s AND application_name = %s",
            [database_name(database_url), application_name],
        )
        return [row[0] for row in cursor.fetchall()]


# ---------------------------------------------------------------- the processes


def app_env(*, database_url: str, redis_port: int, site_url: str, smtp_url: str, role: str, **extra) -> dict:
    """The production settings (DEBUG=0), on loopback over plain http."""
    from cryptography.fernet import Fernet

    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "REDIS_URL", "CELERY_"))}
    env.update(
        DEBUG="0",
        SECRET_KEY=SECRET_KEY,
        ALLOWED_HOSTS="127.0.0.1,localhost",
        SITE_URL=site_url,
        SECURE_SSL_REDIRECT="0",
        SESSION_COOKIE_SECURE="0",
        CSRF_COOKIE_SECURE="0",
        SECURE_HSTS_SECONDS="0",
        TOKEN_ENCRYPTION_KEYS=Fernet.generate_key().decode(),
        DATABASE_URL=database_url,
        REDIS_URL=f"redis://127.0.0.1:{redis_port}/0",
        CELERY_BROKER_URL=f"redis://127.0.0.1:{redis_port}/1",
        EMAIL_URL=smtp_url,
        PROVIDER_SANDBOX="0",
        # Every client of the run comes from 127.0.0.1: the per-IP limits would stop the run, not abuse.
        BOOKING_RATE_LIMIT="100000000",
        SLOTS_RATE_LIMIT="100000000",
        PGAPPNAME=f"loadtest-{role}",
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


def gunicorn(name: str, port: int, workers: int, env: dict, log_dir: Path) -> Process:
    """gunicorn as the Procfile starts it (gunicorn.conf.py: its access log on), on loopback."""
    command = [PYTHON, "-m", "gunicorn", "-c", "gunicorn.conf.py", "--bind", f"127.0.0.1:{port}"]
    return Process(name, [*command, "--workers", str(workers), "tsp.wsgi:application"], env, log_dir)


class WebNode:
    """One gunicorn (a web node): its workers' process ids, for their CPU time."""

    def __init__(self, name: str, port: int, env: dict, log_dir: Path, workers: int = WEB_WORKERS):
        self.name, self.port, self.env, self.workers = name, port, env, workers
        self.url = f"http://127.0.0.1:{port}"
        self.process = gunicorn(name, port, workers, env, log_dir)

    def start(self) -> "WebNode":
        return self.launch().wait_until_serving()

    def launch(self) -> "WebNode":
        self.process.start()
        return self

    def wait_until_serving(self) -> "WebNode":
        wait_for_http(self.url + "/healthz")
        wait_until(lambda: len(self.worker_pids()) >= self.workers, timeout=60, interval=0.2, what="gunicorn workers")
        return self

    def worker_pids(self) -> list[int]:
        return children_of(self.process.popen.pid) if self.process.popen else []

    def stop(self) -> None:
        self.process.stop()


class _ArrivalHandler:
    def __init__(self, mailbox: "Mailbox"):
        self.mailbox = mailbox

    async def handle_DATA(self, server, session, envelope):
        self.mailbox.arrived(envelope.content, list(envelope.rcpt_tos))
        return "250 Message accepted for delivery"


class Mailbox(SmtpSink):
    """The run's SMTP server: it notes when each message arrived and reads (parses) it only when asked.
    Parsing a message takes more CPU than the app spends writing it, on the very cores being measured:
    done as the messages arrive, it took CPU from the worker it was timing."""

    def __init__(self):
        super().__init__()
        self._arrived: list[tuple[bytes, list[str], float]] = []
        self._read: list[ReceivedEmail] = []

    def start(self) -> "Mailbox":
        from aiosmtpd.controller import Controller

        if self._controller is None:
            logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd logs every SMTP command
            self._controller = Controller(_ArrivalHandler(self), hostname="127.0.0.1", port=self.port)
            self._controller.start()
        return self

    def arrived(self, raw: bytes, recipients: list[str]) -> None:
        with self._lock:
            self._arrived.append((raw, recipients, time.monotonic()))

    def count(self) -> int:
        with self._lock:
            return len(self._arrived)

    def emails(self) -> list[ReceivedEmail]:
        """Every message so far, each read once, with the moment it arrived."""
        with self._lock:
            unread = self._arrived[len(self._read) :]
        for raw, recipients, arrived_at in unread:
            email = _parse(raw, recipients)
            email.received_at = arrived_at
            self._read.append(email)
        return list(self._read)


class Stack:
    def __init__(self, database_url: str = DATABASE_URL):
        self.database_url = database_url
        self.log_dir = Path(tempfile.mkdtemp(prefix="tsp-loadtest-"))
        self.redis_port = free_port()
        self.sink = Mailbox()
        self.site_url = ""
        self.processes: list[Process] = []
        self.nodes: dict[str, WebNode] = {}

    def env(self, role: str, site_url: str = "", **extra) -> dict:
        return app_env(
            database_url=self.database_url,
            redis_port=self.redis_port,
            site_url=site_url or self.site_url or "http://127.0.0.1:8000",
            smtp_url=self.sink.url,
            role=role,
            **extra,
        )

    def prepare(self) -> None:
        """Database (migrated), static files, Redis and the SMTP server: what seeding and the app need."""
        recreate_database(self.database_url)
        self.sink.start()
        migrate = [PYTHON, "manage.py", "migrate", "--noinput", "-v", "0"]
        subprocess.run(migrate, cwd=ROOT, env=self.env("migrate"), check=True)
        collect = [PYTHON, "manage.py", "collectstatic", "--noinput", "-v", "0"]
        subprocess.run(collect, cwd=ROOT, env=self.env("collectstatic"), check=True)
        redis = redis_server("redis", self.redis_port, self.log_dir).start()
        self.processes.append(redis)
        wait_for_port(self.redis_port)

    def start_web(self, name: str, **extra) -> WebNode:
        port = free_port()
        env = self.env(name, site_url=f"http://127.0.0.1:{port}", **extra)
        node = WebNode(name, port, env, self.log_dir)
        self.nodes[name] = node.start()
        self.site_url = self.site_url or node.url
        return node

    def start_worker(self) -> Process:
        celery = [PYTHON, "-m", "celery", "-A", "tsp", "worker", "--loglevel", "INFO"]
        celery += ["--concurrency", str(CELERY_PROCESSES)]
        worker = Process("worker", celery, self.env("worker"), self.log_dir).start()
        self.processes.append(worker)

        def pool_started() -> bool:  # its pool's processes, whose CPU time is counted, before any booking
            return len(children_of(worker.popen.pid)) >= CELERY_PROCESSES

        wait_until(pool_started, timeout=60, interval=0.2, what="the Celery worker's pool")
        return worker

    def stop(self) -> None:
        for node in self.nodes.values():
            node.stop()
        for process in reversed(self.processes):
            process.stop()
        self.sink.stop()


# ---------------------------------------------------------------- the organization


def setup_django(stack: Stack) -> None:
    """The run seeds and reads the app's database through the app's own models (no cache, no broker)."""
    env = stack.env("harness")
    os.environ.update({k: v for k, v in env.items() if k not in {"REDIS_URL", "CELERY_BROKER_URL"}})
    os.environ.pop("REDIS_URL", None)
    os.environ.pop("CELERY_BROKER_URL", None)
    os.environ["DJANGO_SETTINGS_MODULE"] = "tsp.settings"
    import django

    django.setup()


def bench_helpers():
    """bench/slots_bench.py's team and bookings makers. That module sets its own environment when
    imported (its database, no Redis): ours is put back, so the processes started later keep it."""
    saved = dict(os.environ)
    try:
        from bench import slots_bench
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return slots_bench


def seed(hosts: int, bookings: int):
    """`make bench`'s 50-host round-robin team (phone: no video provider in the way) with its bookings."""
    slots_bench = bench_helpers()
    month = slots_bench.target_month(datetime.now(UTC))
    _organization, meeting_type, members = slots_bench.make_team(hosts, "loadtest")
    slots_bench.add_bookings(meeting_type, members, bookings, month, {}, random.Random(42))
    return meeting_type, month


# ---------------------------------------------------------------- phases


def run_phase(name: str, spec: dict, node: WebNode, log_dir: Path) -> dict:
    """One phase of the load generator, with the CPU time of the node's workers (and of the PostgreSQL
    backends serving them) read at the edges of its measured window."""
    with open(log_dir / f"loadgen-{name}.log", "wb") as errors:
        generator = subprocess.Popen(
            [PYTHON, str(ROOT / "bench" / "loadgen.py")],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=errors,
            text=True,
        )
    generator.stdin.write(json.dumps(spec))
    generator.stdin.close()

    def expect(word: str) -> None:
        line = generator.stdout.readline()
        if not line.startswith(word):
            generator.kill()
            raise RuntimeError(f"load generator ({name}): expected {word!r}, got {line!r}; see {log_dir}")

    workers = node.worker_pids()
    expect("started")
    profiler = Profiler(name, node.process.popen.pid, log_dir) if PROFILE else None
    backends = database_backends(node.env["DATABASE_URL"], node.env["PGAPPNAME"])
    web_before, db_before, machine_before = cpu_snapshot(workers), cpu_snapshot(backends), machine_ticks()
    expect("finished")
    web_after, machine_after = cpu_snapshot(workers), machine_ticks()
    db_after = cpu_snapshot(database_backends(node.env["DATABASE_URL"], node.env["PGAPPNAME"]))
    result = json.loads(generator.stdout.readline())
    generator.wait(timeout=30)
    requests = result["requests"]
    web_cpu, db_cpu = cpu_used(web_before, web_after), cpu_used(db_before, db_after)
    result["cpu_ms_per_request"] = round(web_cpu * 1000 / requests, 2) if requests else None
    result["db_cpu_ms_per_request"] = round(db_cpu * 1000 / requests, 2) if requests else None
    result["web_cpu_share_of_cores"] = round(web_cpu / result["elapsed_s"] / (os.cpu_count() or 1), 2)
    busy, total = (after - before for after, before in zip(machine_after, machine_before, strict=True))
    result["machine_busy_share"] = round(busy / total, 2) if total else None
    if profiler is not None:
        result["profile"] = profiler.stop(result["cpu_ms_per_request"])
    return result


# The view each phase's requests end in: the profile lists what runs below it.
PHASE_VIEWS = {
    "booking_page": "public_page (bookings/views.py)",
    "slots_cached": "slots_json (bookings/views.py)",
    "slots_cold": "slots_json (bookings/views.py)",
    "booking_post": "book (bookings/views.py)",
    "booking_paced": "book (bookings/views.py)",
}
DJANGO_ENTRY = "WSGIHandler.__call__ (django/core/handlers/wsgi.py)"


class Profiler:
    """py-spy sampling the node's workers through the measured window (LOADTEST_PROFILE=1), counting only
    the moments a worker runs Python (holds the GIL: not while it waits for PostgreSQL or Redis, whose
    clients release it), so that a function's share of the samples is its share of the workers' CPU time.
    Each share times the phase's CPU ms per request gives ms per request: for the whole request in
    Django, for the view, and for each function below the view (inclusive: with what it calls). Sampling
    slows the workers: a profiled run's figures are not the ones to keep, and it writes no results."""

    def __init__(self, name: str, master_pid: int, log_dir: Path):
        self.view = PHASE_VIEWS[name]
        self.output = log_dir / f"profile-{name}.txt"
        spy = shutil.which("py-spy") or str(Path(PYTHON).parent / "py-spy")
        command = [spy, "record", "--pid", str(master_pid), "--subprocesses", "--gil", "--format", "raw"]
        command += ["--rate", "200", "--nolineno", "--output", str(self.output)]
        with open(log_dir / f"py-spy-{name}.log", "wb") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        time.sleep(0.5)  # attached before the window's requests are under way

    def stop(self, cpu_ms_per_request: float | None, top: int = PROFILE_TOP) -> dict:
        self.process.send_signal(signal.SIGINT)  # py-spy writes what it sampled and exits
        self.process.wait(timeout=60)
        samples, in_django, in_view = 0, 0, 0
        inclusive, own = Counter(), Counter()
        for line in self.output.read_text().splitlines():
            stack, _, count = line.rpartition(" ")
            frames = [frame for frame in stack.split(";") if not frame.startswith(("process ", "thread "))]
            if not frames or not count.isdigit():
                continue
            n = int(count)
            samples += n
            in_django += n * (DJANGO_ENTRY in frames)
            if self.view in frames:
                in_view += n
                below = frames[frames.index(self.view) + 1 :]
                for frame in set(below):
                    inclusive[frame] += n
                own[frames[-1]] += n
        ms = (cpu_ms_per_request or 0) / samples if samples else 0
        return {
            "samples": samples,
            "worker_ms": round(samples * ms, 2),
            "django_ms": round(in_django * ms, 2),
            "view_ms": round(in_view * ms, 2),
            "below_view": [
                {"function": frame, "cumulative_ms": round(n * ms, 2), "own_ms": round(own[frame] * ms, 2)}
                for frame, n in inclusive.most_common(top)
            ],
        }


def run_phase_with_emails(name: str, spec: dict, node: WebNode, stack: Stack, worker: Process):
    """run_phase, printed; for bookings, also the time to their emails and the Celery worker's CPU time
    per booking (up to the last email), over every booking it followed up: the warm-up's too, whose emails
    it sent within the same CPU time. The PostgreSQL backends serving the worker are counted alike."""
    worker_pids = [worker.popen.pid, *children_of(worker.popen.pid)]
    worker_before = cpu_snapshot(worker_pids)

    def worker_database() -> dict[int, float]:  # the PostgreSQL backends of the worker's connections
        return cpu_snapshot(database_backends(worker.env["DATABASE_URL"], worker.env["PGAPPNAME"]))

    worker_database_before = worker_database()
    messages_before = stack.sink.count()
    result = run_phase(name, spec, node, stack.log_dir)
    result["clients"] = spec["clients"]
    emails = None
    if spec["kind"] == "book":
        # The warm-up's bookings (one host each, as seeded) have their two emails on the way too.
        emails = email_delays(stack, result["bookings"], messages_before + 2 * result["warmup_bookings"])
        worker_cpu = cpu_used(worker_before, cpu_snapshot(worker_pids))
        database_cpu = cpu_used(worker_database_before, worker_database())
        served = max(1, emails["bookings"] + result["warmup_bookings"])
        emails["worker_cpu_ms_per_booking"] = round(worker_cpu * 1000 / served, 1)
        emails["worker_db_cpu_ms_per_booking"] = round(database_cpu * 1000 / served, 1)
    result.pop("bookings")
    profile = result.pop("profile", None)
    print(f"   {json.dumps(result)}", flush=True)
    if emails:
        print(f"   emails: {json.dumps(emails)}", flush=True)
    if profile:
        print(
            f"   where the workers' CPU time goes ({name}, ms per request, {profile['samples']} py-spy samples): "
            f"worker {profile['worker_ms']}, in Django {profile['django_ms']}, in the view {profile['view_ms']}"
        )
        print("   cumulative     own  function (below the view)")
        for row in profile["below_view"]:
            print(f"   {row['cumulative_ms']:10.2f} {row['own_ms']:7.2f}  {row['function']}")
    return result, emails


def email_delays(stack: Stack, bookings: list[dict], messages_before: int = 0) -> dict:
    """For each booking answered, seconds from its answer until both its emails (the client's "Confirmed"
    and the host's "New booking") had reached the SMTP server; a booking whose emails never came counts
    as infinitely late. `messages_before`: the messages the server had, or will have, before these
    bookings' (earlier phases', the warm-up's)."""
    from django.db import close_old_connections

    from bookings.models import Booking

    close_old_connections()
    answered = {}
    for item in bookings:
        match = MANAGE_LINK.search(item["location"])
        if match:
            answered[match.group(1)] = item
    rows = Booking.objects.filter(uid__in=list(answered)).prefetch_related("host_rows__member__user")
    expected = []  # (answered_at, client email, host emails, keys)
    for booking in rows:
        hosts = {row.member.user.email for row in booking.host_rows.all()}
        keys = {str(booking.uid), f"pk:{booking.pk}"}
        expected.append((answered[str(booking.uid)]["answered_at"], booking.client_email, hosts, keys))

    def delays() -> list[tuple[float, float]]:
        """(answered at, seconds to both emails) per booking."""
        first_arrival: dict[tuple[str, str], float] = {}
        for email in stack.sink.emails():
            for key in email.booking_keys():
                for recipient in email.recipients:
                    first_arrival.setdefault((key, recipient), email.received_at)
        found = []
        for answered_at, client, hosts, keys in expected:
            arrivals = []
            for recipient in (client, *hosts):
                times = [first_arrival[(key, recipient)] for key in keys if (key, recipient) in first_arrival]
                arrivals.append(min(times) if times else float("inf"))
            found.append((answered_at, max(arrivals) - answered_at))
        return found

    deadline = time.monotonic() + EMAIL_WAIT_SECONDS
    # As many messages as these bookings want first, counted without reading any: the worker may still be
    # catching up, and reading messages meanwhile would take CPU from it.
    due = messages_before + sum(1 + len(hosts) for _, _, hosts, _ in expected)
    with contextlib.suppress(TimeoutError):
        wait_until(lambda: stack.sink.count() >= due, timeout=EMAIL_WAIT_SECONDS, interval=0.5, what="the messages")
    with contextlib.suppress(TimeoutError):
        wait_until(
            lambda: expected and all(d != float("inf") for _, d in delays()),
            timeout=max(1.0, deadline - time.monotonic()),
            interval=1,
            what="the emails",
        )
    in_order = [d for _, d in sorted(delays())]
    found = sorted(in_order)
    arrived = [d for d in found if d != float("inf")]
    half = len(in_order) // 2
    return {
        "bookings": len(found),
        "missing": len(found) - len(arrived),
        "p50_s": _median(found),
        "p95_s": round(found[int(len(found) * 0.95)], 2) if arrived and len(arrived) == len(found) else None,
        "max_s": round(max(arrived), 2) if arrived else None,
        # A worker that keeps up gives both halves of the phase about the same figure; one that falls behind
        # queues more with every booking, and then the phase's p50 grows with the phase's length.
        "p50_s_first_half": _median(sorted(in_order[:half])),
        "p50_s_second_half": _median(sorted(in_order[half:])),
    }


def _median(sorted_delays: list[float]) -> float | None:
    """The middle value (seconds, rounded), None when there is none or its emails never came."""
    if not sorted_delays or sorted_delays[len(sorted_delays) // 2] == float("inf"):
        return None
    return round(sorted_delays[len(sorted_delays) // 2], 2)


# ---------------------------------------------------------------- report


def verdict(value: float | None, target: float) -> str:
    return "—" if value is None else ("met" if value <= target else "MISSED")


def worker_kept_up(emails: dict) -> str:
    """Whether the worker kept up with the bookings, from the time to the emails in the phase's two halves."""
    first, second = emails["p50_s_first_half"], emails["p50_s_second_half"]
    if first is None or second is None:
        return "emails missing"
    if second <= 1.25 * first + 0.1:
        return "the worker kept up"
    return "the worker fell behind: its queue grew through the phase, so this p50 grows with the phase's length"


def table(results: dict, emails: dict | None, paced: tuple[dict, dict] | None = None) -> str:
    lines = [
        "| phase | clients | requests/s | p50 ms | p95 ms | p99 ms | errors | server CPU ms/request | "
        "PostgreSQL CPU ms/request | target (CPU ms) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name in PHASES:
        result = results.get(name)
        if result is None:
            continue
        target = TARGETS.get(name)
        goal = f"≤ {target:g}: {verdict(result['cpu_ms_per_request'], target)}" if target else "—"
        lines.append(
            f"| {name} | {result['clients']} | {result['requests_per_s']} | {result['p50_ms']} | {result['p95_ms']} | "
            f"{result['p99_ms']} | {result['errors']} | {result['cpu_ms_per_request']} | "
            f"{result['db_cpu_ms_per_request']} | {goal} |"
        )
    if emails is not None:
        # The worker's load is the bookings' rate, which is what the web nodes reached on this machine.
        rate = results["booking_post"]["requests_per_s"] if "booking_post" in results else None
        lines.append("")
        lines.append(
            f"Saturated: booking answer → both emails at the SMTP server, {emails['bookings']} bookings at {rate}/s "
            f"(as fast as the clients could book): p50 {emails['p50_s']} s, p95 {emails['p95_s']} s, "
            f"max {emails['max_s']} s, missing {emails['missing']}; p50 of the phase's first half "
            f"{emails['p50_s_first_half']} s, of its second half {emails['p50_s_second_half']} s: "
            f"{worker_kept_up(emails)}"
        )
        lines.append(
            f"The Celery worker's CPU per booking (its two emails and the rest of what follows, warm-up's bookings "
            f"counted): {emails['worker_cpu_ms_per_booking']} ms, and PostgreSQL's for its queries "
            f"{emails['worker_db_cpu_ms_per_booking']} ms"
        )
    if paced is not None:
        result, paced_emails = paced
        goal = TARGETS["emails_p50_s"]
        lines.append(
            f"At a steady {result['requests_per_s']} bookings/s ({result['clients']} clients): booking POST p50 "
            f"{result['p50_ms']} ms, {result['cpu_ms_per_request']} ms server CPU; answer → both emails p50 "
            f"{paced_emails['p50_s']} s, p95 {paced_emails['p95_s']} s, max {paced_emails['max_s']} s, missing "
            f"{paced_emails['missing']} (emails_p50_s, target ≤ {goal:g} s: {verdict(paced_emails['p50_s'], goal)}); "
            f"{worker_kept_up(paced_emails)}"
        )
    return "\n".join(lines)


def machine() -> dict:
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "load_average_before": [round(x, 2) for x in os.getloadavg()],
        "shared": "the load generator, PostgreSQL, Redis and the Celery worker run on the same cores",
    }


def main() -> int:
    unknown = set(CHOSEN) - set(PHASES)
    if unknown or not shutil.which("redis-server"):
        print(f"unknown phases: {sorted(unknown)}" if unknown else "redis-server is not installed")
        return 2
    began = time.monotonic()
    context = machine()
    stack = Stack()
    print(f"logs: {stack.log_dir}", flush=True)
    results, emails, details_paced, emails_paced = {}, None, None, None
    try:
        stack.prepare()
        setup_django(stack)
        meeting_type, month = seed(HOSTS, BOOKINGS)
        context["machine_reference_ms"] = bench_helpers().machine_reference_ms()
        web = stack.start_web("web")
        worker = stack.start_worker()
        print(f"seeded and started in {time.monotonic() - began:.0f} s", flush=True)
        path = f"/{meeting_type.organization.slug}/{meeting_type.slug}"
        slots_query = f"/slots.json?month={month:%Y-%m}&tz=Europe/Berlin"
        later = f"{month.year + (month.month == 12)}-{month.month % 12 + 1:02d}"
        common = {"duration": SECONDS, "warmup": WARMUP_SECONDS}
        for name in CHOSEN:
            node, clients, spec = web, PAGE_CLIENTS, {**common}
            if name == "booking_page":
                spec.update(kind="get", urls=[web.url + path + "/"])
            elif name == "slots_cached":
                spec.update(kind="get", urls=[web.url + path + slots_query])
            elif name == "slots_cold":
                node = stack.nodes.get("cold") or stack.start_web("cold", SLOTS_CACHE_SECONDS="0")
                spec.update(kind="get", urls=[node.url + path + slots_query])
            else:
                clients = BOOKING_CLIENTS
                spec.update(
                    kind="book",
                    slots_urls=[f"{web.url}{path}/slots.json?month={m}&tz=UTC" for m in (f"{month:%Y-%m}", later)],
                    book_url=web.url + path + "/book/",
                )
            print(f"== {name}: {clients} clients, {SECONDS:g} s", flush=True)
            result, emails_of_phase = run_phase_with_emails(name, {**spec, "clients": clients}, node, stack, worker)
            results[name] = result
            if name == "slots_cold":
                node.stop()
            if name == "booking_post":
                emails = emails_of_phase
                # The same path at a steady rate that the worker keeps up with: what a booking's emails take
                # when they are not queued behind the bookings of a load test.
                paced = {
                    **spec,
                    "clients": PACED_CLIENTS,
                    "interval": PACED_INTERVAL,
                    "duration": PACED_SECONDS,
                    "warmup": 0,
                }
                print(
                    f"== booking_paced: {PACED_CLIENTS} clients, a booking every {PACED_INTERVAL:g} s each, "
                    f"for {PACED_SECONDS:g} s"
                )
                details_paced, emails_paced = run_phase_with_emails("booking_paced", paced, web, stack, worker)
    finally:
        stack.stop()

    report = table(results, emails, (details_paced, emails_paced) if details_paced else None)
    print()
    print(report)
    keys = ("requests_per_s", "p50_ms", "p95_ms", "p99_ms", "errors", "cpu_ms_per_request")
    written = {name: {key: result[key] for key in keys} for name, result in results.items()}
    written["emails_p50_s"] = emails_paced and emails_paced["p50_s"]
    written["emails_p50_s_saturated"] = emails and emails["p50_s"]
    written.update(
        recorded_at=datetime.now(UTC).isoformat(timespec="seconds"),
        machine=context,
        web_workers=WEB_WORKERS,
        celery_worker_processes=CELERY_PROCESSES,
        clients={"pages": PAGE_CLIENTS, "bookings": BOOKING_CLIENTS},
        duration_s=SECONDS,
        warmup_s=WARMUP_SECONDS,
        organization={"hosts": HOSTS, "bookings": BOOKINGS, "month": f"{month:%Y-%m}"},
        targets={
            "cpu_ms_per_request": {k: v for k, v in TARGETS.items() if k != "emails_p50_s"},
            "emails_p50_s": TARGETS["emails_p50_s"],
        },
        details={name: {k: v for k, v in result.items() if k not in keys} for name, result in results.items()},
        emails=emails,
        booking_paced={
            "clients": PACED_CLIENTS,
            "interval_s": PACED_INTERVAL,
            "phase": details_paced,
            "emails": emails_paced,
        },
        run_seconds=round(time.monotonic() - began),
    )
    if set(results) == set(PHASES) and not PROFILE:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(written, indent=2) + "\n")
        print(f"\nWritten to {RESULTS.relative_to(ROOT)}")
    else:
        print("\n(a profiled run, or not every phase ran: nothing written)")
    return 0 if results else 1


if __name__ == "__main__":
    sys.exit(main())
