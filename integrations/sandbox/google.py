"""The Google sandbox: a local fake of Google's OAuth (web server flow) and of the Calendar API
(Meet links, the member's calendars and their busy time, push notifications), for tests and the demo.

It follows shared/reference/providers.md and Google's Calendar API reference: refresh tokens don't
rotate (a refresh answers without one, and the same refresh token keeps working); only
access_type=offline gets a refresh token; PKCE (S256) is required; revoking either token ends the
whole grant; a Meet link is made only for an event written with conferenceDataVersion=1 and a
createRequest; a client-chosen event id is taken for good, also after the event is deleted (409);
a deleted event answers 410, an unknown one 404. Errors are Google's JSON: {"error": {"code",
"message", "status", "errors"}}. Each endpoint checks the scopes Google documents for it.

Paths (under /sandbox/google, the base of every GOOGLE_*_URL setting in the sandbox):
o/oauth2/v2/auth, token, revoke, v1/userinfo, and under calendar/v3: users/me/calendarList,
calendars/{calendarId}/events[/{eventId}] (list with timeMin/timeMax or syncToken, insert, get,
patch, delete), calendars/{calendarId}/events/watch, channels/stop, freeBusy.

A user has a primary calendar (id = their email) and may get more (`add_calendar`, or the control
page). Events keep what the product sends and what a person sets in Google Calendar: free or busy
(transparency), tentative, the owner's answer as an attendee, all-day dates, recurrence rules and
private extended properties; google_calendar.py holds that logic. Deleted events stay with status
"cancelled", which is what an incremental listing reports. After every change, each live watch
channel of the calendar gets a notification POSTed in a background thread (`wait_for_deliveries`
waits for them); the fake posts only to this site (SITE_URL), its one "verified domain".
"""

import base64
import copy
import hashlib
import re
import secrets
import threading
import time
from datetime import UTC, date, datetime, timedelta
from datetime import time as dt_time
from email.utils import format_datetime
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import requests
from django.conf import settings
from django.contrib import messages
from django.http import HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.urls import path
from django.views.decorators.http import require_POST

from . import google_calendar as gc
from .common import (
    ACCESS_TOKEN_TTL_SECONDS,
    CONTROL_REFUSED,
    ProviderSandbox,
    SandboxError,
    SandboxState,
    SandboxUser,
    control_endpoint,
    email_param,
    iso_z,
    may_control,
    unsigned_jwt,
)
from .google_calendar import Calendar, Channel

DEFAULT_EMAIL = "google.user@example.com"
MEET_HOST = "https://meet.google.sandbox.invalid"  # .invalid: a link from the sandbox can never reach anything
CALENDAR_HOST = "https://calendar.google.sandbox.invalid"
ISSUER = "https://accounts.google.com"
SCOPE_PREFIX = "https://www.googleapis.com/auth/"
# Which scopes each part of the Calendar API accepts, as its reference lists them.
CALENDAR_SCOPES = {SCOPE_PREFIX + "calendar", SCOPE_PREFIX + "calendar.events"}  # writing events
EVENT_READ_SCOPES = CALENDAR_SCOPES | {SCOPE_PREFIX + "calendar.readonly", SCOPE_PREFIX + "calendar.events.readonly"}
CALENDAR_LIST_SCOPES = {
    SCOPE_PREFIX + name
    for name in ("calendar", "calendar.readonly", "calendar.calendarlist", "calendar.calendarlist.readonly")
}
FREE_BUSY_SCOPES = {
    SCOPE_PREFIX + name for name in ("calendar", "calendar.readonly", "calendar.freebusy", "calendar.events.freebusy")
}
CHANNEL_SCOPES = EVENT_READ_SCOPES | CALENDAR_LIST_SCOPES
# What Google's consent screen says for each scope; the sign-in ones have no checkbox there.
SIGN_IN_SCOPES = {"openid", "email", "profile"}
SCOPE_LABELS = {
    SCOPE_PREFIX + "calendar.events": "See and edit events on all your calendars",
    SCOPE_PREFIX + "calendar.calendarlist.readonly": "See the list of Google calendars you're subscribed to",
    SCOPE_PREFIX + "calendar.freebusy": "See the availability on Google calendars you have access to",
    SCOPE_PREFIX + "calendar": "See, edit, share, and permanently delete all the calendars you can access",
    SCOPE_PREFIX + "calendar.readonly": "See and download any calendar you can access",
}
# events.list parameters Google refuses beside a syncToken.
NOT_WITH_SYNC_TOKEN = ("timeMin", "timeMax", "orderBy", "q", "iCalUID", "updatedMin", "privateExtendedProperty")
CHANNEL_ID_PATTERN = re.compile(r"^[A-Za-z0-9\-_+/=]{1,64}$")
DEFAULT_CHANNEL_TTL_SECONDS = 7 * 24 * 3600  # Google's default for events.watch
MAX_CHANNEL_TTL_SECONDS = 30 * 24 * 3600
PUSH_TIMEOUT_SECONDS = 5
PUSH_USER_AGENT = "APIs-Google; (+https://developers.google.com/webmasters/APIs-Google.html) (sandbox)"
MAX_RECORDED_DELIVERIES = 500
CONTROL_PAGE_EVENTS = 15  # per calendar on the control page
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


class GoogleState(SandboxState):
    def __init__(self):
        super().__init__()
        self.calendars: dict[str, Calendar] = {}  # by calendar id
        self.channels: dict[str, Channel] = {}  # events.watch channels by channel id
        self.deliveries: list[dict] = []  # the notifications sent, latest last

    def __setstate__(self, values):
        # State stored before calendars had channels (the demo keeps it across restarts).
        values.setdefault("channels", {})
        values.setdefault("deliveries", [])
        self.__dict__.update(values)


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

    def consent_context(self, request, params) -> dict:
        # Google's granular consent: every scope but signing in has its own checkbox, ticked.
        asked = self.normalized_scope(params.get("scope")).split()
        kept = set(request.POST.getlist("scope")) if "scope_choices" in request.POST else set(asked)
        return {
            "scope_choices": [
                {"scope": scope, "label": SCOPE_LABELS.get(scope, "Use this permission"), "checked": scope in kept}
                for scope in asked
                if scope not in SIGN_IN_SCOPES
            ]
        }

    def decide(self, request, params):
        """Allow grants what stayed ticked on the consent page (sign-in scopes always). A form
        without the page's checkboxes (a script) grants everything asked for."""
        if request.POST.get("decision") == "allow" and "scope_choices" in request.POST:
            ticked = set(request.POST.getlist("scope"))
            asked = self.normalized_scope(params.get("scope")).split()
            params = params.copy()
            params["scope"] = " ".join(scope for scope in asked if scope in SIGN_IN_SCOPES or scope in ticked)
        return super().decide(request, params)

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
            if "start" in event  # not the cancelled occurrences a changed series leaves behind
        ]
        return {
            "grants": _grant_summaries_locked(state, moment),
            "events": events,
            "conference_request_ids": [
                event["conference_request_id"] for event in events if event["conference_request_id"]
            ],
            "calendars": [
                {
                    "id": item.id,
                    "owner": state.users[item.owner_id].email,
                    "name": item.summary,
                    "time_zone": item.time_zone,
                }
                for item in state.calendars.values()
            ],
            "channels": [_channel_summary(channel, moment) for channel in state.channels.values()],
        }

    control_section_template = "sandbox/google_calendars.html"

    def control_section_context(self) -> dict:
        with self.lock as state:
            return {"calendar_users": _page_calendars_locked(state)}


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


def default_scope() -> str:
    """What the product asks for: the meeting scopes and the calendar scopes."""
    return f"{settings.GOOGLE_SCOPES} {getattr(settings, 'GOOGLE_CALENDAR_SCOPES', '')}"


def issue_tokens(email: str = DEFAULT_EMAIL, scope: str | None = None, *, offline: bool = True) -> dict:
    """A new grant for this user, as if they had just allowed the app (with offline access unless
    `offline` is false) the scopes the product asks for, or `scope`. Returns the token endpoint's
    JSON. Earlier grants stay valid, as at Google. A shortcut for tests that need a connected
    account but not the consent page."""
    scope = SANDBOX.normalized_scope(scope or default_scope())
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


def _data_error(error: gc.CalendarDataError) -> SandboxError:
    return api_error(400, str(error), error.reason)


def _checked_times(start, end) -> None:
    try:
        gc.check_times(start, end)
    except gc.CalendarDataError as error:
        raise _data_error(error) from None


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


def _event_fields(body: dict, owner_email: str) -> dict:
    """The fields of an event body beyond times, texts and conference, checked, as they are stored."""
    fields = {}
    if "location" in body:
        fields["location"] = _text_field(body, "location")
    if "transparency" in body:
        if body["transparency"] not in gc.TRANSPARENCIES:
            raise api_error(400, "Invalid transparency value.", "invalid")
        fields["transparency"] = body["transparency"]
    if "status" in body:
        if body["status"] not in gc.EVENT_STATUSES:
            raise api_error(400, "Invalid status value.", "invalid")
        fields["status"] = body["status"]
    if "attendees" in body:
        fields["attendees"] = _attendees(body["attendees"], owner_email)
    if "recurrence" in body:
        try:
            gc.check_recurrence(body["recurrence"])
        except gc.CalendarDataError as error:
            raise _data_error(error) from None
        fields["recurrence"] = list(body["recurrence"] or [])
    if "extendedProperties" in body:
        fields["extendedProperties"] = _extended_properties(body["extendedProperties"])
    if "reminders" in body:
        if not isinstance(body["reminders"], dict):
            raise api_error(400, "Invalid reminders value.", "invalid")
        fields["reminders"] = copy.deepcopy(body["reminders"])
    return fields


def _attendees(value, owner_email: str) -> list[dict]:
    if not isinstance(value, list):
        raise api_error(400, "Invalid attendees value.", "invalid")
    attendees = []
    for item in value:
        if not isinstance(item, dict) or not isinstance(item.get("email"), str) or "@" not in item["email"]:
            raise api_error(400, "Invalid attendee email.", "invalid")
        status = item.get("responseStatus", "needsAction")
        if status not in gc.RESPONSE_STATUSES:
            raise api_error(400, "Invalid attendee responseStatus.", "invalid")
        attendee = {"email": item["email"].strip().lower(), "responseStatus": status}
        if attendee["email"] == owner_email:
            attendee["self"] = True  # Google marks the calendar's owner among the attendees
        attendees.append(attendee)
    return attendees


def _extended_properties(value) -> dict:
    def strings(group) -> bool:
        return isinstance(group, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in group.items())

    if not isinstance(value, dict) or set(value) - {"private", "shared"} or not all(map(strings, value.values())):
        raise api_error(400, "Invalid extendedProperties value.", "invalid")
    return copy.deepcopy(value)


def _needs_zone_for_recurrence(event: dict) -> None:
    # Google expands a rule in the start's zone, so a recurring timed event must name it.
    if gc.is_recurring(event) and "dateTime" in event["start"] and not event["start"].get("timeZone"):
        raise api_error(400, "Missing time zone definition for start time.", "required")


def _now_utc() -> datetime:
    return datetime.fromtimestamp(now(), UTC)


def _checked_expansion(event: dict) -> set[str]:
    try:
        return gc.instance_ids(event, _now_utc())
    except gc.CalendarDataError as error:
        raise _data_error(error) from None


# --- Calendar: calendars -----------------------------------------------------------------------


def _primary_locked(state: GoogleState, user: SandboxUser) -> Calendar:
    calendar = state.calendars.get(user.email)
    if calendar is None:
        calendar = state.calendars[user.email] = Calendar(id=user.email, owner_id=user.id, time_zone=user.timezone)
    # Primary calendars made before calendars had names are upgraded here.
    calendar.primary, calendar.summary = True, calendar.summary or user.email
    return calendar


def _find_calendar_locked(state: GoogleState, user: SandboxUser, calendar_id: str) -> Calendar | None:
    if calendar_id in ("primary", user.email):
        return _primary_locked(state, user)
    calendar = state.calendars.get(calendar_id)
    return calendar if calendar is not None and calendar.owner_id == user.id else None


def _calendar_locked(state: GoogleState, user: SandboxUser, calendar_id: str, *, write: bool = False) -> Calendar:
    """The user's calendar by id ("primary" or their email for the primary one); another's is as
    unknown as none (404). Writing needs the writer or owner role."""
    calendar = _find_calendar_locked(state, user, calendar_id)
    if calendar is None:
        raise api_error(404, "Not Found")
    if write and calendar.access_role not in gc.WRITE_ROLES:
        raise api_error(403, "You need to have writer access to this calendar.", "requiredAccessLevel")
    if not write and calendar.access_role == "freeBusyReader":
        raise api_error(403, "You need to have reader access to this calendar.", "requiredAccessLevel")
    return calendar


def _calendars_of_locked(state: GoogleState, user: SandboxUser) -> list[Calendar]:
    primary = _primary_locked(state, user)
    others = sorted(
        (item for item in state.calendars.values() if item.owner_id == user.id and item is not primary),
        key=lambda item: (item.summary.lower(), item.id),
    )
    return [primary, *others]


def _calendar_list_entry(calendar: Calendar) -> dict:
    entry = {
        "kind": "calendar#calendarListEntry",
        "etag": f'"{calendar.sequence}"',
        "id": calendar.id,
        "summary": calendar.summary,
        "timeZone": calendar.time_zone,
        "colorId": "14",
        "backgroundColor": "#9fe1e7",
        "foregroundColor": "#000000",
        "selected": True,
        "accessRole": calendar.access_role,
        "defaultReminders": [],
    }
    if calendar.primary:
        entry["primary"] = True
    return entry


@SANDBOX.endpoint("GET")
def calendar_list(request):
    user = _authenticate(request, CALENDAR_LIST_SCOPES)
    mask = _fields_mask(request)
    size = _page_size(request, default=100, maximum=250)
    minimum = request.GET.get("minAccessRole")
    if minimum is not None and minimum not in gc.ACCESS_ROLES:
        raise api_error(400, "Invalid minAccessRole value.", "invalid")
    offset = _page_offset(request)
    with SANDBOX.lock as state:
        calendars = _calendars_of_locked(state, user)
    if minimum is not None:
        rank = gc.ACCESS_ROLES.index(minimum)
        calendars = [item for item in calendars if gc.ACCESS_ROLES.index(item.access_role) >= rank]
    body = {"kind": "calendar#calendarList", "etag": f'"{len(calendars)}"'}
    body["items"] = [_calendar_list_entry(item) for item in calendars[offset : offset + size]]
    if offset + size < len(calendars):
        body["nextPageToken"] = gc.encode_token({"o": offset + size})
    else:
        body["nextSyncToken"] = gc.encode_token({"calendars": len(calendars)})
    return JsonResponse(gc.select_fields(body, mask))


# --- Calendar: events --------------------------------------------------------------------------


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


def _new_event(calendar: Calendar, user: SandboxUser, event_id: str, body: dict, fields: dict) -> dict:
    stamp = iso_z(now())
    event = {
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
        "start": gc.time_field(body["start"]),
        "end": gc.time_field(body["end"]),
        "iCalUID": f"{event_id}@google.com",
        "sequence": 0,
        "reminders": {"useDefault": True},
        "eventType": "default",
    }
    event.update(fields)
    return event


def _record_send_updates(calendar: Calendar, event_id: str, value: str) -> None:
    calendar.send_updates.setdefault(event_id, []).append(value)


def _changed_locked(state: GoogleState, calendar: Calendar, *event_ids: str) -> list[dict]:
    """Record a change of these events and return the notifications it owes each live channel on
    the calendar (sent by `_deliver` once the lock is released)."""
    calendar.touch(*event_ids)
    moment = now()
    return [
        _notification_locked(channel, "exists")
        for channel in state.channels.values()
        if channel.calendar_id == calendar.id and channel.is_live(moment)
    ]


def _change_event_locked(state: GoogleState, calendar: Calendar, event: dict, change) -> list[dict]:
    """Apply `change(event)`; a recurring event's vanished occurrences become cancelled ones."""
    before = gc.instance_ids(event, _now_utc())
    change(event)
    event["updated"] = iso_z(now())
    event["etag"] = f'"{secrets.randbelow(10**16)}"'
    after = gc.instance_ids(event, _now_utc())
    touched = gc.reconcile_instances(calendar, event["id"], before, after)
    return _changed_locked(state, calendar, event["id"], *touched)


@SANDBOX.endpoint("GET", "POST")
def events(request, calendar_id: str):
    if request.method == "GET":
        return _list_events(request, calendar_id)
    user = _authenticate(request, CALENDAR_SCOPES)
    version, send_updates = _conference_version(request), _send_updates(request)
    body = SANDBOX.json_object(request)
    for name in ("summary", "description"):
        _text_field(body, name)
    _checked_times(body.get("start"), body.get("end"))
    fields = _event_fields(body, user.email)
    create = _create_request(body)
    chosen = body.get("id")
    if chosen is not None and (not isinstance(chosen, str) or not EVENT_ID_PATTERN.match(chosen)):
        raise api_error(400, "Invalid resource id value.", "invalid")
    with SANDBOX.lock as state:
        calendar = _calendar_locked(state, user, calendar_id, write=True)
        if chosen is not None and chosen in calendar.events:
            # Taken for good: also when that event has since been deleted.
            raise api_error(409, "The requested identifier already exists.", "duplicate")
        event_id = chosen or _random_event_id()
        event = _new_event(calendar, user, event_id, body, fields)
        _needs_zone_for_recurrence(event)
        _checked_expansion(event)
        if version == 1 and create is not None:
            _add_conference(event, create)
        calendar.events[event_id] = event
        _record_send_updates(calendar, event_id, send_updates)
        notifications = _changed_locked(state, calendar, event_id)
        answer = copy.deepcopy(event)
    _deliver(notifications)
    return JsonResponse(answer)


@SANDBOX.endpoint("GET", "PATCH", "DELETE")
def event_detail(request, calendar_id: str, event_id: str):
    if request.method == "GET":
        user = _authenticate(request, EVENT_READ_SCOPES)
        with SANDBOX.lock as state:
            return JsonResponse(copy.deepcopy(_live_event_locked(_calendar_locked(state, user, calendar_id), event_id)))
    user = _authenticate(request, CALENDAR_SCOPES)
    if request.method == "DELETE":
        send_updates = _send_updates(request)
        with SANDBOX.lock as state:
            calendar = _calendar_locked(state, user, calendar_id, write=True)
            event = _live_event_locked(calendar, event_id)
            notifications = _change_event_locked(state, calendar, event, lambda item: item.update(status="cancelled"))
            _record_send_updates(calendar, event_id, send_updates)
        _deliver(notifications)
        return HttpResponse(status=204)
    return _patch_event(request, user, calendar_id, event_id)


def _patch_event(request, user: SandboxUser, calendar_id: str, event_id: str) -> JsonResponse:
    """PATCH merges the given fields into the event; its Meet link stays."""
    version, send_updates = _conference_version(request), _send_updates(request)
    body = SANDBOX.json_object(request)
    texts = {name: _text_field(body, name) for name in ("summary", "description")}
    fields = _event_fields(body, user.email)
    create = _create_request(body)
    with SANDBOX.lock as state:
        calendar = _calendar_locked(state, user, calendar_id, write=True)
        event = _live_event_locked(calendar, event_id)
        start, end = body.get("start", event["start"]), body.get("end", event["end"])
        _checked_times(start, end)
        candidate = {**copy.deepcopy(event), **fields, "start": gc.time_field(start), "end": gc.time_field(end)}
        _needs_zone_for_recurrence(candidate)
        _checked_expansion(candidate)

        def change(item: dict) -> None:
            item.update({name: value for name, value in texts.items() if value is not None})
            item.update(fields)
            if "start" in body or "end" in body:
                item["start"], item["end"] = gc.time_field(start), gc.time_field(end)
                item["sequence"] += 1
            if version == 1 and create is not None and "conferenceData" not in item:
                _add_conference(item, create)

        notifications = _change_event_locked(state, calendar, event, change)
        _record_send_updates(calendar, event_id, send_updates)
        answer = copy.deepcopy(event)
    _deliver(notifications)
    return JsonResponse(answer)


# --- Calendar: listing events ------------------------------------------------------------------


def _fields_mask(request) -> dict:
    try:
        return gc.parse_fields(request.GET.get("fields", ""))
    except gc.CalendarDataError as error:
        raise _data_error(error) from None


def _page_size(request, *, default: int = gc.DEFAULT_PAGE_SIZE, maximum: int = gc.MAX_PAGE_SIZE) -> int:
    value = request.GET.get("maxResults")
    if value is None:
        return default
    if not value.isdigit() or int(value) < 1:
        raise api_error(400, "Invalid maxResults value.", "invalid")
    return min(int(value), maximum)


def _page_offset(request) -> int:
    value = request.GET.get("pageToken")
    if value is None:
        return 0
    page = gc.decode_token(value)
    if page is None or not isinstance(page.get("o"), int) or page["o"] < 0:
        raise api_error(400, "Invalid page token value.", "invalid")
    return page["o"]


def _flag(request, name: str) -> bool:
    value = request.GET.get(name, "false")
    if value not in ("true", "false"):
        raise api_error(400, f"Invalid {name} value: it must be true or false.", "invalid")
    return value == "true"


def _window(request) -> tuple[datetime | None, datetime | None]:
    try:
        start, end = (
            gc.parse_rfc3339(request.GET[name], name) if name in request.GET else None
            for name in ("timeMin", "timeMax")
        )
    except gc.CalendarDataError as error:
        raise _data_error(error) from None
    if start is not None and end is not None and end <= start:
        raise api_error(400, "The specified time range is empty.", "timeRangeEmpty")
    return start, end


def _sync_position(calendar: Calendar, value: str) -> int:
    """The sequence a sync token stands for. An expired one answers 410, as Google does."""
    token = gc.decode_token(value)
    if token is None or token.get("c") != calendar.id or not isinstance(token.get("s"), int):
        raise api_error(400, "Invalid sync token value.", "invalid")
    if token["s"] < calendar.sync_epoch:
        raise api_error(410, "Sync token is no longer valid, a full sync is required.", "fullSyncRequired")
    return token["s"]


def _list_events(request, calendar_id: str) -> JsonResponse:
    """events.list: a window (timeMin/timeMax) or what changed since a syncToken, paged."""
    user = _authenticate(request, EVENT_READ_SCOPES)
    mask, size, offset = _fields_mask(request), _page_size(request), _page_offset(request)
    single, show_deleted = _flag(request, "singleEvents"), _flag(request, "showDeleted")
    start, end = _window(request)
    sync_token, order = request.GET.get("syncToken"), request.GET.get("orderBy")
    if sync_token is not None and any(name in request.GET for name in NOT_WITH_SYNC_TOKEN):
        raise api_error(400, "Bad Request: syncToken can't be combined with these parameters.", "invalid")
    if order not in (None, "startTime", "updated") or (order == "startTime" and not single):
        raise api_error(400, "Invalid orderBy value: startTime needs singleEvents=true.", "invalid")
    with SANDBOX.lock as state:
        calendar = _calendar_locked(state, user, calendar_id)
        since = None if sync_token is None else _sync_position(calendar, sync_token)
        page = gc.decode_token(request.GET["pageToken"]) if "pageToken" in request.GET else {}
        snapshot = page.get("s", calendar.sequence) if isinstance(page.get("s"), int) else calendar.sequence
        try:
            items = _matching_events(calendar, single=single, since=since, start=start, end=end, deleted=show_deleted)
        except gc.CalendarDataError as error:
            raise _data_error(error) from None
        if order == "updated":
            items.sort(key=lambda item: (item.get("updated", ""), item["id"]))
        else:
            items.sort(key=lambda item: (gc.start_of(calendar, item), item["id"]))
        body = {
            "kind": "calendar#events",
            "etag": f'"{calendar.sequence}"',
            "summary": calendar.summary,
            "updated": iso_z(now()),
            "timeZone": calendar.time_zone,
            "accessRole": calendar.access_role,
            "defaultReminders": [],
            "items": items[offset : offset + size],
        }
        if offset + size < len(items):
            body["nextPageToken"] = gc.encode_token({"o": offset + size, "s": snapshot})
        else:
            body["nextSyncToken"] = gc.encode_token({"c": calendar.id, "s": snapshot})
    return JsonResponse(gc.select_fields(body, mask))


def _matching_events(calendar: Calendar, *, single: bool, since, start, end, deleted: bool) -> list[dict]:
    if single:
        items = gc.single_events(calendar, until=end, now=_now_utc(), changed_since=since)
    else:
        items = [
            copy.deepcopy(event)
            for event in calendar.events.values()
            if since is None or calendar.changed_at.get(event["id"], 0) > since
        ]
    if since is not None:
        return items  # incremental: every change, deletions included, wherever it lies in time
    if not deleted:
        items = [item for item in items if item["status"] != "cancelled"]
    return [item for item in items if _in_window(calendar, item, start, end)]


def _in_window(calendar: Calendar, event: dict, start, end) -> bool:
    if gc.is_recurring(event):  # a series (singleEvents=false) is in the window if one occurrence is
        until = end or gc.horizon(event, _now_utc())
        return any(gc.overlaps(calendar, item, start, end) for item in gc.instances(event, until))
    return gc.overlaps(calendar, event, start, end)


# --- Calendar: push notifications --------------------------------------------------------------


def _resource_id(calendar_id: str) -> str:
    # Google's resourceId names the watched resource: the same for every channel on it.
    digest = hashlib.sha256(f"google-sandbox-resource:{calendar_id}".encode()).digest()
    return base64.b32hexencode(digest).decode().rstrip("=").lower()[:27]


def _checked_address(value) -> str:
    """Google posts only to addresses on domains verified for the app; the fake's verified domain
    is this site (SITE_URL), so it never posts elsewhere. Real Google also requires https."""
    if not isinstance(value, str) or not value:
        raise api_error(400, "Missing required field: address.", "required")
    parts, site = urlsplit(value), urlsplit(getattr(settings, "SITE_URL", ""))
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise api_error(400, f"WebHook callback must be HTTPS: {value}", "push.webhookUrlNotHttps")
    if (parts.scheme, parts.netloc) != (site.scheme, site.netloc):
        raise api_error(400, f"Unauthorized WebHook callback channel: {value}", "push.webhookUrlUnauthorized")
    return value


def _channel_ttl(params) -> int:
    if params is None:
        return DEFAULT_CHANNEL_TTL_SECONDS
    ttl = params.get("ttl") if isinstance(params, dict) else None
    if ttl is None:
        return DEFAULT_CHANNEL_TTL_SECONDS
    if not str(ttl).isdigit() or int(ttl) < 1:
        raise api_error(400, "Invalid ttl value.", "invalid")
    return min(int(ttl), MAX_CHANNEL_TTL_SECONDS)


@SANDBOX.endpoint("POST")
def watch(request, calendar_id: str):
    """events.watch: a web_hook channel that is told about every change of the calendar's events."""
    user = _authenticate(request, EVENT_READ_SCOPES)
    body = SANDBOX.json_object(request)
    channel_id, token = body.get("id"), body.get("token", "")
    if not isinstance(channel_id, str) or not CHANNEL_ID_PATTERN.match(channel_id):
        raise api_error(400, "Invalid channel id: up to 64 of A-Z a-z 0-9 - _ + / =.", "invalid")
    if body.get("type") not in ("web_hook", "webhook"):
        raise api_error(400, "Invalid channel type: only web_hook is supported.", "invalid")
    if not isinstance(token, str) or len(token) > 256:
        raise api_error(400, "Invalid channel token: a string of up to 256 characters.", "invalid")
    address, ttl = _checked_address(body.get("address")), _channel_ttl(body.get("params"))
    with SANDBOX.lock as state:
        calendar = _calendar_locked(state, user, calendar_id)
        if channel_id in state.channels:
            raise api_error(400, f"Channel id {channel_id} not unique", "channelIdNotUnique")
        channel = Channel(
            id=channel_id,
            resource_id=_resource_id(calendar.id),
            resource_uri=request.build_absolute_uri(request.path.removesuffix("/watch")) + "?alt=json",
            calendar_id=calendar.id,
            owner_id=user.id,
            address=address,
            token=token,
            expiration_ms=int((now() + ttl) * 1000),
        )
        state.channels[channel_id] = channel
        first = _notification_locked(channel, "sync")
    _deliver([first])
    answer = {
        "kind": "api#channel",
        "id": channel.id,
        "resourceId": channel.resource_id,
        "resourceUri": channel.resource_uri,
        "expiration": str(channel.expiration_ms),
    }
    if token:
        answer["token"] = token
    return JsonResponse(answer)


@SANDBOX.endpoint("POST")
def stop_channel(request):
    """channels.stop: {id, resourceId} of a channel of this user; an unknown one is 404."""
    user = _authenticate(request, CHANNEL_SCOPES)
    body = SANDBOX.json_object(request)
    channel_id, resource_id = body.get("id"), body.get("resourceId")
    if not isinstance(channel_id, str) or not isinstance(resource_id, str):
        raise api_error(400, "Missing required fields: id and resourceId.", "required")
    with SANDBOX.lock as state:
        channel = state.channels.get(channel_id)
        if channel is None or channel.resource_id != resource_id or channel.owner_id != user.id:
            raise api_error(404, f"Channel '{channel_id}' not found for project.", "notFound")
        del state.channels[channel_id]
    return HttpResponse(status=204)


def _notification_locked(channel: Channel, resource_state: str) -> dict:
    channel.messages += 1
    expiration = datetime.fromtimestamp(channel.expiration_ms / 1000, UTC)
    headers = {
        "X-Goog-Channel-ID": channel.id,
        "X-Goog-Channel-Expiration": format_datetime(expiration, usegmt=True),
        "X-Goog-Resource-ID": channel.resource_id,
        "X-Goog-Resource-URI": channel.resource_uri,
        "X-Goog-Resource-State": resource_state,
        "X-Goog-Message-Number": str(channel.messages),
        "User-Agent": PUSH_USER_AGENT,
    }
    if channel.token:
        headers["X-Goog-Channel-Token"] = channel.token
    return {"address": channel.address, "headers": headers}


# Delivery threads of this process not finished yet: wait_for_deliveries() waits for them.
_delivery_threads: set[threading.Thread] = set()
_delivery_guard = threading.Lock()


def _deliver(notifications: list[dict]) -> None:
    """POST the notifications in a background thread, after the state's lock is released (the
    receiver calls back into the fake), ignoring failures as Google does, but recording them."""
    if not notifications:
        return
    thread = threading.Thread(target=_send_all, args=(notifications,), name="google-sandbox-push", daemon=True)
    with _delivery_guard:
        _delivery_threads.add(thread)
    thread.start()


def _send_all(notifications: list[dict]) -> None:
    try:
        for notification in notifications:
            status, error = None, ""
            try:
                response = requests.post(
                    notification["address"],
                    data=b"",
                    headers=notification["headers"],
                    timeout=PUSH_TIMEOUT_SECONDS,
                    allow_redirects=False,
                )
                status = response.status_code
            except requests.RequestException as failure:
                error = type(failure).__name__
            _record_delivery(notification, status, error)
    finally:
        with _delivery_guard:
            _delivery_threads.discard(threading.current_thread())


def _record_delivery(notification: dict, status: int | None, error: str) -> None:
    headers = notification["headers"]
    with SANDBOX.lock as state:
        state.deliveries.append(
            {
                "channel_id": headers["X-Goog-Channel-ID"],
                "resource_state": headers["X-Goog-Resource-State"],
                "message_number": int(headers["X-Goog-Message-Number"]),
                "address": notification["address"],
                "status": status,
                "error": error,
            }
        )
        del state.deliveries[:-MAX_RECORDED_DELIVERIES]


def wait_for_deliveries(timeout: float = 5.0) -> bool:
    """Wait until this process has sent every notification it owes (also those that handling one
    caused); False if some were still on their way after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        with _delivery_guard:
            pending = list(_delivery_threads)
        if not pending:
            return True
        for thread in pending:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            thread.join(remaining)


# --- Calendar: free/busy -----------------------------------------------------------------------


@SANDBOX.endpoint("POST")
def free_busy(request):
    """freebusy.query: the merged busy periods of each listed calendar within [timeMin, timeMax)."""
    user = _authenticate(request, FREE_BUSY_SCOPES)
    body = SANDBOX.json_object(request)
    if "timeMin" not in body or "timeMax" not in body:
        raise api_error(400, "Missing timeMin or timeMax.", "required")
    try:
        start, end = gc.parse_rfc3339(body["timeMin"], "timeMin"), gc.parse_rfc3339(body["timeMax"], "timeMax")
    except gc.CalendarDataError as error:
        raise _data_error(error) from None
    if end <= start:
        raise api_error(400, "The specified time range is empty.", "timeRangeEmpty")
    items = body.get("items", [])
    if not isinstance(items, list) or not all(
        isinstance(item, dict) and isinstance(item.get("id"), str) for item in items
    ):
        raise api_error(400, "Invalid items: a list of {id} is expected.", "invalid")
    calendars = {}
    with SANDBOX.lock as state:
        for item in items:
            calendar = _find_calendar_locked(state, user, item["id"])
            if calendar is None:
                calendars[item["id"]] = {"errors": [{"domain": "global", "reason": "notFound"}], "busy": []}
                continue
            busy = gc.busy_periods(calendar, start, end, _now_utc())
            calendars[item["id"]] = {"busy": [{"start": iso_z(first), "end": iso_z(last)} for first, last in busy]}
    return JsonResponse(
        {"kind": "calendar#freeBusy", "timeMin": iso_z(start), "timeMax": iso_z(end), "calendars": calendars}
    )


# --- Inspection --------------------------------------------------------------------------------


def _event_summary(calendar: Calendar, event: dict) -> dict:
    create = event.get("conferenceData", {}).get("createRequest", {})
    return {
        "calendar_id": calendar.id,
        "id": event["id"],
        "status": event["status"],
        "summary": event.get("summary", ""),
        "start": event.get("start", event.get("originalStartTime")),
        "end": event.get("end"),
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


# --- Calendars and events, for tests and the demo -----------------------------------------------


def _user_locked(state: GoogleState, email: str) -> SandboxUser:
    return SANDBOX.user_for_email_locked(state, email)


def _owned_calendar_locked(state: GoogleState, user: SandboxUser, calendar_id: str | None) -> Calendar:
    calendar = _find_calendar_locked(state, user, calendar_id or "primary")
    if calendar is None:
        raise LookupError(f"{user.email} has no calendar {calendar_id}.")
    return calendar


def add_calendar(
    email: str, name: str, time_zone: str = "UTC", *, access_role: str = "owner", calendar_id: str | None = None
) -> str:
    """Give the user (made on first use) another calendar, e.g. "Team holidays"; its id (made up
    like Google's, unless given: "en.usa#holiday@group.v.calendar.google.com"). Adding a name the
    user already has returns that calendar's id. Raises ValueError for bad input."""
    if not isinstance(name, str) or not name.strip() or len(name) > 200:
        raise ValueError("a calendar name of 1 to 200 characters is needed")
    if not gc.valid_zone(time_zone):
        raise ValueError(f"unknown time zone: {time_zone!r}")
    if access_role not in gc.ACCESS_ROLES:
        raise ValueError(f"access_role must be one of {', '.join(gc.ACCESS_ROLES)}")
    with SANDBOX.lock as state:
        user = _user_locked(state, email)
        for calendar in _calendars_of_locked(state, user):
            if calendar.summary == name.strip() and not calendar.primary:
                return calendar.id
        if calendar_id is None:
            seed = hashlib.sha256(f"{user.id}:{name.strip()}".encode()).hexdigest()[:26]
            calendar_id = f"{seed}@group.calendar.google.com"
        elif calendar_id in state.calendars or "/" in calendar_id or not calendar_id.strip():
            raise ValueError(f"calendar id {calendar_id!r} is taken or not valid")
        state.calendars[calendar_id] = Calendar(
            id=calendar_id, owner_id=user.id, time_zone=time_zone, summary=name.strip(), access_role=access_role
        )
        return calendar_id


def set_time_zone(email: str, time_zone: str, calendar_id: str | None = None) -> None:
    """Set the zone of a calendar of the user (their primary one by default): all-day events
    count from midnight to midnight there."""
    if not gc.valid_zone(time_zone):
        raise ValueError(f"unknown time zone: {time_zone!r}")
    with SANDBOX.lock as state:
        _owned_calendar_locked(state, _user_locked(state, email), calendar_id).time_zone = time_zone


def _time_pair(start, end, *, all_day: bool, zone: str) -> tuple[dict, dict]:
    if all_day:
        first = start.date() if isinstance(start, datetime) else start
        last = end.date() if isinstance(end, datetime) else end
        return {"date": first.isoformat()}, {"date": last.isoformat()}
    if not isinstance(start, datetime) or not isinstance(end, datetime) or start.tzinfo is None or end.tzinfo is None:
        raise ValueError("a timed event needs aware datetimes")
    local = ZoneInfo(zone)
    return (
        {"dateTime": start.astimezone(local).isoformat(), "timeZone": zone},
        {"dateTime": end.astimezone(local).isoformat(), "timeZone": zone},
    )


def add_event(
    email: str,
    start: datetime | date,
    end: datetime | date,
    *,
    calendar_id: str | None = None,
    all_day: bool = False,
    transparency: str = "opaque",
    status: str = "confirmed",
    recurrence: list[str] | None = None,
    summary: str = "Busy",
    attendee_response: str | None = None,
) -> str:
    """Put an event in the user's calendar (the primary one by default), as the user would in
    Google Calendar, and notify the calendar's channels; its id. An all-day event takes dates
    (the end exclusive); a timed one aware datetimes, written in the calendar's zone.
    `attendee_response` makes the user an attendee who answered so ("declined", "tentative")."""
    body = {"summary": summary, "status": status, "transparency": transparency}
    if recurrence:
        body["recurrence"] = list(recurrence)
    with SANDBOX.lock as state:
        user = _user_locked(state, email)
        calendar = _owned_calendar_locked(state, user, calendar_id)
        body["start"], body["end"] = _time_pair(start, end, all_day=all_day, zone=calendar.time_zone)
        if attendee_response is not None:
            body["attendees"] = [{"email": user.email, "responseStatus": attendee_response}]
        try:
            gc.check_times(body["start"], body["end"])
            gc.check_recurrence(body.get("recurrence"))
            fields = _event_fields(body, user.email)
        except (gc.CalendarDataError, SandboxError) as error:
            raise ValueError(str(error)) from None
        event = _new_event(calendar, user, _random_event_id(), body, fields)
        try:
            gc.instance_ids(event, _now_utc())
        except gc.CalendarDataError as error:
            raise ValueError(str(error)) from None
        calendar.events[event["id"]] = event
        notifications = _changed_locked(state, calendar, event["id"])
    _deliver(notifications)
    return event["id"]


def move_event(email: str, event_id: str, start: datetime | date, end: datetime | date, *, calendar_id=None) -> None:
    """Move the user's event (a recurring one: the whole series) and notify the channels."""
    with SANDBOX.lock as state:
        calendar = _owned_calendar_locked(state, _user_locked(state, email), calendar_id)
        event = calendar.events.get(event_id)
        if event is None or event["status"] == "cancelled":
            raise LookupError(f"no live event {event_id} in {calendar.id}")
        first, last = _time_pair(start, end, all_day="date" in event["start"], zone=calendar.time_zone)

        def change(item: dict) -> None:
            item["start"], item["end"] = first, last
            item["sequence"] += 1

        notifications = _change_event_locked(state, calendar, event, change)
    _deliver(notifications)


def delete_event(email: str, event_id: str, *, calendar_id: str | None = None) -> None:
    """Delete the user's event (a recurring one: the whole series) and notify the channels."""
    with SANDBOX.lock as state:
        calendar = _owned_calendar_locked(state, _user_locked(state, email), calendar_id)
        event = calendar.events.get(event_id)
        if event is None or event["status"] == "cancelled":
            raise LookupError(f"no live event {event_id} in {calendar.id}")
        notifications = _change_event_locked(state, calendar, event, lambda item: item.update(status="cancelled"))
    _deliver(notifications)


def calendars_of(email: str) -> list[dict]:
    """The user's calendars as calendarList shows them, the primary one first."""
    with SANDBOX.lock as state:
        return [_calendar_list_entry(item) for item in _calendars_of_locked(state, _user_locked(state, email))]


def events_of(email: str, calendar_id: str | None = None, *, deleted: bool = False) -> list[dict]:
    """Copies of the events of the user's calendars (of one, if given), by start; recurring ones
    as their series. Deleted events only with `deleted`. Each copy says its "calendarId"."""
    with SANDBOX.lock as state:
        user = SANDBOX.find_user_locked(state, email)
        if user is None:
            return []
        calendars = (
            [_owned_calendar_locked(state, user, calendar_id)] if calendar_id else _calendars_of_locked(state, user)
        )
        found = [
            {**copy.deepcopy(event), "calendarId": calendar.id}
            for calendar in calendars
            for event in calendar.events.values()
            if "start" in event and (deleted or event["status"] != "cancelled")
        ]
        return sorted(found, key=lambda item: (gc.start_of(state.calendars[item["calendarId"]], item), item["id"]))


def _channel_summary(channel: Channel, moment: float) -> dict:
    return {
        "id": channel.id,
        "resource_id": channel.resource_id,
        "calendar_id": channel.calendar_id,
        "address": channel.address,
        "has_token": bool(channel.token),
        "expiration": iso_z(channel.expiration_ms / 1000),
        "expired": not channel.is_live(moment),
        "messages": channel.messages,
    }


def channels(email: str | None = None) -> list[dict]:
    """The watch channels (of one user's calendars, if given), expired ones too."""
    with SANDBOX.lock as state:
        owner = SANDBOX.user_or_error_locked(state, email).id if email else None
        return [
            _channel_summary(channel, now()) for channel in state.channels.values() if owner in (None, channel.owner_id)
        ]


def deliveries() -> list[dict]:
    """The notifications sent so far (the latest ones), with the receiver's HTTP status."""
    with SANDBOX.lock as state:
        return copy.deepcopy(state.deliveries)


def expire_channels(email: str | None = None) -> int:
    """Let the channels (of one user, if given) run out, as they do at their expiration: nothing
    is posted to them any more. Returns how many expired now."""
    with SANDBOX.lock as state:
        owner = SANDBOX.user_or_error_locked(state, email).id if email else None
        moment, expired = now(), 0
        for channel in state.channels.values():
            if owner in (None, channel.owner_id) and channel.is_live(moment):
                channel.expiration_ms = int(moment * 1000) - 1
                expired += 1
        return expired


def expire_sync_tokens(email: str | None = None) -> int:
    """Make every sync token issued so far (for one user's calendars, if given) answer 410
    fullSyncRequired, as Google does when it drops them. Returns how many calendars."""
    with SANDBOX.lock as state:
        owner = SANDBOX.user_or_error_locked(state, email).id if email else None
        expired = 0
        for calendar in state.calendars.values():
            if owner in (None, calendar.owner_id):
                calendar.sequence += 1
                calendar.sync_epoch = calendar.sequence
                expired += 1
        return expired


# --- The control API and page's calendar part -----------------------------------------------------


def _control_call(sandbox, action):
    try:
        return action()
    except (LookupError, ValueError, TypeError) as error:
        raise sandbox.error(404 if isinstance(error, LookupError) else 400, str(error)) from error


@control_endpoint("POST")
def control_add_calendar(request, sandbox):
    body = sandbox.json_object(request)
    email = email_param(sandbox, body) or DEFAULT_EMAIL
    args = {key: body[key] for key in ("time_zone", "access_role") if key in body}
    calendar_id = _control_call(sandbox, lambda: add_calendar(email, body.get("name"), **args))
    return JsonResponse({"id": calendar_id})


def _moment_param(value, all_day: bool):
    if not isinstance(value, str):
        raise ValueError("start and end are ISO 8601 strings")
    if all_day:
        return date.fromisoformat(value)
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError("start and end need an offset (or Z)")
    return moment


@control_endpoint("POST")
def control_add_event(request, sandbox):
    body = sandbox.json_object(request)
    email = email_param(sandbox, body) or DEFAULT_EMAIL
    keys = ("calendar_id", "transparency", "status", "recurrence", "summary", "attendee_response")

    def add() -> str:
        all_day = bool(body.get("all_day"))
        start, end = (_moment_param(body.get(name), all_day) for name in ("start", "end"))
        return add_event(email, start, end, all_day=all_day, **{key: body[key] for key in keys if key in body})

    return JsonResponse({"id": _control_call(sandbox, add)})


@control_endpoint("POST")
def control_delete_event(request, sandbox):
    body = sandbox.json_object(request)
    email = email_param(sandbox, body) or DEFAULT_EMAIL
    event_id = body.get("event_id")
    _control_call(sandbox, lambda: delete_event(email, str(event_id), calendar_id=body.get("calendar_id")))
    return JsonResponse({"deleted": event_id})


@control_endpoint("GET")
def control_channels(request, sandbox):
    return JsonResponse({"channels": channels(), "deliveries": deliveries()})


@control_endpoint("POST")
def control_expire_channels(request, sandbox):
    body = sandbox.json_object(request, empty_ok=True)
    email = email_param(sandbox, body)
    return JsonResponse({"expired_channels": _control_call(sandbox, lambda: expire_channels(email))})


@control_endpoint("POST")
def control_expire_sync_tokens(request, sandbox):
    body = sandbox.json_object(request, empty_ok=True)
    email = email_param(sandbox, body)
    return JsonResponse({"expired_calendars": _control_call(sandbox, lambda: expire_sync_tokens(email))})


def _page_event(calendar: Calendar, event: dict) -> dict:
    zone = calendar.zone
    first, last = gc.bounds(calendar, event)
    if "date" in event["start"]:
        when = f"{event['start']['date']} all day"
        if (last - first) > timedelta(days=1):
            when = f"{event['start']['date']} to {event['end']['date']} (end excluded), all day"
    else:
        when = f"{first.astimezone(zone):%Y-%m-%d %H:%M}–{last.astimezone(zone):%H:%M}"
    busy = gc.is_busy(event)
    return {
        "id": event["id"],
        "summary": event.get("summary") or "(no title)",
        "when": when,
        "repeats": bool(event.get("recurrence")),
        "shows_as": "busy" if busy else "free",
        "ours": "tspBooking" in (event.get("extendedProperties") or {}).get("private", {}),
    }


def _page_calendars_locked(state: GoogleState) -> list[dict]:
    """What the control page shows of each user's calendars: their upcoming events."""
    moment = datetime.fromtimestamp(now(), UTC)
    users = []
    for number, user in enumerate(state.users.values(), 1):
        calendars = []
        for calendar in _calendars_of_locked(state, user):
            upcoming = [
                event
                for event in calendar.events.values()
                if "start" in event
                and event["status"] != "cancelled"
                and (gc.is_recurring(event) or gc.bounds(calendar, event)[1] > moment - timedelta(days=1))
            ]
            upcoming.sort(key=lambda event: (gc.start_of(calendar, event), event["id"]))
            calendars.append(
                {
                    "key": f"{number}-{len(calendars) + 1}",  # the page's element ids
                    "id": calendar.id,
                    "name": calendar.summary,
                    "time_zone": calendar.time_zone,
                    "primary": calendar.primary,
                    "events": [_page_event(calendar, event) for event in upcoming[:CONTROL_PAGE_EVENTS]],
                    "live_channels": sum(
                        1
                        for channel in state.channels.values()
                        if channel.calendar_id == calendar.id and channel.is_live(now())
                    ),
                    "more_events": max(0, len(upcoming) - CONTROL_PAGE_EVENTS),
                }
            )
        users.append({"email": user.email, "calendars": calendars})
    return users


def _back_to_control(request, level, text: str):
    messages.add_message(request, level, text)
    return redirect("google_sandbox:control")


@require_POST
def control_page_add_event(request, sandbox):
    """The control page's "Add event" form: a date and local times in the calendar's zone."""
    if not may_control(request):
        return HttpResponse(CONTROL_REFUSED, status=403, content_type="text/plain; charset=utf-8")
    form = request.POST
    email, calendar_id = form.get("email", ""), form.get("calendar_id", "")
    all_day = form.get("all_day") == "on"
    try:
        with SANDBOX.lock as state:
            user = SANDBOX.user_or_error_locked(state, email)
            zone = _owned_calendar_locked(state, user, calendar_id).zone
        day = date.fromisoformat(form.get("date", ""))
        if all_day:
            start, end = day, day + timedelta(days=1)
        else:
            start = datetime.combine(day, dt_time.fromisoformat(form.get("start_time", "")), tzinfo=zone)
            end = datetime.combine(day, dt_time.fromisoformat(form.get("end_time", "")), tzinfo=zone)
        transparency = "transparent" if form.get("free") == "on" else "opaque"
        summary = form.get("summary", "").strip()[:200] or "Busy"
        add_event(
            email, start, end, calendar_id=calendar_id, all_day=all_day, transparency=transparency, summary=summary
        )
    except (LookupError, ValueError) as error:
        return _back_to_control(request, messages.ERROR, f"Event not added: {error}")
    return _back_to_control(request, messages.SUCCESS, f'"{summary}" added to {calendar_id}.')


@require_POST
def control_page_delete_event(request, sandbox):
    if not may_control(request):
        return HttpResponse(CONTROL_REFUSED, status=403, content_type="text/plain; charset=utf-8")
    form = request.POST
    try:
        delete_event(form.get("email", ""), form.get("event_id", ""), calendar_id=form.get("calendar_id") or None)
    except (LookupError, ValueError) as error:
        return _back_to_control(request, messages.ERROR, f"Event not deleted: {error}")
    return _back_to_control(request, messages.SUCCESS, "Event deleted.")


@require_POST
def control_page_add_calendar(request, sandbox):
    if not may_control(request):
        return HttpResponse(CONTROL_REFUSED, status=403, content_type="text/plain; charset=utf-8")
    form = request.POST
    try:
        with SANDBOX.lock as state:
            SANDBOX.user_or_error_locked(state, form.get("email", ""))
        add_calendar(form.get("email", ""), form.get("name", ""), form.get("time_zone", "").strip() or "UTC")
    except (LookupError, ValueError) as error:
        return _back_to_control(request, messages.ERROR, f"Calendar not added: {error}")
    return _back_to_control(request, messages.SUCCESS, f'Calendar "{form.get("name", "").strip()}" added.')


def control_urlpatterns() -> list:
    """Google's own controls, beside the shared ones (common.control_urlpatterns)."""
    bound = {"sandbox": SANDBOX}
    return [
        path("control/calendars", control_add_calendar, bound, name="control_add_calendar"),
        path("control/events", control_add_event, bound, name="control_add_event"),
        path("control/events/delete", control_delete_event, bound, name="control_delete_event"),
        path("control/channels", control_channels, bound, name="control_channels"),
        path("control/expire-channels", control_expire_channels, bound, name="control_expire_channels"),
        path("control/expire-sync-tokens", control_expire_sync_tokens, bound, name="control_expire_sync_tokens"),
        path("control/page/add-event", control_page_add_event, bound, name="control_page_add_event"),
        path("control/page/delete-event", control_page_delete_event, bound, name="control_page_delete_event"),
        path("control/page/add-calendar", control_page_add_calendar, bound, name="control_page_add_calendar"),
    ]
