"""The Microsoft fake's calendars (integrations/sandbox/microsoft.py), over real HTTP on the live
server, as Graph documents them: calendars, events and their transactionId, calendarView delta with
its paging and deltaLink, a forgotten sync state (410), change-notification subscriptions with the
validation handshake and their notifications, getSchedule, permissions, injected errors, and the
control API and page a demo user adds a meeting with."""

import re
from datetime import UTC, datetime, timedelta

import pytest
import requests
from django.conf import settings

from integrations.sandbox import microsoft

from . import zoom_helpers
from .microsoft_helpers import graph_api, receiver_url, receiver_urlpatterns, refuser_url
from .microsoft_helpers import notifications_received as received

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("fake_with_a_receiver")]

MIKA = "mika.host@contoso.example"
UTC_TIMES = {"Prefer": 'outlook.timezone="UTC"'}
EVENT = {
    "subject": "Dentist",
    "start": {"dateTime": "2030-05-06T09:30:00", "timeZone": "Europe/Berlin"},
    "end": {"dateTime": "2030-05-06T10:15:00", "timeZone": "Europe/Berlin"},
}
WINDOW = {"startDateTime": "2030-05-01T00:00:00Z", "endDateTime": "2030-06-01T00:00:00Z"}

urlpatterns = [*receiver_urlpatterns, *zoom_helpers.urlpatterns]


@pytest.fixture
def fake_with_a_receiver(microsoft_sandbox, settings):
    settings.ROOT_URLCONF = __name__
    received.clear()


@pytest.fixture
def token() -> str:
    return microsoft.issue_tokens(MIKA)["access_token"]


@pytest.fixture
def calendar_id() -> str:
    return microsoft.default_calendar_id(MIKA)


def graph(method, path, token, **kwargs) -> requests.Response:
    return graph_api(method, path, token, **kwargs)


def code_of(response) -> str:
    return response.json()["error"]["code"]


def delta(token, calendar_id, *, page_size=None, zone="UTC", **params) -> requests.Response:
    prefer = f'outlook.timezone="{zone}"' + (f", odata.maxpagesize={page_size}" if page_size else "")
    return graph(
        "GET", f"/me/calendars/{calendar_id}/calendarView/delta", token, params=params, headers={"Prefer": prefer}
    )


def follow(link, token, *, page_size=None) -> requests.Response:
    prefer = 'outlook.timezone="UTC"' + (f", odata.maxpagesize={page_size}" if page_size else "")
    return requests.get(link, headers={"Authorization": f"Bearer {token}", "Prefer": prefer}, timeout=10)


def every_page(first: requests.Response, token, *, page_size=None) -> tuple[list[dict], str, int]:
    """The items of a delta and its following pages, the deltaLink, and how many pages there were."""
    items, pages, answer = [], 1, first
    while True:
        assert answer.status_code == 200, answer.text
        body = answer.json()
        items += body["value"]
        if "@odata.deltaLink" in body:
            return items, body["@odata.deltaLink"], pages
        answer, pages = follow(body["@odata.nextLink"], token, page_size=page_size), pages + 1


def subscribe(token, calendar_id, **changes) -> requests.Response:
    body = {
        "changeType": "created,updated,deleted",
        "notificationUrl": receiver_url(),
        "resource": f"me/calendars/{calendar_id}/events",
        "expirationDateTime": (datetime.now(UTC) + timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%S.0000000Z"),
        "clientState": "our-secret-state",
        **changes,
    }
    return graph("POST", "/subscriptions", token, json={key: value for key, value in body.items() if value is not None})


# --- Calendars ---------------------------------------------------------------------------------


def test_every_user_has_the_default_calendar_and_can_get_more(token):
    made = graph("POST", "/me/calendars", token, json={"name": "Side project"})
    listed = graph("GET", "/me/calendars", token).json()["value"]

    assert made.status_code == 201
    assert [(item["name"], item["isDefaultCalendar"], item["canEdit"]) for item in listed] == [
        ("Calendar", True, True),
        ("Side project", False, True),
    ]
    assert listed[1]["id"] == made.json()["id"]


def test_a_long_calendar_list_comes_in_pages_with_a_next_link(token):
    for number in range(2):
        microsoft.add_calendar(MIKA, f"Project {number}")

    first = graph("GET", "/me/calendars", token, params={"$top": 2}).json()
    second = requests.get(first["@odata.nextLink"], headers={"Authorization": f"Bearer {token}"}, timeout=10).json()

    assert [item["name"] for item in first["value"] + second["value"]] == ["Calendar", "Project 0", "Project 1"]
    assert "@odata.nextLink" not in second


def test_calendars_need_a_calendar_permission_and_writing_needs_read_write():
    meetings_only = microsoft.issue_tokens(MIKA, scope=settings.MICROSOFT_SCOPES)["access_token"]
    read_only = microsoft.issue_tokens(MIKA, scope="openid offline_access Calendars.Read")["access_token"]
    calendar_id = microsoft.default_calendar_id(MIKA)

    refused = graph("GET", "/me/calendars", meetings_only)
    read = graph("GET", "/me/calendars", read_only)
    write = graph("POST", f"/me/calendars/{calendar_id}/events", read_only, json=EVENT)

    assert refused.status_code == 403 and code_of(refused) == "ErrorAccessDenied"
    assert read.status_code == 200
    assert write.status_code == 403 and microsoft.events_of(MIKA) == []


def test_a_personal_account_has_calendars_though_no_teams():
    personal = microsoft.issue_tokens("mika@outlook.example", personal=True)["access_token"]

    assert graph("GET", "/me/calendars", personal).status_code == 200


# --- Events ------------------------------------------------------------------------------------


def test_an_event_is_made_in_its_calendar_and_read_patched_and_deleted_by_id(token, calendar_id):
    made = graph("POST", f"/me/calendars/{calendar_id}/events", token, json=EVENT, headers=UTC_TIMES)
    event_id = made.json()["id"]

    read = graph("GET", f"/me/events/{event_id}", token, headers=UTC_TIMES).json()
    patched = graph("PATCH", f"/me/calendars/{calendar_id}/events/{event_id}", token, json={"showAs": "oof"})
    deleted = graph("DELETE", f"/me/events/{event_id}", token)

    assert made.status_code == 201
    assert read["start"] == {"dateTime": "2030-05-06T07:30:00.0000000", "timeZone": "UTC"}
    assert read["showAs"] == "busy" and read["type"] == "singleInstance" and read["isCancelled"] is False
    assert patched.status_code == 200 and patched.json()["showAs"] == "oof"
    assert deleted.status_code == 204
    assert graph("GET", f"/me/events/{event_id}", token).status_code == 404
    assert graph("DELETE", f"/me/events/{event_id}", token).status_code == 404


def test_a_second_post_with_the_same_transaction_id_answers_with_the_first_event(token, calendar_id):
    body = {**EVENT, "transactionId": "tsp-b-1-0"}

    first = graph("POST", f"/me/calendars/{calendar_id}/events", token, json=body)
    second = graph("POST", f"/me/calendars/{calendar_id}/events", token, json={**body, "subject": "Retried"})

    assert first.status_code == second.status_code == 201
    assert second.json()["id"] == first.json()["id"]
    assert [event["subject"] for event in microsoft.events_of(MIKA)] == ["Dentist"]


def test_an_event_of_another_user_or_calendar_is_not_found(token, calendar_id):
    event_id = microsoft.add_event(MIKA, datetime(2030, 5, 6, 9, tzinfo=UTC), datetime(2030, 5, 6, 10, tzinfo=UTC))
    other_calendar = microsoft.add_calendar(MIKA, "Side project")
    stranger = microsoft.issue_tokens("someone.else@contoso.example")["access_token"]

    assert graph("GET", f"/me/events/{event_id}", stranger).status_code == 404
    assert graph("DELETE", f"/me/calendars/{other_calendar}/events/{event_id}", token).status_code == 404
    assert len(microsoft.events_of(MIKA)) == 1


@pytest.mark.parametrize(
    "changes",
    [
        {"end": {"dateTime": "2030-05-06T09:00:00", "timeZone": "Europe/Berlin"}},
        {"start": {"dateTime": "2030-05-06T09:30:00", "timeZone": "Mars/Olympus"}},
        {"start": {"dateTime": "tomorrow", "timeZone": "UTC"}},
        {"showAs": "maybe"},
        {"isAllDay": True},
        {"recurrence": {"pattern": {"type": "absoluteYearly"}, "range": {"type": "noEnd"}}},
        {"subject": "x" * 256},
    ],
    ids=[
        "end-before-start",
        "unknown-zone",
        "unreadable-time",
        "unknown-show-as",
        "all-day-not-midnight",
        "unsupported-recurrence",
        "long-subject",
    ],
)
def test_a_bad_event_is_refused_with_400_and_nothing_is_made(token, calendar_id, changes):
    answer = graph("POST", f"/me/calendars/{calendar_id}/events", token, json={**EVENT, **changes})

    assert answer.status_code == 400, answer.text
    assert microsoft.events_of(MIKA) == []


def test_a_read_only_calendar_takes_no_event(token):
    shared = microsoft.add_calendar(MIKA, "Team holidays", can_edit=False)

    answer = graph("POST", f"/me/calendars/{shared}/events", token, json=EVENT)

    assert answer.status_code == 403 and microsoft.events_of(MIKA) == []


# --- calendarView delta ------------------------------------------------------------------------


def test_delta_pages_the_window_and_ends_with_a_delta_link(token, calendar_id):
    for day in range(2, 7):
        microsoft.add_event(MIKA, datetime(2030, 5, day, 9, tzinfo=UTC), datetime(2030, 5, day, 10, tzinfo=UTC))
    microsoft.add_event(MIKA, datetime(2030, 7, 1, 9, tzinfo=UTC), datetime(2030, 7, 1, 10, tzinfo=UTC))  # outside

    first = delta(token, calendar_id, page_size=2, **WINDOW)
    items, delta_link, pages = every_page(first, token, page_size=2)

    assert "$skiptoken=" in first.json()["@odata.nextLink"]
    assert "$deltatoken=" in delta_link and delta_link.startswith(settings.MICROSOFT_API_BASE_URL)
    assert pages == 3
    assert [item["start"]["dateTime"] for item in items] == [f"2030-05-0{day}T09:00:00.0000000" for day in range(2, 7)]
    assert {item["start"]["timeZone"] for item in items} == {"UTC"}


def test_times_come_in_the_preferred_zone(token, calendar_id):
    microsoft.add_event(MIKA, datetime(2030, 5, 6, 7, 30, tzinfo=UTC), datetime(2030, 5, 6, 8, tzinfo=UTC))

    [item] = delta(token, calendar_id, zone="America/New_York", **WINDOW).json()["value"]

    assert item["start"] == {"dateTime": "2030-05-06T03:30:00.0000000", "timeZone": "America/New_York"}


def test_a_delta_link_lists_what_changed_since_deletions_as_removed(token, calendar_id):
    kept = microsoft.add_event(MIKA, datetime(2030, 5, 2, 9, tzinfo=UTC), datetime(2030, 5, 2, 10, tzinfo=UTC))
    moved = microsoft.add_event(MIKA, datetime(2030, 5, 3, 9, tzinfo=UTC), datetime(2030, 5, 3, 10, tzinfo=UTC))
    gone = microsoft.add_event(MIKA, datetime(2030, 5, 4, 9, tzinfo=UTC), datetime(2030, 5, 4, 10, tzinfo=UTC))
    _, delta_link, _ = every_page(delta(token, calendar_id, **WINDOW), token)

    new = microsoft.add_event(MIKA, datetime(2030, 5, 5, 9, tzinfo=UTC), datetime(2030, 5, 5, 10, tzinfo=UTC))
    microsoft.move_event(moved, datetime(2030, 5, 3, 15, tzinfo=UTC), datetime(2030, 5, 3, 16, tzinfo=UTC))
    microsoft.delete_event(gone)
    items, next_link, _ = every_page(follow(delta_link, token), token)

    assert {item["id"] for item in items if "@removed" not in item} == {new, moved}
    assert [item for item in items if "@removed" in item] == [{"id": gone, "@removed": {"reason": "deleted"}}]
    assert kept not in {item["id"] for item in items}
    assert every_page(follow(next_link, token), token)[0] == []


def test_a_series_is_listed_as_its_occurrences_with_their_master(token, calendar_id):
    series = microsoft.add_event(
        MIKA,
        datetime(2030, 5, 6, 9, tzinfo=UTC),
        datetime(2030, 5, 6, 10, tzinfo=UTC),
        recurrence={
            "pattern": {"type": "weekly", "interval": 2, "daysOfWeek": ["monday", "thursday"]},
            "range": {"type": "endDate", "endDate": "2030-05-23"},
        },
    )

    items = delta(token, calendar_id, **WINDOW).json()["value"]

    occurrences = [item for item in items if item["type"] == "occurrence"]
    assert [item["start"]["dateTime"][:10] for item in occurrences] == [
        "2030-05-06",
        "2030-05-09",
        "2030-05-20",
        "2030-05-23",
    ]
    assert {item["seriesMasterId"] for item in occurrences} == {series}
    assert [item["id"] for item in items if item["type"] == "seriesMaster"] == [series]


def test_a_delta_without_a_window_is_refused(token, calendar_id):
    answer = delta(token, calendar_id)

    assert answer.status_code == 400


def test_a_forgotten_sync_state_is_410_sync_state_not_found(token, calendar_id):
    _, delta_link, _ = every_page(delta(token, calendar_id, **WINDOW), token)

    assert microsoft.expire_delta_tokens(MIKA) == 1
    answer = follow(delta_link, token)

    assert answer.status_code == 410 and code_of(answer) == "SyncStateNotFound"
    assert delta(token, calendar_id, **WINDOW).status_code == 200


def test_a_next_link_of_a_forgotten_sync_state_is_410_too(token, calendar_id):
    for day in range(2, 5):
        microsoft.add_event(MIKA, datetime(2030, 5, day, 9, tzinfo=UTC), datetime(2030, 5, day, 10, tzinfo=UTC))
    next_link = delta(token, calendar_id, page_size=1, **WINDOW).json()["@odata.nextLink"]

    microsoft.expire_delta_tokens()

    assert follow(next_link, token, page_size=1).status_code == 410


# --- Subscriptions -----------------------------------------------------------------------------


def test_a_subscription_is_made_after_the_validation_handshake_and_told_of_every_change(token, calendar_id):
    made = subscribe(token, calendar_id)
    event_id = microsoft.add_event(MIKA, datetime(2030, 5, 6, 9, tzinfo=UTC), datetime(2030, 5, 6, 10, tzinfo=UTC))
    microsoft.delete_event(event_id)

    assert microsoft.wait_for_deliveries()
    assert made.status_code == 201
    subscription = made.json()
    assert subscription["clientState"] == "our-secret-state" and subscription["expirationDateTime"].endswith("Z")
    notifications = [item for body in received for item in body["value"]]
    assert sorted(item["changeType"] for item in notifications) == ["created", "deleted"]
    for item in notifications:
        assert item["subscriptionId"] == subscription["id"]
        assert item["clientState"] == "our-secret-state"
        assert item["resourceData"] == {
            "@odata.type": "#Microsoft.Graph.Event",
            "@odata.id": item["resource"],
            "@odata.etag": item["resourceData"]["@odata.etag"],
            "id": event_id,
        }
        assert re.fullmatch(r"Users/[\w-]+/Events/" + re.escape(event_id), item["resource"])
    assert {(item["subscription_id"], item["status"]) for item in microsoft.deliveries()} == {(subscription["id"], 202)}


def test_only_the_subscribed_calendar_and_change_types_are_notified(token, calendar_id):
    other = microsoft.add_calendar(MIKA, "Side project")
    subscribe(token, calendar_id, changeType="deleted")

    event_id = microsoft.add_event(MIKA, datetime(2030, 5, 6, 9, tzinfo=UTC), datetime(2030, 5, 6, 10, tzinfo=UTC))
    microsoft.add_event(
        MIKA, datetime(2030, 5, 7, 9, tzinfo=UTC), datetime(2030, 5, 7, 10, tzinfo=UTC), calendar_id=other
    )
    microsoft.delete_event(event_id)

    assert microsoft.wait_for_deliveries()
    assert [item["changeType"] for body in received for item in body["value"]] == ["deleted"]


def test_an_address_that_does_not_echo_the_validation_token_gets_no_subscription(token, calendar_id):
    answer = subscribe(token, calendar_id, notificationUrl=refuser_url())

    assert answer.status_code == 400 and code_of(answer) == "ValidationError"
    assert microsoft.subscriptions() == []


def test_an_unreachable_address_gets_no_subscription(token, calendar_id):
    answer = subscribe(token, calendar_id, notificationUrl="http://127.0.0.1:9/nobody-listens")

    assert answer.status_code == 400 and code_of(answer) == "ValidationError"
    assert microsoft.subscriptions() == []


@pytest.mark.parametrize(
    "changes",
    [
        {"expirationDateTime": None},
        {"expirationDateTime": "2000-01-01T00:00:00Z"},
        {"expirationDateTime": (datetime.now(UTC) + timedelta(days=8)).strftime("%Y-%m-%dT%H:%M:%SZ")},
        {"notificationUrl": "http://tsp.example/notifications"},
        {"resource": "me/messages"},
        {"changeType": "moved"},
        {"clientState": "x" * 129},
    ],
    ids=[
        "no-expiry",
        "past-expiry",
        "expiry-beyond-7-days",
        "plain-http-elsewhere",
        "other-resource",
        "unknown-change-type",
        "long-client-state",
    ],
)
def test_a_bad_subscription_is_refused_with_400_and_nothing_is_made(token, calendar_id, changes):
    answer = subscribe(token, calendar_id, **changes)

    assert answer.status_code == 400, answer.text
    assert microsoft.subscriptions() == []


def test_a_subscription_is_renewed_with_patch_and_deleted_with_delete(token, calendar_id):
    subscription_id = subscribe(token, calendar_id).json()["id"]
    later = (datetime.now(UTC) + timedelta(days=6)).strftime("%Y-%m-%dT%H:%M:%SZ")

    renewed = graph("PATCH", f"/subscriptions/{subscription_id}", token, json={"expirationDateTime": later})
    deleted = graph("DELETE", f"/subscriptions/{subscription_id}", token)

    assert renewed.status_code == 200 and renewed.json()["expirationDateTime"][:19] == later[:19]
    assert deleted.status_code == 204
    assert (
        graph("PATCH", f"/subscriptions/{subscription_id}", token, json={"expirationDateTime": later}).status_code
        == 404
    )
    assert graph("DELETE", f"/subscriptions/{subscription_id}", token).status_code == 404


def test_a_lapsed_subscription_is_gone_and_notifies_nothing(token, calendar_id):
    subscription_id = subscribe(token, calendar_id).json()["id"]
    assert microsoft.expire_subscriptions(MIKA) == 1

    microsoft.add_event(MIKA, datetime(2030, 5, 6, 9, tzinfo=UTC), datetime(2030, 5, 6, 10, tzinfo=UTC))
    later = (datetime.now(UTC) + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")

    assert microsoft.wait_for_deliveries() and received == []
    assert (
        graph("PATCH", f"/subscriptions/{subscription_id}", token, json={"expirationDateTime": later}).status_code
        == 404
    )


def test_another_users_subscription_is_not_found(token, calendar_id):
    subscription_id = subscribe(token, calendar_id).json()["id"]
    stranger = microsoft.issue_tokens("someone.else@contoso.example")["access_token"]

    assert graph("DELETE", f"/subscriptions/{subscription_id}", stranger).status_code == 404
    assert len(microsoft.subscriptions()) == 1


# --- getSchedule -------------------------------------------------------------------------------


def test_get_schedule_lists_the_default_calendars_items_with_their_status(token):
    microsoft.add_event(MIKA, datetime(2030, 5, 6, 9, tzinfo=UTC), datetime(2030, 5, 6, 10, tzinfo=UTC))
    microsoft.add_event(
        MIKA, datetime(2030, 5, 6, 11, tzinfo=UTC), datetime(2030, 5, 6, 11, 30, tzinfo=UTC), show_as="tentative"
    )
    microsoft.add_event(
        MIKA,
        datetime(2030, 5, 6, 9, tzinfo=UTC),
        datetime(2030, 5, 6, 12, tzinfo=UTC),
        calendar_id=microsoft.add_calendar(MIKA, "Side project"),
    )
    body = {
        "schedules": [MIKA],
        "startTime": {"dateTime": "2030-05-06T09:00:00", "timeZone": "UTC"},
        "endTime": {"dateTime": "2030-05-06T12:00:00", "timeZone": "UTC"},
        "availabilityViewInterval": 60,
    }

    [schedule] = graph("POST", "/me/calendar/getSchedule", token, json=body).json()["value"]

    assert schedule["scheduleId"] == MIKA and schedule["availabilityView"] == "201"
    assert [
        (item["status"], item["start"]["dateTime"], item["end"]["dateTime"]) for item in schedule["scheduleItems"]
    ] == [
        ("busy", "2030-05-06T09:00:00.0000000", "2030-05-06T10:00:00.0000000"),
        ("tentative", "2030-05-06T11:00:00.0000000", "2030-05-06T11:30:00.0000000"),
    ]


def test_get_schedule_of_an_unknown_mailbox_answers_an_error_for_it(token):
    body = {
        "schedules": ["nobody@else.example"],
        "startTime": {"dateTime": "2030-05-06T09:00:00", "timeZone": "UTC"},
        "endTime": {"dateTime": "2030-05-06T12:00:00", "timeZone": "UTC"},
    }

    [schedule] = graph("POST", "/me/calendar/getSchedule", token, json=body).json()["value"]

    assert schedule["error"]["responseCode"] == "ErrorMailboxNotFound"


# --- Injected errors ---------------------------------------------------------------------------


def test_injected_errors_reach_the_calendar_endpoints(token, calendar_id):
    microsoft.inject_failure("calendarView/delta", status=429, retry_after="7")
    microsoft.inject_failure("getSchedule", status=500)
    microsoft.inject_failure("/subscriptions", method="POST", status=401)

    throttled = delta(token, calendar_id, **WINDOW)
    broken = graph("POST", "/me/calendar/getSchedule", token, json={})
    unauthorised = subscribe(token, calendar_id)

    assert throttled.status_code == 429 and throttled.headers["Retry-After"] == "7"
    assert code_of(throttled) == "TooManyRequests"
    assert broken.status_code == 500
    assert unauthorised.status_code == 401 and microsoft.subscriptions() == []
    assert delta(token, calendar_id, **WINDOW).status_code == 200  # once each


# --- Control API and page ----------------------------------------------------------------------


def test_the_control_api_adds_and_deletes_events_and_expires_sync_state(microsoft_sandbox):
    control = microsoft_sandbox + "/sandbox/microsoft/control"

    made = requests.post(
        f"{control}/events",
        json={
            "email": MIKA,
            "start": "2030-05-06T09:00:00",
            "end": "2030-05-06T10:00:00",
            "time_zone": "Europe/Berlin",
            "show_as": "oof",
        },
        timeout=10,
    )
    bad = requests.post(
        f"{control}/events",
        json={"email": MIKA, "start": "2030-05-06T09:00:00Z", "end": "2030-05-06T08:00:00Z"},
        timeout=10,
    )
    expired = requests.post(f"{control}/expire-delta-tokens", json={"email": MIKA}, timeout=10)

    assert made.status_code == 200 and bad.status_code == 400
    [event] = microsoft.events_of(MIKA)
    assert event["id"] == made.json()["id"] and event["showAs"] == "oof"
    assert event["start"]["dateTime"] == "2030-05-06T07:00:00.0000000"
    assert expired.json() == {"expired_calendars": 1}
    deleted = requests.post(f"{control}/events/delete", json={"event_id": event["id"]}, timeout=10)
    assert deleted.status_code == 200 and microsoft.events_of(MIKA) == []
    assert requests.post(f"{control}/events/delete", json={"event_id": event["id"]}, timeout=10).status_code == 404


def test_the_control_page_lists_calendars_and_adds_and_deletes_a_meeting(client, microsoft_sandbox):
    microsoft.issue_tokens(MIKA)
    calendar_id = microsoft.default_calendar_id(MIKA)
    day = (datetime.now(UTC) + timedelta(days=7)).date()  # the page lists the coming year
    form = {"email": MIKA, "calendar_id": calendar_id, "date": day.isoformat(), "start_time": "09:00"}

    added = client.post(
        "/sandbox/microsoft/control/page/add-event",
        {**form, "subject": "Board meeting", "end_time": "10:30", "time_zone": "Europe/Berlin", "show_as": "oof"},
    )
    refused = client.post(
        "/sandbox/microsoft/control/page/add-event", {**form, "end_time": "10:30", "time_zone": "Mars/Olympus"}
    )
    page = client.get("/sandbox/microsoft/control/").content.decode()

    assert added.status_code == refused.status_code == 302
    [event] = microsoft.events_of(MIKA)
    assert (event["subject"], event["showAs"]) == ("Board meeting", "oof")
    assert f"{day} 09:00–10:30 Europe/Berlin · Board meeting · shows as oof" in page
    assert "Add event" in page and "Add calendar" in page
    assert "No live subscription: the app sees changes when it next polls." in page
    client.post("/sandbox/microsoft/control/page/delete-event", {"event_id": event["id"]})
    assert microsoft.events_of(MIKA) == []


def test_the_control_pages_forms_answer_only_local_callers_or_admins(client, microsoft_sandbox):
    microsoft.issue_tokens(MIKA)

    answer = client.post(
        "/sandbox/microsoft/control/page/add-calendar", {"email": MIKA, "name": "Sneaky"}, REMOTE_ADDR="203.0.113.9"
    )

    assert answer.status_code == 403 and len(microsoft.calendars_of(MIKA)) == 1


def test_the_control_page_says_which_calendars_the_app_is_notified_of(client, token, calendar_id):
    subscribe(token, calendar_id)

    page = client.get("/sandbox/microsoft/control/").content.decode()

    assert "The app is notified of every change here (a live subscription)." in page
