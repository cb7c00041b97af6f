"""Google's OAuth for web server apps and the Calendar API: Meet links, and the member's own
calendars (their list, busy time, push channels, free/busy, the bookings' events), as documented
(shared/reference/providers.md, the Calendar API v3 reference). All HTTP goes through
integrations.http.

A Meet link is the conference of an event we insert on the host's calendar. The event's id is
chosen by us, derived from the booking's request id: inserting it twice is refused with 409,
which is Google's own guarantee that a retried create never makes a second meeting. A booking's
plain calendar event is made the same way. Both carry the private extended property
`tspBooking`, so the busy-time sync knows them as ours (they count through the bookings already).
"""

import hashlib
import logging
import re
from datetime import UTC, date, datetime, time
from urllib.parse import quote
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

logger = logging.getLogger(__name__)

CALENDAR = "primary"
CALENDAR_SCOPE_PREFIX = "https://www.googleapis.com/auth/calendar"
EVENT_ID_PREFIX = "tsp"
EVENT_ID_LENGTH = 40
# An event id, once used on a calendar, stays taken after the event is deleted. When the event of a
# request is gone (the host deleted it by hand) a new attempt takes the next id in a fixed sequence,
# so every retry still walks to the same event.
MAX_EVENT_GENERATIONS = 5
# Google's event ids are base32hex: lowercase a-v and digits, 5 to 1024 characters.
EVENT_ID_PATTERN = re.compile(r"^[a-v0-9]{5,1024}$")
# Calendar says "slow down" with 429, and also with 403 and one of these reasons.
RATE_LIMIT_REASONS = {"rateLimitExceeded", "userRateLimitExceeded", "quotaExceeded"}
# Well inside what Google accepts, so that a long client note can't make the insert fail.
SUMMARY_LIMIT = 1024
DESCRIPTION_LIMIT = 8000
# The parameters of every write: make the conference, and let the product send its own invitations.
WRITE_PARAMS = {"conferenceDataVersion": "1", "sendUpdates": "none"}
# The private extended property that marks the events we write for bookings (Meet ones included).
BOOKING_PROPERTY = "tspBooking"
# A booking's plain event and its Meet event must never share an id on one calendar.
BOOKING_EVENT_SEED = "calendar-event:"
LOCATION_LIMIT = 1024
# What a busy-time listing asks for: when, whether it takes time, and whether it is ours. Titles,
# descriptions, attendees' addresses never reach us.
EVENT_FIELDS = (
    "items(id,status,transparency,start,end,attendees(self,responseStatus),extendedProperties/private),"
    "nextPageToken,nextSyncToken,timeZone"
)
CALENDAR_LIST_FIELDS = "items(id,summary,summaryOverride,primary,accessRole,timeZone),nextPageToken"
EVENTS_PAGE_SIZE = 2500  # Google's maximum
CALENDAR_LIST_PAGE_SIZE = 250  # Google's maximum
# A provider that keeps answering with a next page must not keep a worker forever.
MAX_PAGES = 200
WRITABLE_ROLES = {"owner", "writer"}


def _client_credentials() -> dict:
    # Google takes the client's credentials in the form body of token requests.
    return {"client_id": settings.GOOGLE_CLIENT_ID, "client_secret": settings.GOOGLE_CLIENT_SECRET}


def _bearer(access_token: str) -> dict:
    # In the header only: a token in a URL ends up in logs.
    return {"Authorization": f"Bearer {access_token}"}


# --- OAuth --------------------------------------------------------------------------------------


def authorize_url() -> str:
    return f"{settings.GOOGLE_OAUTH_BASE_URL}/o/oauth2/v2/auth"


def authorize_params(redirect_uri: str) -> dict:
    return {
        "response_type": "code",
        "client_id": settings.GOOGLE_CLIENT_ID,
        "redirect_uri": redirect_uri,
        # The meeting scopes and the calendars' (a member may untick the latter: meetings still work).
        "scope": " ".join(f"{settings.GOOGLE_SCOPES} {settings.GOOGLE_CALENDAR_SCOPES}".split()),
        # Without offline access Google issues no refresh token, and the link of a booking made
        # at night (the member asleep) could not be created.
        "access_type": "offline",
        # A member connecting again must get a new refresh token: Google sends one only on consent.
        "prompt": "consent",
        "include_granted_scopes": "true",
    }


def _expires_in(body: dict) -> int:
    try:
        return int(body.get("expires_in", 3599))
    except (TypeError, ValueError) as error:
        raise ProviderResponseError("Google's token response has a malformed expires_in") from error


def exchange_code(*, code: str, redirect_uri: str, verifier: str) -> TokenSet:
    body = http.request(
        "POST",
        settings.GOOGLE_TOKEN_URL,
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "code_verifier": verifier,
            **_client_credentials(),
        },
    ).body
    if not isinstance(body, dict) or not body.get("access_token") or not body.get("refresh_token"):
        # No refresh token means the grant is not offline: in an hour it would be useless.
        raise ProviderResponseError("Google's token response lacks access_token or refresh_token")
    tokens = TokenSet(
        access_token=str(body["access_token"]),
        refresh_token=str(body["refresh_token"]),
        expires_in=_expires_in(body),
        scope=str(body.get("scope", "")),
    )
    if body.get("scope") is not None and not _grants_calendar(tokens.scope):
        # Google's consent screen lets the member untick the calendar: such a connection could
        # never make a Meet link. End the grant rather than keep a card that says "connected".
        try:
            revoke(tokens.refresh_token)
        except http.HTTPError:
            pass  # the grant holds no calendar access anyway; the connect fails either way
        raise PermissionNotGranted("Google granted no access to the calendar")
    return tokens


def _grants_calendar(granted: str) -> bool:
    """Whether every calendar scope we asked for (GOOGLE_SCOPES) was granted."""
    wanted = {scope for scope in settings.GOOGLE_SCOPES.split() if scope.startswith(CALENDAR_SCOPE_PREFIX)}
    return wanted <= set(granted.split())


def refresh(refresh_token: str) -> TokenSet:
    """A new access token. Google's refresh tokens don't rotate: the answer normally has none, and
    the empty refresh_token returned then tells the caller to keep the stored one."""
    body = http.request(
        "POST",
        settings.GOOGLE_TOKEN_URL,
        data={"grant_type": "refresh_token", "refresh_token": refresh_token, **_client_credentials()},
    ).body
    if not isinstance(body, dict) or not body.get("access_token"):
        raise ProviderResponseError("Google's token response lacks access_token")
    return TokenSet(
        access_token=str(body["access_token"]),
        refresh_token=str(body.get("refresh_token") or ""),
        expires_in=_expires_in(body),
        scope=str(body.get("scope", "")),
    )


def is_broken_grant(error: http.PermanentHTTPError) -> bool:
    """Google refuses a revoked or expired refresh token (or one whose user changed their password)
    with 400 invalid_grant; invalid_client and the like are our configuration, not the member's."""
    return error.status == 400 and error.provider_code == "invalid_grant"


def revoke(token: str) -> None:
    """End the grant at Google. Revoking the refresh token revokes its access tokens with it.
    Google answers 400 invalid_token for a token it no longer knows: nothing is left to revoke."""
    try:
        http.request("POST", settings.GOOGLE_REVOKE_URL, data={"token": token})
    except http.PermanentHTTPError as error:
        if error.status == 400 and error.provider_code == "invalid_token":
            return
        raise


def get_account(access_token: str) -> Account:
    body = http.request("GET", settings.GOOGLE_USERINFO_URL, headers=_bearer(access_token)).body
    if not isinstance(body, dict) or not body.get("sub"):
        raise ProviderResponseError("Google's userinfo answer has no subject")
    return Account(
        user_id=str(body["sub"]),
        # The Workspace domain, when the account belongs to one; empty for a personal account.
        account_id=str(body.get("hd", "")),
        email=str(body.get("email", "")),
    )


# --- Calendar events carrying a Meet conference -------------------------------------------------


def event_id(request_id: str, generation: int = 0) -> str:
    """The id of the event we make for a request: always the same for the same request.

    Hex digits are a subset of base32hex, so a sha256 in lowercase hex is a valid Google id."""
    seed = request_id if generation == 0 else f"{request_id}#{generation}"
    return (EVENT_ID_PREFIX + hashlib.sha256(seed.encode()).hexdigest())[:EVENT_ID_LENGTH]


def _conference_request_id(request_id: str, generation: int) -> str:
    return request_id if generation == 0 else f"{request_id}#{generation}"


def _checked_event_id(value: str) -> str:
    # An id goes into a URL path: anything but base32hex would address another resource.
    if not EVENT_ID_PATTERN.match(str(value)):
        raise ValueError(f"not a Google event id: {value!r}")
    return str(value)


def _calendar_url(calendar_id: str) -> str:
    # Calendar ids hold "@" and "#" (team@group.calendar.google.com): quoted whole, "/" included.
    return f"{settings.GOOGLE_API_BASE_URL}/calendar/v3/calendars/{quote(calendar_id or CALENDAR, safe='')}"


def _events_url(event: str | None = None, calendar_id: str = CALENDAR) -> str:
    url = f"{_calendar_url(calendar_id)}/events"
    return f"{url}/{_checked_event_id(event)}" if event is not None else url


def _meeting_calendar(meeting: MeetingRequest) -> str:
    """The calendar a Meet event goes on: the host's booking calendar when the request names one."""
    return meeting.calendar_id or CALENDAR


def _utc(moment: datetime) -> str:
    # Always UTC with a Z; the host's zone goes beside it, for how the event reads in their calendar.
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _times(meeting: MeetingRequest) -> dict:
    return {
        "start": {"dateTime": _utc(meeting.start), "timeZone": meeting.time_zone},
        "end": {"dateTime": _utc(meeting.end), "timeZone": meeting.time_zone},
    }


def _error_reasons(error: http.HTTPError) -> set[str]:
    body = error.body
    if not isinstance(body, dict) or not isinstance(body.get("error"), dict):
        return set()
    details = body["error"].get("errors")
    if not isinstance(details, list):
        return set()
    return {str(item.get("reason")) for item in details if isinstance(item, dict)}


def _calendar_request(method: str, url: str, access_token: str, **kwargs) -> http.Response:
    """One Calendar call; Google's 403 "rate limit exceeded" is retried later, like a 429."""
    try:
        return http.request(method, url, headers=_bearer(access_token), **kwargs)
    except http.PermanentHTTPError as error:
        if error.status == 403 and _error_reasons(error) & RATE_LIMIT_REASONS:
            raise http.TransientHTTPError(str(error), status=error.status, body=error.body) from error
        raise


def _is_deleted(event: dict) -> bool:
    # Google may answer for a deleted event with the event itself, marked cancelled, or with 410.
    return event.get("status") == "cancelled"


def _video_uri(conference: dict) -> str:
    for entry in conference.get("entryPoints") or []:
        if isinstance(entry, dict) and entry.get("entryPointType") == "video" and entry.get("uri"):
            return str(entry["uri"])
    return ""


def _conference_status(conference: dict) -> str:
    create_request = conference.get("createRequest")
    if isinstance(create_request, dict) and isinstance(create_request.get("status"), dict):
        return str(create_request["status"].get("statusCode", ""))
    return ""


def _created(event) -> CreatedMeeting:
    """Our meeting, read from its event. A conference Google is still making is worth asking
    again later; one Google refused means this account can't host Meet calls."""
    if not isinstance(event, dict) or not event.get("id"):
        raise ProviderResponseError("Google's event has no id")
    conference = event.get("conferenceData") if isinstance(event.get("conferenceData"), dict) else {}
    join_url = str(event.get("hangoutLink") or _video_uri(conference))
    if not join_url:
        status = _conference_status(conference)
        if status == "pending":
            # The event exists and its link is on the way: "may have been made" (sent), so the
            # caller looks it up later with find_meeting instead of inserting again.
            raise http.TransientHTTPError("Google is still creating the Meet conference", sent=True)
        if status == "failure":
            raise CannotHostMeetings("Google did not create a Meet conference for this account")
        raise ProviderResponseError("Google's event has no Meet link")
    return CreatedMeeting(
        meeting_id=str(event["id"]),
        external_ref=str(conference.get("conferenceId", "")),
        join_url=join_url,
        passcode="",  # Meet links need none
    )


MISSING = "missing"  # Google never had an event with this id
DELETED = "deleted"  # it had one; the id stays taken


def _lookup(access_token: str, event: str, calendar_id: str = CALENDAR) -> dict | str:
    """The live event with this id, or MISSING, or DELETED."""
    try:
        body = _calendar_request("GET", _events_url(event, calendar_id), access_token).body
    except http.PermanentHTTPError as error:
        if error.status == 404:
            return MISSING
        if error.status == 410:
            return DELETED
        raise
    if not isinstance(body, dict):
        raise ProviderResponseError("Google's event is not an object")
    return DELETED if _is_deleted(body) else body


def _insert(access_token: str, meeting: MeetingRequest, generation: int) -> dict | None:
    """Insert the event of this generation; None when its id is already taken."""
    body = {
        "id": event_id(meeting.request_id, generation),
        "summary": meeting.topic[:SUMMARY_LIMIT],
        "description": meeting.agenda[:DESCRIPTION_LIMIT],
        **_times(meeting),
        # Ours: the busy-time sync must not count the booking twice.
        "extendedProperties": {"private": {BOOKING_PROPERTY: meeting.request_id}},
        "conferenceData": {
            "createRequest": {
                "requestId": _conference_request_id(meeting.request_id, generation),
                "conferenceSolutionKey": {"type": "hangoutsMeet"},
            }
        },
    }
    try:
        url = _events_url(calendar_id=_meeting_calendar(meeting))
        return _calendar_request("POST", url, access_token, params=WRITE_PARAMS, json=body).body
    except http.PermanentHTTPError as error:
        if error.status == 409:
            return None
        raise


def create_meeting(access_token: str, meeting: MeetingRequest) -> CreatedMeeting:
    """Insert the request's event with a Meet conference, or adopt the one an earlier try made."""
    for generation in range(MAX_EVENT_GENERATIONS):
        inserted = _insert(access_token, meeting, generation)
        if inserted is None:
            # 409: an earlier try made this event. Adopt it, unless it has since been deleted.
            existing = _lookup(access_token, event_id(meeting.request_id, generation), _meeting_calendar(meeting))
            if isinstance(existing, dict):
                return _created(existing)
            continue
        try:
            return _created(inserted)
        except CannotHostMeetings:
            # Don't leave a linkless event in the host's calendar for a call that moves elsewhere.
            _delete_quietly(access_token, str(inserted.get("id", "")), _meeting_calendar(meeting))
            raise
    raise ProviderResponseError("every event id of this request is taken by a deleted event")


def _delete_quietly(access_token: str, meeting_id: str, calendar_id: str) -> None:
    try:
        delete_meeting(access_token, meeting_id, calendar_id)
    except (http.HTTPError, ValueError):
        pass  # the refusal to host is what matters; a leftover event without a link is harmless


def find_meeting(access_token: str, meeting: MeetingRequest) -> CreatedMeeting | None:
    """The meeting an earlier create of this request made, or None when it made none."""
    for generation in range(MAX_EVENT_GENERATIONS):
        existing = _lookup(access_token, event_id(meeting.request_id, generation), _meeting_calendar(meeting))
        if existing == MISSING:
            return None
        if isinstance(existing, dict):
            return _created(existing)
    return None


def update_meeting(access_token: str, meeting_id: str, meeting: MeetingRequest) -> None:
    """Move the event; only its times change, so the Meet link stays. A 2xx means it moved; a
    404 or 410 (the host deleted it) reaches the caller, which makes a new one."""
    url = _events_url(meeting_id, _meeting_calendar(meeting))
    _calendar_request("PATCH", url, access_token, params=WRITE_PARAMS, json=_times(meeting))


def delete_meeting(access_token: str, meeting_id: str, calendar_id: str = CALENDAR) -> None:
    """Delete the event and its conference; one already deleted (410) or unknown (404) counts as done."""
    try:
        url = _events_url(meeting_id, calendar_id)
        _calendar_request("DELETE", url, access_token, params={"sendUpdates": "none"})
    except http.PermanentHTTPError as error:
        if error.status in (404, 410):
            return
        raise


# --- The member's calendars -------------------------------------------------------------------


def _object(body, what: str) -> dict:
    if not isinstance(body, dict):
        raise ProviderResponseError(f"Google's {what} is not an object")
    return body


def _items(body: dict, what: str) -> list:
    items = body.get("items", [])
    if not isinstance(items, list):
        raise ProviderResponseError(f"Google's {what} has no list of items")
    return items


def _next_page(body: dict, what: str) -> str:
    value = body.get("nextPageToken") or ""
    if not isinstance(value, str):
        raise ProviderResponseError(f"Google's {what} has a malformed nextPageToken")
    return value


def _calendar_info(item) -> CalendarInfo:
    if not isinstance(item, dict) or not isinstance(item.get("id"), str) or not item["id"]:
        raise ProviderResponseError("Google's calendar list has an entry without an id")
    name = item.get("summaryOverride") or item.get("summary") or item["id"]
    return CalendarInfo(
        external_id=item["id"],
        name=str(name)[:255],
        is_primary=item.get("primary") is True,
        can_write=item.get("accessRole") in WRITABLE_ROLES,
        time_zone=str(item.get("timeZone") or ""),
    )


def list_calendars(access_token: str) -> list[CalendarInfo]:
    """The calendars in the member's calendar list that they can at least read."""
    url = f"{settings.GOOGLE_API_BASE_URL}/calendar/v3/users/me/calendarList"
    params = {"minAccessRole": "reader", "maxResults": str(CALENDAR_LIST_PAGE_SIZE), "fields": CALENDAR_LIST_FIELDS}
    calendars, page = [], ""
    for _ in range(MAX_PAGES):
        query = {**params, "pageToken": page} if page else params
        body = _object(_calendar_request("GET", url, access_token, params=query).body, "calendar list")
        calendars.extend(_calendar_info(item) for item in _items(body, "calendar list"))
        page = _next_page(body, "calendar list")
        if not page:
            return calendars
    raise ProviderResponseError("Google's calendar list never ends")


def _zone(*names: str) -> ZoneInfo:
    """The first of these zones that exists: a calendar's own, then the host's; UTC at worst."""
    for name in names:
        if name:
            try:
                return ZoneInfo(name)
            except (ZoneInfoNotFoundError, ValueError):
                continue
    return ZoneInfo("UTC")


def _takes_time(item: dict) -> bool:
    """Google's own free/busy rule: a cancelled, tentative or "free" (transparent) event takes no
    time, nor one the member declined or answered "maybe" as an attendee."""
    if item.get("status") in ("cancelled", "tentative") or item.get("transparency") == "transparent":
        return False
    attendees = item.get("attendees") if isinstance(item.get("attendees"), list) else []
    mine = [person for person in attendees if isinstance(person, dict) and person.get("self") is True]
    return not any(person.get("responseStatus") in ("declined", "tentative") for person in mine)


def _is_ours(item: dict) -> bool:
    properties = item.get("extendedProperties")
    private = properties.get("private") if isinstance(properties, dict) else None
    return isinstance(private, dict) and BOOKING_PROPERTY in private


def _moment(value, zone: ZoneInfo, what: str) -> datetime:
    """An event's start or end in UTC: a dateTime carries its offset; an all-day date counts from
    midnight in the calendar's zone (DST included: a day may last 23 or 25 hours)."""
    if isinstance(value, dict) and isinstance(value.get("dateTime"), str):
        try:
            moment = datetime.fromisoformat(value["dateTime"].replace("Z", "+00:00"))
        except ValueError:
            moment = None
        if moment is not None:
            if moment.tzinfo is None:  # Google always sends an offset; a zone name is the fallback
                moment = moment.replace(tzinfo=_zone(str(value.get("timeZone") or ""), zone.key))
            return moment.astimezone(UTC)
    if isinstance(value, dict) and isinstance(value.get("date"), str):
        try:
            day = date.fromisoformat(value["date"])
        except ValueError:
            day = None
        if day is not None:
            return datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)
    raise ProviderResponseError(f"Google's event has a malformed {what}")


def _busy_period(item: dict, zone: ZoneInfo, start: datetime, end: datetime) -> BusyPeriod | None:
    """The event's busy time within [start, end), or None when it takes none there."""
    if not _takes_time(item) or _is_ours(item):
        return None
    first, last = _moment(item.get("start"), zone, "start"), _moment(item.get("end"), zone, "end")
    if last <= start or first >= end or last <= first:
        return None
    return BusyPeriod(event_id=item["id"], start=first, end=last)


def calendar_changes(
    access_token: str, calendar: CalendarInfo, *, cursor: str, start: datetime, end: datetime, host_time_zone: str
) -> CalendarChanges:
    """events.list with recurring events as their instances: the whole window (no cursor), or
    what changed since the cursor (Google's syncToken, which can't be combined with a window).
    Busy periods outside the window come as freed: they take no time the product looks at."""
    url = f"{_calendar_url(calendar.external_id)}/events"
    params = {"singleEvents": "true", "maxResults": str(EVENTS_PAGE_SIZE), "fields": EVENT_FIELDS}
    if cursor:
        params["syncToken"] = cursor
    else:
        params.update(timeMin=_utc(start), timeMax=_utc(end), showDeleted="false")
    busy: dict[str, BusyPeriod] = {}
    freed: dict[str, None] = {}  # ordered, without repeats
    page = ""
    for _ in range(MAX_PAGES):
        query = {**params, "pageToken": page} if page else params
        try:
            body = _object(_calendar_request("GET", url, access_token, params=query).body, "event list")
        except http.PermanentHTTPError as error:
            if cursor and error.status == 410:  # fullSyncRequired
                raise SyncCursorExpired("Google no longer knows the sync token") from error
            raise
        zone = _zone(str(body.get("timeZone") or ""), calendar.time_zone, host_time_zone)
        for item in _items(body, "event list"):
            if not isinstance(item, dict) or not isinstance(item.get("id"), str) or not item["id"]:
                raise ProviderResponseError("Google's event list has an event without an id")
            period = _busy_period(item, zone, start, end)
            # A later page may speak of the same event again: the last word counts.
            busy.pop(item["id"], None)
            freed.pop(item["id"], None)
            if period is None:
                freed[item["id"]] = None
            else:
                busy[item["id"]] = period
        page = _next_page(body, "event list")
        if not page:
            next_cursor = body.get("nextSyncToken")
            if not isinstance(next_cursor, str) or not next_cursor:
                raise ProviderResponseError("Google's event list ends without a nextSyncToken")
            return CalendarChanges(
                busy=tuple(busy.values()), freed=tuple(freed), cursor=next_cursor, complete=not cursor
            )
    raise ProviderResponseError("Google's event list never ends")


def _channel(body, *, channel_id: str) -> PushChannel:
    body = _object(body, "channel")
    resource_id, expiration = body.get("resourceId"), body.get("expiration")
    if body.get("id") != channel_id or not isinstance(resource_id, str) or not resource_id:
        raise ProviderResponseError("Google's channel lacks its id or resourceId")
    try:
        expires_at = datetime.fromtimestamp(int(expiration) / 1000, UTC)  # milliseconds, as a string
    except (TypeError, ValueError, OverflowError) as error:
        raise ProviderResponseError("Google's channel has a malformed expiration") from error
    return PushChannel(channel_id=channel_id, resource_id=resource_id, expires_at=expires_at)


def watch_calendar(
    access_token: str, calendar_id: str, *, address: str, channel_id: str, token: str, expires_at: datetime
) -> PushChannel:
    """events.watch: Google POSTs to `address` after every change of the calendar's events,
    with `token` in X-Goog-Channel-Token. Google may shorten the time asked for."""
    seconds = max(1, int((expires_at - datetime.now(UTC)).total_seconds()))
    body = {"id": channel_id, "type": "web_hook", "address": address, "token": token, "params": {"ttl": str(seconds)}}
    url = f"{_calendar_url(calendar_id)}/events/watch"
    return _channel(_calendar_request("POST", url, access_token, json=body).body, channel_id=channel_id)


def stop_watch(access_token: str, channel: PushChannel) -> None:
    """channels.stop; a channel Google no longer knows (404: stopped, or expired) counts as stopped."""
    url = f"{settings.GOOGLE_API_BASE_URL}/calendar/v3/channels/stop"
    try:
        _calendar_request("POST", url, access_token, json={"id": channel.channel_id, "resourceId": channel.resource_id})
    except http.PermanentHTTPError as error:
        if error.status == 404:
            return
        raise


def renew_watch(
    access_token: str,
    calendar_id: str,
    channel: PushChannel,
    *,
    address: str,
    new_channel_id: str,
    token: str,
    expires_at: datetime,
) -> PushChannel:
    """Google channels can't be extended: watch with a new channel, then stop the old one. The new
    one works whatever happens to the old, which stops by itself at its expiration anyway."""
    renewed = watch_calendar(
        access_token, calendar_id, address=address, channel_id=new_channel_id, token=token, expires_at=expires_at
    )
    try:
        stop_watch(access_token, channel)
    except http.HTTPError as error:
        logger.warning("Google: the replaced push channel could not be stopped (%s)", error.__class__.__name__)
    return renewed


def free_busy(
    access_token: str, calendar_ids: list[str], *, start: datetime, end: datetime, timeout: float
) -> list[tuple[datetime, datetime]]:
    """freebusy.query over these calendars: their busy periods in [start, end), merged, in UTC.
    A calendar Google answers with errors (unknown, not shared) makes the whole answer unusable."""
    url = f"{settings.GOOGLE_API_BASE_URL}/calendar/v3/freeBusy"
    body = {"timeMin": _utc(start), "timeMax": _utc(end), "items": [{"id": item} for item in calendar_ids]}
    answer = _object(_calendar_request("POST", url, access_token, json=body, timeout=timeout).body, "free/busy")
    calendars = answer.get("calendars")
    if not isinstance(calendars, dict):
        raise ProviderResponseError("Google's free/busy answer has no calendars")
    periods = []
    for calendar_id in calendar_ids:
        entry = calendars.get(calendar_id)
        if not isinstance(entry, dict) or entry.get("errors") or not isinstance(entry.get("busy", []), list):
            raise ProviderResponseError("Google could not tell the free/busy time of a calendar")
        for span in entry.get("busy", []):
            utc = ZoneInfo("UTC")
            first, last = (_moment({"dateTime": (span or {}).get(key)}, utc, "busy period") for key in ("start", "end"))
            if last > first:
                periods.append((first, last))
    merged: list[tuple[datetime, datetime]] = []
    for first, last in sorted(periods):
        if merged and first <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], last))
        else:
            merged.append((first, last))
    return merged


def _event_body(event: CalendarEvent) -> dict:
    return {
        "summary": event.summary[:SUMMARY_LIMIT],
        "description": event.description[:DESCRIPTION_LIMIT],
        "location": event.location[:LOCATION_LIMIT],
        "start": {"dateTime": _utc(event.start), "timeZone": event.time_zone},
        "end": {"dateTime": _utc(event.end), "timeZone": event.time_zone},
    }


def booking_event_id(request_id: str, generation: int = 0) -> str:
    """The id of a booking's plain event: derived like a Meet event's, from another seed."""
    return event_id(BOOKING_EVENT_SEED + request_id, generation)


def create_event(access_token: str, calendar_id: str, event: CalendarEvent) -> str:
    """Insert the booking's event under an id derived from its request id; a retry gets 409 and
    adopts the event the earlier try made. An event of the request the host has deleted since
    keeps its id taken: the next id of the sequence is used, as for Meet events."""
    body = {
        **_event_body(event),
        "transparency": "opaque",
        "reminders": {"useDefault": True},
        "extendedProperties": {"private": {BOOKING_PROPERTY: event.request_id}},
    }
    url = _events_url(calendar_id=calendar_id)
    for generation in range(MAX_EVENT_GENERATIONS):
        chosen = booking_event_id(event.request_id, generation)
        try:
            created = _calendar_request(
                "POST", url, access_token, params={"sendUpdates": "none"}, json={**body, "id": chosen}
            )
        except http.PermanentHTTPError as error:
            if error.status != 409:
                raise
            existing = _lookup(access_token, chosen, calendar_id)
            if isinstance(existing, dict):
                return chosen
            continue  # deleted since: its id stays taken
        created_id = _object(created.body, "event").get("id")
        if created_id != chosen:
            raise ProviderResponseError("Google's event has another id than the one asked for")
        return chosen
    raise ProviderResponseError("every event id of this request is taken by a deleted event")


def update_event(access_token: str, calendar_id: str, event_id: str, event: CalendarEvent) -> None:
    """Move and rewrite the booking's event; a 404 or 410 (the host deleted it) reaches the caller."""
    url = _events_url(event_id, calendar_id)
    _calendar_request("PATCH", url, access_token, params={"sendUpdates": "none"}, json=_event_body(event))


def delete_event(access_token: str, calendar_id: str, event_id: str) -> None:
    """Delete the booking's event; one already deleted (410) or unknown (404) counts as done."""
    try:
        _calendar_request("DELETE", _events_url(event_id, calendar_id), access_token, params={"sendUpdates": "none"})
    except http.PermanentHTTPError as error:
        if error.status in (404, 410):
            return
        raise
