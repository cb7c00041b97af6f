"""End-to-end tests: Debian's Chromium driven by Playwright against the app on loopback.

The app runs in pytest-django's live server (a real HTTP server in a thread, real database).
"""

import os
import shutil

import pytest

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")


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
def open_page(browser):
    """A fresh browser context (own cookies, own time zone) per call."""
    contexts = []

    def open_(url: str, *, time_zone: str = "Europe/London", width: int = 1280):
        context = browser.new_context(timezone_id=time_zone, locale="en-GB", viewport={"width": width, "height": 900})
        context.set_default_timeout(15_000)
        contexts.append(context)
        page = context.new_page()
        page.goto(url)
        return page

    yield open_
    for context in contexts:
        context.close()
