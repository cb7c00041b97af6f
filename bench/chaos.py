"""Fault injection end to end: nothing a client booked is lost or doubled when the parts around us fail.

`make chaos` (PostgreSQL needed; the database named by CHAOS_DATABASE_URL, default tsp_chaos, and a second one
with `_zoom` appended are dropped and re-created) starts the whole production shape on loopback:

- two redis-servers of its own (the cache, and the Celery broker, so that the broker alone can be stopped),
- the app under gunicorn (2 workers, DEBUG=0), a Celery worker (prefork) and celery beat,
- the Zoom sandbox as a service of its own (gunicorn, 1 process, its own database) behind a small proxy
  that can answer 503, or forward a request and hold the answer back (a slow Zoom, a read timeout),
- an SMTP server (aiosmtpd) that accepts, answers slowly, answers 451, or refuses connections.

Each scenario books through the public booking form over HTTP, as clients do, injects one fault, ends it,
waits for the follow-ups to finish and then counts, from the SMTP server and Zoom's side (not from our own
bookkeeping): bookings, Zoom meetings per booking, emails per (booking, kind, recipient), and the time from
the fault's end until every booking had its meeting and every email had arrived. It prints a Markdown table,
writes bench/results/chaos.json and exits 1 if anything was lost or doubled.

    .venv/bin/python bench/chaos.py [--only smtp_451,zoom_outage] [--bookings 4] [--outage 60]
"""

import argparse
import asyncio
import contextlib
import json
import logging
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import policy
from email.parser import BytesParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import requests

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
RESULTS = ROOT / "bench" / "results" / "chaos.json"

CHAOS_DATABASE_URL = os.environ.get("CHAOS_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/tsp_chaos")
SECRET_KEY = "chaos-run-only-secret-key-not-for-production-" + "0" * 20
ZOOM_CLIENT_ID, ZOOM_CLIENT_SECRET = "chaos-zoom-client", "chaos-zoom-secret-4b1d"
ZOOM_WEBHOOK_SECRET = "chaos-zoom-webhook-secret-9e2a"
HOST_ZOOM_EMAILS = ["hana.host@zoom.chaos.example", "hugo.host@zoom.chaos.example"]
MEETINGS_PATH = "/users/me/meetings"
UID_IN_EMAIL = re.compile(r"([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})@teamschedulerpro")
MANAGE_LINK = re.compile(r"/booking/([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})/")
DASHBOARD_LINK = re.compile(r"/app/bookings/(\d+)/")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until(condition, *, timeout: float, interval: float = 0.5, what: str = "a condition"):
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


# ---------------------------------------------------------------- SMTP server with switchable faults


@dataclass
class ReceivedEmail:
    recipients: list[str]
    subject: str
    text: str  # every text part and the invitation, decoded
    received_at: float

    @property
    def kind(self) -> str:
        """What the email is about, from its subject ("Confirmed", "New booking", "Action needed"…)."""
        return self.subject.split(":", 1)[0]

    def booking_keys(self) -> set[str]:
        """The booking(s) it is about: the invitation's UID, the manage link or the dashboard link."""
        keys = set(UID_IN_EMAIL.findall(self.text)) | set(MANAGE_LINK.findall(self.text))
        return keys | {f"pk:{pk}" for pk in DASHBOARD_LINK.findall(self.text)}


def _parse(raw: bytes, recipients: list[str]) -> ReceivedEmail:
    message = BytesParser(policy=policy.default).parsebytes(raw)
    texts = []
    for part in message.walk():
        if part.get_content_maintype() == "text":
            with contextlib.suppress(LookupError, ValueError):
                texts.append(str(part.get_content()))
    return ReceivedEmail(recipients, str(message["subject"] or ""), "\n".join(texts), time.monotonic())


class _SinkHandler:
    def __init__(self, sink: "SmtpSink"):
        self.sink = sink

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.sink.mode == "451":
            return "451 4.3.0 Temporary failure, try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.sink.mode == "451":
            return "451 4.3.0 Temporary failure, try again later"
        hook, delay = self.sink.on_message, self.sink.delay
        if hook is not None:
            await asyncio.get_running_loop().run_in_executor(None, hook)
        if delay:
            await asyncio.sleep(delay)
        self.sink.record(_parse(envelope.content, list(envelope.rcpt_tos)))
        return "250 Message accepted for delivery"


class SmtpSink:
    """An SMTP server on loopback that keeps what it receives and can be switched between behaviours:
    accept(), slow(seconds) (optionally calling `on_message` as each message arrives), temporary_failure()
    (451 to every recipient and message) and refuse() (nothing listens: connections are refused)."""

    def __init__(self, port: int = 0):
        self.port = port or free_port()
        self.mode, self.delay, self.on_message = "accept", 0.0, None
        self.received: list[ReceivedEmail] = []
        self._lock = threading.Lock()
        self._controller = None

    def start(self) -> "SmtpSink":
        from aiosmtpd.controller import Controller

        if self._controller is None:
            logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd logs every SMTP command
            self._controller = Controller(_SinkHandler(self), hostname="127.0.0.1", port=self.port)
            self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def record(self, email: ReceivedEmail) -> None:
        with self._lock:
            self.received.append(email)

    def emails(self) -> list[ReceivedEmail]:
        with self._lock:
            return list(self.received)

    def accept(self) -> None:
        self.mode, self.delay, self.on_message = "accept", 0.0, None
        self.start()

    def slow(self, seconds: float, on_message=None) -> None:
        self.mode, self.delay, self.on_message = "accept", seconds, on_message
        self.start()

    def temporary_failure(self) -> None:
        self.mode = "451"
        self.start()

    def refuse(self) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"


# ---------------------------------------------------------------- Zoom, behind a proxy with faults


@dataclass
class ProxyRule:
    method: str
    path_contains: str
    status: int | None = None  # answer this instead of forwarding
    hold_seconds: float = 0.0  # forward, then keep the answer back this long (Zoom did the work)
    times: int | None = None  # None: until removed


class ZoomProxy:
    """Forwards to the Zoom sandbox; rules make it answer an error, or forward and hold the answer back."""

    def __init__(self, upstream: str):
        self.upstream = upstream.rstrip("/")
        self.rules: list[ProxyRule] = []
        self.forwarded: Counter = Counter()  # (method, path) → requests that reached Zoom
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def add(self, rule: ProxyRule) -> ProxyRule:
        with self._lock:
            self.rules.append(rule)
        return rule

    def remove(self, rule: ProxyRule) -> None:
        with self._lock:
            if rule in self.rules:
                self.rules.remove(rule)

    def forwarded_count(self, method: str, path_contains: str) -> int:
        with self._lock:
            return sum(n for (m, p), n in self.forwarded.items() if m == method and path_contains in p)

    def _take(self, method: str, path: str) -> ProxyRule | None:
        with self._lock:
            for rule in self.rules:
                if rule.method == method and rule.path_contains in path:
                    if rule.times is not None:
                        rule.times -= 1
                        if rule.times <= 0:
                            self.rules.remove(rule)
                    return rule
        return None

    def shutdown(self) -> None:
        self._server.shutdown()

    def _handler_class(self):
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _handle(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                path = urlsplit(self.path).path
                rule = proxy._take(self.command, path)
                if rule is not None and rule.status is not None:
                    payload = json.dumps({"code": rule.status, "message": "Service unavailable (chaos)."}).encode()
                    return self._answer(rule.status, {"Content-Type": "application/json"}, payload)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in {"host", "connection"}}
                upstream = requests.request(
                    self.command,
                    proxy.upstream + self.path,
                    data=body,
                    headers=headers,
                    allow_redirects=False,
                    timeout=60,
                )
                with proxy._lock:
                    proxy.forwarded[(self.command, path)] += 1
                if rule is not None and rule.hold_seconds:
                    time.sleep(rule.hold_seconds)
                keep = {"content-type", "location", "retry-after", "set-cookie"}
                self._answer(
                    upstream.status_code,
                    {k: v for k, v in upstream.headers.items() if k.lower() in keep},
                    upstream.content,
                )

            def _answer(self, status: int, headers: dict, payload: bytes):
                try:
                    self.send_response(status)
                    for name, value in headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except OSError:
                    pass  # the client gave up waiting (a read timeout): that is the point

            do_GET = do_POST = do_PATCH = do_DELETE = do_PUT = _handle

        return Handler


# ---------------------------------------------------------------- PostgreSQL


def _admin_connection(database_url: str):
    import psycopg2

    parts = urlsplit(database_url)
    connection = psycopg2.connect(
        host=parts.hostname,
        port=parts.port or 5432,
        user=parts.username or "postgres",
        password=parts.password,
        dbname="postgres",
    )
    connection.autocommit = True
    return connection


def database_name(database_url: str) -> str:
    return urlsplit(database_url).path.lstrip("/")


def recreate_database(database_url: str) -> None:
    name = database_name(database_url)
    with contextlib.closing(_admin_connection(database_url)) as admin, admin.cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        cursor.execute(f'CREATE DATABASE "{name}"')


def terminate_backends(database_url: str, application_prefix: str = "chaos-") -> int:
    """pg_terminate_backend on every connection of the app's processes (named by PGAPPNAME) to the database."""
    with contextlib.closing(_admin_connection(database_url)) as admin, admin.cursor() as cursor:
        cursor.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = %s AND application_name LIKE %s AND application_name <> 'chaos-harness'",
            [database_name(database_url), application_prefix + "%"],
        )
        return cursor.fetchone()[0]


def allow_connections(database_url: str, allowed: bool) -> None:
    """A database outage for the app alone: PostgreSQL stays up (the Zoom sandbox keeps its own database)."""
    with contextlib.closing(_admin_connection(database_url)) as admin, admin.cursor() as cursor:
        cursor.execute(f'ALTER DATABASE "{database_name(database_url)}" ALLOW_CONNECTIONS {str(allowed).lower()}')


# ---------------------------------------------------------------- processes


class Process:
    """One child process in a session of its own (so a SIGKILL reaches its children too), logging to a file."""

    def __init__(self, name: str, command: list[str], env: dict, log_dir: Path):
        self.name, self.command, self.env = name, command, env
        self.log = log_dir / f"{name}.log"
        self.popen: subprocess.Popen | None = None

    def start(self) -> "Process":
        with open(self.log, "ab") as output:
            self.popen = subprocess.Popen(
                self.command, cwd=ROOT, env=self.env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
            )
        return self

    def kill(self) -> None:
        """SIGKILL to the process and its children: a crash, nothing gets to clean up."""
        if self.popen and self.popen.poll() is None:
            os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait()

    def stop(self, timeout: float = 15) -> None:
        if not self.popen or self.popen.poll() is not None:
            return
        os.killpg(self.popen.pid, signal.SIGTERM)
        try:
            self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    def tail(self, characters: int = 2000) -> str:
        return self.log.read_text(errors="replace")[-characters:] if self.log.exists() else ""


def redis_server(name: str, port: int, log_dir: Path) -> Process:
    command = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    return Process(name, command, dict(os.environ), log_dir)


def wait_for_port(port: int, timeout: float = 30) -> None:
    def listening():
        with socket.socket() as probe:
            probe.settimeout(0.5)
            return probe.connect_ex(("127.0.0.1", port)) == 0

    wait_until(listening, timeout=timeout, interval=0.2, what=f"port {port}")


def wait_for_http(url: str, timeout: float = 60) -> None:
    def answering():
        with contextlib.suppress(requests.RequestException):
            return requests.get(url, timeout=2).status_code < 500
        return False

    wait_until(answering, timeout=timeout, interval=0.3, what=url)


# Time budgets that the app reads from its environment, shortened so that a run lasts minutes. Every row of
# the table says how long its outage really was; these only make the app retry and sweep more often.
SCALED_SETTINGS = {
    "FOLLOW_UP_SWEEP_SECONDS": "60",  # the production value: recovery times are measured with it
    "RETRY_BASE_SECONDS": "2",
    "EMAIL_RETRY_HOURS": "24",
}


class Stack:
    """Every process of a production deployment, on loopback, plus the faults' controls."""

    def __init__(self, database_url: str = CHAOS_DATABASE_URL, log_dir: Path | None = None):
        self.database_url = database_url
        self.zoom_database_url = database_url + "_zoom"
        self.log_dir = log_dir or Path(tempfile.mkdtemp(prefix="tsp-chaos-"))
        self.web_port, self.zoom_port = free_port(), free_port()
        self.cache_port, self.broker_port = free_port(), free_port()
        self.site_url = f"http://127.0.0.1:{self.web_port}"
        self.zoom_url = f"http://127.0.0.1:{self.zoom_port}"
        self.encryption_key = _fernet_key()
        self.sink = SmtpSink()
        self.zoom_proxy = ZoomProxy(self.zoom_url)
        self.processes: dict[str, Process] = {}

    # -- environments

    def _common_env(self) -> dict:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "REDIS_URL", "CELERY_"))}
        env.update(
            DEBUG="0",
            SECRET_KEY=SECRET_KEY,
            ALLOWED_HOSTS="127.0.0.1,localhost",
            SITE_URL=self.site_url,
            SECURE_SSL_REDIRECT="0",
            SESSION_COOKIE_SECURE="0",
            CSRF_COOKIE_SECURE="0",
            SECURE_HSTS_SECONDS="0",
            ZOOM_CLIENT_ID=ZOOM_CLIENT_ID,
            ZOOM_CLIENT_SECRET=ZOOM_CLIENT_SECRET,
            ZOOM_WEBHOOK_SECRET_TOKEN=ZOOM_WEBHOOK_SECRET,
            TOKEN_ENCRYPTION_KEYS=self.encryption_key,
            LOG_LEVEL="INFO",
            PYTHONUNBUFFERED="1",
        )
        return env

    def app_env(self, role: str) -> dict:
        env = self._common_env()
        env.update(
            DATABASE_URL=self.database_url,
            REDIS_URL=f"redis://127.0.0.1:{self.cache_port}/0",
            CELERY_BROKER_URL=f"redis://127.0.0.1:{self.broker_port}/0",
            EMAIL_URL=self.sink.url,
            PROVIDER_SANDBOX="0",
            ZOOM_OAUTH_BASE_URL=self.zoom_proxy.url + "/sandbox/zoom",
            ZOOM_API_BASE_URL=self.zoom_proxy.url + "/sandbox/zoom/v2",
            # Every client of the run comes from 127.0.0.1: the per-IP limits would stop the run, not abuse.
            BOOKING_RATE_LIMIT="100000",
            SLOTS_RATE_LIMIT="100000",
            PGAPPNAME=f"chaos-{role}",
            **SCALED_SETTINGS,
        )
        return env

    def zoom_env(self) -> dict:
        env = self._common_env()
        env.update(DATABASE_URL=self.zoom_database_url, PROVIDER_SANDBOX="1", PGAPPNAME="zoom-sandbox")
        return env

    # -- lifecycle

    def start(self) -> "Stack":
        recreate_database(self.database_url)
        recreate_database(self.zoom_database_url)
        self.sink.start()
        migrate = [PYTHON, "manage.py", "migrate", "--noinput", "-v", "0"]
        subprocess.run(migrate, cwd=ROOT, env=self.app_env("migrate"), check=True)
        subprocess.run(migrate, cwd=ROOT, env=self.zoom_env(), check=True)
        collect = [PYTHON, "manage.py", "collectstatic", "--noinput", "-v", "0"]
        subprocess.run(collect, cwd=ROOT, env=self.app_env("collectstatic"), check=True)
        log_dir = self.log_dir
        gunicorn = [PYTHON, "-m", "gunicorn", "tsp.wsgi:application", "--access-logfile", "-"]
        celery = [PYTHON, "-m", "celery", "-A", "tsp"]
        self.processes = {
            "cache": redis_server("cache", self.cache_port, log_dir),
            "broker": redis_server("broker", self.broker_port, log_dir),
            "zoom": Process(
                "zoom",
                [*gunicorn, "--bind", f"127.0.0.1:{self.zoom_port}", "--workers", "1", "--threads", "16"],
                self.zoom_env(),
                log_dir,
            ),
            "web": Process(
                "web",
                [*gunicorn, "--bind", f"127.0.0.1:{self.web_port}", "--workers", "2"],
                self.app_env("web"),
                log_dir,
            ),
            "worker": Process(
                "worker",
                [*celery, "worker", "--loglevel", "INFO", "--concurrency", "2"],
                self.app_env("worker"),
                log_dir,
            ),
            "beat": Process(
                "beat",
                [*celery, "beat", "--loglevel", "INFO", "-s", str(log_dir / "beat-schedule")],
                self.app_env("beat"),
                log_dir,
            ),
        }
        for name in ("cache", "broker"):
            self.processes[name].start()
        wait_for_port(self.cache_port)
        wait_for_port(self.broker_port)
        for name in ("zoom", "web", "worker", "beat"):
            self.processes[name].start()
        wait_for_http(self.zoom_url + "/sandbox/zoom/control/state")
        wait_for_http(self.site_url + "/healthz")
        return self

    def stop(self) -> None:
        for process in reversed(list(self.processes.values())):
            process.stop()
        self.sink.stop()
        self.zoom_proxy.shutdown()
        with contextlib.suppress(Exception):
            allow_connections(self.database_url, True)

    def restart(self, name: str) -> None:
        self.processes[name].start()

    # -- faults

    def kill_worker(self) -> None:
        self.processes["worker"].kill()

    def stop_broker(self) -> None:
        self.processes["broker"].kill()

    def start_broker(self) -> None:
        self.processes["broker"].start()
        wait_for_port(self.broker_port)

    def zoom_meetings(self) -> list[dict]:
        return requests.get(self.zoom_url + "/sandbox/zoom/control/state", timeout=10).json()["meetings"]


def _fernet_key() -> str:
    from cryptography.fernet import Fernet

    return Fernet.generate_key().decode()


# ---------------------------------------------------------------- the organization and its clients


def setup_django(stack: Stack) -> None:
    """The run itself reads and seeds the app's database through the app's own models."""
    os.environ.update(
        {k: v for k, v in stack.app_env("harness").items() if k not in {"REDIS_URL", "CELERY_BROKER_URL"}}
    )
    os.environ["DJANGO_SETTINGS_MODULE"] = "tsp.settings"
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def zoom_tokens(stack: Stack, email: str) -> tuple[dict, dict]:
    """Authorize the app at the Zoom sandbox as `email` (consent page → code → tokens), as Connect does."""
    browser = requests.Session()
    authorize = stack.zoom_url + "/sandbox/zoom/oauth/authorize"
    redirect_uri = stack.site_url + "/integrations/zoom/callback/"
    params = {"client_id": ZOOM_CLIENT_ID, "response_type": "code", "redirect_uri": redirect_uri, "state": "chaos"}
    page = browser.get(authorize, params=params, timeout=10)
    page.raise_for_status()
    csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
    answer = browser.post(
        page.url,
        data={"csrfmiddlewaretoken": csrf, "email": email, "decision": "allow"},
        headers={"Referer": page.url},
        allow_redirects=False,
        timeout=10,
    )
    code = re.search(r"[?&]code=([^&]+)", answer.headers["Location"]).group(1)
    tokens = requests.post(
        stack.zoom_url + "/sandbox/zoom/oauth/token",
        data={"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri},
        auth=(ZOOM_CLIENT_ID, ZOOM_CLIENT_SECRET),
        timeout=10,
    ).json()
    me = requests.get(
        stack.zoom_url + "/sandbox/zoom/v2/users/me",
        headers={"Authorization": f"Bearer {tokens['access_token']}"},
        timeout=10,
    ).json()
    return tokens, me


def seed(stack: Stack):
    """An organization with two hosts, both with Zoom connected, working around the clock in UTC."""
    from datetime import time as clock

    from accounts.models import Organization, User
    from integrations.base import Account, TokenSet
    from integrations.models import Provider
    from integrations.services import save_connection
    from members.models import TeamMember, WorkingHours

    organization = Organization.objects.create(name="Chaos Consulting", slug="chaos-consulting")
    hosts = []
    for n, zoom_email in enumerate(HOST_ZOOM_EMAILS, start=1):
        user = User.objects.create_user(email=f"host{n}@chaos.example", password=secrets.token_urlsafe(16))
        member = TeamMember.objects.create(
            organization=organization,
            user=user,
            display_name=f"Host {n}",
            role=TeamMember.Role.ADMIN,
            time_zone="UTC",
        )
        WorkingHours.objects.bulk_create(
            WorkingHours(member=member, weekday=day, start=clock(0), end=clock(0)) for day in range(7)
        )
        tokens, me = zoom_tokens(stack, zoom_email)
        save_connection(
            member=member,
            provider=Provider.ZOOM,
            tokens=TokenSet(tokens["access_token"], tokens["refresh_token"], tokens["expires_in"], tokens["scope"]),
            account=Account(me["id"], me["account_id"], me["email"]),
        )
        hosts.append(member)
    return organization, hosts


def make_zoom_type(organization, hosts, slug: str):
    from meetingtypes.models import MeetingType, MeetingTypeHost

    meeting_type = MeetingType.objects.create(
        organization=organization,
        name=slug.replace("_", " ").capitalize(),
        slug=slug.replace("_", "-"),
        duration_minutes=30,
        minimum_notice_minutes=0,
        booking_window_days=90,
        location=MeetingType.Location.ZOOM,
        location_detail="",
        assignment=MeetingType.Assignment.ROUND_ROBIN,
    )
    for position, host in enumerate(hosts):
        MeetingTypeHost.objects.create(meeting_type=meeting_type, member=host, position=position)
    return meeting_type


@dataclass
class BookingAttempt:
    status: int
    location: str = ""
    seconds: float = 0.0
    unavailable: int = 0  # 503 answers ("try again in a moment") before this one

    @property
    def booked(self) -> bool:
        return self.status == 302 and "booked=1" in self.location


def book_over_http(site_url: str, meeting_type, count: int, *, label: str, skip: int = 0) -> list[BookingAttempt]:
    """`count` clients book through the public form, each in a browser session of their own."""
    base = f"{site_url}/{meeting_type.organization.slug}/{meeting_type.slug}"
    slots = requests.get(base + "/slots.json", params={"tz": "UTC"}, timeout=30)
    slots.raise_for_status()
    days = slots.json()["days"]
    starts = [slot["start"] for day in sorted(days) for slot in days[day]][skip:]
    attempts, remaining = [], iter(starts)
    for n in range(count):
        for start in remaining:
            client = {"name": f"Client {label} {n}", "email": f"client-{label}-{n}@chaos.example"}
            attempt, unavailable = book_once(base, start, **client), 0
            while attempt.status == 503 and unavailable < 5:  # the page asks to try again: a client does
                time.sleep(2)
                unavailable += 1
                attempt = book_once(base, start, **client)
                attempt.unavailable = unavailable
            if attempt.status != 200:  # 200: the form again ("just taken"): try the next time
                attempts.append(attempt)
                break
    return attempts


def book_once(base: str, start: str, *, name: str, email: str, timeout: float = 30) -> BookingAttempt:
    """The form page for that time, then its POST (the public form needs no CSRF token: it is embeddable)."""
    browser = requests.Session()
    began = time.monotonic()
    try:
        form = browser.get(base + "/book/", params={"start": start, "tz": "UTC"}, timeout=timeout)
        if form.status_code != 200:
            return BookingAttempt(form.status_code, seconds=time.monotonic() - began)
        response = browser.post(
            base + "/book/",
            data={"name": name, "email": email, "start": start, "time_zone": "UTC"},
            allow_redirects=False,
            timeout=timeout,
        )
    except requests.RequestException:
        return BookingAttempt(0, seconds=time.monotonic() - began)
    return BookingAttempt(response.status_code, response.headers.get("Location", ""), time.monotonic() - began)


# ---------------------------------------------------------------- what came out


@dataclass
class Outcome:
    bookings: int
    booked_answers: int
    meetings_per_booking: Counter = field(default_factory=Counter)
    linked: int = 0  # bookings whose stored meeting is one that exists at Zoom, with its link
    emails_per_key: Counter = field(default_factory=Counter)  # copies → how many (booking, kind, recipient)
    missing_emails: list[str] = field(default_factory=list)
    link_missing: int = 0  # clients who never received their join link
    delivery_states: Counter = field(default_factory=Counter)

    @property
    def complete(self) -> bool:
        return (
            self.bookings > 0
            and self.bookings == self.booked_answers
            and set(self.meetings_per_booking) == {1}
            and self.linked == self.bookings
            and not self.missing_emails
            and self.link_missing == 0
        )

    @property
    def doubled(self) -> bool:
        return any(copies > 1 for copies in self.emails_per_key) or any(n > 1 for n in self.meetings_per_booking)


def observe(stack: Stack, meeting_type, booked_answers: int) -> Outcome:
    """Count from the outside: Zoom's meetings and the SMTP server's mail, matched to the bookings."""
    from django.db import close_old_connections

    from bookings.models import Booking, EmailDelivery
    from integrations.models import Connection, VideoMeeting

    close_old_connections()
    bookings = list(
        Booking.objects.filter(meeting_type=meeting_type).prefetch_related("host_rows__member__user").order_by("pk")
    )
    zoom_email = dict(Connection.objects.values_list("member_id", "email"))
    by_slot = Counter((m["host_email"], m["start_time"]) for m in stack.zoom_meetings())
    zoom_links = {m["id"]: m["join_url"] for m in stack.zoom_meetings()}
    meetings = {m.booking_id: m for m in VideoMeeting.objects.filter(booking__in=bookings)}
    emails = stack.sink.emails()
    outcome = Outcome(bookings=len(bookings), booked_answers=booked_answers)
    copies: Counter = Counter()
    for booking in bookings:
        host = next(row.member for row in booking.host_rows.all())
        start = booking.start.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        outcome.meetings_per_booking[by_slot[(zoom_email.get(host.pk), start)]] += 1
        meeting = meetings.get(booking.pk)
        join_url = zoom_links.get(meeting.meeting_id) if meeting and meeting.state == "ready" else None
        outcome.linked += bool(join_url and meeting.join_url == join_url)
        keys = {str(booking.uid), f"pk:{booking.pk}"}
        mine = [email for email in emails if email.booking_keys() & keys]
        for email in mine:
            for recipient in email.recipients:
                copies[(booking.pk, email.kind, recipient)] += 1
        for recipient, kind in ((booking.client_email, "Confirmed"), (host.user.email, "New booking")):
            if not copies[(booking.pk, kind, recipient)]:
                outcome.missing_emails.append(f"{kind} → {recipient}")
        client_mail = [email for email in mine if booking.client_email in email.recipients]
        outcome.link_missing += not (join_url and any(join_url in email.text for email in client_mail))
    outcome.emails_per_key = Counter(copies.values())
    outcome.delivery_states = Counter(
        EmailDelivery.objects.filter(booking__in=bookings).values_list("state", flat=True)
    )
    return outcome


# ---------------------------------------------------------------- scenarios


@dataclass
class Result:
    scenario: str
    fault: str
    outage: str
    outcome: Outcome | None = None
    recovered_after: float | None = None  # seconds from the fault's end until everything had arrived
    web_during_outage: Counter | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        if self.web_during_outage is not None and any(
            not (answer == "503 + Retry-After" or answer.isdigit() and int(answer) < 500)
            for answer in self.web_during_outage
        ):
            return False
        return self.outcome is not None and self.outcome.complete and not self.outcome.doubled

    def as_dict(self) -> dict:
        outcome = self.outcome
        return {
            "scenario": self.scenario,
            "fault": self.fault,
            "outage": self.outage,
            "ok": self.ok,
            "recovered_after_seconds": None if self.recovered_after is None else round(self.recovered_after, 1),
            "bookings": outcome and outcome.bookings,
            "booked_answers": outcome and outcome.booked_answers,
            "meetings_per_booking": outcome and dict(outcome.meetings_per_booking),
            "bookings_with_linked_meeting": outcome and outcome.linked,
            "emails_per_booking_kind_recipient": outcome and dict(outcome.emails_per_key),
            "missing_emails": outcome and outcome.missing_emails,
            "clients_without_link": outcome and outcome.link_missing,
            "email_rows_by_state": outcome and dict(outcome.delivery_states),
            "web_during_outage": self.web_during_outage and dict(self.web_during_outage),
            "notes": self.notes,
        }


class Run:
    def __init__(self, stack: Stack, organization, hosts, *, bookings: int, outage: float, limit: float, settle: float):
        self.stack, self.organization, self.hosts = stack, organization, hosts
        self.n, self.outage, self.limit, self.settle = bookings, outage, limit, settle
        self.booked_so_far = 0

    def book(self, meeting_type, count: int | None = None) -> list[BookingAttempt]:
        # Each scenario's clients take later times than the last one's: the slot pages are cached a while.
        attempts = book_over_http(
            self.stack.site_url, meeting_type, count or self.n, label=meeting_type.slug, skip=self.booked_so_far
        )
        self.booked_so_far += len(attempts) + 2
        return attempts

    def finish(self, result: Result, meeting_type, attempts: list[BookingAttempt], fault_ended: float) -> Result:
        """Wait for everything to arrive (up to the limit), let duplicates show up, then count."""
        booked = sum(attempt.booked for attempt in attempts)
        other = Counter(attempt.status for attempt in attempts if not attempt.booked)
        if other:
            result.notes.append("booking answers other than a confirmation: " + _counts(other))
        unavailable = sum(attempt.unavailable for attempt in attempts)
        if unavailable:
            result.notes.append(f"{unavailable} booking answers were 503 'try again'; the clients did")
        try:
            wait_until(
                lambda: observe(self.stack, meeting_type, booked).complete,
                timeout=self.limit,
                interval=1,
                what="recovery",
            )
            result.recovered_after = time.monotonic() - fault_ended
        except TimeoutError:
            result.notes.append(f"not complete {self.limit:.0f} s after the fault ended")
        time.sleep(self.settle)
        result.outcome = observe(self.stack, meeting_type, booked)
        return result

    # -- the faults

    def baseline(self) -> Result:
        meeting_type = make_zoom_type(self.organization, self.hosts, "baseline")
        attempts = self.book(meeting_type)
        return self.finish(Result("baseline", "none", "—"), meeting_type, attempts, time.monotonic())

    def smtp_slow_db_killed(self) -> Result:
        """Slow SMTP (4 s a message); the app's database connections are terminated as each email arrives."""
        meeting_type = make_zoom_type(self.organization, self.hosts, "smtp_slow_db_killed")
        kills = Counter()

        def terminate():
            kills["backends"] += terminate_backends(self.stack.database_url)
            kills["emails"] += 1

        self.stack.sink.slow(4, on_message=terminate)
        attempts = self.book(meeting_type)
        with contextlib.suppress(TimeoutError):
            # Every booking's client and host email each lose the connection under them (or time runs out).
            wait_until(lambda: kills["emails"] >= 2 * self.n, timeout=20 + 10 * self.n, what="emails under way")
        self.stack.sink.accept()
        ended = time.monotonic()
        result = Result(
            "smtp_slow_db_killed",
            "SMTP 4 s a message; pg_terminate_backend on the app's connections as each email is being sent",
            f"{kills['emails']} emails, {kills['backends']} connections terminated",
        )
        return self.finish(result, meeting_type, attempts, ended)

    def smtp_refusing(self) -> Result:
        meeting_type = make_zoom_type(self.organization, self.hosts, "smtp_refusing")
        self.stack.sink.refuse()
        began = time.monotonic()
        attempts = self.book(meeting_type)
        time.sleep(max(0.0, self.outage - (time.monotonic() - began)))
        self.stack.sink.accept()
        result = Result("smtp_refusing", "SMTP down (connection refused)", f"{time.monotonic() - began:.0f} s")
        return self.finish(result, meeting_type, attempts, time.monotonic())

    def smtp_451(self) -> Result:
        meeting_type = make_zoom_type(self.organization, self.hosts, "smtp_451")
        self.stack.sink.temporary_failure()
        began = time.monotonic()
        attempts = self.book(meeting_type)
        time.sleep(max(0.0, self.outage - (time.monotonic() - began)))
        self.stack.sink.accept()
        result = Result("smtp_451", "SMTP answers 451 to every message", f"{time.monotonic() - began:.0f} s")
        return self.finish(result, meeting_type, attempts, time.monotonic())

    def zoom_outage(self) -> Result:
        meeting_type = make_zoom_type(self.organization, self.hosts, "zoom_outage")
        rules = [self.stack.zoom_proxy.add(ProxyRule(method, "/v2/", status=503)) for method in ("GET", "POST")]
        began = time.monotonic()
        attempts = self.book(meeting_type)
        time.sleep(max(0.0, self.outage - (time.monotonic() - began)))
        for rule in rules:
            self.stack.zoom_proxy.remove(rule)
        result = Result("zoom_outage", "Zoom API answers 503", f"{time.monotonic() - began:.0f} s")
        return self.finish(result, meeting_type, attempts, time.monotonic())

    def worker_killed_mid_create(self) -> Result:
        """Zoom is slow to answer a create (it makes the meeting, the answer takes 20 s); the worker is
        SIGKILLed while it waits, and started again."""
        meeting_type = make_zoom_type(self.organization, self.hosts, "worker_killed_mid_create")
        proxy = self.stack.zoom_proxy
        before = proxy.forwarded_count("POST", MEETINGS_PATH)
        rule = proxy.add(ProxyRule("POST", MEETINGS_PATH, hold_seconds=20))
        attempts = self.book(meeting_type)
        began = time.monotonic()
        with contextlib.suppress(TimeoutError):
            wait_until(lambda: proxy.forwarded_count("POST", MEETINGS_PATH) > before, timeout=60, what="a create")
        time.sleep(1)
        self.stack.kill_worker()
        proxy.remove(rule)
        time.sleep(2)
        self.stack.restart("worker")
        result = Result(
            "worker_killed_mid_create",
            "worker SIGKILLed while Zoom creates the meeting (slow answer)",
            f"{time.monotonic() - began:.0f} s (kill + restart)",
        )
        return self.finish(result, meeting_type, attempts, time.monotonic())

    def zoom_read_timeout(self) -> Result:
        """Zoom makes the meeting but answers after our 15 s read timeout, for every create during the fault."""
        meeting_type = make_zoom_type(self.organization, self.hosts, "zoom_read_timeout")
        proxy = self.stack.zoom_proxy
        before = proxy.forwarded_count("POST", MEETINGS_PATH)
        rule = proxy.add(ProxyRule("POST", MEETINGS_PATH, hold_seconds=20))
        attempts = self.book(meeting_type)
        with contextlib.suppress(TimeoutError):
            wait_until(
                lambda: proxy.forwarded_count("POST", MEETINGS_PATH) - before >= len(attempts),
                timeout=120,
                what="every booking's create",
            )
        proxy.remove(rule)
        late = proxy.forwarded_count("POST", MEETINGS_PATH) - before
        time.sleep(rule.hold_seconds)  # the fault ends with the last late answer
        result = Result(
            "zoom_read_timeout",
            "Zoom creates the meeting, answers 20 s later (our read timeout: 15 s)",
            f"{late} creates answered late",
        )
        return self.finish(result, meeting_type, attempts, time.monotonic())

    def broker_down(self) -> Result:
        meeting_type = make_zoom_type(self.organization, self.hosts, "broker_down")
        self.stack.stop_broker()
        began = time.monotonic()
        attempts = self.book(meeting_type)
        time.sleep(max(0.0, min(self.outage, 20) - (time.monotonic() - began)))
        self.stack.start_broker()
        slowest = max((attempt.seconds for attempt in attempts), default=0)
        result = Result(
            "broker_down", "Celery broker (Redis) stopped while clients book", f"{time.monotonic() - began:.0f} s"
        )
        result.notes.append(f"slowest booking answer during the outage: {slowest:.1f} s")
        return self.finish(result, meeting_type, attempts, time.monotonic())

    def database_down(self) -> Result:
        """The database refuses the app's connections for a while; clients keep opening pages and booking."""
        meeting_type = make_zoom_type(self.organization, self.hosts, "database_down")
        base = f"{self.stack.site_url}/{self.organization.slug}/{meeting_type.slug}"
        allow_connections(self.stack.database_url, False)
        terminate_backends(self.stack.database_url)
        began, answers = time.monotonic(), Counter()
        try:
            while time.monotonic() - began < min(self.outage, 15):
                for method, url, data in (
                    ("GET", base + "/", None),
                    ("GET", base + "/slots.json?tz=UTC", None),
                    ("POST", base + "/book/", {"name": "X", "email": "x@chaos.example"}),
                ):
                    try:
                        response = requests.request(method, url, data=data, timeout=10, allow_redirects=False)
                    except requests.RequestException as error:
                        answers[type(error).__name__] += 1
                        continue
                    ok = response.status_code == 503 and response.headers.get("Retry-After")
                    answers["503 + Retry-After" if ok else f"{response.status_code}"] += 1
                time.sleep(0.05)
        finally:
            allow_connections(self.stack.database_url, True)
        ended = time.monotonic()
        attempts = self.book(meeting_type)
        result = Result(
            "database_down", "database refuses the app's connections; clients keep coming", f"{ended - began:.0f} s"
        )
        result.web_during_outage = answers
        return self.finish(result, meeting_type, attempts, ended)


SCENARIOS = [
    "baseline",
    "smtp_slow_db_killed",
    "smtp_refusing",
    "smtp_451",
    "zoom_outage",
    "worker_killed_mid_create",
    "zoom_read_timeout",
    "broker_down",
    "database_down",
]


# ---------------------------------------------------------------- report


def _counts(counter: Counter) -> str:
    return ", ".join(f"{key} ×{n}" for key, n in sorted(counter.items(), key=lambda item: str(item[0])))


def table(results: list[Result]) -> str:
    lines = [
        "| fault | outage | bookings | meetings per booking | emails per (booking, kind, recipient) | "
        "time to recover | result |",
        "|---|---|---|---|---|---|---|",
    ]
    for result in results:
        outcome = result.outcome
        if outcome is None:
            lines.append(f"| {result.fault} | {result.outage} | — | — | — | — | error: {'; '.join(result.notes)} |")
            continue
        meetings = ", ".join(f"{n}: ×{count}" for n, count in sorted(outcome.meetings_per_booking.items()))
        emails = ", ".join(f"{n}: ×{count}" for n, count in sorted(outcome.emails_per_key.items())) or "none"
        recovered = "—" if result.recovered_after is None else f"{result.recovered_after:.0f} s"
        problems = []
        if outcome.bookings != outcome.booked_answers:
            problems.append(f"{outcome.booked_answers} confirmed to clients, {outcome.bookings} in the database")
        if outcome.linked != outcome.bookings:
            problems.append(f"{outcome.bookings - outcome.linked} without their meeting stored")
        if outcome.missing_emails:
            problems.append(f"{len(outcome.missing_emails)} emails never arrived")
        if outcome.link_missing:
            problems.append(f"{outcome.link_missing} clients without the join link")
        if outcome.doubled:
            problems.append("DOUBLED")
        if result.web_during_outage is not None:
            problems.append("web during the outage: " + _counts(result.web_during_outage))
        problems += [note for note in result.notes if not note.startswith("not complete")]
        verdict = ("ok" if result.ok else "LOST/DOUBLED") + (": " + "; ".join(problems) if problems else "")
        lines.append(
            f"| {result.fault} | {result.outage} | {outcome.bookings} | {meetings} | {emails} | {recovered} | "
            f"{verdict} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", default="", help="comma-separated scenarios: " + ", ".join(SCENARIOS))
    parser.add_argument("--bookings", type=int, default=4, help="bookings per scenario")
    parser.add_argument("--outage", type=float, default=120, help="seconds each outage lasts")
    parser.add_argument("--limit", type=float, default=240, help="seconds to wait for recovery after a fault")
    parser.add_argument("--settle", type=float, default=15, help="seconds to watch for duplicates after recovery")
    arguments = parser.parse_args(argv)
    chosen = [name for name in arguments.only.split(",") if name] or SCENARIOS
    unknown = set(chosen) - set(SCENARIOS)
    if unknown or not shutil.which("redis-server"):
        parser.error(f"unknown scenarios: {sorted(unknown)}" if unknown else "redis-server is not installed")

    stack = Stack()
    print(f"logs: {stack.log_dir}", flush=True)
    results: list[Result] = []
    try:
        stack.start()
        setup_django(stack)
        organization, hosts = seed(stack)
        run = Run(
            stack,
            organization,
            hosts,
            bookings=arguments.bookings,
            outage=arguments.outage,
            limit=arguments.limit,
            settle=arguments.settle,
        )
        for name in chosen:
            began = time.monotonic()
            print(f"== {name}", flush=True)
            try:
                result = getattr(run, name)()
            except Exception as error:  # one broken scenario must not hide the others' results
                result = Result(name, name, "—", notes=[f"{type(error).__name__}: {error}"])
                stack.sink.accept()
            results.append(result)
            print(
                f"   {'ok' if result.ok else 'LOST/DOUBLED'} in {time.monotonic() - began:.0f} s: "
                f"{json.dumps(result.as_dict(), default=str)}",
                flush=True,
            )
    finally:
        stack.stop()
    report = table(results)
    print()
    print(report)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
                "settings": {
                    "bookings_per_scenario": arguments.bookings,
                    "outage_seconds": arguments.outage,
                    "recovery_limit_seconds": arguments.limit,
                    "settle_seconds": arguments.settle,
                    "app_settings": SCALED_SETTINGS,
                },
                "results": [result.as_dict() for result in results],
                "table": report,
            },
            indent=2,
        )
        + "\n"
    )
    return 0 if results and all(result.ok for result in results) else 1


if __name__ == "__main__":
    sys.exit(main())
