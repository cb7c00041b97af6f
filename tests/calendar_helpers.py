"""Shared pieces of the members' calendar tests: the member's account at the Google or Microsoft
fake (integrations/sandbox/), seen as the member sees it in their calendar app, and the client's
booking page. The product talks real HTTP to the fakes on the live server.

A test module takes the `account` fixture (parametrized over both providers) or builds a
`FakeAccount` itself, and `hana` / `intro_call` for the member and her booking page. The
fixtures reach every test through `pytest_plugins` in tests/conftest.py.
"""

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from integrations.calendars import sync
from integrations.models import BusyInterval, Calendar, Connection
from integrations.sandbox import google, microsoft
from meetingtypes.models import MeetingType

from . import google_helpers, microsoft_helpers
from .booking_helpers import make_meeting_type, slots, work_every_day

HOST_ZONE = "Europe/Berlin"
# Every slot of a working day from 09:00 to 17:00, 30 minutes each.
WHOLE_DAY = [f"{hour:02d}:{minute:02d}" for hour in range(9, 17) for minute in (0, 30)]


class FakeAccount:
    """The member's account at one provider's fake: what they do in Google Calendar or Outlook."""

    def __init__(self, key: str, email: str):
        self.key = key
        self.email = email
        self.fake = google if key == "google" else microsoft

    def __repr__(self) -> str:
        return f"<{self.key} account {self.email}>"

    def connect(self, member) -> Connection:
        """Connected (tokens the fake really issued) and its calendars listed, as after Connect."""
        helpers = google_helpers if self.key == "google" else microsoft_helpers
        connection = helpers.connected_in_sandbox(member, self.email)
        sync.refresh_calendar_list(connection.pk)
        return connection

    def _add(self, start, end, **fields) -> str:
        if self.key == "google":
            return google.add_event(self.email, start, end, **fields)
        return microsoft.add_event(self.email, start, end, **fields)

    def add_meeting(self, start: datetime, end: datetime, *, calendar_id: str | None = None) -> str:
        return self._add(start, end, calendar_id=calendar_id)

    def add_free_time_block(self, start: datetime, end: datetime) -> str:
        """An event marked "free" (Google: transparent; Outlook: show as free)."""
        if self.key == "google":
            return self._add(start, end, transparency="transparent")
        return self._add(start, end, show_as="free")

    def add_tentative_meeting(self, start: datetime, end: datetime) -> str:
        """An invitation the member answered "maybe" (Outlook: show as tentative)."""
        if self.key == "google":
            return self._add(start, end, attendee_response="tentative")
        return self._add(start, end, show_as="tentative")

    def add_all_day(self, day: date, zone: str) -> str:
        """An all-day event (opaque: it blocks the day), on a calendar that lives in `zone`."""
        if self.key == "google":
            google.set_time_zone(self.email, zone)
            return self._add(day, day + timedelta(days=1), all_day=True)
        return self._add(day, day + timedelta(days=1), all_day=True, time_zone=zone)

    def add_weekly(self, start: datetime, end: datetime, *, times: int) -> str:
        """A weekly series (`start`, `end` aware in the member's zone: it keeps its wall time)."""
        if self.key == "google":
            google.set_time_zone(self.email, start.tzinfo.key)
            return self._add(start, end, recurrence=[f"RRULE:FREQ=WEEKLY;COUNT={times}"])
        series = {
            "pattern": {"type": "weekly", "interval": 1},
            "range": {"type": "numbered", "numberOfOccurrences": times},
        }
        return self._add(start, end, recurrence=series)

    def move(self, event_id: str, start: datetime, end: datetime) -> None:
        if self.key == "google":
            google.move_event(self.email, event_id, start, end)
        else:
            microsoft.move_event(event_id, start, end)

    def delete(self, event_id: str) -> None:
        if self.key == "google":
            google.delete_event(self.email, event_id)
        else:
            microsoft.delete_event(event_id)

    def add_calendar(self, name: str) -> str:
        return (
            google.add_calendar(self.email, name) if self.key == "google" else microsoft.add_calendar(self.email, name)
        )

    def forget_sync_cursors(self) -> int:
        """The provider drops our sync tokens / delta links: the next incremental sync gets 410."""
        if self.key == "google":
            return google.expire_sync_tokens(self.email)
        return microsoft.expire_delta_tokens(self.email)

    def channels(self) -> list[dict]:
        """The live push channels (Google) or subscriptions (Microsoft) on the account's calendars."""
        if self.key == "google":
            return [channel for channel in google.channels(self.email) if not channel["expired"]]
        return [item for item in microsoft.subscriptions() if item["email"] == self.email and not item["expired"]]

    def wait_for_notifications(self) -> None:
        """Until the fake has posted every notification it owes, and we answered each."""
        assert self.fake.wait_for_deliveries(10), "the fake's notifications did not arrive in time"

    def fail_event_reads(self, status: int, *, times: int = 1) -> None:
        """The provider answers the next reads of events with `status`."""
        self.fake.inject_failure("/events" if self.key == "google" else "calendarView", status=status, times=times)


@pytest.fixture(params=["google", "microsoft"])
def account(request) -> FakeAccount:
    """The member's account at Google's or Microsoft's fake (each test runs with both)."""
    request.getfixturevalue(f"{request.param}_sandbox")
    return FakeAccount(request.param, f"hana@{request.param}-calendar.example.com")


@pytest.fixture
def hana(make_member, organization):
    """Hana, in Berlin, bookable 09:00-17:00 every day of the week."""
    member = make_member(organization, name="Hana Host", time_zone=HOST_ZONE)
    work_every_day(member, time(9), time(17))
    return member


@pytest.fixture
def intro_call(hana):
    """Hana's booking page."""
    return make_meeting_type(
        hana.organization, [hana], assignment=MeetingType.Assignment.ONE_PERSON, booking_window_days=200
    )


def local(day: date, clock: str, zone: str = HOST_ZONE) -> datetime:
    hours, minutes = map(int, clock.split(":"))
    return datetime.combine(day, time(hours, minutes), tzinfo=ZoneInfo(zone))


def a_day_ahead(days: int = 14) -> date:
    return timezone.now().astimezone(ZoneInfo(HOST_ZONE)).date() + timedelta(days=days)


def offered(client, meeting_type, day: date, zone: str = HOST_ZONE) -> list[str]:
    """The times the client's booking page offers on `day` (wall clock in `zone`)."""
    return slots(client, meeting_type, tz=zone, month=day.strftime("%Y-%m")).get(day.isoformat(), [])


def calendars_of(member) -> list[Calendar]:
    return list(Calendar.objects.filter(member=member).order_by("pk"))


def checked_calendar(member) -> Calendar:
    calendars = [calendar for calendar in calendars_of(member) if calendar.checks_busy]
    assert len(calendars) == 1, calendars
    return calendars[0]


def sync_now(member) -> None:
    """Every calendar of the member that counts as busy is synced (as a notification or a poll does)."""
    for calendar in calendars_of(member):
        if calendar.checks_busy:
            sync.sync_calendar(calendar.pk)


def busy_rows(member) -> list[tuple[datetime, datetime]]:
    return sorted(BusyInterval.objects.filter(member=member).values_list("start", "end"))
