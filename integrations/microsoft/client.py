"""Microsoft's identity platform (v2, with PKCE) and Microsoft Graph's online meetings and calendars,
as documented (shared/reference/providers.md). HTTP via integrations.http.

Microsoft's refresh tokens rotate (every refresh spends the old one), so `refresh` must only run under
the connection's row lock (integrations/tokens.py). There is no endpoint to revoke one authorization:
disconnecting deletes our tokens and the member removes the app in their Microsoft account.
"""

import base64
import binascii
import json
import re
from datetime import UTC, datetime, time, timedelta
from urllib.parse import quote, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.conf import settings

from .. import http
from ..base import (
    Account,
    BusyPeriod,
    CalendarChanges,
    CalendarEvent,
    CalendarInfo,
    CannotHostMeetings,
    CreatedMeeting,
    MeetingRequest,
    PermissionNotGranted,
    ProviderResponseError,
    PushChannel,
    SyncCursorExpired,
    TokenSet,
)

# The tenant id Microsoft gives every personal (consumer) account in its ID tokens. Such accounts
# can't host Teams meetings; knowing it at connect time lets the card say so before any booking.
CONSUMER_TENANT_ID = "9188040d-6c67-4c5b-b112-36a304b66dad"

# The permission Teams meetings need. Microsoft may write granted scopes with Graph's resource prefix
# and in any letter case, so both are ignored when comparing.
MEETINGS_SCOPE = "onlinemeetings.readwrite"
GRAPH_RESOURCE = "https://graph.microsoft.com/"

# Outlook and Teams cut subjects at 255 characters; a longer one is refused or shortened unpredictably.
SUBJECT_LIMIT = 255


def _bearer(access_token: str) -> dict:
    # The header only: a token in a URL ends up in logs.
    return {"Authorization": f"Bearer {access_token}"}


def authorize_url() -> str:
    return f"{settings.MICROSOFT_OAUTH_BASE_URL}/oauth2/v2.0/authorize"


def token_url() -> str:
    return f"{settings.MICROSOFT_OAUTH_BASE_URL}/oauth2/v2.0/token"


def requested_scopes() -> str:
    """What a connect asks for: the meeting scopes and the calendar scopes, each once. Asking for
    both every time is also how an older connection without calendars gets them (incremental
    consent: the consent page only shows what was not granted yet)."""
    names = f"{settings.MICROSOFT_SCOPES} {settings.MICROSOFT_CALENDAR_SCOPES}".split()
    return " ".join(dict.fromkeys(names))


def scope_names(scope: str) -> set[str]:
    """Granted scopes as Graph compares them: without the resource prefix, in any letter case."""
    return {name.lower().removeprefix(GRAPH_RESOURCE) for name in scope.split()}


def authorize_params(redirect_uri: str) -> dict:
    """The consent request, without state and PKCE (the shared flow adds those)."""
    return {
        "response_type": "code",
        "client_id": settings.MICROSOFT_CLIENT_ID,
        "redirect_uri": redirect_uri,
        "scope": requested_scopes(),
        # The code in the query string, as our callback reads it (the default for a code flow, said
        # aloud so a changed default can't move it into a fragment we never see).
        "response_mode": "query",
        # A member signed in to several Microsoft accounts chooses which one hosts their meetings,
        # instead of the browser's current one being connected silently.
        "prompt": "select_account",
    }


def _token_set(body, *, refresh_required: bool) -> TokenSet:
    if not isinstance(body, dict) or not body.get("access_token"):
        raise ProviderResponseError("Microsoft's token response has no access_token")
    if refresh_required and not body.get("refresh_token"):
        # Without a refresh token the connection would die within the hour.
        raise ProviderResponseError(
            "Microsoft's token response has no refresh_token (is offline_access in the scopes?)"
        )
    try:
        expires_in = int(body.get("expires_in", 3599))
    except (TypeError, ValueError) as error:
        raise ProviderResponseError("Microsoft's token response has a malformed expires_in") from error
    return TokenSet(
        access_token=str(body["access_token"]),
        refresh_token=str(body.get("refresh_token") or ""),
        expires_in=expires_in,
        scope=str(body.get("scope", "")),
        id_token=str(body.get("id_token") or ""),
    )


def _token_request(form: dict, *, scope: str) -> dict:
    # Microsoft takes the client's credentials in the form body (client_secret_post).
    data = {
        "client_id": settings.MICROSOFT_CLIENT_ID,
        "client_secret": settings.MICROSOFT_CLIENT_SECRET,
        "scope": scope,
        **form,
    }
    return http.request("POST", token_url(), data=data).body


def exchange_code(*, code: str, redirect_uri: str, verifier: str) -> tuple[TokenSet, bool]:
    """The tokens for an authorization code, and whether the account is a personal one."""
    body = _token_request(
        {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri, "code_verifier": verifier},
        scope=requested_scopes(),
    )
    tokens = _token_set(body, refresh_required=True)
    granted = scope_names(tokens.scope)
    # An answer without a scope list says nothing either way; one without the meetings permission
    # (consent given to fewer permissions than asked) could never make a link.
    if granted and MEETINGS_SCOPE not in granted:
        raise PermissionNotGranted("Microsoft's grant lacks OnlineMeetings.ReadWrite")
    return tokens, is_personal_account(body.get("id_token"))


def refresh(refresh_token: str) -> TokenSet:
    """A new access token and (Microsoft rotates them) a new refresh token; the old one is spent."""
    # Only the meeting scopes: asking a refresh for a permission the member never granted (an older
    # connection without calendars) fails with invalid_grant and would break the connection, while
    # the access token Microsoft issues carries every Graph permission the member did grant.
    body = _token_request(
        {"grant_type": "refresh_token", "refresh_token": refresh_token}, scope=settings.MICROSOFT_SCOPES
    )
    # Microsoft always sends a new one; should it not, the stored one is kept rather than lost.
    return _token_set(body, refresh_required=False)


def is_personal_account(id_token) -> bool:
    """Whether an ID token names Microsoft's consumer tenant. Its signature is not checked: it came
    to us straight from Microsoft's token endpoint over TLS, which OpenID Connect accepts as proof,
    and it only decides a hint on the card (a 403 when creating a meeting is the final word)."""
    if not isinstance(id_token, str) or id_token.count(".") != 2:
        return False
    payload = id_token.split(".")[1]
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (binascii.Error, ValueError):
        return False
    return isinstance(claims, dict) and claims.get("tid") == CONSUMER_TENANT_ID


def get_account(access_token: str, *, personal: bool = False) -> Account:
    """Who connected: Graph's user id and the address to show on the card (`mail`, or the sign-in
    name for accounts without a mailbox address). Nothing else of the profile is asked for."""
    body = http.request(
        "GET",
        f"{settings.MICROSOFT_API_BASE_URL}/me",
        headers=_bearer(access_token),
        params={"$select": "id,mail,userPrincipalName"},
    ).body
    if not isinstance(body, dict) or not body.get("id"):
        raise ProviderResponseError("Microsoft Graph's /me answer has no user id")
    return Account(
        user_id=str(body["id"]),
        account_id="",
        email=str(body.get("mail") or body.get("userPrincipalName") or ""),
        can_host_meetings=not personal,
    )


def _graph_time(moment: datetime) -> str:
    # Always UTC with a Z: a local time read as UTC is how meetings end up at the wrong hour.
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _times(meeting: MeetingRequest) -> dict:
    # Start and end always travel together: Graph checks one against the other.
    return {"startDateTime": _graph_time(meeting.start), "endDateTime": _graph_time(meeting.end)}


def _meeting_url(meeting_id: str) -> str:
    # Graph's ids are long opaque strings: quoted whole, so no id can reach another resource.
    if not meeting_id:
        raise ValueError("no Teams meeting id")
    return f"{settings.MICROSOFT_API_BASE_URL}/me/onlineMeetings/{quote(str(meeting_id), safe='')}"


def create_meeting(access_token: str, meeting: MeetingRequest) -> CreatedMeeting:
    """A Teams meeting on the account's own organizer. A personal account (or one whose organization
    doesn't let it create Teams meetings) is refused with 403: CannotHostMeetings."""
    try:
        response = http.request(
            "POST",
            f"{settings.MICROSOFT_API_BASE_URL}/me/onlineMeetings",
            headers=_bearer(access_token),
            json={**_times(meeting), "subject": meeting.topic[:SUBJECT_LIMIT]},
        )
    except http.PermanentHTTPError as error:
        if error.status == 403:
            raise CannotHostMeetings(f"Microsoft refused to create a Teams meeting ({error.provider_code})") from error
        raise
    return _created(response.body)


def _created(data) -> CreatedMeeting:
    if not isinstance(data, dict) or not data.get("id") or not isinstance(data["id"], str):
        raise ProviderResponseError("Microsoft's online meeting has no id")
    join_url = data.get("joinWebUrl")
    if not isinstance(join_url, str) or not join_url.startswith("https://"):
        raise ProviderResponseError("Microsoft's online meeting has no https joinWebUrl")
    join_settings = data.get("joinMeetingIdSettings")
    if not isinstance(join_settings, dict):
        join_settings = {}  # Graph may send null: no dial-in id, no passcode
    return CreatedMeeting(
        meeting_id=data["id"],
        external_ref=str(join_settings.get("joinMeetingId") or ""),
        join_url=join_url,
        passcode=str(join_settings.get("passcode") or ""),
    )


def update_meeting(access_token: str, meeting_id: str, meeting: MeetingRequest) -> None:
    """Move the meeting; its join link stays the same."""
    http.request("PATCH", _meeting_url(meeting_id), headers=_bearer(access_token), json=_times(meeting))


def delete_meeting(access_token: str, meeting_id: str) -> None:
    """Delete a meeting; one that no longer exists (404) counts as deleted."""
    try:
        http.request("DELETE", _meeting_url(meeting_id), headers=_bearer(access_token))
    except http.PermanentHTTPError as error:
        if error.status == 404:
            return
        raise


# --- Calendars ---------------------------------------------------------------------------------

# What Graph sends a page at most in a calendar listing (its default is 10: a year of a busy
# calendar would take hundreds of round trips).
PAGE_SIZE = 200
# Pages followed at most in one listing: a provider that keeps sending nextLinks can't hold a worker.
MAX_PAGES = 500
# Graph's showAs values that take the time; tentative, free, workingElsewhere and unknown don't.
BUSY_SHOW_AS = ("busy", "oof")
# The error codes Graph answers an unknown or expired delta token with (besides HTTP 410).
EXPIRED_SYNC_CODES = ("syncstatenotfound", "resyncrequired", "syncstateinvalid")
# Our own events carry transactionId "tsp-<request id>" (create_event): they count through the
# bookings already, never a second time as busy time.
OWN_EVENT_PREFIX = "tsp-"
# getSchedule reports these as taking the time.
SCHEDULE_BUSY = ("busy", "oof")
SCHEDULE_INTERVAL_MINUTES = 15
# Graph sends up to 7 fractional digits; Python's parser takes 6.
_FRACTION = re.compile(r"(\.\d{6})\d+")


def _api(path: str) -> str:
    return f"{settings.MICROSOFT_API_BASE_URL}{path}"


def _segment(value: str, what: str) -> str:
    # Graph's ids are long opaque strings: quoted whole, so no id can reach another resource.
    if not value:
        raise ValueError(f"no {what}")
    return quote(str(value), safe="")


def _trusted_link(url) -> str:
    """A nextLink or deltaLink from Graph, only if it points into the Graph API we are configured
    with: we send the member's token with it, so it must never lead anywhere else."""
    if not isinstance(url, str):
        raise ProviderResponseError("Microsoft Graph sent a link that is not a string")
    given, base = urlsplit(url), urlsplit(settings.MICROSOFT_API_BASE_URL)
    if (given.scheme, given.netloc) != (base.scheme, base.netloc) or not given.path.startswith(base.path + "/"):
        raise ProviderResponseError("Microsoft Graph sent a link outside its API; not followed")
    return url


def _pages(access_token: str, url: str, *, params: dict | None = None, headers: dict | None = None):
    """Each page's JSON of a Graph collection, following @odata.nextLink."""
    for _ in range(MAX_PAGES):
        body = http.request("GET", url, headers={**(headers or {}), **_bearer(access_token)}, params=params).body
        if not isinstance(body, dict) or not isinstance(body.get("value"), list):
            raise ProviderResponseError("Microsoft Graph's collection has no value list")
        yield body
        if not body.get("@odata.nextLink"):
            return
        url, params = _trusted_link(body["@odata.nextLink"]), None  # the link carries the query
    raise ProviderResponseError(f"Microsoft Graph's collection went on past {MAX_PAGES} pages")


def list_calendars(access_token: str) -> list[CalendarInfo]:
    """The account's calendars: its own and those shared with it (canEdit false when read-only)."""
    calendars = []
    params = {"$select": "id,name,isDefaultCalendar,canEdit", "$top": 100}
    for page in _pages(access_token, _api("/me/calendars"), params=params):
        for item in page["value"]:
            if not isinstance(item, dict) or not isinstance(item.get("id"), str) or not item["id"]:
                raise ProviderResponseError("Microsoft Graph sent a calendar without an id")
            calendars.append(
                CalendarInfo(
                    external_id=item["id"],
                    name=str(item.get("name") or ""),
                    is_primary=item.get("isDefaultCalendar") is True,
                    can_write=item.get("canEdit") is not False,
                    time_zone="",  # Outlook calendars have no zone of their own
                )
            )
    return calendars


def _zone(name, fallback: str):
    """Graph's timeZone: UTC or an IANA name with the Prefer header; a Windows name ("W. Europe
    Standard Time") can still come for events made elsewhere, and then the host's zone is the best
    guess there is."""
    if name in (None, "", "UTC", "tzone://Microsoft/Utc"):
        return UTC
    try:
        return ZoneInfo(str(name))
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo(fallback)


def _moment(value, *, host_time_zone: str) -> datetime:
    """A Graph dateTimeTimeZone ({dateTime, timeZone}) as an aware UTC datetime."""
    if not isinstance(value, dict) or not isinstance(value.get("dateTime"), str):
        raise ProviderResponseError("Microsoft Graph sent an event time without dateTime")
    try:
        moment = datetime.fromisoformat(_FRACTION.sub(r"\1", value["dateTime"]).replace("Z", "+00:00"))
    except ValueError as error:
        raise ProviderResponseError("Microsoft Graph sent an unreadable dateTime") from error
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=_zone(value.get("timeZone"), host_time_zone))
    return moment.astimezone(UTC)


def _all_day(item: dict, host_time_zone: str) -> tuple[datetime, datetime]:
    # Outlook's all-day events are floating dates: midnight to midnight wherever the member is.
    zone = ZoneInfo(host_time_zone)
    first, last = (_date_of(item.get(key)) for key in ("start", "end"))
    start = datetime.combine(first, time(), zone).astimezone(UTC)
    end = datetime.combine(max(last, first + timedelta(days=1)), time(), zone).astimezone(UTC)
    return start, end


def _date_of(value):
    if not isinstance(value, dict) or not isinstance(value.get("dateTime"), str):
        raise ProviderResponseError("Microsoft Graph sent an all-day event without a date")
    try:
        return datetime.fromisoformat(value["dateTime"][:10]).date()
    except ValueError as error:
        raise ProviderResponseError("Microsoft Graph sent an unreadable all-day date") from error


def _busy_period(item: dict, host_time_zone: str) -> BusyPeriod | None:
    """The time an event takes, or None when it takes none (free, tentative, cancelled, ours)."""
    if item.get("isCancelled") is True or item.get("showAs") not in BUSY_SHOW_AS:
        return None
    if str(item.get("transactionId") or "").startswith(OWN_EVENT_PREFIX):
        return None
    if item.get("isAllDay") is True:
        start, end = _all_day(item, host_time_zone)
    else:
        start = _moment(item.get("start"), host_time_zone=host_time_zone)
        end = _moment(item.get("end"), host_time_zone=host_time_zone)
    if end <= start:
        return None
    return BusyPeriod(event_id=item["id"], start=start, end=end)


def calendar_changes(
    access_token: str, calendar_id: str, *, cursor: str, start: datetime, end: datetime, host_time_zone: str
) -> CalendarChanges:
    """calendarView delta: with no cursor, every event and occurrence of [start, end) and a
    deltaLink; with a deltaLink, what changed since. SyncCursorExpired when Graph no longer knows it."""
    if cursor:
        try:
            url, params = _trusted_link(cursor), None
        except ProviderResponseError as error:
            # A cursor from another Graph than the configured one (the setting changed since): never
            # sent our token there; a full listing starts over.
            raise SyncCursorExpired("the stored deltaLink is not one of the configured Graph") from error
    else:
        url = _api(f"/me/calendars/{_segment(calendar_id, 'calendar id')}/calendarView/delta")
        params = {"startDateTime": _graph_time(start), "endDateTime": _graph_time(end)}
    # UTC times whatever the mailbox's zone, and big pages.
    headers = {"Prefer": f'outlook.timezone="UTC", odata.maxpagesize={PAGE_SIZE}'}
    # By event id, the last word wins: a later page may name an event again.
    found: dict[str, BusyPeriod | None] = {}
    delta_link = None
    try:
        for page in _pages(access_token, url, params=params, headers=headers):
            for item in page["value"]:
                if not isinstance(item, dict) or not isinstance(item.get("id"), str) or not item["id"]:
                    raise ProviderResponseError("Microsoft Graph sent an event without an id")
                if "@removed" in item:
                    found[item["id"]] = None
                elif item.get("type") != "seriesMaster":  # its occurrences come as their own items
                    found[item["id"]] = _busy_period(item, host_time_zone)
            delta_link = page.get("@odata.deltaLink")
    except http.PermanentHTTPError as error:
        if error.status == 410 or str(error.provider_code or "").lower() in EXPIRED_SYNC_CODES:
            raise SyncCursorExpired(str(error)) from error
        raise
    if not delta_link:
        raise ProviderResponseError("Microsoft Graph's delta ended without a deltaLink")
    return CalendarChanges(
        busy=tuple(period for period in found.values() if period is not None),
        freed=tuple(event_id for event_id, period in found.items() if period is None),
        cursor=_trusted_link(delta_link),
        complete=not cursor,
    )


def _subscription(body) -> PushChannel:
    if not isinstance(body, dict) or not isinstance(body.get("id"), str) or not body["id"]:
        raise ProviderResponseError("Microsoft Graph's subscription has no id")
    return PushChannel(
        channel_id=body["id"],
        resource_id="",
        expires_at=_moment({"dateTime": str(body.get("expirationDateTime") or "")}, host_time_zone="UTC"),
    )


def watch_calendar(
    access_token: str, calendar_id: str, *, address: str, token: str, expires_at: datetime
) -> PushChannel:
    """A change-notification subscription on the calendar's events. Graph first POSTs a
    validationToken to `address`, which must echo it, before it answers us; `token` comes back as
    clientState in every notification."""
    body = {
        "changeType": "created,updated,deleted",
        "notificationUrl": address,
        "resource": f"me/calendars/{_segment(calendar_id, 'calendar id')}/events",
        "expirationDateTime": _graph_time(expires_at),
        "clientState": token,
    }
    response = http.request("POST", _api("/subscriptions"), headers=_bearer(access_token), json=body)
    return _subscription(response.body)


def renew_watch(
    access_token: str, calendar_id: str, channel: PushChannel, *, address: str, token: str, expires_at: datetime
) -> PushChannel:
    """The same subscription with a later expiry; one Graph no longer knows (it lapsed) is made anew."""
    url = _api(f"/subscriptions/{_segment(channel.channel_id, 'subscription id')}")
    try:
        response = http.request(
            "PATCH", url, headers=_bearer(access_token), json={"expirationDateTime": _graph_time(expires_at)}
        )
    except http.PermanentHTTPError as error:
        if error.status != 404:
            raise
        return watch_calendar(access_token, calendar_id, address=address, token=token, expires_at=expires_at)
    return _subscription(response.body)


def stop_watch(access_token: str, channel: PushChannel) -> None:
    """Delete the subscription; one Graph no longer knows (404) counts as deleted."""
    url = _api(f"/subscriptions/{_segment(channel.channel_id, 'subscription id')}")
    try:
        http.request("DELETE", url, headers=_bearer(access_token))
    except http.PermanentHTTPError as error:
        if error.status != 404:
            raise


def free_busy(
    access_token: str, *, start: datetime, end: datetime, account_email: str, timeout: float
) -> list[tuple[datetime, datetime]]:
    """The account's busy and out-of-office periods in [start, end), asked live. getSchedule reads
    the account's default calendar only (the one Outlook's scheduling assistant shows), whichever
    calendars the member chose: the cached busy time covers the others."""
    if not account_email:
        raise ValueError("getSchedule needs the account's email address")
    body = {
        "schedules": [account_email],
        "startTime": {"dateTime": _graph_local(start), "timeZone": "UTC"},
        "endTime": {"dateTime": _graph_local(end), "timeZone": "UTC"},
        "availabilityViewInterval": SCHEDULE_INTERVAL_MINUTES,
    }
    response = http.request(
        "POST", _api("/me/calendar/getSchedule"), headers=_bearer(access_token), json=body, timeout=timeout
    )
    schedules = response.body.get("value") if isinstance(response.body, dict) else None
    if not isinstance(schedules, list):
        raise ProviderResponseError("Microsoft Graph's getSchedule answer has no value list")
    periods = []
    for schedule in schedules:
        if not isinstance(schedule, dict):
            raise ProviderResponseError("Microsoft Graph's getSchedule sent a schedule that is not an object")
        if schedule.get("error"):
            # The mailbox could not be read: saying "free" would be a guess.
            raise ProviderResponseError("Microsoft Graph's getSchedule could not read the schedule")
        for item in schedule.get("scheduleItems") or []:
            if isinstance(item, dict) and item.get("status") in SCHEDULE_BUSY:
                period = (
                    _moment(item.get("start"), host_time_zone="UTC"),
                    _moment(item.get("end"), host_time_zone="UTC"),
                )
                if period[1] > start and period[0] < end:
                    periods.append(period)
    return periods


def _graph_local(moment: datetime) -> str:
    # A dateTimeTimeZone's dateTime: the wall time without offset, its zone given beside it.
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")


def _event_body(event: CalendarEvent) -> dict:
    return {
        "subject": event.summary[:SUBJECT_LIMIT],
        "body": {"contentType": "text", "content": event.description},
        "start": {"dateTime": _graph_local(event.start), "timeZone": "UTC"},
        "end": {"dateTime": _graph_local(event.end), "timeZone": "UTC"},
        "location": {"displayName": event.location},
        "showAs": "busy",
    }


def create_event(access_token: str, calendar_id: str, event: CalendarEvent) -> str:
    """Write the event and return its id. Graph keeps one event per transactionId: a retried POST
    after a timeout answers with the event the first one made instead of a second."""
    if not event.request_id:
        raise ValueError("an event needs its request id")
    url = _api(f"/me/calendars/{_segment(calendar_id, 'calendar id')}/events")
    body = {**_event_body(event), "transactionId": OWN_EVENT_PREFIX + event.request_id}
    data = http.request("POST", url, headers=_bearer(access_token), json=body).body
    if not isinstance(data, dict) or not isinstance(data.get("id"), str) or not data["id"]:
        raise ProviderResponseError("Microsoft Graph's event has no id")
    return data["id"]


def update_event(access_token: str, calendar_id: str, event_id: str, event: CalendarEvent) -> None:
    url = _api(f"/me/events/{_segment(event_id, 'event id')}")
    http.request("PATCH", url, headers=_bearer(access_token), json=_event_body(event))


def delete_event(access_token: str, calendar_id: str, event_id: str) -> None:
    """Delete the event; one that no longer exists (404) counts as deleted."""
    try:
        http.request("DELETE", _api(f"/me/events/{_segment(event_id, 'event id')}"), headers=_bearer(access_token))
    except http.PermanentHTTPError as error:
        if error.status != 404:
            raise
