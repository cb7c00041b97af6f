"""Server CPU per request of the public booking flow, with production settings, and where it goes.

    .venv/bin/python bench/request_profile.py                  # medians per request kind
    .venv/bin/python bench/request_profile.py --profile booking_page --top 25

Needs PostgreSQL and Redis. The database named by BENCH_DATABASE_URL (default
postgres://postgres@127.0.0.1:5432/tsp_request_profile) is dropped and re-created, and the Redis
database of BENCH_REDIS_URL (default redis://127.0.0.1:6379/13) is emptied: it is the page cache,
the rate limits' counters and the Celery broker of the run (the tasks a booking queues stay there
unworked; the next run empties them).

Seeds the 50-host round-robin type of `make bench` with 10,000 bookings next month, then calls the
application the way gunicorn does (Django's WSGIHandler, a real WSGI environ over https, the
response iterated and closed) and measures each request's `time.process_time()`: the CPU time of
this process only, which is what a web worker spends. PostgreSQL's and Redis's own work is not in
it. Kinds:

    booking_page   GET of the public calendar page (a first visit: no cookies)
    slots_cached   the month's times as JSON, served from the page cache (warm, the same month)
    slots_cold     the same with the cache emptied before each request (worked out from the database)
    booking_form   GET of the form after a time is picked (the page a POST comes from)
    booking_post   POST of that form, each at a distinct free time; its video meeting and emails
                   are queued for the Celery worker after the commit, not worked here

The per-IP limits on bookings and slots requests are raised for the run (all requests come from
one address). The public booking form carries no CSRF token (it is exempt: it holds no login and
must work framed on other sites), so a browser's POST is the form's fields and the cookies the GET
set, which is what is sent.
"""

import argparse
import cProfile
import io
import json
import os
import pstats
import random
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlencode, urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/tsp_request_profile")

import slots_bench  # noqa: E402  (reads BENCH_DATABASE_URL and sets the environment as it is imported)

# slots_bench prepares its own runs (no Redis, the provider sandbox on a local port); these are
# production's settings instead: Redis as cache and broker, no sandbox, HTTPS redirects on.
os.environ["REDIS_URL"] = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/13")
for name in ("PROVIDER_SANDBOX", "CALENDAR_PUSH", "SECURE_SSL_REDIRECT"):
    os.environ.pop(name, None)
HOST = "booking.example"
os.environ["ALLOWED_HOSTS"] = HOST
os.environ["SITE_URL"] = f"https://{HOST}"

KINDS = ("booking_page", "slots_cached", "slots_cold", "booking_form", "booking_post")
TARGETS_MS = {"booking_page": 10, "slots_cached": 4, "booking_post": 30}
CLIENT_IP = "203.0.113.7"
BROWSER_HEADERS = {
    "HTTP_USER_AGENT": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0",
    "HTTP_ACCEPT": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
    "HTTP_ACCEPT_LANGUAGE": "en-GB,en;q=0.9",
    "HTTP_ACCEPT_ENCODING": "gzip, deflate, br",
}


def environ(method: str, url: str, *, body: bytes = b"", cookies: dict[str, str] | None = None) -> dict:
    """The environ gunicorn hands the application for one request over https."""
    parts = urlsplit(url)
    env = {
        "REQUEST_METHOD": method,
        "SCRIPT_NAME": "",
        "PATH_INFO": parts.path,
        "QUERY_STRING": parts.query,
        "SERVER_NAME": HOST,
        "SERVER_PORT": "443",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_HOST": HOST,
        "REMOTE_ADDR": CLIENT_IP,
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "https",
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": False,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
        **BROWSER_HEADERS,
    }
    if body:
        env["CONTENT_TYPE"] = "application/x-www-form-urlencoded"
        env["CONTENT_LENGTH"] = str(len(body))
        env["HTTP_ORIGIN"] = f"https://{HOST}"
    if cookies:
        env["HTTP_COOKIE"] = "; ".join(f"{name}={value}" for name, value in cookies.items())
    return env


class Response:
    def __init__(self, status: str, headers: list[tuple[str, str]], body: bytes, cpu_ms: float):
        self.status_code = int(status.split()[0])
        self.headers = headers
        self.body = body
        self.cpu_ms = cpu_ms

    def header(self, name: str) -> str:
        return next((value for key, value in self.headers if key.lower() == name.lower()), "")

    def cookies(self) -> dict[str, str]:
        found = {}
        for key, value in self.headers:
            if key.lower() == "set-cookie":
                name, _, rest = value.partition("=")
                found[name] = rest.split(";", 1)[0]
        return found


def call(handler, env: dict) -> Response:
    """One request as a WSGI server makes it: the body iterated and the response closed (which
    ends the request: Django's request_finished), all within the measured CPU time."""
    seen: dict = {}

    def start_response(status, headers, exc_info=None):
        seen.update(status=status, headers=headers)
        return lambda data: None

    started = time.process_time()
    result = handler(env, start_response)
    try:
        body = b"".join(result)
    finally:
        if hasattr(result, "close"):
            result.close()
    cpu_ms = (time.process_time() - started) * 1000
    return Response(seen["status"], seen["headers"], body, cpu_ms)


def expect(response: Response, status: int, what: str) -> Response:
    if response.status_code != status:
        raise SystemExit(f"{what}: HTTP {response.status_code}, expected {status}: {response.body[:300]!r}")
    return response


def spaced_free_starts(slots: dict, count: int, gap_seconds: int = 3600) -> list[str]:
    """`count` offered starts at least `gap_seconds` apart, so that booking one never takes the
    host another needs (30 minutes and 5 + 5 of buffers occupy 40)."""
    chosen, last = [], None
    for iso in sorted(start["start"] for day in slots["days"].values() for start in day):
        stamp = datetime.fromisoformat(iso).timestamp()
        if last is None or stamp - last >= gap_seconds:
            chosen.append(iso)
            last = stamp
    if len(chosen) < count:
        raise SystemExit(f"only {len(chosen)} free starts an hour apart; ask for fewer requests")
    # Spread over the month rather than its first days.
    return random.Random(7).sample(chosen, count)


class Bench:
    def __init__(self, handler, organization, meeting_type, month):
        from django.urls import reverse

        self.handler = handler
        args = [organization.slug, meeting_type.slug]
        self.page_url = reverse("bookings:public_page", args=args)
        query = urlencode({"month": month.strftime("%Y-%m"), "tz": "Europe/Berlin"})
        self.slots_url = f"{reverse('bookings:slots', args=args)}?{query}"
        self.book_url = reverse("bookings:book", args=args)
        self.counted: list[str] | None = None  # SQL of the measured requests, while counting
        self.profiler: cProfile.Profile | None = None  # profiles the measured requests, when set
        self.aside = False  # True for a request on the way (the form before its POST): not measured

    def call(self, env: dict) -> Response:
        if self.aside:
            return call(self.handler, env)
        from django.db import connection

        def note(execute, sql, params, many, context):
            self.counted.append(sql)
            return execute(sql, params, many, context)

        with ExitStack() as measuring:
            if self.counted is not None:
                measuring.enter_context(connection.execute_wrapper(note))
            if self.profiler is not None:
                self.profiler.enable()
                measuring.callback(self.profiler.disable)
            return call(self.handler, env)

    def get(self, url: str, cookies=None) -> Response:
        return expect(self.call(environ("GET", url, cookies=cookies)), 200, url)

    def booking_page(self) -> float:
        return self.get(self.page_url).cpu_ms

    def slots_cached(self) -> float:
        return self.get(self.slots_url).cpu_ms

    def slots_cold(self) -> float:
        from django.core.cache import cache

        cache.clear()
        return self.get(self.slots_url).cpu_ms

    def booking_form(self, start: str) -> Response:
        return self.get(f"{self.book_url}?{urlencode({'start': start, 'tz': 'Europe/Berlin'})}")

    def booking_post(self, start: str, n: int) -> float:
        """The form's GET (not measured: it is booking_form), then its POST."""
        self.aside = True
        try:
            cookies = self.booking_form(start).cookies()
        finally:
            self.aside = False
        fields = {"name": f"Client {n}", "email": f"client{n}@example.com", "notes": "", "start": start}
        body = urlencode({**fields, "time_zone": "Europe/Berlin"}).encode()
        response = expect(self.call(environ("POST", self.book_url, body=body, cookies=cookies)), 302, "booking POST")
        if "booked=1" not in response.header("Location"):
            raise SystemExit(f"booking POST at {start} was refused: {response.header('Location')}")
        return response.cpu_ms

    def measure(self, kind: str, runs: int, starts: list[str]) -> list[float]:
        """`runs` requests of `kind`; a POST books one of `starts` each (each start once)."""
        if kind == "booking_post":
            return [self.booking_post(starts.pop(), n) for n in range(runs)]
        if kind == "booking_form":
            return [self.booking_form(start).cpu_ms for start in starts[:runs]]
        return [getattr(self, kind)() for _ in range(runs)]

    def queries(self, kind: str, starts: list[str]) -> int:
        self.counted = []
        try:
            self.measure(kind, 1, starts)
            return len(self.counted)
        finally:
            self.counted = None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=200, help="requests per kind (default 200)")
    parser.add_argument("--cold-requests", type=int, default=30, help="requests of slots_cold (default 30)")
    parser.add_argument("--only", choices=KINDS, action="append", help="measure only these kinds")
    parser.add_argument("--profile", choices=KINDS, help="print a cProfile of this kind's requests")
    parser.add_argument("--top", type=int, default=30, help="lines of the profile (default 30)")
    parser.add_argument("--sort", default="tottime", choices=("tottime", "cumulative"), help="profile order")
    options = parser.parse_args()
    kinds = [options.profile] if options.profile else options.only or list(KINDS)

    slots_bench.recreate_database()
    slots_bench.setup_django()
    from django.conf import settings
    from django.core.cache import cache
    from django.core.handlers.wsgi import WSGIHandler
    from django.core.management import call_command

    settings.BOOKING_RATE_LIMIT = settings.SLOTS_RATE_LIMIT = 10**9
    static_root = tempfile.TemporaryDirectory(prefix="tsp-static-")
    settings.STATIC_ROOT = static_root.name  # the manifest production's {% static %} reads
    call_command("collectstatic", interactive=False, verbosity=0)
    cache.clear()

    month = slots_bench.target_month(datetime.now(UTC))
    organization, meeting_type, members = slots_bench.make_team(50, "requests")
    slots_bench.add_bookings(meeting_type, members, 10_000, month, {}, random.Random(42))

    bench = Bench(WSGIHandler(), organization, meeting_type, month)
    warmup = 5  # first requests of a kind: connections opened, templates compiled
    posts = options.requests + warmup + 1 if "booking_post" in kinds else 0
    starts = spaced_free_starts(json.loads(bench.get(bench.slots_url).body), max(posts, options.requests))
    print(f"50 hosts, 10,000 bookings in {month:%Y-%m}; CPU time of this process per request, ms:", flush=True)
    for kind in kinds:
        runs = options.cold_requests if kind == "slots_cold" else options.requests
        bench.measure(kind, warmup, starts)
        queries = bench.queries(kind, starts)
        if kind == "slots_cached":
            bench.slots_cached()  # the month back in the cache; it stays there 30 s, longer than these runs
        # Timed by CPU time, as the requests are: waiting for PostgreSQL or Redis costs a worker nothing.
        profiler = bench.profiler = cProfile.Profile(time.process_time) if options.profile else None
        timings = bench.measure(kind, runs, starts)
        bench.profiler = None
        median = statistics.median(timings)
        target = TARGETS_MS.get(kind)
        verdict = "" if target is None else f"  target {target} ms: {'met' if median <= target else 'MISSED'}"
        print(
            f"  {kind:<13} median {median:6.2f}  p90 {sorted(timings)[int(len(timings) * 0.9) - 1]:6.2f}"
            f"  ({len(timings)} requests, {queries} SQL queries each){verdict}",
            flush=True,
        )
        if profiler:
            out = io.StringIO()
            pstats.Stats(profiler, stream=out).sort_stats(options.sort).print_stats(options.top)
            print(f"\ncProfile of {runs} {kind} requests, CPU seconds (inflated by the profiler), by {options.sort}:")
            print(out.getvalue())
    cache.clear()  # the tasks the bookings queued go with it: no worker runs them here
    static_root.cleanup()


if __name__ == "__main__":
    main()
