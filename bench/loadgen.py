"""The load generator of `make loadtest` (bench/loadtest.py), in a process of its own so that its work is
not counted as the server's: N clients, each sending one request after the other for a fixed time.

It reads one phase's description as JSON on standard input and writes to standard output, one line each:

    started <monotonic seconds>     after the warm-up, when the measured window opens
    finished <monotonic seconds>    when the last request sent before the deadline has been answered
    {...}                           the phase's figures (JSON)

so that the caller can read the server processes' CPU time at the window's edges. Times are
time.monotonic(), which on Linux is one clock for every process of the machine: the caller compares a
booking's answer with the moment its emails reached the SMTP server it runs.

Phases:

    {"kind": "get", "urls": [...], "clients": 50, "duration": 20, "warmup": 2}
        each client GETs the URLs in turn; a 200 is a success.
    {"kind": "book", "slots_urls": [...], "book_url": "...", "clients": 20, "duration": 20, "warmup": 2}
        the times on offer are read from the slots URLs first (before the window), then each client POSTs
        the booking form on the next time nobody has used yet, as the form sends it (name, email, notes and
        the hidden start and time_zone; the public form carries no CSRF token, it is exempt); a success is
        the redirect to the new booking's page (302, booked=1).

With "interval": s, each client sends at most one request every s seconds (a steady rate, not as fast as
the server answers).
"""

import asyncio
import json
import random
import resource
import sys
import time

import aiohttp


def percentile(sorted_values: list[float], fraction: float) -> float | None:
    """Nearest-rank percentile of an already sorted list."""
    if not sorted_values:
        return None
    rank = max(1, round(fraction * len(sorted_values) + 0.5))
    return sorted_values[min(rank, len(sorted_values)) - 1]


class Phase:
    def __init__(self, spec: dict):
        self.spec = spec
        self.clients = int(spec["clients"])
        self.duration = float(spec["duration"])
        self.warmup = float(spec.get("warmup", 0))
        self.timeout = aiohttp.ClientTimeout(total=float(spec.get("timeout", 30)))
        self.latencies_ms: list[float] = []
        self.errors: dict[str, int] = {}
        self.bookings: list[dict] = []
        # Bookings answered during the warm-up: not timed, but their follow-up work is the worker's too.
        self.warmup_bookings = 0
        self.measuring = False
        self._starts: list[str] = []
        self._next_client = 0

    def _error(self, what: str) -> None:
        if self.measuring:
            self.errors[what] = self.errors.get(what, 0) + 1

    async def _get(self, session: aiohttp.ClientSession, url: str) -> None:
        began = time.perf_counter()
        try:
            async with session.get(url, allow_redirects=False) as response:
                await response.read()
                status = response.status
        except (aiohttp.ClientError, TimeoutError) as error:
            return self._error(type(error).__name__)
        if status != 200:
            return self._error(str(status))
        if self.measuring:
            self.latencies_ms.append((time.perf_counter() - began) * 1000)

    async def _book(self, session: aiohttp.ClientSession) -> None:
        if not self._starts:
            return self._error("no free time left")
        start = self._starts.pop()
        self._next_client += 1
        email = f"client-{self._next_client}@load.example"
        form = {"name": f"Load client {self._next_client}", "email": email, "notes": "", "start": start}
        form["time_zone"] = "UTC"
        began = time.perf_counter()
        try:
            async with session.post(self.spec["book_url"], data=form, allow_redirects=False) as response:
                await response.read()
                status, location = response.status, response.headers.get("Location", "")
        except (aiohttp.ClientError, TimeoutError) as error:
            return self._error(type(error).__name__)
        answered = time.monotonic()
        if status != 302 or "booked=1" not in location:
            reason = "taken" if "taken=1" in location else "not offered" if "not_offered=1" in location else status
            return self._error(str(reason))
        if self.measuring:
            self.latencies_ms.append((time.perf_counter() - began) * 1000)
            self.bookings.append({"location": location, "client_email": email, "answered_at": answered})
        else:
            self.warmup_bookings += 1

    async def _read_free_times(self, session: aiohttp.ClientSession) -> None:
        for url in self.spec["slots_urls"]:
            async with session.get(url) as response:
                response.raise_for_status()
                days = (await response.json())["days"]
            self._starts += [slot["start"] for day in sorted(days) for slot in days[day]]
        # Spread over the month rather than filling it from its first morning; popped from the end.
        random.Random(7).shuffle(self._starts)

    async def _client(self, session: aiohttp.ClientSession, deadline: float, position: int) -> None:
        urls = self.spec.get("urls") or []
        interval = float(self.spec.get("interval", 0))
        n = position
        while (began := time.monotonic()) < deadline:
            if self.spec["kind"] == "book":
                await self._book(session)
            else:
                await self._get(session, urls[n % len(urls)])
            n += 1
            if interval:
                await asyncio.sleep(max(0.0, interval - (time.monotonic() - began)))

    async def _run_for(self, session: aiohttp.ClientSession, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        await asyncio.gather(*(self._client(session, deadline, n) for n in range(self.clients)))

    async def run(self) -> dict:
        # gunicorn's sync workers answer each request with Connection: close; a fresh connection each
        # time is what they get from browsers behind no proxy, too.
        connector = aiohttp.TCPConnector(limit=0, force_close=True)
        async with aiohttp.ClientSession(connector=connector, timeout=self.timeout) as session:
            if self.spec["kind"] == "book":
                await self._read_free_times(session)
            if self.warmup:
                await self._run_for(session, self.warmup)
            self.measuring = True
            cpu_before = _own_cpu_seconds()
            started = time.monotonic()
            print(f"started {started}", flush=True)
            await self._run_for(session, self.duration)
            finished = time.monotonic()
            self.measuring = False
            cpu_used = _own_cpu_seconds() - cpu_before
            print(f"finished {finished}", flush=True)
        latencies = sorted(self.latencies_ms)
        elapsed = finished - started
        return {
            "requests": len(latencies),
            "errors": sum(self.errors.values()),
            "error_kinds": self.errors,
            "elapsed_s": round(elapsed, 3),
            "requests_per_s": round(len(latencies) / elapsed, 1) if elapsed else None,
            "p50_ms": _rounded(percentile(latencies, 0.50)),
            "p95_ms": _rounded(percentile(latencies, 0.95)),
            "p99_ms": _rounded(percentile(latencies, 0.99)),
            "generator_cpu_ms_per_request": round(cpu_used * 1000 / len(latencies), 2) if latencies else None,
            "bookings": self.bookings,
            "warmup_bookings": self.warmup_bookings,
        }


def _own_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def main() -> None:
    spec = json.loads(sys.stdin.read())
    print(json.dumps(asyncio.run(Phase(spec).run())), flush=True)


if __name__ == "__main__":
    main()
