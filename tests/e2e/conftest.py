"""End-to-end tests: Debian's Chromium driven by Playwright against the app on loopback.

The app runs in pytest-django's live server: a real HTTP server in a thread with the whole middleware
stack, so Chromium's requests meet the same CSRF, Origin and session checks as in production (Django's
test client skips the CSRF checks; nothing here turns them off).

- `site`: the app with the provider sandboxes and the development outbox mounted, emails going to the outbox.
- `journey`: browser pages whose every visited page is checked at 390 px wide (no horizontal overflow)
  and by axe-core (no serious or critical violation), and that none of them broke our
  Content-Security-Policy (Chromium reports each violation on the console); the test fails with the
  list of what was found.
- When a test fails, a full-page screenshot of every page it had open is saved in
  tests/e2e/artifacts/<test name>/ and the paths are printed with the failure.
"""

import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from meetingtypes.models import MeetingType
from tests.booking_helpers import make_meeting_type, work_every_day

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
ROOT = Path(__file__).resolve().parents[2]
AXE_SCRIPT = ROOT / "node_modules" / "axe-core" / "axe.min.js"
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}
BLOCKING_IMPACTS = {"serious", "critical"}


def pytest_collection_modifyitems(config, items):
    if shutil.which(CHROMIUM) or os.path.exists(CHROMIUM):
        return
    skip = pytest.mark.skip(reason=f"Chromium not found at {CHROMIUM} (.ci/run installs Debian's chromium)")
    for item in items:
        if "tests/e2e/" in str(item.fspath).replace(os.sep, "/"):
            item.add_marker(skip)


@pytest.fixture(scope="package", autouse=True)
def browser():
    """One Chromium for the browser tests, closed when they are done.

    Playwright's sync API keeps an event loop running in this thread meanwhile, which Django
    takes for an async context; the tests' ORM calls are synchronous and safe, so say so, for
    these tests only.
    """
    from playwright.sync_api import sync_playwright

    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=CHROMIUM,
                args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
            )
            yield browser
            browser.close()
    finally:
        os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)


@pytest.fixture
def new_context(browser, request):
    """A fresh browser context (own cookies, own time zone); kept on the test for the failure screenshots."""
    contexts = request.node.e2e_contexts = []

    def new(*, time_zone: str = "Europe/London", locale: str = "en-GB", width: int = DESKTOP["width"]):
        # Reduced motion: a fade-in caught half way reads to axe as too little contrast, which no
        # reader ever sees for longer than 0.2 s.
        context = browser.new_context(
            timezone_id=time_zone,
            locale=locale,
            viewport={"width": width, "height": DESKTOP["height"]},
            reduced_motion="reduce",
        )
        context.set_default_timeout(15_000)
        contexts.append(context)
        return context

    yield new
    for context in contexts:
        context.close()


@pytest.fixture
def consultation(member):
    """A one-person phone meeting type whose host (Kolkata) can be booked around the clock."""
    work_every_day(member)
    return make_meeting_type(
        member.organization,
        [member],
        name="Consultation",
        slug="consultation",
        minimum_notice_minutes=60,
        location=MeetingType.Location.PHONE,
        location_detail="+44 20 7946 0000",
        assignment=MeetingType.Assignment.ONE_PERSON,
    )


@pytest.fixture
def open_page(new_context):
    """A page of its own context, opened at `url`."""

    def open_(url: str, *, time_zone: str = "Europe/London", width: int = DESKTOP["width"]):
        page = new_context(time_zone=time_zone, width=width).new_page()
        page.goto(url)
        return page

    return open_


# --- The app as the journeys need it ------------------------------------------------------------


@dataclass
class Site:
    url: str

    def at(self, path_or_url: str) -> str:
        """An absolute URL on the live server, from a path or from a link the app wrote (emails use SITE_URL)."""
        return self.url + re.sub(r"^https?://[^/]+", "", path_or_url)


@pytest.fixture
def site(request, live_server, settings, tmp_path) -> Site:
    """The app on the live server with the provider sandboxes (Zoom, Google, Microsoft) and the outbox at
    /dev/outbox/."""
    request.getfixturevalue("provider_sandboxes")
    settings.ROOT_URLCONF = "tests.e2e.urls"
    settings.EMAIL_BACKEND = "tsp.outbox.OutboxEmailBackend"
    settings.EMAIL_OUTBOX_DIR = str(tmp_path / "outbox")
    settings.ACCOUNT_EMAIL_VERIFICATION = "mandatory"
    assert "django.middleware.csrf.CsrfViewMiddleware" in settings.MIDDLEWARE, "the journeys need the CSRF checks"
    return Site(url=live_server.url)


# --- Every page at 390 px and through axe ------------------------------------------------------

_OVERFLOW = """() => {
  const width = window.innerWidth;
  const wide = [...document.querySelectorAll('body *')]
    .filter(el => el.getBoundingClientRect().right > width && getComputedStyle(el).position !== 'fixed')
    .filter(el => !el.parentElement || el.parentElement.getBoundingClientRect().right <= width)
    .slice(0, 5)
    .map(el => el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') +
               (el.classList.length ? '.' + [...el.classList].join('.') : '') +
               ' (right edge at ' + el.getBoundingClientRect().right.toFixed(1) + ' px)');
  return {scrollWidth: document.documentElement.scrollWidth, innerWidth: width, widest: wide};
}"""

_AXE_RUN = """async () => {
  const results = await axe.run(document, {resultTypes: ['violations'], iframes: false});
  return results.violations.map(v => ({
    id: v.id, impact: v.impact, help: v.help,
    targets: v.nodes.slice(0, 4).map(n => n.target.join(' ')),
    count: v.nodes.length,
  }));
}"""


def _redacted(url: str) -> str:
    """A page's path for messages, with secret-looking parts (invitation and booking tokens) left out."""
    path = urlsplit(url).path
    return re.sub(r"/[^/]{20,}(?=/|$)", "/…", path)


@dataclass
class Journey:
    """Pages of one test, each page visited checked at 390 px and by axe (`check`).

    Problems are collected over the whole journey and fail the test at its end (see
    `pytest_runtest_call`), so one run lists every page that overflows or has a serious
    accessibility problem, not only the first one.
    """

    new_context: object
    site_url: str = ""
    found: dict[str, str] = field(default_factory=dict)  # one entry per page and kind of problem
    visited: dict[str, str] = field(default_factory=dict)
    checked: set[str] = field(default_factory=set)

    def open(self, url: str | None = None, *, time_zone: str = "Europe/London", locale: str = "en-GB"):
        page = self.new_context(time_zone=time_zone, locale=locale).new_page()
        page.on("load", lambda loaded: self._remember(loaded.url))
        page.on("console", lambda message: self._csp_violation(page, message))
        if url:
            page.goto(url)
        return page

    def _csp_violation(self, page, message) -> None:
        """An inline script, style attribute or foreign source our policy refused (any frame)."""
        if message.type == "error" and "Content Security Policy" in message.text:
            name = _redacted(page.url)
            text = re.sub(r"https?://[^\s'\"]+", lambda url: _redacted(url.group(0)), message.text)
            self.found.setdefault(f"{name} csp {text[:120]}", f"{name}: Content-Security-Policy violation: {text}")

    def _remember(self, url: str) -> None:
        if url.startswith(self.site_url or "http"):
            self.visited.setdefault(_redacted(url), url)

    def check(self, page, *, frame_selector: str | None = None) -> None:
        """This page as it is now: no horizontal overflow at 390 px, no serious or critical axe violation
        at the desktop width or at 390 px. `frame_selector`: also run axe inside that iframe."""
        page.wait_for_load_state("load")
        name = _redacted(page.url)
        self.checked.add(name)
        self._axe(page, name, "desktop")
        original = page.viewport_size
        page.set_viewport_size(PHONE)
        try:
            page.evaluate("() => new Promise(done => requestAnimationFrame(() => requestAnimationFrame(done)))")
            width = page.evaluate(_OVERFLOW)
            if width["scrollWidth"] > width["innerWidth"]:
                self.found.setdefault(
                    f"{name} overflow",
                    f"{name}: {width['scrollWidth']} px wide at {width['innerWidth']} px; "
                    f"sticking out: {', '.join(width['widest']) or '?'}",
                )
            self._axe(page, name, "390 px")
            if frame_selector:
                frame = page.locator(frame_selector).element_handle().content_frame()
                self._axe(frame, f"{name} (inside {frame_selector})", "390 px")
        finally:
            page.set_viewport_size(original)

    def _axe(self, target, name: str, width: str) -> None:
        if not AXE_SCRIPT.exists():
            pytest.fail(f"{AXE_SCRIPT.relative_to(ROOT)} is missing: run `npm ci` (make test does)")
        if not target.evaluate("() => typeof window.axe !== 'undefined'"):
            # Evaluated, not added as a <script>: our policy refuses inline scripts, and must.
            target.evaluate(AXE_SCRIPT.read_text())
        for violation in target.evaluate(_AXE_RUN):
            if violation["impact"] not in BLOCKING_IMPACTS:
                continue
            key = f"{name} {violation['id']}"
            if key not in self.found:
                self.found[key] = (
                    f"{name}: axe {violation['impact']} {violation['id']} ({violation['help']}) at {width}, "
                    f"{violation['count']} node(s): {'; '.join(violation['targets'])}"
                )

    @property
    def problems(self) -> list[str]:
        return list(self.found.values())

    def unchecked_pages(self) -> list[str]:
        """Pages of our site that were loaded but never checked (the sandbox plays Zoom: not ours)."""
        return [name for name in self.visited if name not in self.checked and not name.startswith("/sandbox/")]


@pytest.fixture
def journey(new_context, live_server) -> Journey:
    return Journey(new_context=new_context, site_url=live_server.url)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    result = yield
    journey = item.funcargs.get("journey") if hasattr(item, "funcargs") else None
    if journey is not None:
        problems = list(journey.problems)
        problems += [f"{name}: visited but never checked at 390 px and by axe" for name in journey.unchecked_pages()]
        if problems:
            raise AssertionError(
                f"{len(problems)} layout or accessibility problem(s) on the journey's pages:\n" + "\n".join(problems)
            )
    return result


# --- Screenshots of a failed test --------------------------------------------------------------


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    contexts = getattr(item, "e2e_contexts", None)
    if report.failed and report.when in {"setup", "call"} and contexts:
        saved = _screenshots(item, contexts)
        if saved:
            report.sections.append(("Screenshots of the open pages", "\n".join(saved)))
    return report


def _screenshots(item, contexts) -> list[str]:
    folder = ARTIFACTS / re.sub(r"[^\w.-]+", "_", item.name)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True, exist_ok=True)
    saved = []
    pages = [page for context in contexts for page in context.pages if not page.is_closed()]
    for number, page in enumerate(pages, start=1):
        path = folder / f"page-{number}.png"
        try:
            page.screenshot(path=str(path), full_page=True, timeout=10_000)
        except Exception as error:  # a crashed page must not hide the test's own failure
            saved.append(f"page {number} ({_redacted(page.url)}): no screenshot ({type(error).__name__})")
            continue
        saved.append(f"{path.relative_to(ROOT)}  ({_redacted(page.url)})")
    return saved
