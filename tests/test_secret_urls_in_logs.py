"""Access logs never hold the secrets that travel in URLs.

A manage link, an invitation link, a password-reset key or an OAuth return's `code` / `state` in a
log line lets anyone who reads the logs act as that client or member. Both servers are started for
real, as the Procfile and `make run` start them, and their logs are read afterwards.
"""

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from tsp.log_redaction import redact

ROOT = Path(__file__).resolve().parent.parent
MANAGE_SECRET = "Zx9manageSignature-0123"
INVITE_SECRET = "inviteToken_9876543210abcdef"
RESET_SECRET = "c8g8yc-resetKey4567"
OAUTH_CODE, OAUTH_STATE = "oauthCode1234567", "oauthState7654321"
BOOKING_UID = "6f1e0c2a-1b2c-4d5e-8f90-123456789abc"
SECRETS = [MANAGE_SECRET, INVITE_SECRET, RESET_SECRET, OAUTH_CODE, OAUTH_STATE]
MANAGE_PATH = f"/booking/{BOOKING_UID}/{MANAGE_SECRET}/reschedule/"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _visit_secret_urls_and_read_the_log(command: list[str], port: int, tmp_path: Path) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "REDIS_URL", "CELERY_"))}
    env.update(DEBUG="1", DATABASE_URL=f"sqlite:///{tmp_path / 'empty.sqlite3'}", PORT=str(port), LOG_LEVEL="INFO")
    log_path = tmp_path / "server.log"
    with log_path.open("w") as log:
        server = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            base = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 30
            while True:
                try:
                    requests.get(base + "/healthz", timeout=2)
                    break
                except requests.ConnectionError:
                    assert server.poll() is None and time.monotonic() < deadline, log_path.read_text()
                    time.sleep(0.2)
            for path in [
                MANAGE_PATH,
                f"/invite/{INVITE_SECRET}/",
                f"/accounts/password/reset/key/2-{RESET_SECRET}/",
                f"/integrations/zoom/callback/?code={OAUTH_CODE}&state={OAUTH_STATE}",
            ]:
                requests.get(base + path, timeout=10, allow_redirects=False)
            # Our pages send their own URL as Referer when they load our stylesheets.
            requests.get(base + "/healthz", headers={"Referer": base + MANAGE_PATH}, timeout=10)
            time.sleep(0.5)  # let the server write its lines
        finally:
            server.terminate()
            server.wait(timeout=20)
    return log_path.read_text()


def _assert_redacted(log: str) -> None:
    assert f"/booking/{BOOKING_UID}/[redacted]/reschedule/" in log, log
    assert "/integrations/zoom/callback/?code=[redacted]&state=[redacted]" in log, log
    for secret in SECRETS:
        assert secret not in log, f"{secret} in the log:\n{log}"


def test_gunicorn_access_log_shows_secret_urls_redacted(tmp_path):
    port = _free_port()
    command = [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "--workers", "1", "tsp.wsgi:application"]
    log = _visit_secret_urls_and_read_the_log(command, port, tmp_path)
    assert '"GET /healthz' in log  # the access log is on
    _assert_redacted(log)


def test_runserver_log_shows_secret_urls_redacted(tmp_path):
    port = _free_port()
    command = [sys.executable, "manage.py", "runserver", "--noreload", f"127.0.0.1:{port}"]
    log = _visit_secret_urls_and_read_the_log(command, port, tmp_path)
    assert "GET /healthz" in log
    _assert_redacted(log)


@pytest.mark.parametrize(
    "logged, expected",
    [
        (f"{MANAGE_PATH}?month=2030-01", f"/booking/{BOOKING_UID}/[redacted]/reschedule/?month=2030-01"),
        (f"/booking/{BOOKING_UID}/{MANAGE_SECRET}/invite.ics", f"/booking/{BOOKING_UID}/[redacted]/invite.ics"),
        (f"/accounts/confirm-email/{RESET_SECRET}/", "/accounts/confirm-email/[redacted]/"),
        (
            "/integrations/zoom/callback/?error=access_denied&state=s3cr3t",
            "/integrations/zoom/callback/?error=access_denied&state=[redacted]",
        ),
        ("/demo/intro-call/?month=2030-01&tz=Europe/Berlin", "/demo/intro-call/?month=2030-01&tz=Europe/Berlin"),
    ],
)
def test_redact_keeps_what_helps_and_drops_what_lets_someone_in(logged, expected):
    assert redact(logged) == expected
