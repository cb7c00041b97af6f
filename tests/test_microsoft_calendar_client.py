"""The Microsoft provider's calendar methods, called directly, over real HTTP against the Microsoft
fake: a member's Outlook calendars, which of their events take time (busy and out of office do;
tentative, free, cancelled, deleted and our own booking events don't), all-day and recurring events,
calendarView delta and its deltaLink, change-notification subscriptions with Graph's validation
handshake, getSchedule, and the bookings' own events written exactly once."""

import secrets
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlencode

import pytest
from django.conf import settings

from integrations import http, oauth
from integrations.base import CalendarEvent, CalendarInfo, ProviderResponseError, PushChannel, SyncCursorExpired
from integrations.microsoft import client
from integrations.microsoft.provider import provider
from integrations.sandbox import microsoft

from . import zoom_helpers
from .microsoft_helpers import consent, receiver_url, receiver_urlpatterns, refuser_url
from .microsoft_helpers import notifications_received as received
from .zoom_helpers import query_of

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("product_with_a_receiver")]

ADA = "ada@contoso-school.example"
WINDOW_START = datetime(2030, 3, 1, tzinfo=UTC)
WINDOW_END = datetime(2030, 5, 1, tzinfo=UTC)

urlpatterns = [*receiver_urlpatterns, *zoom_helpers.urlpatterns]


@pytest.fixture
def product_with_a_receiver(microsoft_sandbox, settings):
    settings.ROOT_URLCONF = __name__
    received.clear()


@pytest.fixture
def access() -> str:
    return microsoft.issue_tokens(ADA)["access_token"]


@pytest.fixture
def calendar() -> CalendarInfo:
    return CalendarInfo(external_id=microsoft.default_calendar_id(ADA), name="Calendar", is_primary=True)


def changes(access, calendar, cursor="", zone="Europe/Berlin"):
    return provider.calendar_changes(
        access, calendar, cursor=cursor, start=WINDOW_START, end=WINDOW_END, host_time_zone=zone
    )


def busy_by_id(found) -> dict:
    return {period.event_id: (period.start, period.end) for period in found.busy}


def at(day: int, hour: int, minute: int = 0, month: int = 3) -> datetime:
    return datetime(2030, month, day, hour, minute, tzinfo=UTC)


def booking_event(request_id="b-7-0", start=None, minutes=30) -> CalendarEvent:
    start = start or at(12, 14)
    return CalendarEvent(
        request_id=request_id,
        summary="Intro call with Casey Client",
        description="Join: https://teams.sandbox.invalid/l/x\nManage: https://tsp.example/b/7",
        location="Microsoft Teams",
        start=start,
        end=start + timedelta(minutes=minutes),
        time_zone="Europe/Berlin",
    )


class Recorder:
    """A server elsewhere (not Graph): records whatever reaches it, so a test can show that our
    token never went there."""

    def __init__(self):
        hits = self.hits = []

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                hits.append((self.path, self.headers.get("Authorization")))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def elsewhere():
    recorder = Recorder()
    yield recorder
    recorder.close()


# --- Connecting: the calendar permission is asked for -----------------------------------------


def test_connect_asks_for_the_meeting_and_the_calendar_permissions_each_once(settings):
    settings.MICROSOFT_CALENDAR_SCOPES = "Calendars.ReadWrite User.Read"

    scope = client.authorize_params("https://tsp.example/integrations/microsoft/callback/")["scope"].split()

    assert scope == [*settings.MICROSOFT_SCOPES.split(), "Calendars.ReadWrite"]


def test_a_consent_through_the_sandbox_grants_calendars_and_the_provider_sees_it():
    verifier = secrets.token_urlsafe(64)
    redirect = settings.SITE_URL + "/integrations/microsoft/callback/"
    url, query = provider.authorize_url(redirect)
    query = {**query, "state": "s", "code_challenge": oauth.pkce_challenge(verifier), "code_challenge_method": "S256"}
    code = query_of(consent(f"{url}?{urlencode(query)}", email=ADA))["code"]

    tokens = provider.exchange_code(code=code, redirect_uri=redirect, verifier=verifier)

    assert provider.grants_calendars(tokens.scope)
    assert provider.list_calendars(tokens.access_token)[0].is_primary


@pytest.mark.parametrize(
    ("granted", "grants"),
    [
        ("openid offline_access OnlineMeetings.ReadWrite Calendars.ReadWrite", True),
        ("https://graph.microsoft.com/Calendars.ReadWrite https://graph.microsoft.com/User.Read", True),
        ("calendars.readwrite", True),
        ("openid offline_access OnlineMeetings.ReadWrite Calendars.Read", False),
        ("", False),
    ],
)
def test_calendar_access_is_recognised_however_microsoft_writes_the_granted_scopes(granted, grants):
    assert provider.has_calendars
    assert provider.grants_calendars(granted) is grants


# --- The calendar list -------------------------------------------------------------------------


def test_the_calendars_are_listed_the_default_one_first_and_a_read_only_one_as_such(access):
    shared = microsoft.add_calendar(ADA, "Team holidays", can_edit=False)

    found = provider.list_calendars(access)

    assert found == [
        CalendarInfo(external_id=microsoft.default_calendar_id(ADA), name="Calendar", is_primary=True, can_write=True),
        CalendarInfo(external_id=shared, name="Team holidays", is_primary=False, can_write=False),
    ]


def test_a_long_calendar_list_is_followed_page_by_page(access, monkeypatch):
    monkeypatch.setattr(microsoft, "MAX_CALENDAR_PAGE_SIZE", 2)
    added = [microsoft.add_calendar(ADA, f"Project {number}") for number in range(4)]

    found = provider.list_calendars(access)

    assert [item.external_id for item in found] == [microsoft.default_calendar_id(ADA), *added]


def test_a_token_without_the_calendar_permission_is_refused():
    meetings_only = microsoft.issue_tokens(ADA, scope=settings.MICROSOFT_SCOPES)["access_token"]

    with pytest.raises(http.PermanentHTTPError) as refused:
        provider.list_calendars(meetings_only)

    assert refused.value.status == 403 and refused.value.provider_code == "ErrorAccessDenied"


def test_a_personal_account_has_calendars_too():
    personal = microsoft.issue_tokens("ada.private@outlook.example", personal=True)["access_token"]

    assert [item.name for item in provider.list_calendars(personal)] == ["Calendar"]


# --- Busy time: what takes time and what doesn't -----------------------------------------------


def test_busy_and_out_of_office_take_time_tentative_free_and_working_elsewhere_do_not(access, calendar):
    busy = microsoft.add_event(ADA, at(4, 9), at(4, 10))
    away = microsoft.add_event(ADA, at(5, 9), at(5, 17), show_as="oof")
    maybe = microsoft.add_event(ADA, at(6, 9), at(6, 10), show_as="tentative")
    free = microsoft.add_event(ADA, at(7, 9), at(7, 10), show_as="free")
    remote = microsoft.add_event(ADA, at(8, 9), at(8, 10), show_as="workingElsewhere")

    found = changes(access, calendar)

    assert busy_by_id(found) == {busy: (at(4, 9), at(4, 10)), away: (at(5, 9), at(5, 17))}
    assert set(found.freed) == {maybe, free, remote}
    assert found.complete is True and found.cursor.startswith(settings.MICROSOFT_API_BASE_URL)


def test_a_time_given_in_another_zone_is_the_same_instant_in_utc(access, calendar):
    event = microsoft.add_event(
        ADA, datetime(2030, 3, 4, 9, 0), datetime(2030, 3, 4, 9, 45), time_zone="America/New_York"
    )

    assert busy_by_id(changes(access, calendar)) == {event: (at(4, 14), at(4, 14, 45))}


def test_a_cancelled_event_frees_its_time(access, calendar):
    event = microsoft.add_event(ADA, at(4, 9), at(4, 10))
    microsoft.cancel_event(event)

    found = changes(access, calendar)

    assert found.busy == () and found.freed == (event,)


def test_an_all_day_event_is_midnight_to_midnight_in_the_hosts_zone(access, calendar):
    event = microsoft.add_event(ADA, datetime(2030, 3, 4), datetime(2030, 3, 6), all_day=True)

    in_berlin = busy_by_id(changes(access, calendar, zone="Europe/Berlin"))
    in_new_york = busy_by_id(changes(access, calendar, zone="America/New_York"))

    assert in_berlin == {event: (at(3, 23), at(5, 23))}
    assert in_new_york == {event: (at(4, 5), at(6, 5))}


def test_a_weekly_series_blocks_each_occurrence_at_the_same_wall_time_across_dst(access, calendar):
    # 9:00 in Berlin every Tuesday, three times: before and after the clocks go forward (31 March).
    series = microsoft.add_event(
        ADA,
        datetime(2030, 3, 19, 9, 0),
        datetime(2030, 3, 19, 10, 0),
        time_zone="Europe/Berlin",
        recurrence={
            "pattern": {"type": "weekly", "interval": 1, "daysOfWeek": ["tuesday"]},
            "range": {"type": "numbered", "numberOfOccurrences": 3},
        },
    )

    found = changes(access, calendar)

    assert sorted(busy_by_id(found).values()) == [
        (at(19, 8), at(19, 9)),
        (at(26, 8), at(26, 9)),
        (at(2, 7, month=4), at(2, 8, month=4)),
    ]
    assert series not in busy_by_id(found) and series not in found.freed  # the master is no time of its own


def test_our_own_booking_events_are_not_counted_again(access, calendar):
    ours = provider.create_event(access, calendar.external_id, booking_event())
    theirs = microsoft.add_event(ADA, at(4, 9), at(4, 10))

    found = changes(access, calendar)

    assert set(busy_by_id(found)) == {theirs} and ours in found.freed


def test_a_big_window_comes_in_pages_and_every_page_counts(access, calendar, monkeypatch):
    monkeypatch.setattr(microsoft, "MAX_DELTA_PAGE_SIZE", 2)
    events = [microsoft.add_event(ADA, at(day, 9), at(day, 10)) for day in range(2, 9)]

    found = changes(access, calendar)

    assert set(busy_by_id(found)) == set(events)


# --- Changes since the deltaLink ---------------------------------------------------------------


def test_the_deltalink_brings_new_moved_deleted_and_no_longer_busy_events_only(access, calendar):
    stays = microsoft.add_event(ADA, at(4, 9), at(4, 10))
    moves = microsoft.add_event(ADA, at(5, 9), at(5, 10))
    goes = microsoft.add_event(ADA, at(6, 9), at(6, 10))
    frees = microsoft.add_event(ADA, at(7, 9), at(7, 10))
    first = changes(access, calendar)

    new = microsoft.add_event(ADA, at(8, 9), at(8, 10))
    microsoft.move_event(moves, at(5, 15), at(5, 16))
    microsoft.delete_event(goes)
    microsoft.change_event(frees, showAs="free")
    later = changes(access, calendar, cursor=first.cursor)

    assert later.complete is False
    assert busy_by_id(later) == {new: (at(8, 9), at(8, 10)), moves: (at(5, 15), at(5, 16))}
    assert set(later.freed) == {goes, frees}
    assert stays not in later.freed
    assert changes(access, calendar, cursor=later.cursor).busy == ()  # nothing new since


def test_one_deleted_occurrence_of_a_series_frees_only_its_own_time(access, calendar):
    series = microsoft.add_event(
        ADA,
        at(4, 9),
        at(4, 10),
        recurrence={
            "pattern": {"type": "daily", "interval": 1},
            "range": {"type": "numbered", "numberOfOccurrences": 3},
        },
    )
    first = changes(access, calendar)
    middle = next(event_id for event_id, (start, _) in busy_by_id(first).items() if start == at(5, 9))

    microsoft.delete_event(middle)
    later = changes(access, calendar, cursor=first.cursor)

    assert later.freed == (middle,)
    assert sorted(busy_by_id(later).values()) == [(at(4, 9), at(4, 10)), (at(6, 9), at(6, 10))]
    assert series not in busy_by_id(later)


def test_a_sync_state_graph_forgot_is_a_cursor_expired(access, calendar):
    first = changes(access, calendar)
    microsoft.expire_delta_tokens(ADA)

    with pytest.raises(SyncCursorExpired):
        changes(access, calendar, cursor=first.cursor)
    assert changes(access, calendar).complete is True  # a full listing works again


def test_a_deltalink_elsewhere_than_graph_is_never_called_with_our_token_and_a_full_listing_follows(
    access, calendar, elsewhere
):
    with pytest.raises(SyncCursorExpired):
        changes(access, calendar, cursor=elsewhere.url + "/v1.0/me/calendars/x/calendarView/delta?$deltatoken=t")

    assert elsewhere.hits == []


def test_a_nextlink_elsewhere_than_graph_is_not_followed(access, calendar, elsewhere):
    page = {"value": [], "@odata.nextLink": elsewhere.url + "/steal?$skiptoken=x"}
    microsoft.inject_failure("calendarView/delta", status=200, body=page)

    with pytest.raises(ProviderResponseError):
        changes(access, calendar)

    assert elsewhere.hits == []


def test_a_delta_that_ends_without_a_deltalink_is_unusable(access, calendar):
    microsoft.inject_failure("calendarView/delta", status=200, body={"value": []})

    with pytest.raises(ProviderResponseError):
        changes(access, calendar)


def test_graph_busy_or_down_while_listing_is_retried_later(access, calendar):
    microsoft.inject_failure("calendarView/delta", status=429, retry_after="7")

    with pytest.raises(http.TransientHTTPError) as later:
        changes(access, calendar)

    assert later.value.retry_after == 7


def test_an_expired_access_token_is_a_401_for_the_caller_to_refresh(access, calendar):
    microsoft.expire_access_tokens(ADA)

    with pytest.raises(http.PermanentHTTPError) as refused:
        changes(access, calendar)

    assert refused.value.status == 401


def test_times_with_seven_fractional_digits_and_an_unknown_windows_zone_are_read():
    item = {
        "id": "e1",
        "showAs": "busy",
        "start": {"dateTime": "2030-03-04T09:30:00.1234567", "timeZone": "Customized Time Zone"},
        "end": {"dateTime": "2030-03-04T10:00:00.0000000", "timeZone": "Customized Time Zone"},
    }

    period = client._busy_period(item, "Europe/Berlin")

    assert (period.start, period.end) == (at(4, 8, 30) + timedelta(microseconds=123456), at(4, 9))


# --- Push: subscriptions -----------------------------------------------------------------------


def test_a_subscription_is_validated_then_notifies_with_our_client_state(access, calendar):
    expires = datetime.now(UTC).replace(microsecond=0) + timedelta(days=2)

    channel = provider.watch_calendar(
        access,
        calendar.external_id,
        address=receiver_url(),
        channel_id="ignored",
        token="s3cret-state",
        expires_at=expires,
    )
    event = microsoft.add_event(ADA, at(4, 9), at(4, 10))

    assert microsoft.wait_for_deliveries()
    assert channel.expires_at == expires and channel.resource_id == ""
    [subscription] = microsoft.subscriptions()
    assert subscription["id"] == channel.channel_id
    assert subscription["resource"] == f"me/calendars/{calendar.external_id}/events"
    [[notification]] = [body["value"] for body in received]
    assert notification["clientState"] == "s3cret-state"
    assert notification["subscriptionId"] == channel.channel_id
    assert notification["changeType"] == "created" and notification["resourceData"]["id"] == event


def test_an_address_that_does_not_answer_the_handshake_gets_no_subscription(access, calendar):
    with pytest.raises(http.PermanentHTTPError) as refused:
        provider.watch_calendar(
            access,
            calendar.external_id,
            address=refuser_url(),
            channel_id="",
            token="t",
            expires_at=datetime.now(UTC) + timedelta(days=1),
        )

    assert refused.value.status == 400 and refused.value.provider_code == "ValidationError"
    assert microsoft.subscriptions() == []


def test_renewing_keeps_the_subscription_with_a_later_expiry(access, calendar):
    soon = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=1)
    channel = provider.watch_calendar(
        access, calendar.external_id, address=receiver_url(), channel_id="", token="t", expires_at=soon
    )

    renewed = provider.renew_watch(
        access,
        calendar.external_id,
        channel,
        address=receiver_url(),
        new_channel_id="",
        token="t",
        expires_at=soon + timedelta(days=3),
    )

    assert renewed == PushChannel(channel.channel_id, "", soon + timedelta(days=3))
    assert [item["expirationDateTime"][:19] for item in microsoft.subscriptions()] == [
        (soon + timedelta(days=3)).strftime("%Y-%m-%dT%H:%M:%S")
    ]


def test_renewing_a_subscription_that_lapsed_makes_a_new_one(access, calendar):
    soon = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=1)
    channel = provider.watch_calendar(
        access, calendar.external_id, address=receiver_url(), channel_id="", token="t", expires_at=soon
    )
    microsoft.expire_subscriptions(ADA)

    renewed = provider.renew_watch(
        access, calendar.external_id, channel, address=receiver_url(), new_channel_id="", token="t", expires_at=soon
    )

    assert renewed.channel_id != channel.channel_id
    assert [item["id"] for item in microsoft.subscriptions() if not item["expired"]] == [renewed.channel_id]


def test_stopping_deletes_the_subscription_and_again_counts_as_done(access, calendar):
    channel = provider.watch_calendar(
        access,
        calendar.external_id,
        address=receiver_url(),
        channel_id="",
        token="t",
        expires_at=datetime.now(UTC) + timedelta(days=1),
    )

    provider.stop_watch(access, channel)
    provider.stop_watch(access, channel)

    assert microsoft.subscriptions() == []
    microsoft.add_event(ADA, at(4, 9), at(4, 10))
    assert microsoft.wait_for_deliveries() and received == []


# --- Live free/busy ----------------------------------------------------------------------------


def test_free_busy_reports_busy_and_out_of_office_of_the_default_calendar(access, calendar):
    microsoft.add_event(ADA, at(4, 9), at(4, 10))
    microsoft.add_event(ADA, at(4, 11), at(4, 12), show_as="oof")
    microsoft.add_event(ADA, at(4, 13), at(4, 14), show_as="tentative")
    microsoft.add_event(ADA, at(4, 15), at(4, 16), calendar_id=microsoft.add_calendar(ADA, "Side project"))
    microsoft.add_event(ADA, at(5, 9), at(5, 10))  # outside the window asked about

    found = provider.free_busy(
        access, [calendar.external_id], start=at(4, 0), end=at(5, 0), account_email=ADA, timeout=3
    )

    assert sorted(found) == [(at(4, 9), at(4, 10)), (at(4, 11), at(4, 12))]


def test_free_busy_of_a_mailbox_graph_cannot_read_is_an_error_not_free(access, calendar):
    with pytest.raises(ProviderResponseError):
        provider.free_busy(
            access, [calendar.external_id], start=at(4, 0), end=at(5, 0), account_email="nobody@else.example", timeout=3
        )


def test_free_busy_gives_up_within_its_timeout(access, calendar):
    microsoft.inject_failure("getSchedule", delay_seconds=2)

    with pytest.raises(http.TransientHTTPError):
        provider.free_busy(access, [calendar.external_id], start=at(4, 0), end=at(5, 0), account_email=ADA, timeout=0.5)


# --- The bookings' own events ------------------------------------------------------------------


def test_a_booking_event_is_written_once_however_often_it_is_sent(access, calendar):
    first = provider.create_event(access, calendar.external_id, booking_event())
    again = provider.create_event(access, calendar.external_id, booking_event())

    assert again == first
    [event] = microsoft.events_of(ADA)
    assert event["id"] == first and event["transactionId"] == "tsp-b-7-0"
    assert event["subject"] == "Intro call with Casey Client" and event["showAs"] == "busy"
    assert event["start"] == {"dateTime": "2030-03-12T14:00:00.0000000", "timeZone": "UTC"}
    assert event["end"] == {"dateTime": "2030-03-12T14:30:00.0000000", "timeZone": "UTC"}
    assert "Manage: https://tsp.example/b/7" in event["body"]["content"]
    assert event["location"] == {"displayName": "Microsoft Teams"}


def test_a_booking_event_on_another_calendar_lands_there(access):
    other = microsoft.add_calendar(ADA, "Bookings")

    event_id = provider.create_event(access, other, booking_event())

    assert [event["id"] for event in microsoft.events_of(ADA, other)] == [event_id]


def test_a_read_only_calendar_takes_no_booking_event(access):
    shared = microsoft.add_calendar(ADA, "Team holidays", can_edit=False)

    with pytest.raises(http.PermanentHTTPError) as refused:
        provider.create_event(access, shared, booking_event())

    assert refused.value.status == 403 and microsoft.events_of(ADA) == []


def test_a_booking_event_moves_with_the_booking(access, calendar):
    event_id = provider.create_event(access, calendar.external_id, booking_event())

    provider.update_event(access, calendar.external_id, event_id, booking_event(start=at(13, 8), minutes=60))

    [event] = microsoft.events_of(ADA)
    assert event["start"]["dateTime"].startswith("2030-03-13T08:00") and event["end"]["dateTime"].startswith(
        "2030-03-13T09:00"
    )


def test_a_booking_event_is_deleted_and_one_already_gone_counts_as_deleted(access, calendar):
    event_id = provider.create_event(access, calendar.external_id, booking_event())

    provider.delete_event(access, calendar.external_id, event_id)
    provider.delete_event(access, calendar.external_id, event_id)

    assert microsoft.events_of(ADA) == []


def test_moving_a_booking_event_someone_deleted_is_a_refusal_for_the_caller(access, calendar):
    event_id = provider.create_event(access, calendar.external_id, booking_event())
    microsoft.delete_event(event_id)

    with pytest.raises(http.PermanentHTTPError) as refused:
        provider.update_event(access, calendar.external_id, event_id, booking_event())

    assert refused.value.status == 404


def test_a_create_graph_cannot_take_now_is_retried_later_and_still_makes_one_event(access, calendar):
    microsoft.inject_failure("/events", method="POST", status=503)

    with pytest.raises(http.TransientHTTPError):
        provider.create_event(access, calendar.external_id, booking_event())
    provider.create_event(access, calendar.external_id, booking_event())

    assert len(microsoft.events_of(ADA)) == 1
