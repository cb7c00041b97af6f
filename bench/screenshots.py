"""The README's screenshots, taken from the demo organization: `make screenshots`.

Starts the app as `make run` would (DEBUG, SQLite in a temporary folder, in-process tasks, the Zoom
sandbox, the outbox) on a free port, lets two demo people connect Zoom through the sandbox, and saves
into docs/screenshots/: Team Members, a booking page and a confirmation at 1280 px, and the booking
page and Team Members at 390 px (a phone).
"""

import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "screenshots"
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
PASSWORD = "demo-pass-2026"  # accounts/management/commands/seed_demo.py
ADMIN = "admin@demo.teamschedulerpro.local"
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
# What `make run` would not have either: a real broker, mail server or Zoom app.
NOT_INHERITED = (
    "DATABASE_URL",
    "REDIS_URL",
    "CELERY_BROKER_URL",
    "EMAIL_URL",
    "EMAIL_HOST",
    "EMAIL_BACKEND",
    "ZOOM_CLIENT_ID",
    "ZOOM_OAUTH_BASE_URL",
    "ZOOM_API_BASE_URL",
    "GOOGLE_CLIENT_ID",
    "MICROSOFT_CLIENT_ID",
    "SANDBOX_STATE_DIR",
)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until_up(url: str, server: subprocess.Popen, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if server.poll() is not None:
            sys.exit(f"the app stopped before answering (exit code {server.returncode})")
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=2):
                return
        except OSError:
            time.sleep(0.3)
    sys.exit(f"the app did not answer at {url} within {seconds:.0f} s")


def log_in(page, url: str, email: str) -> None:
    page.goto(url + "/accounts/login/")
    page.get_by_label(re.compile(r"^\s*Email")).fill(email)
    page.get_by_label(re.compile(r"^\s*Password")).fill(PASSWORD)
    page.get_by_role("button", name=re.compile(r"^(Sign in|Log in)$", re.I)).click()
    page.wait_for_load_state()


def connect_zoom(page, url: str, zoom_email: str) -> None:
    page.goto(url + "/app/members/")
    page.locator("li.card.is-me").get_by_role("button", name="Connect Zoom").click()
    page.get_by_label(re.compile("Zoom account")).fill(zoom_email)
    page.get_by_role("button", name="Allow").click()
    page.wait_for_url(re.compile(r"/app/members/"))


def save(page, name: str) -> None:
    path = OUT / name
    page.screenshot(path=str(path), full_page=False)
    print(f"  {path.relative_to(ROOT)}")


def shoot(url: str) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--headless", "--no-sandbox"])
        options = {"locale": "en-US", "timezone_id": "America/Chicago"}

        # seed_demo connected Maya's Zoom, Leo's Google and Sam's Microsoft through the sandbox;
        # Ada connects Zoom through its consent page, as a member would.
        team = browser.new_context(viewport=DESKTOP, **options).new_page()
        log_in(team, url, ADMIN)
        connect_zoom(team, url, "ada.admin@zoom.example")
        team.goto(url + "/app/members/")  # from the top, not scrolled to one's card
        save(team, "team-members.png")
        team.set_viewport_size(PHONE)
        team.reload()
        save(team, "team-members-phone.png")

        client = browser.new_context(viewport=DESKTOP, **options).new_page()
        client.goto(url + "/demo/intro-call/")
        client.wait_for_selector("#booking-slot-list button.slot")
        save(client, "booking-page.png")
        client.set_viewport_size(PHONE)
        client.reload()
        client.wait_for_selector("#booking-slot-list button.slot")
        save(client, "booking-page-phone.png")

        # Project review is collective over Ada and Maya, both on Zoom now: the confirmation has a join link.
        client.set_viewport_size(DESKTOP)
        client.goto(url + "/demo/project-review/")
        client.locator("#booking-slot-list button.slot").first.click()
        client.get_by_label(re.compile(r"^\s*Your name", re.I)).fill("Carla Client")
        client.get_by_label(re.compile(r"^\s*Email", re.I)).fill("carla@example.com")
        client.get_by_role("button", name="Confirm booking").click()
        client.get_by_text("You are booked").wait_for()
        save(client, "confirmation.png")
        browser.close()


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    python = sys.executable
    with tempfile.TemporaryDirectory(prefix="tsp-screenshots-") as folder:
        env = {key: value for key, value in os.environ.items() if key not in NOT_INHERITED}
        env.update(
            DEBUG="1",
            DATABASE_URL=f"sqlite:///{folder}/demo.sqlite3",
            SITE_URL=url,
            EMAIL_OUTBOX_DIR=f"{folder}/outbox",
            # The demo accounts' tokens, issued by seed_demo's process, known to the server's too.
            SANDBOX_STATE_DIR=f"{folder}/sandbox",
            LOG_LEVEL="WARNING",
        )
        manage = [python, str(ROOT / "manage.py")]
        subprocess.run([*manage, "migrate", "--noinput", "-v", "0"], env=env, cwd=ROOT, check=True)
        subprocess.run([*manage, "seed_demo"], env=env, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
        server = subprocess.Popen(
            [*manage, "runserver", f"127.0.0.1:{port}", "--noreload"],
            env=env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_until_up(url, server)
            print(f"Screenshots of the demo on {url}:")
            shoot(url)
        finally:
            server.terminate()
            server.wait(timeout=10)


if __name__ == "__main__":
    main()
