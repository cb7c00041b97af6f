"""Google's OAuth for web server apps and the Calendar API that makes Meet links, as documented
(shared/reference/providers.md). All HTTP goes through integrations.http.

A Meet link is the conference of an event we insert on the host's primary calendar. The event's
id is chosen by us, derived from the booking's request id: inserting it twice is refused with 409,
which is Google's own guarantee that a retried create never makes a second meeting.
"""

import hashlib
import re
from datetime import UTC, datetime

from django.conf import settings

from .. import http
from ..base import (
    Account,
    CannotHostMeetings,
    CreatedMeeting,
    MeetingRequest,
    PermissionNotGranted,
    ProviderResponseError,
    TokenSet,
)

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
        "scope": settings.GOOGLE_SCOPES,
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


def _events_url(event: str | None = None) -> str:
    url = f"{settings.GOOGLE_API_BASE_URL}/calendar/v3/calendars/{CALENDAR}/events"
    return f"{url}/{_checked_event_id(event)}" if event is not None else url


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


def _lookup(access_token: str, event: str) -> dict | str:
    """The live event with this id, or MISSING, or DELETED."""
    try:
        body = _calendar_request("GET", _events_url(event), access_token).body
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
        "conferenceData": {
            "createRequest": {
                "requestId": _conference_request_id(meeting.request_id, generation),
                "conferenceSolutionKey": {"type": "hangoutsMeet"},
            }
        },
    }
    try:
        return _calendar_request("POST", _events_url(), access_token, params=WRITE_PARAMS, json=body).body
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
            existing = _lookup(access_token, event_id(meeting.request_id, generation))
            if isinstance(existing, dict):
                return _created(existing)
            continue
        try:
            return _created(inserted)
        except CannotHostMeetings:
            # Don't leave a linkless event in the host's calendar for a call that moves elsewhere.
            _delete_quietly(access_token, str(inserted.get("id", "")))
            raise
    raise ProviderResponseError("every event id of this request is taken by a deleted event")


def _delete_quietly(access_token: str, meeting_id: str) -> None:
    try:
        delete_meeting(access_token, meeting_id)
    except (http.HTTPError, ValueError):
        pass  # the refusal to host is what matters; a leftover event without a link is harmless


def find_meeting(access_token: str, meeting: MeetingRequest) -> CreatedMeeting | None:
    """The meeting an earlier create of this request made, or None when it made none."""
    for generation in range(MAX_EVENT_GENERATIONS):
        existing = _lookup(access_token, event_id(meeting.request_id, generation))
        if existing == MISSING:
            return None
        if isinstance(existing, dict):
            return _created(existing)
    return None


def update_meeting(access_token: str, meeting_id: str, meeting: MeetingRequest) -> None:
    """Move the event; only its times change, so the Meet link stays. A 2xx means it moved; a
    404 or 410 (the host deleted it) reaches the caller, which makes a new one."""
    _calendar_request("PATCH", _events_url(meeting_id), access_token, params=WRITE_PARAMS, json=_times(meeting))


def delete_meeting(access_token: str, meeting_id: str) -> None:
    """Delete the event and its conference; one already deleted (410) or unknown (404) counts as done."""
    try:
        _calendar_request("DELETE", _events_url(meeting_id), access_token, params={"sendUpdates": "none"})
    except http.PermanentHTTPError as error:
        if error.status in (404, 410):
            return
        raise
