"""The Google sandbox: a local fake of Google's OAuth (web server flow) and of the Calendar API
that makes Meet links, for tests and the demo.

It follows shared/reference/providers.md: refresh tokens don't rotate (a refresh answers without
one, and the same refresh token keeps working); only access_type=offline gets a refresh token;
PKCE (S256) is required; revoking either token ends the whole grant; a Meet link is made only
for an event written with conferenceDataVersion=1 and a createRequest; a client-chosen event id
is taken for good, also after the event is deleted (409); a deleted event answers 410, an
unknown one 404. Errors are Google's JSON: {"error": {"code", "message", "status", "errors"}}.

Paths (under /sandbox/google, the base of every GOOGLE_*_URL setting in the sandbox):
o/oauth2/v2/auth, token, revoke, v1/userinfo, calendar/v3/calendars/{calendarId}/events[/{eventId}].

Events live in calendars (`Calendar`), each owned by a user; for now a user has only the primary
calendar, whose id is their email. Deleted events stay in their calendar with status "cancelled",
which is also what a later events.list with showDeleted or a syncToken would return.
"""

import copy
import re
import secrets
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.http import HttpResponse, JsonResponse

from .common import (
    ACCESS_TOKEN_TTL_SECONDS,
    ProviderSandbox,
    SandboxError,
    SandboxState,
    SandboxUser,
    iso_z,
    unsigned_jwt,
)

DEFAULT_EMAIL = "google.user@example.com"
MEET_HOST = "https://meet.google.sandbox.invalid"  # .invalid: a link from the sandbox can never reach anything
CALENDAR_HOST = "https://calendar.google.sandbox.invalid"
ISSUER = "https://accounts.google.com"
CALENDAR_SCOPES = {"https://www.googleapis.com/auth/calendar", "https://www.googleapis.com/auth/calendar.events"}
# Addresses on these domains are personal Google accounts: userinfo names no Workspace domain (hd).
CONSUMER_DOMAINS = {"gmail.com", "googlemail.com"}
EVENT_ID_PATTERN = re.compile(r"^[a-v0-9]{5,1024}$")  # base32hex, as Google requires of chosen ids
BASE32HEX = "0123456789abcdefghijklmnopqrstuv"
SEND_UPDATES_VALUES = {"all", "externalOnly", "none"}
INVALID_GRANT = "Token has been expired or revoked."

# Google's status name and error reason for each HTTP status it answers with.
STATUS_NAMES = {
    400: ("INVALID_ARGUMENT", "badRequest"),
    401: ("UNAUTHENTICATED", "authError"),
    403: ("PERMISSION_DENIED", "forbidden"),
    404: ("NOT_FOUND", "notFound"),
    405: ("METHOD_NOT_ALLOWED", "httpMethodNotAllowed"),
    409: ("ALREADY_EXISTS", "duplicate"),
    410: ("NOT_FOUND", "deleted"),
    429: ("RESOURCE_EXHAUSTED", "rateLimitExceeded"),
    500: ("INTERNAL", "backendError"),
    503: ("UNAVAILABLE", "backendError"),
}


# --- The provider ------------------------------------------------------------------------------


@dataclass
class Calendar:
    id: str
    owner_id: str  # the sandbox user whose calendar it is
    time_zone: str = "UTC"
    events: dict[str, dict] = field(default_factory=dict)  # by event id, as Google returns them
    # The sendUpdates parameter of each write of an event, in order ("" when it was not given).
    send_updates: dict[str, list[str]] = field(default_factory=dict)


class GoogleState(SandboxState):
    def __init__(self):
        super().__init__()
        self.calendars: dict[str, Calendar] = {}  # by calendar id


class GoogleSandbox(ProviderSandbox):
    name = "google"
    title = "Google"
    brand_mark = "G"
    settings_prefix = "GOOGLE"
    default_email = DEFAULT_EMAIL
    account_label = "Sandbox Google account (email)"
    pkce_required = True
    state_class = GoogleState
    items_label = "Events"
    rate_limit_message = "Rate Limit Exceeded"

    def now(self) -> float:
        return now()  # the module's function, looked up at call time: tests may monkeypatch it

    def user_id(self, digest: bytes) -> str:
        # Google's subject is a decimal number of 21 digits.
        return str(10**20 + int.from_bytes(digest[:8]) % (9 * 10**20))

    def user_json(self, user: SandboxUser) -> dict:
        info = {
            "sub": user.id,
            "email": user.email,
            "email_verified": True,
            "name": user.display_name,
            "given_name": user.first_name,
            "family_name": user.last_name,
        }
        domain = user.email.rpartition("@")[2]
        if domain not in CONSUMER_DOMAINS:
            info["hd"] = domain  # the Workspace domain, as Google names it for Workspace accounts
        return info

    def error_body(self, status: int, message: str) -> dict:
        return google_error_body(status, message)

    def authorize_problem(self, params) -> str | None:
        problem = super().authorize_problem(params)
        if problem:
            return problem
        if not params.get("scope", "").strip():
            return "Missing required parameter: scope."
        if not params.get("state"):
            return "Missing state: the sandbox insists on it, as a flow without one can be forged."
        return None

    def wants_refresh_token(self, params) -> bool:
        # Google issues a refresh token only to apps that ask for offline access.
        return params.get("access_type") == "offline"

    def user_summary_locked(self, state: GoogleState, user: SandboxUser, moment: float) -> dict:
        return {**super().user_summary_locked(state, user, moment), "events": self.items_of_locked(state, user)}

    def items_of_locked(self, state: GoogleState, user: SandboxUser) -> int:
        return sum(
            1
            for calendar in state.calendars.values()
            if calendar.owner_id == user.id
            for event in calendar.events.values()
            if event["status"] != "cancelled"
        )

    def extra_summary_locked(self, state: GoogleState, moment: float) -> dict:
        events = [
            _event_summary(calendar, event)
            for calendar in state.calendars.values()
            for event in calendar.events.values()
        ]
        return {
            "grants": _grant_summaries_locked(state, moment),
            "events": events,
            "conference_request_ids": [
                event["conference_request_id"] for event in events if event["conference_request_id"]
            ],
        }


SANDBOX = GoogleSandbox()


def now() -> float:
    """Sandbox time, epoch seconds: decides token and code expiry."""
    return SANDBOX.clock_time()


def google_error_body(status: int, message: str, reason: str | None = None) -> dict:
    status_name, default_reason = STATUS_NAMES.get(status, ("UNKNOWN", "unknown"))
    details = {"domain": "global", "reason": reason or default_reason, "message": message}
    return {"error": {"code": status, "message": message, "status": status_name, "errors": [details]}}


def api_error(status: int, message: str, reason: str | None = None, headers: dict | None = None) -> SandboxError:
    return SandboxError(status, google_error_body(status, message, reason), headers)


def oauth_error(status: int, error: str, description: str) -> SandboxError:
    return SandboxError(status, {"error": error, "error_description": description})


# --- Python helpers for tests ------------------------------------------------------------------

reset = SANDBOX.reset
advance_clock = SANDBOX.advance_clock
get_or_create_user = SANDBOX.get_or_create_user
expire_access_tokens = SANDBOX.expire_access_tokens
inject_failure = SANDBOX.inject_failure
state_summary = SANDBOX.state_summary
revoke_grant = SANDBOX.revoke_grant


def issue_tokens(email: str = DEFAULT_EMAIL, scope: str | None = None, *, offline: bool = True) -> dict:
    """A new grant for this user, as if they had just allowed the app (with offline access unless
    `offline` is false). Returns the token endpoint's JSON. Earlier grants stay valid, as at Google.
    A shortcut for tests that need a connected account but not the consent page."""
    scope = SANDBOX.normalized_scope(scope)
    with SANDBOX.lock as state:
        user = SANDBOX.user_for_email_locked(state, email)
        access, refresh = SANDBOX.issue_tokens_locked(
            state, user.id, SANDBOX.client_id, scope, with_refresh_token=offline
        )
    return _token_body(user, access, refresh, scope)


def get_event(event_id: str, calendar_id: str | None = None) -> dict | None:
    """A copy of the event (also a deleted one, with status "cancelled"), from the calendar with
    this id or from any calendar; None if no calendar has it."""
    with SANDBOX.lock as state:
        for calendar in state.calendars.values():
            if calendar_id in (None, calendar.id) and event_id in calendar.events:
                return copy.deepcopy(calendar.events[event_id])
    return None


# --- OAuth: token, revoke, userinfo ------------------------------------------------------------


def _token_body(user: SandboxUser, access: str, refresh: str | None, scope: str) -> dict:
    body = {
        "access_token": access,
        "expires_in": ACCESS_TOKEN_TTL_SECONDS,
        "token_type": "Bearer",
        "scope": scope,
        "id_token": _id_token(user),
    }
    if refresh is not None:
        body["refresh_token"] = refresh
    return body


def _id_token(user: SandboxUser) -> str:
    issued = int(now())
    return unsigned_jwt(
        {
            "iss": ISSUER,
            "aud": SANDBOX.client_id,
            "sub": user.id,
            "email": user.email,
            "email_verified": True,
            "iat": issued,
            "exp": issued + ACCESS_TOKEN_TTL_SECONDS,
        }
    )


def _authenticated_client(request) -> str:
    """Google takes the client's credentials in the form body, or as `Authorization: Basic`."""
    client_id, secret = SANDBOX.client_credentials(request, in_body=True)
    if not SANDBOX.client_is_ours(client_id, secret):
        raise oauth_error(401, "invalid_client", "The OAuth client was not found.")
    return client_id


def _exchange_code(request, client_id: str) -> JsonResponse:
    value, redirect_uri = request.POST.get("code"), request.POST.get("redirect_uri")
    if not value or not redirect_uri:
        raise oauth_error(400, "invalid_request", "Missing required parameter: code or redirect_uri.")
    with SANDBOX.lock as state:
        code = SANDBOX.take_code_locked(
            state, value, client_id=client_id, redirect_uri=redirect_uri, verifier=request.POST.get("code_verifier")
        )
        if code is None:
            raise oauth_error(400, "invalid_grant", "Bad Request")
        # Earlier grants of the same user stay valid: Google keeps several refresh tokens per app.
        access, refresh = SANDBOX.issue_tokens_locked(
            state, code.user_id, client_id, code.scope, with_refresh_token=code.with_refresh_token
        )
        user = state.users[code.user_id]
    return JsonResponse(_token_body(user, access, refresh, code.scope))


def _refresh(request, client_id: str) -> JsonResponse:
    value = request.POST.get("refresh_token")
    if not value:
        raise oauth_error(400, "invalid_request", "Missing required parameter: refresh_token.")
    with SANDBOX.lock as state:
        grant = state.refresh_tokens.get(value)
        if grant is None or grant.client_id != client_id:
            raise oauth_error(400, "invalid_grant", INVALID_GRANT)
        # Not rotating: the refresh token stays as it is, and the answer carries none.
        access, _ = SANDBOX.issue_tokens_locked(state, grant.user_id, client_id, grant.scope, with_refresh_token=False)
        user = state.users[grant.user_id]
    return JsonResponse(_token_body(user, access, None, grant.scope))


@SANDBOX.endpoint("POST")
def token(request):
    client_id = _authenticated_client(request)
    grant_type = request.POST.get("grant_type")
    if grant_type == "authorization_code":
        return _exchange_code(request, client_id)
    if grant_type == "refresh_token":
        return _refresh(request, client_id)
    raise oauth_error(400, "unsupported_grant_type", f"Invalid grant_type: {grant_type or ''}")


@SANDBOX.endpoint("POST")
def revoke(request):
    """Revoking an access or a refresh token ends the grant it belongs to: every token of that
    user for this app. Google asks no client authentication here."""
    value = request.POST.get("token")
    if not value:
        raise oauth_error(400, "invalid_request", "Missing required parameter: token.")
    with SANDBOX.lock as state:
        grant = state.access_tokens.get(value) or state.refresh_tokens.get(value)
        if grant is None:
            raise oauth_error(400, "invalid_token", "Token expired or revoked")
        SANDBOX.revoke_locked(state, grant.user_id, grant.client_id)
    return JsonResponse({})


def _authenticate(request, accepted_scopes: set[str] | None = None) -> SandboxUser:
    """The user of the bearer token, if it is valid (and carries one of `accepted_scopes`, if given)."""
    invalid = api_error(
        401,
        "Request had invalid authentication credentials. Expected OAuth 2 access token.",
        headers={"WWW-Authenticate": 'Bearer realm="https://accounts.google.com/", error="invalid_token"'},
    )
    value = SANDBOX.bearer_value(request)
    if value is None:
        raise invalid
    with SANDBOX.lock as state:
        grant = state.access_tokens.get(value)
        if grant is None or grant.expires_at <= now():
            raise invalid
        user = state.users[grant.user_id]
    if accepted_scopes is not None and not set(grant.scope.split()) & accepted_scopes:
        raise api_error(403, "Request had insufficient authentication scopes.", "insufficientPermissions")
    return user


@SANDBOX.endpoint("GET")
def userinfo(request):
    return JsonResponse(SANDBOX.user_json(_authenticate(request)))


# --- Calendar: validation ----------------------------------------------------------------------


def _parse_moment(value: dict | None, name: str) -> datetime:
    """An event's start or end ({dateTime, timeZone}) as an aware datetime. Raises Google's 400."""
    if not isinstance(value, dict) or "dateTime" not in value:
        raise api_error(400, f"Missing {name} time.", "required")
    zone_name = value.get("timeZone")
    zone = None
    if zone_name is not None:
        try:
            zone = ZoneInfo(zone_name) if isinstance(zone_name, str) and zone_name else None
        except (ZoneInfoNotFoundError, ValueError):
            zone = None
        if zone is None:
            raise api_error(400, f"Invalid time zone definition for {name} time.", "invalid")
    try:
        moment = datetime.fromisoformat(str(value["dateTime"]))
    except ValueError:
        raise api_error(400, f"Invalid {name} time.", "invalid") from None
    if moment.tzinfo is None:
        if zone is None:
            raise api_error(400, f"Missing time zone definition for {name} time.", "required")
        moment = moment.replace(tzinfo=zone)
    return moment


def _checked_times(start: dict, end: dict) -> None:
    if _parse_moment(end, "end") <= _parse_moment(start, "start"):
        raise api_error(400, "The specified time range is empty.", "timeRangeEmpty")


def _time_field(value: dict) -> dict:
    return {key: value[key] for key in ("dateTime", "timeZone") if key in value}


def _text_field(body: dict, name: str) -> str | None:
    if name not in body:
        return None
    if not isinstance(body[name], str):
        raise api_error(400, f"Invalid value for: {name} is not a string.", "invalid")
    return body[name]


def _conference_version(request) -> int:
    value = request.GET.get("conferenceDataVersion") or "0"
    if value not in {"0", "1"}:
        raise api_error(400, "Invalid conferenceDataVersion value: it must be 0 or 1.", "invalid")
    return int(value)


def _send_updates(request) -> str:
    value = request.GET.get("sendUpdates", "")
    if value and value not in SEND_UPDATES_VALUES:
        raise api_error(400, "Invalid sendUpdates value.", "invalid")
    return value


def _create_request(body: dict) -> dict | None:
    """The conference createRequest of an event body, checked; None without one."""
    conference = body.get("conferenceData")
    if not isinstance(conference, dict) or "createRequest" not in conference:
        return None
    create = conference["createRequest"]
    if not isinstance(create, dict) or not isinstance(create.get("requestId"), str) or not create["requestId"]:
        raise api_error(400, "Invalid conference create request: requestId is required.", "invalid")
    key = create.get("conferenceSolutionKey")
    if not isinstance(key, dict) or key.get("type") != "hangoutsMeet":
        raise api_error(400, "Invalid conference type value.", "invalid")
    return create


# --- Calendar: events --------------------------------------------------------------------------


def _calendar_locked(state: GoogleState, user: SandboxUser, calendar_id: str) -> Calendar:
    """The user's calendar by id ("primary" or their email); another's is as unknown as none (404)."""
    if calendar_id in ("primary", user.email):
        calendar = state.calendars.get(user.email)
        if calendar is None:
            calendar = state.calendars[user.email] = Calendar(id=user.email, owner_id=user.id)
        return calendar
    calendar = state.calendars.get(calendar_id)
    if calendar is None or calendar.owner_id != user.id:
        raise api_error(404, "Not Found")
    return calendar


def _live_event_locked(calendar: Calendar, event_id: str) -> dict:
    event = calendar.events.get(event_id)
    if event is None:
        raise api_error(404, "Not Found")
    if event["status"] == "cancelled":
        raise api_error(410, "Resource has been deleted", "deleted")
    return event


def _random_event_id() -> str:
    return "".join(secrets.choice(BASE32HEX) for _ in range(26))


def _conference(create: dict) -> dict:
    code = "-".join("".join(secrets.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(n)) for n in (3, 4, 3))
    uri = f"{MEET_HOST}/{code}"
    return {
        "createRequest": {
            "requestId": create["requestId"],
            "conferenceSolutionKey": {"type": "hangoutsMeet"},
            "status": {"statusCode": "success"},
        },
        "entryPoints": [{"entryPointType": "video", "uri": uri, "label": uri.removeprefix("https://")}],
        "conferenceSolution": {"key": {"type": "hangoutsMeet"}, "name": "Google Meet"},
        "conferenceId": code,
    }


def _add_conference(event: dict, create: dict) -> None:
    event["conferenceData"] = _conference(create)
    event["hangoutLink"] = event["conferenceData"]["entryPoints"][0]["uri"]


def _new_event(calendar: Calendar, user: SandboxUser, event_id: str, body: dict) -> dict:
    stamp = iso_z(now())
    return {
        "kind": "calendar#event",
        "etag": f'"{secrets.randbelow(10**16)}"',
        "id": event_id,
        "status": "confirmed",
        "htmlLink": f"{CALENDAR_HOST}/event?eid={event_id}",
        "created": stamp,
        "updated": stamp,
        "summary": body.get("summary", ""),
        "description": body.get("description", ""),
        "creator": {"email": user.email, "self": True},
        "organizer": {"email": calendar.id, "self": True},
        "start": _time_field(body["start"]),
        "end": _time_field(body["end"]),
        "iCalUID": f"{event_id}@google.com",
        "sequence": 0,
        "reminders": {"useDefault": True},
        "eventType": "default",
    }


def _record_send_updates(calendar: Calendar, event_id: str, value: str) -> None:
    calendar.send_updates.setdefault(event_id, []).append(value)


@SANDBOX.endpoint("POST")  # listing events is not part of the sandbox (yet): GET answers 405
def events(request, calendar_id: str):
    user = _authenticate(request, CALENDAR_SCOPES)
    version, send_updates = _conference_version(request), _send_updates(request)
    body = SANDBOX.json_object(request)
    for name in ("summary", "description"):
        _text_field(body, name)
    _checked_times(body.get("start"), body.get("end"))
    create = _create_request(body)
    chosen = body.get("id")
    if chosen is not None and (not isinstance(chosen, str) or not EVENT_ID_PATTERN.match(chosen)):
        raise api_error(400, "Invalid resource id value.", "invalid")
    with SANDBOX.lock as state:
        calendar = _calendar_locked(state, user, calendar_id)
        if chosen is not None and chosen in calendar.events:
            # Taken for good: also when that event has since been deleted.
            raise api_error(409, "The requested identifier already exists.", "duplicate")
        event_id = chosen or _random_event_id()
        event = _new_event(calendar, user, event_id, body)
        if version == 1 and create is not None:
            _add_conference(event, create)
        calendar.events[event_id] = event
        _record_send_updates(calendar, event_id, send_updates)
        return JsonResponse(copy.deepcopy(event))


@SANDBOX.endpoint("GET", "PATCH", "DELETE")
def event_detail(request, calendar_id: str, event_id: str):
    user = _authenticate(request, CALENDAR_SCOPES)
    if request.method == "GET":
        with SANDBOX.lock as state:
            return JsonResponse(copy.deepcopy(_live_event_locked(_calendar_locked(state, user, calendar_id), event_id)))
    if request.method == "DELETE":
        send_updates = _send_updates(request)
        with SANDBOX.lock as state:
            calendar = _calendar_locked(state, user, calendar_id)
            event = _live_event_locked(calendar, event_id)
            event.update(status="cancelled", updated=iso_z(now()))
            _record_send_updates(calendar, event_id, send_updates)
        return HttpResponse(status=204)
    return _patch_event(request, user, calendar_id, event_id)


def _patch_event(request, user: SandboxUser, calendar_id: str, event_id: str) -> JsonResponse:
    """PATCH merges the given fields into the event; its Meet link stays."""
    version, send_updates = _conference_version(request), _send_updates(request)
    body = SANDBOX.json_object(request)
    texts = {name: _text_field(body, name) for name in ("summary", "description")}
    create = _create_request(body)
    with SANDBOX.lock as state:
        calendar = _calendar_locked(state, user, calendar_id)
        event = _live_event_locked(calendar, event_id)
        start, end = body.get("start", event["start"]), body.get("end", event["end"])
        _checked_times(start, end)
        for name, value in texts.items():
            if value is not None:
                event[name] = value
        if "start" in body or "end" in body:
            event["start"], event["end"] = _time_field(start), _time_field(end)
            event["sequence"] += 1
        if version == 1 and create is not None and "conferenceData" not in event:
            _add_conference(event, create)
        event["updated"] = iso_z(now())
        _record_send_updates(calendar, event_id, send_updates)
        return JsonResponse(copy.deepcopy(event))


# --- Inspection --------------------------------------------------------------------------------


def _event_summary(calendar: Calendar, event: dict) -> dict:
    create = event.get("conferenceData", {}).get("createRequest", {})
    return {
        "calendar_id": calendar.id,
        "id": event["id"],
        "status": event["status"],
        "summary": event["summary"],
        "start": event["start"],
        "end": event["end"],
        "hangout_link": event.get("hangoutLink", ""),
        "conference_request_id": create.get("requestId", ""),
        "send_updates": list(calendar.send_updates.get(event["id"], [])),
    }


def _grant_summaries_locked(state: GoogleState, moment: float) -> list[dict]:
    """One entry per user and app that holds tokens: what was granted, and how many tokens live."""
    grants: dict[tuple[str, str], dict] = {}
    for kind, store in (("access", state.access_tokens), ("refresh", state.refresh_tokens)):
        for grant in store.values():
            entry = grants.setdefault(
                (grant.user_id, grant.client_id),
                {
                    "email": state.users[grant.user_id].email,
                    "client_id": grant.client_id,
                    "scope": grant.scope,
                    "live_access_tokens": 0,
                    "refresh_tokens": 0,
                },
            )
            if kind == "refresh":
                entry["refresh_tokens"] += 1
            elif grant.expires_at > moment:
                entry["live_access_tokens"] += 1
    return list(grants.values())
