"""The product's Google client (integrations/google/client.py), its calendar methods, against the
Google fake over real HTTP: the calendar list, busy time as Google defines it (free, tentative,
declined, all-day in the calendar's zone, recurring instances, our own events), incremental sync
and its expiry, push channels, free/busy, and the bookings' events written exactly once."""

from datetime import UTC, date, datetime, timedelta

import pytest

from integrations import http
from integrations.base import CalendarEvent, CalendarInfo, ProviderResponseError, SyncCursorExpired
from integrations.google.provider import provider
from integrations.sandbox import google

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("google_sandbox")]

GINA = "gina.host@acme.example"
START = datetime(2030, 5, 1, tzinfo=UTC)
END = datetime(2030, 6, 1, tzinfo=UTC)


@pytest.fixture
def access() -> str:
    return google.issue_tokens(GINA)["access_token"]


def primary(time_zone: str = "UTC") -> CalendarInfo:
    return CalendarInfo(external_id=GINA, name=GINA, is_primary=True, time_zone=time_zone)


def at(day: int, hour: int, minute: int = 0, month: int = 5) -> datetime:
    return datetime(2030, month, day, hour, minute, tzinfo=UTC)


def changes(access: str, calendar: CalendarInfo | None = None, cursor: str = "", host_time_zone: str = "UTC"):
    return provider.calendar_changes(
        access, calendar or primary(), cursor=cursor, start=START, end=END, host_time_zone=host_time_zone
    )


def test_smoke_busy_event_is_listed(access):
    event = google.add_event(GINA, at(6, 9), at(6, 10))

    found = changes(access)

    assert [(item.event_id, item.start, item.end) for item in found.busy] == [(event, at(6, 9), at(6, 10))]
    assert found.complete and found.cursor
