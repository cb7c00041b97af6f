"""Two web nodes behind one address: two separate gunicorn instances on the same PostgreSQL and Redis.

Whatever one node changes, the other serves at once, and whatever one node counts, the other counts on:
nothing the nodes need from each other lives in one process. Both are started for real, as the Procfile
starts them (gunicorn.conf.py), on the test database with committed data and on the test run's Redis.
"""

import os
import re
from pathlib import Path

import pytest
import requests
from django.conf import settings
from django.db import connection
from django.test import Client

from bench.chaos import free_port
from bench.loadtest import WebNode
from meetingtypes.models import MeetingType
from members.models import TeamMember

from .booking_helpers import make_meeting_type, work_every_day

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="two web nodes need a shared PostgreSQL database"),
    pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="two web nodes need a shared Redis (REDIS_URL)"),
]

BOOKING_LIMIT = 4
SLOTS_LIMIT = 6


def _database_url() -> str:
    db = connection.settings_dict
    credentials = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    return f"postgres://{credentials}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


@pytest.fixture(scope="module")
def nodes(django_db_setup, tmp_path_factory):
    """Nodes A and B, one gunicorn worker each (two processes is what matters), with low per-IP limits."""
    log_dir: Path = tmp_path_factory.mktemp("web-nodes")
    started = []
    try:
        for name in ("a", "b"):
            port = free_port()
            env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "CELERY_"))}
            env.update(
                DJANGO_SETTINGS_MODULE="tsp.settings",
                DEBUG="1",
                DATABASE_URL=_database_url(),
                DB_CONN_MAX_AGE="0",
                SITE_URL=f"http://127.0.0.1:{port}",
                # The follow-ups a booking queues are not what is tested: they stay in the node's memory.
                CELERY_BROKER_URL="memory://",
                EMAIL_BACKEND="django.core.mail.backends.locmem.EmailBackend",
                BOOKING_RATE_LIMIT=str(BOOKING_LIMIT),
                SLOTS_RATE_LIMIT=str(SLOTS_LIMIT),
            )
            started.append(WebNode(f"node-{name}", port, env, log_dir, workers=1))
        for node in started:
            node.launch()
        for node in started:
            node.wait_until_serving()
        yield started
    finally:
        for node in started:
            node.stop()


def _starts(node: WebNode, meeting_type) -> list[str]:
    url = f"{node.url}/{meeting_type.organization.slug}/{meeting_type.slug}/slots.json"
    response = requests.get(url, params={"tz": "UTC"}, timeout=30)
    assert response.status_code == 200, response.text[:500]
    days = response.json()["days"]
    return [slot["start"] for day in sorted(days) for slot in days[day]]


def test_a_booking_through_one_node_is_gone_at_once_from_the_month_page_the_other_had_cached(nodes, make_member):
    node_a, node_b = nodes
    host = make_member(name="Hana Host")
    work_every_day(host)
    meeting_type = make_meeting_type(
        host.organization, [host], assignment=MeetingType.Assignment.ONE_PERSON, minimum_notice_minutes=0
    )
    before = _starts(node_b, meeting_type)  # B works the page out and caches it
    assert _starts(node_b, meeting_type) == before
    start = before[len(before) // 2]  # hours ahead: far from "too close to book"

    response = requests.post(
        f"{node_a.url}/{meeting_type.organization.slug}/{meeting_type.slug}/book/",
        data={"name": "Carla Client", "email": "carla@example.com", "notes": "", "start": start, "time_zone": "UTC"},
        allow_redirects=False,
        timeout=30,
    )
    assert response.status_code == 302 and "booked=1" in response.headers["Location"], response.text[:500]

    after = _starts(node_b, meeting_type)
    assert start not in after
    assert set(before) - set(after) == {start}
    assert start not in _starts(node_a, meeting_type)


def _signed_in(member) -> requests.Session:
    """A browser signed in as the member on either node (its session row is written by the test)."""
    client = Client()
    client.force_login(member.user)
    browser = requests.Session()
    browser.cookies.set(settings.SESSION_COOKIE_NAME, client.cookies[settings.SESSION_COOKIE_NAME].value)
    return browser


def test_a_meeting_type_deactivated_through_one_node_is_gone_at_once_from_the_other(nodes, make_member):
    """Each node keeps the meeting type at a booking address in the shared cache: a change made on
    one node forgets it for both."""
    node_a, node_b = nodes
    admin = make_member(role=TeamMember.Role.ADMIN, name="Alice Admin")
    meeting_type = make_meeting_type(admin.organization, [make_member(admin.organization, name="Hana Host")])
    booking_page = f"{node_b.url}/{meeting_type.organization.slug}/{meeting_type.slug}/"
    assert requests.get(booking_page, timeout=30).status_code == 200  # B finds the meeting type and caches it
    assert requests.get(booking_page, timeout=30).status_code == 200

    browser = _signed_in(admin)
    listing = browser.get(f"{node_a.url}/app/meeting-types/", timeout=30)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', listing.text).group(1)
    response = browser.post(
        f"{node_a.url}/app/meeting-types/{meeting_type.pk}/toggle/",
        data={"csrfmiddlewaretoken": token},
        allow_redirects=False,
        timeout=30,
    )
    assert response.status_code == 302, response.text[:500]

    assert requests.get(booking_page, timeout=30).status_code == 404
    assert requests.get(booking_page.replace(node_b.url, node_a.url), timeout=30).status_code == 404


def test_the_per_ip_limits_hold_across_both_nodes(nodes, make_member):
    node_a, node_b = nodes
    host = make_member()
    meeting_type = make_meeting_type(host.organization, [host])
    base = f"/{meeting_type.organization.slug}/{meeting_type.slug}"

    # An empty form is refused (400) after it has been counted; past the limit it is not even read (429).
    booking_answers = [
        requests.post(node.url + base + "/book/", data={}, allow_redirects=False, timeout=30).status_code
        for node in [node_a, node_b] * (BOOKING_LIMIT // 2 + 1)
    ]
    assert booking_answers == [400] * BOOKING_LIMIT + [429, 429]

    slots_answers = [
        requests.get(node.url + base + "/slots.json", params={"tz": "UTC"}, timeout=30).status_code
        for node in [node_a, node_b] * (SLOTS_LIMIT // 2 + 1)
    ]
    assert slots_answers == [200] * SLOTS_LIMIT + [429, 429]
