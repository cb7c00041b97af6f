"""The Google fake's calendars (integrations/sandbox/google.py), over real HTTP on the live server,
as Google's Calendar API documents them: the calendar list, events listed by window or sync token
(410 once the token is dropped), recurring events as instances, all-day events in the calendar's
zone, push channels that POST notifications, free/busy, the scopes each call needs, injected
errors, and the controls a demo user has on the sandbox page."""

import re
from datetime import UTC, date, datetime, timedelta
from urllib.parse import quote
from zoneinfo import ZoneInfo

import pytest
import requests
from django.http import HttpResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from integrations import oauth
from integrations.base import PermissionNotGranted
from integrations.google import client
from integrations.google.provider import provider
from integrations.sandbox import google

from . import zoom_helpers
from .google_helpers import calendar_api

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("google_sandbox")]

GINA = "gina.host@acme.example"
SCOPE = "https://www.googleapis.com/auth/"
EVENTS_ONLY = f"openid email {SCOPE}calendar.events"
MAY = {"timeMin": "2030-05-01T00:00:00Z", "timeMax": "2030-06-01T00:00:00Z"}

# --- A receiver for push notifications on the live server ------------------------------------------

RECEIVED: list[dict] = []


@csrf_exempt
def receive_notification(request):
    RECEIVED.append({"headers": dict(request.headers), "body": request.body})
    return HttpResponse(status=200)


urlpatterns = [path("test-push/", receive_notification), *zoom_helpers.urlpatterns]


@pytest.fixture
def receiver(google_sandbox, settings) -> str:
    """The address of a receiver on this site (the fake's one verified domain) that records what it gets."""
    settings.ROOT_URLCONF = __name__
    RECEIVED.clear()
    yield google_sandbox + "/test-push/"
    google.wait_for_deliveries()
    RECEIVED.clear()


# --- Helpers ---------------------------------------------------------------------------------------


@pytest.fixture
def token() -> str:
    return google.issue_tokens(GINA)["access_token"]


def at(day: int, hour: int, minute: int = 0, month: int = 5) -> datetime:
    return datetime(2030, month, day, hour, minute, tzinfo=UTC)


def events_path(calendar_id: str = "primary") -> str:
    return f"/calendars/{quote(calendar_id, safe='')}/events"


def listing(token: str, calendar_id: str = "primary", **params) -> dict:
    response = calendar_api("GET", events_path(calendar_id), token, params={"singleEvents": "true", **params})
    assert response.status_code == 200, response.text
    return response.json()


def all_pages(token: str, **params) -> tuple[list[dict], str]:
    """Every item of a listing, page after page, and the nextSyncToken of its last page."""
    items, page = [], None
    while True:
        body = listing(token, **params, **({"pageToken": page} if page else {}))
        items += body["items"]
        page = body.get("nextPageToken")
        if page is None:
            return items, body["nextSyncToken"]
        assert "nextSyncToken" not in body  # only the last page has it


def watch(token: str, address: str, channel_id: str = "channel-1", calendar_id: str = "primary", **changes):
    body = {"id": channel_id, "type": "web_hook", "address": address, "token": "tok-123", **changes}
    return calendar_api("POST", events_path(calendar_id) + "/watch", token, json=body)


def free_busy(token: str, *calendar_ids: str, start=None, end=None) -> requests.Response:
    start, end = start or at(6, 0), end or at(7, 0)
    body = {"timeMin": start.isoformat(), "timeMax": end.isoformat(), "items": [{"id": item} for item in calendar_ids]}
    return calendar_api("POST", "/freeBusy", token, json=body)


def busy_of(response: requests.Response, calendar_id: str) -> list[tuple[str, str]]:
    assert response.status_code == 200, response.text
    return [(span["start"], span["end"]) for span in response.json()["calendars"][calendar_id]["busy"]]


def error_reason(response: requests.Response) -> str:
    return response.json()["error"]["errors"][0]["reason"]


# --- Consent: each permission can be unticked ---------------------------------------------------------


def consent_with(site: str, ticked: list[str] | None) -> tuple[str, str]:
    """Open the consent page the product sends a member to, tick only `ticked` (None: post the form
    as a script would, without the checkboxes) and Allow; the code and the verifier to exchange it."""
    verifier = "v" * 64
    url, params = provider.authorize_url(site + "/integrations/google/callback/")
    params.update(state="s-1", code_challenge=oauth.pkce_challenge(verifier), code_challenge_method="S256")
    session = requests.Session()
    page = session.get(url, params=params, timeout=10)
    csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
    form = {"csrfmiddlewaretoken": csrf, "email": GINA, "decision": "allow"}
    if ticked is not None:
        form.update(scope_choices="on", scope=ticked)
    answer = session.post(page.url, data=form, allow_redirects=False, timeout=10)
    assert answer.status_code == 302, answer.text
    code = re.search(r"[?&]code=([^&]+)", answer.headers["Location"]).group(1)
    return code, verifier


def test_the_consent_page_offers_each_permission_but_signing_in_ticked(google_sandbox):
    url, params = provider.authorize_url(google_sandbox + "/integrations/google/callback/")
    params.update(state="s-1", code_challenge=oauth.pkce_challenge("v" * 64), code_challenge_method="S256")

    page = requests.get(url, params=params, timeout=10).text

    boxes = re.findall(r'<input type="checkbox" id="id_scope_\d+" name="scope" value="([^"]+)" checked>', page)
    assert boxes == [f"{SCOPE}calendar.events", f"{SCOPE}calendar.calendarlist.readonly", f"{SCOPE}calendar.freebusy"]
    assert "See the list of Google calendars you&#x27;re subscribed to" in page


def test_unticking_calendar_access_grants_meetings_only_and_the_product_sees_it(google_sandbox):
    redirect = google_sandbox + "/integrations/google/callback/"
    code, verifier = consent_with(google_sandbox, [f"{SCOPE}calendar.events"])

    tokens = client.exchange_code(code=code, redirect_uri=redirect, verifier=verifier)

    assert tokens.scope.split() == ["openid", "email", f"{SCOPE}calendar.events"]
    assert not provider.grants_calendars(tokens.scope)
    code, verifier = consent_with(google_sandbox, None)  # a form without the checkboxes: everything
    assert provider.grants_calendars(client.exchange_code(code=code, redirect_uri=redirect, verifier=verifier).scope)


def test_unticking_the_events_permission_leaves_a_grant_the_product_refuses(google_sandbox):
    code, verifier = consent_with(google_sandbox, [f"{SCOPE}calendar.calendarlist.readonly"])

    with pytest.raises(PermissionNotGranted):
        client.exchange_code(
            code=code, redirect_uri=google_sandbox + "/integrations/google/callback/", verifier=verifier
        )


# --- The calendar list ---------------------------------------------------------------------------


def test_the_calendar_list_has_the_primary_calendar_first_and_the_ones_the_user_added(token):
    google.set_time_zone(GINA, "Europe/Berlin")
    holidays = google.add_calendar(GINA, "Team holidays", "America/New_York")
    shared = google.add_calendar(GINA, "Boss (shared)", access_role="reader")

    response = calendar_api("GET", "/users/me/calendarList", token)

    assert response.status_code == 200, response.text
    items = response.json()["items"]
    assert [item["id"] for item in items] == [GINA, shared, holidays]
    assert items[0]["primary"] is True and items[0]["summary"] == GINA
    assert (items[0]["accessRole"], items[0]["timeZone"]) == ("owner", "Europe/Berlin")
    assert "primary" not in items[2] and items[2]["summary"] == "Team holidays"
    assert items[2]["timeZone"] == "America/New_York" and holidays.endswith("@group.calendar.google.com")
    assert items[1]["accessRole"] == "reader"
    assert google.add_calendar(GINA, "Team holidays") == holidays  # the same name is the same calendar


def test_the_calendar_list_pages_and_filters_by_access_role(token):
    google.add_calendar(GINA, "Alpha")
    google.add_calendar(GINA, "Read only", access_role="reader")

    first = calendar_api("GET", "/users/me/calendarList", token, params={"maxResults": "2"}).json()
    second = calendar_api(
        "GET", "/users/me/calendarList", token, params={"maxResults": "2", "pageToken": first["nextPageToken"]}
    ).json()
    writable = calendar_api("GET", "/users/me/calendarList", token, params={"minAccessRole": "writer"}).json()

    assert [len(first["items"]), len(second["items"])] == [2, 1] and "nextSyncToken" in second
    assert {item["summary"] for item in writable["items"]} == {GINA, "Alpha"}


def test_each_call_needs_a_scope_google_documents_for_it():
    events_only = google.issue_tokens(GINA, EVENTS_ONLY)["access_token"]
    list_only = google.issue_tokens(GINA, f"{SCOPE}calendar.calendarlist.readonly")["access_token"]

    assert calendar_api("GET", "/users/me/calendarList", events_only).status_code == 403
    assert error_reason(free_busy(events_only, "primary")) == "insufficientPermissions"
    assert calendar_api("GET", events_path(), events_only, params=MAY).status_code == 200
    assert calendar_api("GET", "/users/me/calendarList", list_only).status_code == 200
    assert calendar_api("GET", events_path(), list_only, params=MAY).status_code == 403
    assert calendar_api("GET", "/users/me/calendarList", "not-a-token").status_code == 401


def test_another_users_calendar_is_unknown_and_a_read_only_one_refuses_writes(token):
    google.get_or_create_user("someone.else@acme.example")
    theirs = google.add_calendar("someone.else@acme.example", "Private")
    shared = google.add_calendar(GINA, "Boss (shared)", access_role="reader")
    event = {"start": {"dateTime": "2030-05-06T09:00:00Z"}, "end": {"dateTime": "2030-05-06T10:00:00Z"}}

    assert calendar_api("GET", events_path(theirs), token, params=MAY).status_code == 404
    refused = calendar_api("POST", events_path(shared), token, json=event)
    assert refused.status_code == 403 and error_reason(refused) == "requiredAccessLevel"
    assert calendar_api("GET", events_path(shared), token, params=MAY).status_code == 200


# --- Listing events: a window ----------------------------------------------------------------------


def test_a_window_lists_the_events_overlapping_it_by_start_and_deleted_ones_only_when_asked(token):
    before = google.add_event(GINA, at(30, 9, month=4), at(30, 10, month=4))
    across = google.add_event(GINA, at(30, 23, month=4), at(1, 1))
    inside = google.add_event(GINA, at(6, 9), at(6, 10), summary="Dentist")
    deleted = google.add_event(GINA, at(7, 9), at(7, 10))
    google.delete_event(GINA, deleted)

    body = listing(token, **MAY, orderBy="startTime")
    with_deleted = listing(token, **MAY, showDeleted="true")

    assert [item["id"] for item in body["items"]] == [across, inside]
    assert before not in {item["id"] for item in with_deleted["items"]}
    assert {item["id"]: item["status"] for item in with_deleted["items"]}[deleted] == "cancelled"
    assert body["timeZone"] == "UTC" and body["kind"] == "calendar#events" and "nextSyncToken" in body


def test_a_listing_comes_in_pages_and_only_the_last_has_the_sync_token(token):
    made = [google.add_event(GINA, at(day, 9), at(day, 10)) for day in range(2, 7)]

    items, sync_token = all_pages(token, **MAY, maxResults="2")

    assert [item["id"] for item in items] == made and sync_token


def test_fields_limit_the_answer_to_what_was_asked_so_titles_need_not_travel(token):
    google.add_event(GINA, at(6, 9), at(6, 10), summary="Therapy session")

    response = calendar_api(
        "GET", events_path(), token, params={**MAY, "fields": "items(id,start,extendedProperties/private),timeZone"}
    )

    assert response.status_code == 200 and "Therapy" not in response.text
    assert set(response.json()) == {"items", "timeZone"}
    assert set(response.json()["items"][0]) == {"id", "start"}
    bad = calendar_api("GET", events_path(), token, params={**MAY, "fields": "items(id"})
    assert bad.status_code == 400


def test_free_tentative_declined_and_private_properties_are_kept_as_written(token):
    body = {
        "start": {"dateTime": "2030-05-06T09:00:00+02:00"},
        "end": {"dateTime": "2030-05-06T10:00:00+02:00"},
        "transparency": "transparent",
        "status": "tentative",
        "attendees": [{"email": GINA, "responseStatus": "declined"}, {"email": "boss@acme.example"}],
        "extendedProperties": {"private": {"tspBooking": "booking-7-3"}},
    }

    created = calendar_api("POST", events_path(), token, json=body).json()

    assert (created["transparency"], created["status"]) == ("transparent", "tentative")
    assert created["attendees"][0] == {"email": GINA, "responseStatus": "declined", "self": True}
    assert "self" not in created["attendees"][1]
    assert created["extendedProperties"] == {"private": {"tspBooking": "booking-7-3"}}
    invalid = calendar_api("POST", events_path(), token, json={**body, "transparency": "maybe"})
    assert invalid.status_code == 400


# --- Listing events: sync tokens -----------------------------------------------------------------


def test_a_sync_token_gives_what_changed_since_and_deleted_events_as_cancelled(token):
    kept = google.add_event(GINA, at(6, 9), at(6, 10))
    moved = google.add_event(GINA, at(7, 9), at(7, 10))
    gone = google.add_event(GINA, at(8, 9), at(8, 10))
    _, sync_token = all_pages(token, **MAY)

    added = google.add_event(GINA, at(9, 9), at(9, 10))
    google.move_event(GINA, moved, at(7, 14), at(7, 15))
    google.delete_event(GINA, gone)
    changes, next_token = all_pages(token, syncToken=sync_token)

    assert {item["id"]: item["status"] for item in changes} == {
        added: "confirmed",
        moved: "confirmed",
        gone: "cancelled",
    }
    assert kept not in {item["id"] for item in changes}
    assert [item["start"]["dateTime"] for item in changes if item["id"] == moved] == ["2030-05-07T14:00:00+00:00"]
    assert all_pages(token, syncToken=next_token)[0] == []  # nothing new since


def test_a_sync_token_is_refused_beside_a_window_and_answers_410_once_google_drops_it(token):
    google.add_event(GINA, at(6, 9), at(6, 10))
    _, sync_token = all_pages(token, **MAY)

    combined = calendar_api("GET", events_path(), token, params={"syncToken": sync_token, **MAY})
    assert combined.status_code == 400

    assert google.expire_sync_tokens(GINA) == 1
    expired = calendar_api("GET", events_path(), token, params={"syncToken": sync_token})

    assert expired.status_code == 410
    assert expired.json()["error"]["code"] == 410 and error_reason(expired) == "fullSyncRequired"
    _, fresh = all_pages(token, **MAY)  # a full listing gives a token that works again
    assert calendar_api("GET", events_path(), token, params={"syncToken": fresh}).status_code == 200
    assert calendar_api("GET", events_path(), token, params={"syncToken": "garbage"}).status_code == 400


# --- Recurring and all-day events ----------------------------------------------------------------


def test_a_weekly_event_comes_as_instances_at_the_same_local_time_across_the_dst_change(token):
    google.set_time_zone(GINA, "Europe/Berlin")
    monday = datetime(2030, 3, 25, 9, tzinfo=ZoneInfo("Europe/Berlin"))
    series = google.add_event(
        GINA, monday, monday + timedelta(hours=1), recurrence=["RRULE:FREQ=WEEKLY;BYDAY=MO;COUNT=3"]
    )

    items = listing(token, timeMin="2030-03-01T00:00:00Z", timeMax="2030-05-01T00:00:00Z")["items"]
    as_series = listing(token, timeMin="2030-03-01T00:00:00Z", timeMax="2030-05-01T00:00:00Z", singleEvents="false")

    # 09:00 in Berlin is 08:00 UTC before the clocks change on 31 March and 07:00 UTC after.
    assert [item["id"] for item in items] == [
        f"{series}_20300325T080000Z",
        f"{series}_20300401T070000Z",
        f"{series}_20300408T070000Z",
    ]
    assert {item["recurringEventId"] for item in items} == {series}
    assert [item["start"]["dateTime"][11:] for item in items] == ["09:00:00+01:00", "09:00:00+02:00", "09:00:00+02:00"]
    assert [item["id"] for item in as_series["items"]] == [series]
    assert as_series["items"][0]["recurrence"] == ["RRULE:FREQ=WEEKLY;BYDAY=MO;COUNT=3"]


def test_a_changed_or_deleted_series_reports_its_instances_on_the_next_sync(token):
    series = google.add_event(GINA, at(6, 9), at(6, 10), recurrence=["RRULE:FREQ=DAILY;COUNT=3"])
    _, sync_token = all_pages(token, **MAY)

    google.move_event(GINA, series, at(6, 11), at(6, 12))
    moved, sync_token = all_pages(token, syncToken=sync_token)
    google.delete_event(GINA, series)
    deleted, _ = all_pages(token, syncToken=sync_token)

    old = {f"{series}_2030050{day}T090000Z" for day in (6, 7, 8)}
    new = {f"{series}_2030050{day}T110000Z" for day in (6, 7, 8)}
    assert {item["id"]: item["status"] for item in moved} == {
        **dict.fromkeys(old, "cancelled"),
        **dict.fromkeys(new, "confirmed"),
    }
    assert {item["id"] for item in deleted if item["status"] == "cancelled"} == new
    assert listing(token, **MAY)["items"] == []


def test_an_endless_rule_with_until_or_byday_is_expanded_only_within_the_window(token):
    daily = google.add_event(GINA, at(1, 8), at(1, 9), recurrence=["RRULE:FREQ=DAILY"])
    until = google.add_event(
        GINA, at(4, 12), at(4, 13), recurrence=["RRULE:FREQ=WEEKLY;BYDAY=TU,TH;UNTIL=20300510T000000Z"]
    )

    items = listing(token, timeMin="2030-05-05T00:00:00Z", timeMax="2030-05-12T00:00:00Z")["items"]

    assert sum(1 for item in items if item["recurringEventId"] == daily) == 7
    assert [item["start"]["dateTime"][:10] for item in items if item["recurringEventId"] == until] == [
        "2030-05-07",
        "2030-05-09",
    ]
    bad = {"start": {"dateTime": "2030-05-06T09:00:00Z", "timeZone": "UTC"}, "recurrence": ["RRULE:FREQ=SOMETIMES"]}
    refused = calendar_api("POST", events_path(), token, json={**bad, "end": {"dateTime": "2030-05-06T10:00:00Z"}})
    assert refused.status_code == 400


def test_an_all_day_event_has_dates_and_is_busy_from_midnight_to_midnight_in_the_calendars_zone(token):
    google.set_time_zone(GINA, "America/New_York")
    day_off = google.add_event(GINA, date(2030, 5, 6), date(2030, 5, 7), all_day=True)
    google.add_event(GINA, date(2030, 5, 8), date(2030, 5, 9), all_day=True, transparency="transparent")

    item = listing(token, **MAY)["items"][0]
    response = free_busy(token, "primary", start=at(5, 0), end=at(10, 0))

    assert item["id"] == day_off and item["start"] == {"date": "2030-05-06"} and item["end"] == {"date": "2030-05-07"}
    # Midnight in New York (EDT, UTC-4) is 04:00 UTC; the free one on the 8th is not busy.
    assert busy_of(response, "primary") == [("2030-05-06T04:00:00Z", "2030-05-07T04:00:00Z")]


# --- Free/busy -------------------------------------------------------------------------------------


def test_free_busy_merges_busy_time_and_leaves_out_free_tentative_and_declined_events(token):
    holidays = google.add_calendar(GINA, "Team holidays")
    google.add_event(GINA, at(6, 9), at(6, 10))
    google.add_event(GINA, at(6, 9, 30), at(6, 11))
    google.add_event(GINA, at(6, 12), at(6, 13), transparency="transparent")
    google.add_event(GINA, at(6, 13), at(6, 14), status="tentative")
    google.add_event(GINA, at(6, 14), at(6, 15), attendee_response="declined")
    google.add_event(GINA, at(6, 16), at(6, 17), calendar_id=holidays)
    google.add_event(GINA, at(6, 20), at(6, 22))  # cut at timeMax

    response = free_busy(token, "primary", holidays, "nobody@group.calendar.google.com", end=at(6, 21))

    assert busy_of(response, "primary") == [
        ("2030-05-06T09:00:00Z", "2030-05-06T11:00:00Z"),
        ("2030-05-06T20:00:00Z", "2030-05-06T21:00:00Z"),
    ]
    assert busy_of(response, holidays) == [("2030-05-06T16:00:00Z", "2030-05-06T17:00:00Z")]
    unknown = response.json()["calendars"]["nobody@group.calendar.google.com"]
    assert unknown["errors"] == [{"domain": "global", "reason": "notFound"}]
    assert free_busy(token, "primary", start=at(7, 0), end=at(6, 0)).status_code == 400


# --- Push channels ---------------------------------------------------------------------------------


def test_a_watch_channel_is_told_sync_at_once_and_then_of_every_change_with_googles_headers(token, receiver):
    response = watch(token, receiver, params={"ttl": "3600"})

    assert response.status_code == 200, response.text
    channel = response.json()
    assert channel["kind"] == "api#channel" and channel["id"] == "channel-1" and channel["resourceId"]
    expires = int(channel["expiration"]) / 1000 - google.now()
    assert 3590 < expires <= 3600
    google.wait_for_deliveries()
    google.add_event(GINA, at(6, 9), at(6, 10))
    assert google.wait_for_deliveries()

    assert [item["headers"]["X-Goog-Resource-State"] for item in RECEIVED] == ["sync", "exists"]
    headers = RECEIVED[1]["headers"]
    assert headers["X-Goog-Channel-Id"] == "channel-1" and headers["X-Goog-Channel-Token"] == "tok-123"
    assert headers["X-Goog-Resource-Id"] == channel["resourceId"]
    assert headers["X-Goog-Resource-Uri"] == channel["resourceUri"] and "/events" in channel["resourceUri"]
    assert headers["X-Goog-Message-Number"] == "2" and headers["X-Goog-Channel-Expiration"].endswith("GMT")
    assert RECEIVED[1]["body"] == b""
    assert [(item["resource_state"], item["status"]) for item in google.deliveries()] == [
        ("sync", 200),
        ("exists", 200),
    ]


def test_a_change_through_the_api_notifies_too_and_other_calendars_channels_hear_nothing(token, receiver):
    holidays = google.add_calendar(GINA, "Team holidays")
    watch(token, receiver, "primary-channel")
    watch(token, receiver, "holidays-channel", calendar_id=holidays)
    google.wait_for_deliveries()
    RECEIVED.clear()

    event = {"start": {"dateTime": "2030-05-06T09:00:00Z"}, "end": {"dateTime": "2030-05-06T10:00:00Z"}}
    assert calendar_api("POST", events_path(), token, json=event).status_code == 200
    google.wait_for_deliveries()

    assert [item["headers"]["X-Goog-Channel-Id"] for item in RECEIVED] == ["primary-channel"]


def test_a_channel_lasts_a_week_by_default_and_never_more_than_30_days(token, receiver):
    default = watch(token, receiver, "a").json()
    capped = watch(token, receiver, "b", params={"ttl": str(90 * 24 * 3600)}).json()

    assert round((int(default["expiration"]) / 1000 - google.now()) / 86400) == 7
    assert round((int(capped["expiration"]) / 1000 - google.now()) / 86400) == 30


def test_watch_refuses_a_foreign_address_a_reused_id_and_a_missing_type(token, receiver):
    foreign = watch(token, "https://attacker.example/hook")
    assert foreign.status_code == 400 and error_reason(foreign) == "push.webhookUrlUnauthorized"
    assert watch(token, receiver).status_code == 200
    assert error_reason(watch(token, receiver)) == "channelIdNotUnique"
    assert watch(token, receiver, "other", type="email").status_code == 400
    assert [channel["id"] for channel in google.channels()] == ["channel-1"]


def test_a_stopped_or_expired_channel_hears_nothing_more_and_stopping_twice_is_404(token, receiver):
    stopped = watch(token, receiver, "stopped").json()
    watch(token, receiver, "expiring")
    google.wait_for_deliveries()
    RECEIVED.clear()

    wrong = calendar_api("POST", "/channels/stop", token, json={"id": "stopped", "resourceId": "nope"})
    assert wrong.status_code == 404
    stop = {"id": "stopped", "resourceId": stopped["resourceId"]}
    assert calendar_api("POST", "/channels/stop", token, json=stop).status_code == 204
    assert calendar_api("POST", "/channels/stop", token, json=stop).status_code == 404
    assert google.expire_channels(GINA) == 1
    google.add_event(GINA, at(6, 9), at(6, 10))
    google.wait_for_deliveries()

    assert RECEIVED == []
    assert [(channel["id"], channel["expired"]) for channel in google.channels()] == [("expiring", True)]


# --- Errors ----------------------------------------------------------------------------------------


def test_injected_failures_reach_the_calendar_endpoints_and_an_expired_token_is_401(token):
    google.inject_failure("/events", method="GET", status=429, retry_after=7)
    google.inject_failure("/freeBusy", status=500)

    limited = calendar_api("GET", events_path(), token, params=MAY)
    broken = free_busy(token, "primary")
    google.expire_access_tokens(GINA)
    expired = calendar_api("GET", "/users/me/calendarList", token)

    assert limited.status_code == 429 and limited.headers["Retry-After"] == "7"
    assert error_reason(limited) == "rateLimitExceeded"
    assert broken.status_code == 500
    assert expired.status_code == 401 and "invalid_token" in expired.headers["WWW-Authenticate"]


# --- The controls ----------------------------------------------------------------------------------


def test_the_control_api_adds_calendars_and_events_and_expires_tokens_and_channels(google_sandbox):
    base = google_sandbox + "/sandbox/google/control"

    calendar = requests.post(
        f"{base}/calendars", json={"email": GINA, "name": "Travel", "time_zone": "Asia/Tokyo"}, timeout=10
    )
    event = requests.post(
        f"{base}/events",
        json={
            "email": GINA,
            "calendar_id": calendar.json()["id"],
            "start": "2030-05-06",
            "end": "2030-05-07",
            "all_day": True,
        },
        timeout=10,
    )
    bad = requests.post(f"{base}/events", json={"email": GINA, "start": "2030-05-06T10:00", "end": "x"}, timeout=10)
    expired = requests.post(f"{base}/expire-sync-tokens", json={}, timeout=10)

    assert calendar.status_code == 200 and event.status_code == 200, event.text
    assert [item["id"] for item in google.events_of(GINA, calendar.json()["id"])] == [event.json()["id"]]
    assert bad.status_code == 400 and google.events_of(GINA, "primary") == []
    assert expired.json() == {"expired_calendars": 2}
    assert requests.get(f"{base}/channels", timeout=10).json() == {"channels": [], "deliveries": []}
    deleted = requests.post(f"{base}/events/delete", json={"email": GINA, "event_id": event.json()["id"]}, timeout=10)
    assert deleted.status_code == 404  # not on the primary calendar: nothing deleted
    assert len(google.events_of(GINA)) == 1


def test_the_control_page_lists_calendars_and_adds_and_deletes_a_busy_event_in_the_calendars_zone(
    google_sandbox, receiver, token
):
    google.set_time_zone(GINA, "Europe/Berlin")
    watch(token, receiver)
    session = requests.Session()
    page = session.get(google_sandbox + "/sandbox/google/control/", timeout=10)
    assert page.status_code == 200 and "Europe/Berlin" in page.text and "No upcoming events." in page.text
    csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)

    added = session.post(
        google_sandbox + "/sandbox/google/control/page/add-event",
        data={
            "csrfmiddlewaretoken": csrf,
            "email": GINA,
            "calendar_id": GINA,
            "summary": "Board meeting",
            "date": "2030-07-01",
            "start_time": "09:00",
            "end_time": "10:30",
        },
        timeout=10,
    )
    google.wait_for_deliveries()

    assert added.status_code == 200 and "Board meeting" in added.text and "2030-07-01 09:00–10:30" in added.text
    [event] = google.events_of(GINA)
    assert event["start"] == {"dateTime": "2030-07-01T09:00:00+02:00", "timeZone": "Europe/Berlin"}
    assert RECEIVED[-1]["headers"]["X-Goog-Resource-State"] == "exists"
    deleted = session.post(
        google_sandbox + "/sandbox/google/control/page/delete-event",
        data={"csrfmiddlewaretoken": csrf, "email": GINA, "calendar_id": GINA, "event_id": event["id"]},
        timeout=10,
    )
    assert deleted.status_code == 200 and "Event deleted." in deleted.text and google.events_of(GINA) == []


def test_the_control_page_forms_refuse_bad_input_without_changing_anything(google_sandbox, token):
    session = requests.Session()
    page = session.get(google_sandbox + "/sandbox/google/control/", timeout=10)
    csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
    form = {"csrfmiddlewaretoken": csrf, "email": GINA, "calendar_id": GINA, "date": "2030-07-01"}

    backwards = session.post(
        google_sandbox + "/sandbox/google/control/page/add-event",
        data={**form, "start_time": "11:00", "end_time": "10:00"},
        timeout=10,
    )
    zone = session.post(
        google_sandbox + "/sandbox/google/control/page/add-calendar",
        data={"csrfmiddlewaretoken": csrf, "email": GINA, "name": "Elsewhere", "time_zone": "Mars/Olympus"},
        timeout=10,
    )
    without_csrf = requests.post(
        google_sandbox + "/sandbox/google/control/page/add-event",
        data={**form, "start_time": "09:00", "end_time": "10:00"},
        timeout=10,
    )

    assert "Event not added" in backwards.text and "Calendar not added" in zone.text
    assert without_csrf.status_code == 403
    assert google.events_of(GINA) == [] and len(google.calendars_of(GINA)) == 1


@pytest.mark.parametrize(
    "method, path",
    [
        ("post", "control/calendars"),
        ("post", "control/events"),
        ("post", "control/events/delete"),
        ("get", "control/channels"),
        ("post", "control/expire-channels"),
        ("post", "control/expire-sync-tokens"),
        ("post", "control/page/add-event"),
        ("post", "control/page/delete-event"),
        ("post", "control/page/add-calendar"),
    ],
)
def test_the_calendar_controls_refuse_anonymous_callers_from_the_network(client, token, method, path):
    event = google.add_event(GINA, at(6, 9), at(6, 10))
    data = {"email": GINA, "name": "Sneaky", "event_id": event, "start": "2030-05-07", "end": "2030-05-08"}

    response = getattr(client, method)(f"/sandbox/google/{path}", data=data, REMOTE_ADDR="203.0.113.9")

    assert response.status_code == 403
    assert [item["id"] for item in google.events_of(GINA)] == [event] and len(google.calendars_of(GINA)) == 1
