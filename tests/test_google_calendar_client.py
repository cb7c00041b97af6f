"""The product's Google client, its calendar methods (integrations/google/client.py through the
provider), against the Google fake over real HTTP: the calendar list, busy time as Google defines
it (free, tentative, declined, all-day in the calendar's zone across a clock change, recurring
instances, our own events), incremental sync and its expiry, push channels, free/busy, and the
bookings' events written exactly once."""

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings

from integrations import http
from integrations.base import CalendarEvent, CalendarInfo, ProviderResponseError, PushChannel, SyncCursorExpired
from integrations.google import client
from integrations.google.provider import provider
from integrations.sandbox import google

from .google_helpers import meeting_request

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("google_sandbox")]

GINA = "gina.host@acme.example"
START = datetime(2030, 5, 1, tzinfo=UTC)
END = datetime(2030, 6, 1, tzinfo=UTC)
BERLIN = ZoneInfo("Europe/Berlin")


@pytest.fixture
def access() -> str:
    return google.issue_tokens(GINA)["access_token"]


def primary(time_zone: str = "UTC") -> CalendarInfo:
    return CalendarInfo(external_id=GINA, name=GINA, is_primary=True, time_zone=time_zone)


def at(day: int, hour: int, minute: int = 0, month: int = 5) -> datetime:
    return datetime(2030, month, day, hour, minute, tzinfo=UTC)


def changes(access: str, calendar: CalendarInfo | None = None, cursor: str = "", *, start=START, end=END):
    return provider.calendar_changes(
        access, calendar or primary(), cursor=cursor, start=start, end=end, host_time_zone="UTC"
    )


def spans(found) -> dict[str, tuple[datetime, datetime]]:
    return {period.event_id: (period.start, period.end) for period in found.busy}


def booking_event(request_id: str = "booking-41-host-7", *, start: datetime | None = None) -> CalendarEvent:
    start = start or at(6, 9)
    return CalendarEvent(
        request_id=request_id,
        summary="Intro call with Casey Client",
        description="Casey Client <casey@example.com>\nManage: https://tsp.example/dashboard/bookings/41/",
        location="https://meet.example/abc",
        start=start,
        end=start + timedelta(minutes=30),
        time_zone="Europe/Berlin",
    )


# --- The calendar list -----------------------------------------------------------------------------


def test_the_calendar_list_names_the_primary_one_which_can_be_written_and_in_which_zone(access):
    google.set_time_zone(GINA, "Europe/Berlin")
    holidays = google.add_calendar(GINA, "Team holidays", "America/New_York")
    national = google.add_calendar(
        GINA, "Holidays in Germany", access_role="reader", calendar_id="de.german#holiday@group.v.calendar.google.com"
    )

    calendars = provider.list_calendars(access)

    assert calendars == [
        CalendarInfo(external_id=GINA, name=GINA, is_primary=True, can_write=True, time_zone="Europe/Berlin"),
        CalendarInfo(national, "Holidays in Germany", is_primary=False, can_write=False, time_zone="UTC"),
        CalendarInfo(holidays, "Team holidays", is_primary=False, can_write=True, time_zone="America/New_York"),
    ]


def test_a_long_calendar_list_is_read_page_after_page(access, monkeypatch):
    names = [f"Project {number}" for number in range(5)]
    for name in names:
        google.add_calendar(GINA, name)
    monkeypatch.setattr(client, "CALENDAR_LIST_PAGE_SIZE", 2)

    assert [calendar.name for calendar in provider.list_calendars(access)] == [GINA, *names]


def test_a_grant_without_the_calendar_list_scope_is_refused_by_google_and_not_said_to_grant_calendars():
    meetings_only = google.issue_tokens(GINA, settings.GOOGLE_SCOPES)

    with pytest.raises(http.PermanentHTTPError) as refused:
        provider.list_calendars(meetings_only["access_token"])

    assert refused.value.status == 403
    assert not provider.grants_calendars(meetings_only["scope"])
    assert provider.grants_calendars(google.issue_tokens(GINA)["scope"])


# --- Busy time: what takes time ----------------------------------------------------------------------


def test_only_events_that_take_time_are_busy_and_the_others_are_freed(access):
    busy = google.add_event(GINA, at(6, 9), at(6, 10))
    accepted = google.add_event(GINA, at(6, 11), at(6, 12), attendee_response="accepted")
    free = google.add_event(GINA, at(6, 12), at(6, 13), transparency="transparent")
    tentative = google.add_event(GINA, at(6, 13), at(6, 14), status="tentative")
    declined = google.add_event(GINA, at(6, 14), at(6, 15), attendee_response="declined")
    maybe = google.add_event(GINA, at(6, 15), at(6, 16), attendee_response="tentative")
    deleted = google.add_event(GINA, at(6, 16), at(6, 17))
    google.delete_event(GINA, deleted)

    found = changes(access)

    assert spans(found) == {busy: (at(6, 9), at(6, 10)), accepted: (at(6, 11), at(6, 12))}
    assert set(found.freed) == {free, tentative, declined, maybe}
    assert found.complete and found.cursor


def test_an_event_with_an_offset_is_read_in_utc(access):
    google.set_time_zone(GINA, "Europe/Berlin")
    event = google.add_event(GINA, datetime(2030, 5, 6, 9, tzinfo=BERLIN), datetime(2030, 5, 6, 10, tzinfo=BERLIN))

    found = changes(access, primary("Europe/Berlin"))

    assert google.events_of(GINA)[0]["start"]["dateTime"] == "2030-05-06T09:00:00+02:00"
    assert spans(found) == {event: (at(6, 7), at(6, 8))}


def test_an_all_day_event_is_busy_from_midnight_to_midnight_in_the_calendars_zone_also_on_the_day_clocks_change(
    access,
):
    google.set_time_zone(GINA, "Europe/Berlin")
    # Sunday 31 March 2030: Berlin's clocks go forward, the day lasts 23 hours.
    clocks_change = google.add_event(GINA, date(2030, 3, 31), date(2030, 4, 1), all_day=True)
    holiday = google.add_event(GINA, date(2030, 4, 22), date(2030, 4, 23), all_day=True, transparency="transparent")

    # Google's own zone for the calendar wins over what we had stored and over the host's.
    found = changes(
        access, primary("Asia/Tokyo"), start=datetime(2030, 3, 1, tzinfo=UTC), end=datetime(2030, 5, 1, tzinfo=UTC)
    )

    assert spans(found) == {
        clocks_change: (datetime(2030, 3, 30, 23, tzinfo=UTC), datetime(2030, 3, 31, 22, tzinfo=UTC)),
    }
    assert found.freed == (holiday,)  # all-day events are usually "free" in Google Calendar


def test_a_recurring_event_is_busy_at_each_instance_at_the_same_local_time_across_the_clock_change(access):
    google.set_time_zone(GINA, "Europe/Berlin")
    first = datetime(2030, 10, 21, 9, tzinfo=BERLIN)  # a Monday; clocks go back on Sunday 27 October
    series = google.add_event(GINA, first, first + timedelta(hours=1), recurrence=["RRULE:FREQ=WEEKLY;COUNT=3"])

    found = changes(
        access,
        primary("Europe/Berlin"),
        start=datetime(2030, 10, 1, tzinfo=UTC),
        end=datetime(2030, 11, 30, tzinfo=UTC),
    )

    assert spans(found) == {
        f"{series}_20301021T070000Z": (datetime(2030, 10, 21, 7, tzinfo=UTC), datetime(2030, 10, 21, 8, tzinfo=UTC)),
        f"{series}_20301028T080000Z": (datetime(2030, 10, 28, 8, tzinfo=UTC), datetime(2030, 10, 28, 9, tzinfo=UTC)),
        f"{series}_20301104T080000Z": (datetime(2030, 11, 4, 8, tzinfo=UTC), datetime(2030, 11, 4, 9, tzinfo=UTC)),
    }


def test_our_own_events_are_freed_so_a_booking_never_counts_twice(access):
    someone = google.add_event(GINA, at(6, 8), at(6, 9))
    ours = provider.create_event(access, GINA, booking_event())
    meet = provider.create_meeting(access, meeting_request("booking-42-host-7", start=at(6, 14)))

    found = changes(access)

    assert set(spans(found)) == {someone}
    assert set(found.freed) == {ours, meet.meeting_id}
    assert google.get_event(meet.meeting_id)["extendedProperties"] == {"private": {"tspBooking": "booking-42-host-7"}}


def test_no_title_description_or_attendee_address_reaches_us(access, monkeypatch):
    google.add_event(GINA, at(6, 9), at(6, 10), summary="Therapy with Dr. Quinn", attendee_response="accepted")
    answers = []
    real_request = http.request

    def recording(*args, **kwargs):
        response = real_request(*args, **kwargs)
        answers.append(repr(response.body))
        return response

    monkeypatch.setattr(http, "request", recording)

    found = changes(access)

    assert len(found.busy) == 1 and len(answers) == 1
    assert "Therapy" not in answers[0] and GINA not in answers[0].replace(f"'id': '{GINA}'", "")
    assert "Therapy" not in repr(found)


def test_busy_time_outside_the_window_is_left_out(access):
    before = google.add_event(GINA, at(30, 9, month=4), at(30, 10, month=4))
    across = google.add_event(GINA, at(31, 23), at(1, 2, month=6))

    found = changes(access)

    assert spans(found) == {across: (at(31, 23), at(1, 2, month=6))} and before not in found.freed


def test_a_long_listing_is_read_page_after_page(access, monkeypatch):
    made = {google.add_event(GINA, at(day, 9), at(day, 10)) for day in range(2, 9)}
    monkeypatch.setattr(client, "EVENTS_PAGE_SIZE", 3)

    found = changes(access)

    assert set(spans(found)) == made and found.cursor


# --- Busy time: incremental --------------------------------------------------------------------------


def test_with_the_cursor_only_what_changed_comes_moved_deleted_or_gone_free(access):
    kept = google.add_event(GINA, at(6, 9), at(6, 10))
    moved = google.add_event(GINA, at(7, 9), at(7, 10))
    deleted = google.add_event(GINA, at(8, 9), at(8, 10))
    out_of_window = google.add_event(GINA, at(9, 9), at(9, 10))
    first = changes(access)

    google.move_event(GINA, moved, at(7, 15), at(7, 16))
    google.delete_event(GINA, deleted)
    google.move_event(GINA, out_of_window, at(9, 9, month=7), at(9, 10, month=7))
    added = google.add_event(GINA, at(10, 9), at(10, 10))
    later = changes(access, cursor=first.cursor)

    assert not later.complete and later.cursor and later.cursor != first.cursor
    assert spans(later) == {moved: (at(7, 15), at(7, 16)), added: (at(10, 9), at(10, 10))}
    assert set(later.freed) == {deleted, out_of_window}
    assert kept not in spans(later) and kept not in later.freed
    assert changes(access, cursor=later.cursor).busy == ()


def test_a_deleted_series_frees_every_instance_on_the_next_sync(access):
    series = google.add_event(GINA, at(6, 9), at(6, 10), recurrence=["RRULE:FREQ=DAILY;COUNT=3"])
    first = changes(access)

    google.delete_event(GINA, series)
    later = changes(access, cursor=first.cursor)

    assert set(later.freed) == set(spans(first)) and len(later.freed) == 3 and later.busy == ()


def test_an_expired_cursor_raises_sync_cursor_expired_and_a_full_listing_works_again(access):
    google.add_event(GINA, at(6, 9), at(6, 10))
    first = changes(access)
    google.expire_sync_tokens(GINA)

    with pytest.raises(SyncCursorExpired):
        changes(access, cursor=first.cursor)

    assert changes(access).complete


# --- Errors -------------------------------------------------------------------------------------------


def test_a_rate_limit_is_transient_whether_google_says_429_or_403_rate_limit_exceeded(access):
    google.inject_failure("/events", method="GET", status=429, retry_after=30)
    google.inject_failure(
        "/calendarList",
        status=403,
        body={"error": {"code": 403, "errors": [{"reason": "userRateLimitExceeded"}], "message": "slow down"}},
    )

    with pytest.raises(http.TransientHTTPError) as limited:
        changes(access)
    with pytest.raises(http.TransientHTTPError) as forbidden:
        provider.list_calendars(access)

    assert limited.value.retry_after == 30 and forbidden.value.status == 403
    assert google.state_summary()["failures"] == []


def test_an_expired_token_is_a_401_for_the_caller_to_refresh_and_a_500_is_transient(access):
    google.inject_failure("/freeBusy", status=500)
    with pytest.raises(http.TransientHTTPError):
        provider.free_busy(access, [GINA], start=at(6, 0), end=at(7, 0), account_email=GINA, timeout=3)

    google.expire_access_tokens(GINA)
    with pytest.raises(http.PermanentHTTPError) as expired:
        changes(access)
    assert expired.value.status == 401


def test_an_answer_we_cannot_use_is_a_provider_response_error(access):
    google.inject_failure("/events", method="GET", status=200, body={"items": [{"status": "confirmed"}]})
    with pytest.raises(ProviderResponseError):
        changes(access)

    google.inject_failure("/events", method="GET", status=200, body={"items": []})  # no nextSyncToken
    with pytest.raises(ProviderResponseError):
        changes(access)


# --- Free/busy ----------------------------------------------------------------------------------------


def test_free_busy_merges_the_busy_time_of_the_calendars_asked_for(access):
    holidays = google.add_calendar(GINA, "Team holidays")
    google.add_event(GINA, at(6, 9), at(6, 10))
    google.add_event(GINA, at(6, 9, 30), at(6, 11), calendar_id=holidays)
    google.add_event(GINA, at(6, 13), at(6, 14), transparency="transparent")

    found = provider.free_busy(access, [GINA, holidays], start=at(6, 0), end=at(7, 0), account_email=GINA, timeout=3)

    assert found == [(at(6, 9), at(6, 11))]
    assert provider.free_busy(access, [GINA], start=at(7, 0), end=at(8, 0), account_email=GINA, timeout=3) == []


def test_free_busy_of_a_calendar_google_does_not_know_is_unusable(access):
    with pytest.raises(ProviderResponseError):
        provider.free_busy(
            access,
            [GINA, "gone@group.calendar.google.com"],
            start=at(6, 0),
            end=at(7, 0),
            account_email=GINA,
            timeout=3,
        )


def test_free_busy_gives_up_after_its_short_timeout(access):
    google.inject_failure("/freeBusy", delay_seconds=2)

    with pytest.raises(http.TransientHTTPError) as slow:
        provider.free_busy(access, [GINA], start=at(6, 0), end=at(7, 0), account_email=GINA, timeout=0.5)

    assert slow.value.status is None  # no answer in time


# --- Push channels ------------------------------------------------------------------------------------


def push_address() -> str:
    return settings.SITE_URL + "/integrations/google/calendar-push/"


def test_watch_makes_a_channel_that_lasts_as_long_as_asked(access):
    wanted = datetime.now(UTC) + timedelta(days=7)

    channel = provider.watch_calendar(
        access, GINA, address=push_address(), channel_id="chan-1", token="t" * 64, expires_at=wanted
    )

    [stored] = google.channels()
    assert (channel.channel_id, channel.resource_id) == ("chan-1", stored["resource_id"])
    assert abs((channel.expires_at - wanted).total_seconds()) < 5
    assert stored["has_token"] and stored["address"] == push_address() and stored["calendar_id"] == GINA
    google.wait_for_deliveries()


def test_renewing_makes_a_new_channel_then_stops_the_old_and_stopping_twice_is_fine(access):
    soon = datetime.now(UTC) + timedelta(days=1)
    old = provider.watch_calendar(access, GINA, address=push_address(), channel_id="old", token="x", expires_at=soon)

    new = provider.renew_watch(
        access,
        GINA,
        old,
        address=push_address(),
        new_channel_id="new",
        token="x",
        expires_at=soon + timedelta(days=6),
    )

    assert [channel["id"] for channel in google.channels()] == ["new"] and new.channel_id == "new"
    provider.stop_watch(access, new)
    provider.stop_watch(access, new)  # Google no longer knows it: stopped
    assert google.channels() == []
    google.wait_for_deliveries()


def test_a_renewal_whose_old_channel_cannot_be_stopped_still_gives_the_new_one_and_says_so(access, caplog):
    soon, secret = datetime.now(UTC) + timedelta(days=1), "channel-token-9f3b"
    old = provider.watch_calendar(access, GINA, address=push_address(), channel_id="old", token=secret, expires_at=soon)
    google.inject_failure("/channels/stop", status=503)

    new = provider.renew_watch(
        access, GINA, old, address=push_address(), new_channel_id="new", token=secret, expires_at=soon
    )

    assert new.channel_id == "new" and {channel["id"] for channel in google.channels()} == {"old", "new"}
    assert "could not be stopped" in caplog.text
    assert secret not in caplog.text and access not in caplog.text
    google.wait_for_deliveries()


def test_a_channel_stopped_by_someone_else_counts_as_stopped(access):
    provider.stop_watch(access, PushChannel("never-made", "some-resource", datetime.now(UTC)))
    assert google.channels() == []


# --- The bookings' events ---------------------------------------------------------------------------


def test_a_bookings_event_is_written_once_even_when_created_again_with_the_same_request(access):
    team = google.add_calendar(GINA, "Bookings", "Europe/Berlin")

    first = provider.create_event(access, team, booking_event())
    again = provider.create_event(access, team, booking_event())

    assert first == again
    [event] = google.events_of(GINA, team)
    assert event["id"] == first and event["summary"] == "Intro call with Casey Client"
    assert "Manage: https://tsp.example/dashboard/bookings/41/" in event["description"]
    assert event["location"] == "https://meet.example/abc" and event.get("transparency", "opaque") == "opaque"
    assert event["start"] == {"dateTime": "2030-05-06T09:00:00Z", "timeZone": "Europe/Berlin"}
    assert event["extendedProperties"] == {"private": {"tspBooking": "booking-41-host-7"}}
    assert google.state_summary()["events"][0]["send_updates"] == ["none"]
    assert google.events_of(GINA, "primary") == []


def test_an_event_the_host_deleted_is_made_again_under_the_next_id(access):
    first = provider.create_event(access, GINA, booking_event())
    google.delete_event(GINA, first)

    second = provider.create_event(access, GINA, booking_event())

    assert second != first and [event["id"] for event in google.events_of(GINA)] == [second]
    assert provider.create_event(access, GINA, booking_event()) == second


def test_a_bookings_event_and_its_meet_event_never_share_an_id(access):
    meet = provider.create_meeting(access, meeting_request("booking-41-host-7"))
    plain = provider.create_event(access, GINA, booking_event("booking-41-host-7"))

    assert plain != meet.meeting_id and len(google.events_of(GINA)) == 2


def test_a_bookings_event_moves_and_is_deleted_and_deleting_it_again_is_done(access):
    event_id = provider.create_event(access, GINA, booking_event())

    provider.update_event(access, GINA, event_id, booking_event(start=at(8, 15)))
    assert google.events_of(GINA)[0]["start"]["dateTime"] == "2030-05-08T15:00:00Z"
    provider.delete_event(access, GINA, event_id)
    provider.delete_event(access, GINA, event_id)  # 410: already deleted
    provider.delete_event(access, GINA, client.booking_event_id("never-made"))  # 404: never there

    assert google.events_of(GINA) == []
    with pytest.raises(http.PermanentHTTPError) as gone:
        provider.update_event(access, GINA, event_id, booking_event())
    assert gone.value.status == 410


def test_a_meet_event_goes_on_the_calendar_the_request_names(access):
    team = google.add_calendar(GINA, "Bookings")

    meet = provider.create_meeting(access, meeting_request(calendar_id=team))
    provider.update_meeting(access, meet.meeting_id, meeting_request(calendar_id=team, start=at(9, 9)))

    [event] = google.events_of(GINA, team)
    assert event["id"] == meet.meeting_id and event["start"]["dateTime"] == "2030-05-09T09:00:00Z"
    assert provider.find_meeting(access, meeting_request(calendar_id=team)) == meet
    assert google.events_of(GINA, "primary") == []
