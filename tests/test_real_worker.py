"""The whole journey with the real parts: a Celery worker process fed through Redis.

book → the worker creates the Zoom meeting (Zoom sandbox over HTTP) → the worker emails the client
and the host, with the join link and a calendar invitation.
"""

import os
import subprocess
import sys
import time
import uuid
from email import policy
from email.parser import BytesParser
from pathlib import Path

import pytest
from django.db import connection
from django.urls import reverse
from icalendar import Calendar

from integrations.models import VideoMeeting
from integrations.sandbox import zoom
from meetingtypes.models import MeetingType

from .booking_helpers import make_meeting_type
from .zoom_helpers import (
    CLIENT_ID,
    CLIENT_SECRET,
    ENCRYPTION_KEY,
    WEBHOOK_SECRET,
    connected_in_sandbox,
)

ROOT = Path(__file__).resolve().parent.parent

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        connection.vendor != "postgresql", reason="the worker process needs a shared PostgreSQL database"
    ),
    pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs Redis (REDIS_URL) as the Celery broker"),
]


def _database_url() -> str:
    db = connection.settings_dict
    credentials = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    return f"postgres://{credentials}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


@pytest.fixture
def worker_queue(settings):
    """A queue of our own, so that no other run's leftover tasks (or ours) cross over."""
    from tsp.celery import app

    queue = f"tsp-test-{uuid.uuid4().hex[:12]}"
    previous = app.conf.task_always_eager, app.conf.task_default_queue
    app.conf.task_always_eager, app.conf.task_default_queue = False, queue
    yield queue
    app.conf.task_always_eager, app.conf.task_default_queue = previous


def _start_worker(site: str, queue: str, outbox: Path, log: Path) -> subprocess.Popen:
    env = {
        **os.environ,
        "DATABASE_URL": _database_url(),
        "DEBUG": "1",
        "SITE_URL": site,
        "ZOOM_CLIENT_ID": CLIENT_ID,
        "ZOOM_CLIENT_SECRET": CLIENT_SECRET,
        "ZOOM_WEBHOOK_SECRET_TOKEN": WEBHOOK_SECRET,
        "ZOOM_OAUTH_BASE_URL": site + "/sandbox/zoom",
        "ZOOM_API_BASE_URL": site + "/sandbox/zoom/v2",
        "TOKEN_ENCRYPTION_KEYS": ENCRYPTION_KEY,
        "EMAIL_OUTBOX": "1",
        "EMAIL_OUTBOX_DIR": str(outbox),
        "DB_CONN_MAX_AGE": "0",
        "CELERY_QUEUE": queue,
    }
    command = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "tsp",
        "worker",
        "--pool=solo",
        "-Q",
        queue,
        "--loglevel=INFO",
        "--without-heartbeat",
        "--without-gossip",
        "--without-mingle",
    ]
    with open(log, "ab") as output:
        return subprocess.Popen(command, cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT)


def _stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()


@pytest.fixture
def worker(zoom_sandbox, worker_queue, tmp_path):  # noqa: F811
    outbox, log = tmp_path / "outbox", tmp_path / "worker.log"
    process = _start_worker(zoom_sandbox, worker_queue, outbox, log)
    try:
        yield outbox
    finally:
        _stop(process)
        print(log.read_text(errors="replace")[-3000:])


def _wait_for(condition, *, timeout: float = 60, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def test_a_real_worker_creates_the_zoom_meeting_and_emails_both_with_the_link(client, member, worker):
    connected_in_sandbox(member, "maya@zoom.example")
    meeting_type = make_meeting_type(
        member.organization,
        [member],
        location=MeetingType.Location.ZOOM,
        location_detail="",
        assignment=MeetingType.Assignment.ONE_PERSON,
        minimum_notice_minutes=0,
    )
    slots_url = reverse("bookings:slots", args=[member.organization.slug, meeting_type.slug])
    days = client.get(slots_url, {"tz": "UTC"}).json()["days"]
    start = days[sorted(days)[0]][0]["start"]
    response = client.post(
        reverse("bookings:book", args=[member.organization.slug, meeting_type.slug]),
        {"name": "Carla Client", "email": "carla@example.com", "start": start, "time_zone": "Europe/Paris"},
    )
    assert response.status_code == 302 and "booked=1" in response["Location"]

    meeting = _wait_for(
        lambda: VideoMeeting.objects.filter(booking__client_email="carla@example.com", state="ready").first(),
        what="the worker to create the Zoom meeting",
    )
    assert int(meeting.meeting_id) > 2**32
    assert zoom.get_meeting(int(meeting.meeting_id))["host_email"] == "maya@zoom.example"

    files = _wait_for(lambda: len(list(worker.glob("*.eml"))) >= 2 and list(worker.glob("*.eml")), what="2 emails")
    messages = [BytesParser(policy=policy.default).parsebytes(f.read_bytes()) for f in files]
    recipients = sorted(str(m["to"]) for m in messages)
    assert recipients == sorted(["carla@example.com", member.user.email])
    for message in messages:
        text = message.get_body(preferencelist=("plain",)).get_content()
        assert meeting.join_url in text
        invites = [part for part in message.iter_attachments() if part.get_content_type() == "text/calendar"]
        assert len(invites) == 1
        event = Calendar.from_ical(invites[0].get_content()).walk("VEVENT")[0]
        assert str(event["URL"]) == str(event["LOCATION"]) == meeting.join_url


def _book(client, meeting_type, email: str) -> None:
    slots_url = reverse("bookings:slots", args=[meeting_type.organization.slug, meeting_type.slug])
    days = client.get(slots_url, {"tz": "UTC"}).json()["days"]
    start = days[sorted(days)[-1]][0]["start"]  # days ahead: far from "shortly before the meeting"
    response = client.post(
        reverse("bookings:book", args=[meeting_type.organization.slug, meeting_type.slug]),
        {"name": "Carla Client", "email": email, "start": start, "time_zone": "Europe/Paris"},
    )
    assert response.status_code == 302 and "booked=1" in response["Location"]


def test_a_worker_killed_mid_create_leaves_one_meeting_adopted_by_the_sweep(
    client,
    member,
    zoom_sandbox,
    worker_queue,
    tmp_path,  # noqa: F811
):
    connected_in_sandbox(member, "maya@zoom.example")
    meeting_type = make_meeting_type(
        member.organization, [member], location=MeetingType.Location.ZOOM, location_detail="",
        assignment=MeetingType.Assignment.ONE_PERSON, minimum_notice_minutes=0,
    )  # fmt: skip
    outbox, log = tmp_path / "outbox", tmp_path / "worker.log"
    zoom.inject_failure("/users/me/meetings", method="POST", delay_seconds=3)  # Zoom is slow, but makes it
    first = _start_worker(zoom_sandbox, worker_queue, outbox, log)
    try:
        _book(client, meeting_type, "carla@example.com")
        _wait_for(lambda: VideoMeeting.objects.filter(state="creating").exists(), what="the worker to call Zoom")
        time.sleep(1)
        first.kill()  # SIGKILL mid-call: no chance to record anything
        first.wait(timeout=20)
        _wait_for(lambda: len(zoom.state_summary()["meetings"]) == 1, what="Zoom to finish the slow create")
        meeting = VideoMeeting.objects.get()
        assert meeting.state == "creating" and not meeting.join_url  # the outcome is unknown to us
        # Later, when the claim has expired (moved forward here), a new worker's sweep settles it.
        VideoMeeting.objects.filter(pk=meeting.pk).update(next_attempt_at=meeting.claimed_at)
        second = _start_worker(zoom_sandbox, worker_queue, outbox, log)
        try:
            from bookings.tasks import sweep_follow_ups

            sweep_follow_ups.delay()
            meeting = _wait_for(
                lambda: VideoMeeting.objects.filter(state="ready").first(), what="the sweep to adopt the meeting"
            )
            files = _wait_for(
                lambda: len(list(outbox.glob("*.eml"))) >= 2 and list(outbox.glob("*.eml")), what="2 emails"
            )
        finally:
            _stop(second)
    finally:
        if first.poll() is None:
            _stop(first)
        print(log.read_text(errors="replace")[-3000:])

    in_zoom = zoom.state_summary()["meetings"]
    assert [str(m["id"]) for m in in_zoom] == [meeting.meeting_id]  # adopted, not made twice
    messages = [BytesParser(policy=policy.default).parsebytes(f.read_bytes()) for f in files]
    assert sorted(str(m["to"]) for m in messages) == sorted(["carla@example.com", member.user.email])
    for message in messages:
        assert meeting.join_url in message.get_body(preferencelist=("plain",)).get_content()
