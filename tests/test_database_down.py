"""While the database is down, people are told to come back in a moment (503 with Retry-After),
not shown a server error, whether the page, the sign-in check or the session needed the database.

No test here may touch the database before the outage starts: they run without pytest-django's
test database, and the outage points the connection at an address where nothing listens.
"""

import pytest
from django.db import connections
from django.test import Client

from tsp.database_down import RETRY_AFTER_SECONDS


@pytest.fixture
def database_down(django_db_blocker):
    """Every connection attempt fails, as while PostgreSQL is down or restarting."""
    connection = connections["default"]
    saved_settings, saved_connection = dict(connection.settings_dict), connection.connection
    with django_db_blocker.unblock():
        # Set aside rather than closed: closing SQLite's in-memory test database would lose it.
        connection.connection = None
        if connection.vendor == "postgresql":
            connection.settings_dict.update(HOST="127.0.0.1", PORT="1")  # nothing listens on port 1
        else:
            connection.settings_dict["NAME"] = "/nonexistent-directory/db.sqlite3"
        yield
        connection.settings_dict.clear()
        connection.settings_dict.update(saved_settings)
        connection.connection = saved_connection


def says_come_back_shortly(response) -> bool:
    return (
        response.status_code == 503
        and response["Retry-After"] == str(RETRY_AFTER_SECONDS)
        and "back in a moment" in response.content.decode()
    )


def test_a_client_opening_a_booking_page_is_told_to_come_back_shortly(database_down):
    response = Client().get("/acme/intro-call/")

    assert says_come_back_shortly(response)


def test_a_client_booking_is_told_to_come_back_shortly(database_down):
    response = Client().post(
        "/acme/intro-call/book/",
        {"name": "Casey", "email": "casey@example.com", "start": "2026-12-08T10:00:00Z", "time_zone": "UTC"},
    )

    assert says_come_back_shortly(response)


def test_a_signed_in_member_is_told_to_come_back_shortly(database_down):
    # Their session is read from the database by the middleware, before any view runs.
    browser = Client(raise_request_exception=False)
    browser.cookies["sessionid"] = "a" * 32

    response = browser.get("/app/members/")

    assert says_come_back_shortly(response)
    assert "script-src 'self'" in response["Content-Security-Policy"]  # still through the security headers


def test_the_health_check_still_answers_in_json(database_down):
    response = Client().get("/healthz")

    assert response.status_code == 503
    assert response.json()["database"] == "error"


def test_other_errors_are_still_server_errors(db, monkeypatch):
    from bookings import views

    def broken(*args, **kwargs):
        raise RuntimeError("a bug, not an outage")

    monkeypatch.setattr(views, "_public_meeting_type", broken)

    response = Client(raise_request_exception=False).get("/acme/intro-call/")

    assert response.status_code == 500
    assert not response.has_header("Retry-After")
