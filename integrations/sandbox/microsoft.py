"""The Microsoft sandbox: a local fake of the Microsoft identity platform (v2) and of Microsoft
Graph's online meetings (Teams), for tests and the demo.

It follows shared/reference/providers.md: refresh tokens rotate (each refresh answers with a new
one and spends the old, which then fails with invalid_grant AADSTS70000); a refresh token comes
only with the offline_access scope; PKCE (S256) is required; there is no revoke endpoint (the
control page's "Remove app" ends the grant, as removing the app in the Microsoft account does).
The consent page asks whether the account is a personal one: personal accounts carry Microsoft's
consumer tenant id in their ID token (an unsigned JWT here, so a client can read it) and are
refused Teams meetings with 403. Graph errors are {"error": {"code", "message"}}.

Calendars (any account, personal ones too, with Calendars.Read or Calendars.ReadWrite): each user has
the default "Calendar" and may get more (add_calendar, read-only ones too). Events are single or a
daily/weekly series expanded into occurrences (one occurrence deleted or moved: an exception); a
transactionId already used in the mailbox answers with that event instead of making another.
calendarView delta pages a window (odata.maxpagesize, $skiptoken) and ends with a deltaLink
($deltatoken) that later lists what changed since, deletions as "@removed"; times in the zone of
`Prefer: outlook.timezone`, else UTC; a forgotten sync state (expire_delta_tokens) answers 410
SyncStateNotFound. Subscriptions (me/events, me/calendars/{id}/events) are validated first: a POST
of ?validationToken to the notificationUrl must be echoed as text/plain within 10 s; at most 10080
minutes ahead; every change then POSTs a notification with the clientState, in the background
(wait_for_deliveries, deliveries). getSchedule reads the default calendar.

Paths (under /sandbox/microsoft, where MICROSOFT_OAUTH_BASE_URL=<site>/sandbox/microsoft/common and
MICROSOFT_API_BASE_URL=<site>/sandbox/microsoft/v1.0): common/oauth2/v2.0/authorize,
common/oauth2/v2.0/token, v1.0/me, v1.0/me/onlineMeetings[/{id}], v1.0/me/calendars,
v1.0/me/calendars/{id}/events[/{id}], v1.0/me/calendars/{id}/calendarView/delta, v1.0/me/events[/{id}],
v1.0/me/events/{id}/cancel, v1.0/me/calendar/getSchedule, v1.0/subscriptions[/{id}].
"""

import base64
import copy
import hashlib
import logging
import re
import secrets
import threading
import time as _time
import uuid
from datetime import UTC, date, datetime, time, timedelta
from functools import wraps
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import requests
from django.conf import settings
from django.contrib import messages
from django.http import HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.urls import path
from django.views.decorators.http import require_POST

from .common import (
    ACCESS_TOKEN_TTL_SECONDS,
    CONTROL_REFUSED,
    ProviderSandbox,
    SandboxError,
    SandboxState,
    SandboxUser,
    control_endpoint,
    email_param,
    identity_digest,
    iso_z,
    may_control,
    unsigned_jwt,
    with_query,
)

logger = logging.getLogger(__name__)

DEFAULT_EMAIL = "microsoft.user@example.com"
# The tenant id Microsoft gives every personal (consumer) account in its ID tokens.
CONSUMER_TENANT_ID = "9188040d-6c67-4c5b-b112-36a304b66dad"
TEAMS_HOST = "https://teams.sandbox.invalid"  # .invalid: a link from the sandbox can never reach anything
GRAPH_CONTEXT = "https://graph.microsoft.com/v1.0/$metadata"
GRAPH_SCOPE_PREFIX = "https://graph.microsoft.com/"
MEETINGS_SCOPE = "onlinemeetings.readwrite"
PERSONAL_CHOICE = "personal"
SUBJECT_LIMIT = 255
DEFAULT_MEETING_LENGTH = timedelta(hours=1)  # Graph's, when a meeting is created without times

# Graph's error code for each HTTP status it answers with.
GRAPH_CODES = {
    400: "BadRequest",
    401: "InvalidAuthenticationToken",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    409: "Conflict",
    429: "TooManyRequests",
    500: "InternalServerError",
    503: "ServiceNotAvailable",
    504: "GatewayTimeout",
}


# --- The provider ------------------------------------------------------------------------------


class MicrosoftState(SandboxState):
    def __init__(self):
        super().__init__()
        self.meetings: dict[str, dict] = {}  # by id, as Graph returns them, plus "_organizer_id"
        self.spent_refresh_tokens: dict[str, str] = {}  # sha256 of a rotated-away token → its user id
        self.refresh_tokens_issued: dict[str, int] = {}  # by user id
        self.calendars: dict[str, dict] = {}  # by id, as Graph lists them, plus "_owner_id" and sync state
        self.events: dict[str, dict] = {}  # by id, as Graph returns them, plus "_calendar_id", "_owner_id" …
        self.delta_tokens: dict[str, dict] = {}  # $deltatoken → its calendar, window and what it had seen
        self.skip_tokens: dict[str, dict] = {}  # $skiptoken → the rest of a listing
        self.subscriptions: dict[str, dict] = {}  # by id, as Graph returns them, plus "_owner_id" …
        self.deliveries: list[dict] = []  # notifications sent, newest last

    def __setstate__(self, stored: dict) -> None:
        # State kept by an older version of the sandbox (the demo's cache) gains the new stores.
        self.__init__()
        self.__dict__.update(stored)


class MicrosoftSandbox(ProviderSandbox):
    name = "microsoft"
    title = "Microsoft"
    brand_mark = "⊞"
    settings_prefix = "MICROSOFT"
    default_email = DEFAULT_EMAIL
    account_label = "Sandbox Microsoft account (email)"
    extra_choices = ((PERSONAL_CHOICE, "This is a personal Microsoft account (it can't host Teams meetings)"),)
    pkce_required = True
    state_class = MicrosoftState
    rate_limit_message = "Too many requests. Retry after the time the Retry-After header gives."

    def now(self) -> float:
        return now()  # the module's function, looked up at call time: tests may monkeypatch it

    def user_id(self, digest: bytes) -> str:
        return str(uuid.UUID(bytes=digest[:16]))  # Graph's user ids are GUIDs

    def user_json(self, user: SandboxUser) -> dict:
        return {
            "@odata.context": f"{GRAPH_CONTEXT}#users/$entity",
            "id": user.id,
            "displayName": user.display_name,
            "givenName": user.first_name,
            "surname": user.last_name,
            "mail": user.email,
            "userPrincipalName": user.email,
        }

    def error_body(self, status: int, message: str) -> dict:
        return graph_error_body(status, message)

    def authorize_problem(self, params) -> str | None:
        problem = super().authorize_problem(params)
        if problem:
            return problem
        if not params.get("scope", "").strip():
            return "AADSTS900144: The request body must contain the following parameter: 'scope'."
        if not params.get("state"):
            return "Missing state: the sandbox insists on it, as a flow without one can be forged."
        return None

    def wants_refresh_token(self, params) -> bool:
        return "offline_access" in _scopes(params.get("scope", ""))

    def denial(self, params) -> dict:
        return {
            "error": "access_denied",
            "error_description": "AADSTS65004: User declined to consent to access the app.",
        }

    def user_from_consent_locked(self, state: MicrosoftState, email: str, choices: dict[str, bool]) -> SandboxUser:
        return self.user_for_email_locked(state, email, personal=choices.get(PERSONAL_CHOICE, False))

    def issue_tokens_locked(self, state: MicrosoftState, user_id: str, client_id: str, scope: str, **kwargs):
        access, refresh = super().issue_tokens_locked(state, user_id, client_id, scope, **kwargs)
        if refresh is not None:
            state.refresh_tokens_issued[user_id] = state.refresh_tokens_issued.get(user_id, 0) + 1
        return access, refresh

    def user_summary_locked(self, state: MicrosoftState, user: SandboxUser, moment: float) -> dict:
        return {
            **super().user_summary_locked(state, user, moment),
            "personal": user.personal,
            "meetings": self.items_of_locked(state, user),
            "refresh_tokens_issued": state.refresh_tokens_issued.get(user.id, 0),
            "refresh_tokens_spent": sum(1 for owner in state.spent_refresh_tokens.values() if owner == user.id),
        }

    def items_of_locked(self, state: MicrosoftState, user: SandboxUser) -> int:
        return sum(1 for meeting in state.meetings.values() if meeting["_organizer_id"] == user.id)

    def extra_summary_locked(self, state: MicrosoftState, moment: float) -> dict:
        return {
            "meetings": [_meeting_summary(state, meeting) for meeting in state.meetings.values()],
            "calendars": [
                {
                    "id": calendar["id"],
                    "owner": state.users[calendar["_owner_id"]].email,
                    "name": calendar["name"],
                    "default": calendar["isDefaultCalendar"],
                    "can_edit": calendar["canEdit"],
                    "events": sum(1 for event in state.events.values() if event["_calendar_id"] == calendar["id"]),
                    "changes": calendar["_changes"],
                }
                for calendar in state.calendars.values()
            ],
            "subscriptions": [
                {
                    "id": item["id"],
                    "owner": state.users[item["_owner_id"]].email,
                    "calendar_id": item["_calendar_id"],
                    "expirationDateTime": item["expirationDateTime"],
                    "expired": item["_expires_at"] <= moment,
                }
                for item in state.subscriptions.values()
            ],
        }

    control_section_template = "sandbox/microsoft_calendars.html"

    def control_section_context(self) -> dict:
        with self.lock as state:
            return {"calendar_users": _page_calendars_locked(state)}

    def remove_app_help(self) -> str:
        return (
            '"Remove app" ends the user\'s grant, as removing the app in their Microsoft account does: '
            "the refresh token stops working. Microsoft has no revoke endpoint an app could call."
        )


SANDBOX = MicrosoftSandbox()


def now() -> float:
    """Sandbox time, epoch seconds: decides token and code expiry."""
    return SANDBOX.clock_time()


def graph_error_body(status: int, message: str, code: str | None = None) -> dict:
    inner = {"date": iso_z(now()), "request-id": str(uuid.uuid4())}
    return {"error": {"code": code or GRAPH_CODES.get(status, "UnknownError"), "message": message, "innerError": inner}}


def graph_error(status: int, message: str, code: str | None = None) -> SandboxError:
    return SandboxError(status, graph_error_body(status, message, code))


def identity_error(status: int, error: str, code: int, description: str) -> SandboxError:
    body = {"error": error, "error_description": f"AADSTS{code}: {description}", "error_codes": [code]}
    return SandboxError(status, body)


def _scopes(scope: str) -> set[str]:
    """Scope names as Graph compares them: without the resource prefix, case-insensitive."""
    return {name.lower().removeprefix(GRAPH_SCOPE_PREFIX) for name in scope.split()}


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


# --- Python helpers for tests ------------------------------------------------------------------

reset = SANDBOX.reset
advance_clock = SANDBOX.advance_clock
get_or_create_user = SANDBOX.get_or_create_user
expire_access_tokens = SANDBOX.expire_access_tokens
inject_failure = SANDBOX.inject_failure
state_summary = SANDBOX.state_summary
revoke_grant = SANDBOX.revoke_grant


def app_scopes() -> str:
    """What the app asks for at connect: its meeting scopes and its calendar scopes."""
    names = f"{settings.MICROSOFT_SCOPES} {getattr(settings, 'MICROSOFT_CALENDAR_SCOPES', '')}".split()
    return " ".join(dict.fromkeys(names))


def issue_tokens(email: str = DEFAULT_EMAIL, personal: bool = False, scope: str | None = None) -> dict:
    """A new grant for this user (a personal account if `personal`), as if they had just allowed
    the app. Returns the token endpoint's JSON (a refresh token if the scope has offline_access,
    as the app's scopes have). A shortcut for tests that don't need the consent page; the default
    scope is what the app asks for (app_scopes: meetings and calendars)."""
    scope = SANDBOX.normalized_scope(scope or app_scopes())
    with SANDBOX.lock as state:
        user = SANDBOX.user_for_email_locked(state, email, personal=personal)
        access, refresh = SANDBOX.issue_tokens_locked(
            state, user.id, SANDBOX.client_id, scope, with_refresh_token="offline_access" in _scopes(scope)
        )
    return _token_body(user, access, refresh, scope)


def get_meeting(meeting_id: str) -> dict | None:
    """A copy of the online meeting as Graph returns it, or None if it doesn't exist (any more)."""
    with SANDBOX.lock as state:
        meeting = state.meetings.get(meeting_id)
        return _public(meeting) if meeting else None


# --- Identity platform: token ------------------------------------------------------------------


def _tenant_id(user: SandboxUser) -> str:
    if user.personal:
        return CONSUMER_TENANT_ID
    domain = user.email.rpartition("@")[2]
    return str(uuid.UUID(bytes=identity_digest("microsoft-tenant", domain)[:16]))


def _id_token(user: SandboxUser) -> str:
    issued, tenant = int(now()), _tenant_id(user)
    return unsigned_jwt(
        {
            "ver": "2.0",
            "iss": f"https://login.microsoftonline.com/{tenant}/v2.0",
            "aud": SANDBOX.client_id,
            "iat": issued,
            "nbf": issued,
            "exp": issued + ACCESS_TOKEN_TTL_SECONDS,
            "name": user.display_name,
            "email": user.email,
            "preferred_username": user.email,
            "oid": user.id,
            "sub": base64.urlsafe_b64encode(identity_digest("microsoft-subject", user.email)[:24]).decode(),
            "tid": tenant,
        }
    )


def _token_body(user: SandboxUser, access: str, refresh: str | None, scope: str) -> dict:
    body = {
        "token_type": "Bearer",
        "scope": scope,
        "expires_in": ACCESS_TOKEN_TTL_SECONDS,
        "ext_expires_in": ACCESS_TOKEN_TTL_SECONDS,
        "access_token": access,
    }
    if refresh is not None:
        body["refresh_token"] = refresh
    if "openid" in _scopes(scope):
        body["id_token"] = _id_token(user)
    return body


def _authenticated_client(request) -> str:
    client_id, secret = SANDBOX.client_credentials(request, in_body=True)
    if not SANDBOX.client_is_ours(client_id, secret):
        raise identity_error(401, "invalid_client", 7000215, "Invalid client secret provided.")
    return client_id


def _exchange_code(request, client_id: str) -> JsonResponse:
    value, redirect_uri = request.POST.get("code"), request.POST.get("redirect_uri")
    if not value or not redirect_uri:
        raise identity_error(400, "invalid_request", 900144, "The request body must contain 'code' and 'redirect_uri'.")
    with SANDBOX.lock as state:
        code = SANDBOX.take_code_locked(
            state, value, client_id=client_id, redirect_uri=redirect_uri, verifier=request.POST.get("code_verifier")
        )
        if code is None:
            raise identity_error(
                400, "invalid_grant", 70000, "The provided value for the 'code' parameter is not valid."
            )
        access, refresh = SANDBOX.issue_tokens_locked(
            state, code.user_id, client_id, code.scope, with_refresh_token=code.with_refresh_token
        )
        user = state.users[code.user_id]
    return JsonResponse(_token_body(user, access, refresh, code.scope))


def _refresh(request, client_id: str) -> JsonResponse:
    value = request.POST.get("refresh_token")
    if not value:
        raise identity_error(400, "invalid_request", 900144, "The request body must contain 'refresh_token'.")
    with SANDBOX.lock as state:
        grant = state.refresh_tokens.get(value)
        if grant is None or grant.client_id != client_id:
            raise identity_error(
                400, "invalid_grant", 70000, "The provided grant has expired, was revoked or was already used."
            )
        # Rotation: the old refresh token is spent now. Its access token works until it expires.
        del state.refresh_tokens[value]
        state.spent_refresh_tokens[_digest(value)] = grant.user_id
        access, refresh = SANDBOX.issue_tokens_locked(state, grant.user_id, client_id, grant.scope)
        user = state.users[grant.user_id]
    return JsonResponse(_token_body(user, access, refresh, grant.scope))


@SANDBOX.endpoint("POST")
def token(request):
    client_id = _authenticated_client(request)
    grant_type = request.POST.get("grant_type")
    if grant_type == "authorization_code":
        return _exchange_code(request, client_id)
    if grant_type == "refresh_token":
        return _refresh(request, client_id)
    raise identity_error(400, "unsupported_grant_type", 70003, "The app requested an unsupported grant type.")


# --- Graph -------------------------------------------------------------------------------------


def _authenticate(request) -> tuple[SandboxUser, set[str]]:
    """The user of the bearer token and the scopes it carries."""
    value = SANDBOX.bearer_value(request)
    if value is None:
        raise graph_error(401, "Access token is empty.")
    with SANDBOX.lock as state:
        grant = state.access_tokens.get(value)
        if grant is None:
            raise graph_error(401, "Access token validation failure. Invalid audience.")
        if grant.expires_at <= now():
            raise graph_error(401, "Access token has expired or is not yet valid.")
        return state.users[grant.user_id], _scopes(grant.scope)


def _meetings_user(request) -> SandboxUser:
    user, scopes = _authenticate(request)
    if MEETINGS_SCOPE not in scopes:
        raise graph_error(403, "Insufficient privileges to complete the operation.")
    return user


def _parse_time(value, field: str) -> datetime:
    if not isinstance(value, str):
        raise graph_error(400, f"{field} must be a date and time string.")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise graph_error(
            400, f"Cannot convert the literal '{value}' to the expected type 'Edm.DateTimeOffset'."
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)  # Graph reads a time without offset as UTC


def _times(body: dict, *, required_together: bool) -> tuple[datetime, datetime] | None:
    """The body's start and end (both or neither), checked; None when neither is given."""
    has_start, has_end = "startDateTime" in body, "endDateTime" in body
    if not has_start and not has_end:
        return None
    if required_together and has_start != has_end:
        raise graph_error(400, "startDateTime and endDateTime must be given together.")
    start = _parse_time(body.get("startDateTime"), "startDateTime")
    end = _parse_time(body.get("endDateTime"), "endDateTime")
    if end <= start:
        raise graph_error(400, "endDateTime must be after startDateTime.")
    return start, end


def _subject(body: dict) -> str | None:
    if "subject" not in body:
        return None
    if not isinstance(body["subject"], str) or len(body["subject"]) > SUBJECT_LIMIT:
        raise graph_error(400, f"subject must be a string of at most {SUBJECT_LIMIT} characters.")
    return body["subject"]


def _graph_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.0000000Z")


def _new_meeting(user: SandboxUser, start: datetime, end: datetime, subject: str) -> dict:
    thread = f"19:meeting_{secrets.token_urlsafe(36)}@thread.v2"
    # Graph's ids are base64 of organizer and chat thread; URL-safe here, so a path never splits one.
    meeting_id = base64.urlsafe_b64encode(f"1*{user.id}*0**{thread}".encode()).decode().rstrip("=")
    join_url = f"{TEAMS_HOST}/l/meetup-join/{thread.replace(':', '%3a').replace('@', '%40')}/0"
    return {
        "@odata.context": f"{GRAPH_CONTEXT}#users('{user.id}')/onlineMeetings/$entity",
        "id": meeting_id,
        "creationDateTime": _graph_time(datetime.fromtimestamp(now(), UTC)),
        "startDateTime": _graph_time(start),
        "endDateTime": _graph_time(end),
        "joinWebUrl": join_url,
        "subject": subject,
        "joinMeetingIdSettings": {
            "isPasscodeRequired": True,
            "joinMeetingId": str(secrets.randbelow(9 * 10**12) + 10**12),
            "passcode": secrets.token_urlsafe(5)[:6],
        },
        "participants": {"organizer": {"upn": user.email, "identity": {"user": {"id": user.id}}}},
        "_organizer_id": user.id,
    }


def _public(meeting: dict) -> dict:
    return {key: copy.deepcopy(value) for key, value in meeting.items() if not key.startswith("_")}


def _owned_meeting_locked(state: MicrosoftState, user: SandboxUser, meeting_id: str) -> dict:
    """The user's meeting; another's, a deleted or an unknown one are all 404."""
    meeting = state.meetings.get(meeting_id)
    if meeting is None or meeting["_organizer_id"] != user.id:
        raise graph_error(404, "The specified online meeting could not be found.")
    return meeting


@SANDBOX.endpoint("GET")
def me(request):
    user, _ = _authenticate(request)
    return JsonResponse(SANDBOX.user_json(user))


@SANDBOX.endpoint("POST")
def online_meetings(request):
    user = _meetings_user(request)
    body = SANDBOX.json_object(request)
    times = _times(body, required_together=True)
    subject = _subject(body)
    if user.personal:
        raise graph_error(403, "Online meetings can't be created by a personal Microsoft account.")
    if times is None:
        start = datetime.fromtimestamp(now(), UTC)
        times = (start, start + DEFAULT_MEETING_LENGTH)
    meeting = _new_meeting(user, *times, subject or "")
    with SANDBOX.lock as state:
        state.meetings[meeting["id"]] = meeting
    return JsonResponse(_public(meeting), status=201)


@SANDBOX.endpoint("GET", "PATCH", "DELETE")
def online_meeting(request, meeting_id: str):
    user = _meetings_user(request)
    if request.method == "GET":
        with SANDBOX.lock as state:
            return JsonResponse(_public(_owned_meeting_locked(state, user, meeting_id)))
    if request.method == "DELETE":
        with SANDBOX.lock as state:
            del state.meetings[_owned_meeting_locked(state, user, meeting_id)["id"]]
        return HttpResponse(status=204)
    body = SANDBOX.json_object(request)
    times, subject = _times(body, required_together=True), _subject(body)
    with SANDBOX.lock as state:
        meeting = _owned_meeting_locked(state, user, meeting_id)
        if times is not None:
            meeting["startDateTime"], meeting["endDateTime"] = _graph_time(times[0]), _graph_time(times[1])
        if subject is not None:
            meeting["subject"] = subject
        return JsonResponse(_public(meeting))


def _meeting_summary(state: MicrosoftState, meeting: dict) -> dict:
    fields = ("id", "subject", "startDateTime", "endDateTime", "joinWebUrl")
    return {"organizer_email": state.users[meeting["_organizer_id"]].email, **{key: meeting[key] for key in fields}}


# --- Calendars ---------------------------------------------------------------------------------
# Outlook calendars as Graph shows them: every user has the default "Calendar" and may get more;
# events (single, or a daily/weekly series expanded into occurrences) live in one calendar each;
# calendarView delta lists a window and then what changed in it; change-notification
# subscriptions are validated against their notificationUrl and then told of every change.

DEFAULT_CALENDAR_NAME = "Calendar"
SHOW_AS = ("free", "tentative", "busy", "oof", "workingElsewhere", "unknown")
# getSchedule's availabilityView: one digit per interval, the busiest status in it.
AVAILABILITY_DIGITS = {"free": "0", "tentative": "1", "busy": "2", "oof": "3", "workingElsewhere": "4"}
READ_SCOPES = {"calendars.read", "calendars.readwrite", "calendars.readbasic"}
WRITE_SCOPES = {"calendars.readwrite"}
DELTA_PAGE_SIZE = 10  # Graph's default without odata.maxpagesize
MAX_DELTA_PAGE_SIZE = 1000
CALENDAR_PAGE_SIZE = 10  # Graph's default without $top
MAX_CALENDAR_PAGE_SIZE = 100
DELTA_TOKENS_KEPT = 10  # per calendar: older ones are forgotten (410), as Graph forgets sync states
SKIP_TOKENS_KEPT = 50
DELIVERIES_KEPT = 200
MAX_SUBSCRIPTION_MINUTES = 10080  # Outlook events: at most 7 days ahead
VALIDATION_TIMEOUT_SECONDS = 10
NOTIFICATION_TIMEOUT_SECONDS = 5
MAX_OCCURRENCES = 1000
NO_END_SPAN = timedelta(days=2 * 366)  # a series without an end is expanded this far
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
# Windows zone names Outlook still writes for events made in its clients; the sandbox knows a few.
WINDOWS_ZONES = {
    "W. Europe Standard Time": "Europe/Berlin",
    "GMT Standard Time": "Europe/London",
    "Eastern Standard Time": "America/New_York",
    "Pacific Standard Time": "America/Los_Angeles",
}
LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1", "testserver"}
PREFER_ZONE = re.compile(r'outlook\.timezone\s*=\s*"([^"]+)"', re.IGNORECASE)
PREFER_PAGE_SIZE = re.compile(r"odata\.maxpagesize\s*=\s*(\d+)", re.IGNORECASE)
RESOURCE_PATTERN = re.compile(r"^/?me/(?:calendar/|calendars/(?P<calendar>[^/]+)/)?events$", re.IGNORECASE)


def _calendar_scope(request, *, write: bool = False) -> SandboxUser:
    """The token's user, if it carries a calendar permission (Calendars.ReadWrite for writes).
    Personal accounts have calendars too: only Teams is refused to them."""
    user, scopes = _authenticate(request)
    if not scopes & (WRITE_SCOPES if write else READ_SCOPES):
        raise graph_error(403, "Access is denied. Check credentials and try again.", "ErrorAccessDenied")
    return user


def _new_id(prefix: str = "AAMkAG") -> str:
    # Graph's mailbox ids are long base64 strings; URL-safe here, so a path never splits one.
    return prefix + secrets.token_urlsafe(42)


def _default_calendar_id(user: SandboxUser) -> str:
    # Derived from the user, so it stays the same when the demo's state is reset.
    return "AAMkAGI" + base64.urlsafe_b64encode(identity_digest("microsoft-calendar", user.email)[:30]).decode()


def _calendars_locked(state: "MicrosoftState", user: SandboxUser) -> list[dict]:
    """The user's calendars, the default one first (made on first use, as every mailbox has it)."""
    default_id = _default_calendar_id(user)
    if default_id not in state.calendars:
        state.calendars[default_id] = _new_calendar(user, DEFAULT_CALENDAR_NAME, default_id, default=True)
    return [calendar for calendar in state.calendars.values() if calendar["_owner_id"] == user.id]


def _new_calendar(user: SandboxUser, name: str, calendar_id: str, *, default: bool = False, can_edit: bool = True):
    return {
        "id": calendar_id,
        "name": name,
        "color": "auto",
        "isDefaultCalendar": default,
        "canShare": default,
        "canViewPrivateItems": True,
        "canEdit": can_edit,
        "isRemovable": not default,
        "changeKey": secrets.token_urlsafe(12),
        "owner": {"name": user.display_name, "address": user.email},
        "_owner_id": user.id,
        "_sync_epoch": 0,
        "_changes": 0,
    }


def _calendar_locked(state: "MicrosoftState", user: SandboxUser, calendar_id: str | None) -> dict:
    """One of the user's calendars (the default one for None); another's or an unknown one is 404."""
    _calendars_locked(state, user)
    if calendar_id is None:
        return state.calendars[_default_calendar_id(user)]
    calendar = state.calendars.get(calendar_id)
    if calendar is None or calendar["_owner_id"] != user.id:
        raise graph_error(404, "The specified object was not found in the store.", "ErrorItemNotFound")
    return calendar


# --- Times -------------------------------------------------------------------------------------


def _zone(name, field: str):
    if name in (None, "UTC", "Etc/UTC", "tzone://Microsoft/Utc"):
        return UTC
    if not isinstance(name, str):
        raise graph_error(400, f"{field}.timeZone must be a string.")
    try:
        return ZoneInfo(WINDOWS_ZONES.get(name, name))
    except (ZoneInfoNotFoundError, ValueError):
        raise graph_error(
            400, f"A valid TimeZone value must be specified. '{name}' is not.", "TimeZoneNotSupportedException"
        ) from None


def _zone_name(zone) -> str:
    return "UTC" if zone is UTC else str(zone)


def _local(value, field: str) -> datetime:
    """A dateTimeTimeZone ({dateTime, timeZone}) as an aware datetime in its own zone."""
    if not isinstance(value, dict) or not isinstance(value.get("dateTime"), str):
        raise graph_error(400, f"{field} must be an object with a dateTime.")
    zone = _zone(value.get("timeZone"), field)
    try:
        moment = datetime.fromisoformat(re.sub(r"(\.\d{6})\d+", r"\1", value["dateTime"]).replace("Z", "+00:00"))
    except ValueError:
        raise graph_error(400, f"Cannot convert '{value['dateTime']}' of {field} to a date and time.") from None
    return moment.astimezone(zone) if moment.tzinfo else moment.replace(tzinfo=zone)


def _utc_param(request, name: str) -> datetime | None:
    value = request.GET.get(name)
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise graph_error(400, f"Cannot convert the literal '{value}' of {name} to a date and time.") from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)


def _wall(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.0000000")


def _preferred_zone(request):
    """The zone of the Prefer: outlook.timezone header; Graph answers in UTC without it."""
    found = PREFER_ZONE.search(request.headers.get("Prefer", ""))
    return _zone(found.group(1), "Prefer") if found else UTC


def _page_size(request) -> int:
    found = PREFER_PAGE_SIZE.search(request.headers.get("Prefer", ""))
    return max(1, min(int(found.group(1)), MAX_DELTA_PAGE_SIZE)) if found else DELTA_PAGE_SIZE


# --- Events and their occurrences --------------------------------------------------------------


def _checked_recurrence(value, start: datetime) -> dict | None:
    """Graph's patternedRecurrence, of the kinds the sandbox expands: daily or weekly, ending after a
    number of occurrences, on a date, or never."""
    if value is None:
        return None
    pattern = value.get("pattern") if isinstance(value, dict) else None
    limits = value.get("range") if isinstance(value, dict) else None
    if not isinstance(pattern, dict) or not isinstance(limits, dict):
        raise graph_error(400, "recurrence needs a pattern and a range.")
    if pattern.get("type") not in ("daily", "weekly"):
        raise graph_error(400, "The sandbox expands daily and weekly recurrences only.")
    interval = pattern.get("interval", 1)
    if type(interval) is not int or not 1 <= interval <= 99:
        raise graph_error(400, "recurrence.pattern.interval must be a whole number from 1 to 99.")
    days = pattern.get("daysOfWeek") or [WEEKDAYS[start.weekday()]]
    if not isinstance(days, list) or any(day not in WEEKDAYS for day in days):
        raise graph_error(400, "recurrence.pattern.daysOfWeek must name days of the week.")
    kind = limits.get("type")
    if kind not in ("numbered", "endDate", "noEnd"):
        raise graph_error(400, "recurrence.range.type must be numbered, endDate or noEnd.")
    checked = {
        "pattern": {"type": pattern["type"], "interval": interval, "daysOfWeek": days, "firstDayOfWeek": "sunday"},
        "range": {"type": kind, "startDate": start.date().isoformat(), "recurrenceTimeZone": _zone_name(start.tzinfo)},
    }
    if kind == "numbered":
        count = limits.get("numberOfOccurrences")
        if type(count) is not int or not 1 <= count <= MAX_OCCURRENCES:
            raise graph_error(400, f"recurrence.range.numberOfOccurrences must be from 1 to {MAX_OCCURRENCES}.")
        checked["range"]["numberOfOccurrences"] = count
    if kind == "endDate":
        try:
            checked["range"]["endDate"] = date.fromisoformat(str(limits.get("endDate"))).isoformat()
        except ValueError:
            raise graph_error(400, "recurrence.range.endDate must be a date.") from None
    return checked


def _occurrence_days(event: dict, until: datetime) -> list[date]:
    """The dates a series starts on, in its own zone (so a 9:00 meeting stays at 9:00 across DST)."""
    recurrence, first = event["recurrence"], _local(event["start"], "start").date()
    pattern, limits = recurrence["pattern"], recurrence["range"]
    last = until.astimezone(_local(event["start"], "start").tzinfo).date()
    if limits["type"] == "endDate":
        last = min(last, date.fromisoformat(limits["endDate"]))
    last = min(last, first + NO_END_SPAN)
    count = limits.get("numberOfOccurrences", MAX_OCCURRENCES)
    wanted_days = {WEEKDAYS.index(day) for day in pattern["daysOfWeek"]}
    days, day = [], first
    while day <= last and len(days) < count:
        if pattern["type"] == "daily":
            if (day - first).days % pattern["interval"] == 0:
                days.append(day)
        else:
            week = ((day - timedelta(days=day.weekday())) - (first - timedelta(days=first.weekday()))).days // 7
            if week % pattern["interval"] == 0 and day.weekday() in wanted_days:
                days.append(day)
        day += timedelta(days=1)
    return days


def _instances(event: dict, until: datetime) -> list[tuple[str, datetime, datetime, dict]]:
    """(id, start, end, JSON) of each time the event takes: itself, or each occurrence and
    exception of a series (without the deleted ones). start and end are aware, in the event's zone."""
    start, end = _local(event["start"], "start"), _local(event["end"], "end")
    if event["type"] != "seriesMaster":
        return [(event["id"], start, end, event)]
    length, found = end - start, []
    for day in _occurrence_days(event, until):
        key = day.strftime("%Y%m%d")
        if key in event["_deleted_occurrences"]:
            continue
        occurrence_start = datetime.combine(day, start.time(), start.tzinfo)
        occurrence = {
            **{name: value for name, value in event.items() if name != "recurrence"},
            "id": f"{event['id']}_{key}",
            "type": "occurrence",
            "seriesMasterId": event["id"],
            "start": {"dateTime": _wall(occurrence_start), "timeZone": _zone_name(start.tzinfo)},
            "end": {"dateTime": _wall(occurrence_start + length), "timeZone": _zone_name(start.tzinfo)},
            "recurrence": None,
        }
        changes = event["_exceptions"].get(key)
        if changes:
            occurrence.update(copy.deepcopy(changes), type="exception")
        found.append(
            (occurrence["id"], _local(occurrence["start"], "start"), _local(occurrence["end"], "end"), occurrence)
        )
    return found


def _as_seen(instance: dict, zone) -> dict:
    """An event as Graph returns it, its times in `zone` (all-day events keep their dates: they
    are midnight to midnight wherever one looks at them)."""
    seen = {key: copy.deepcopy(value) for key, value in instance.items() if not key.startswith("_")}
    for key in ("start", "end"):
        moment = _local(instance[key], key)
        if instance["isAllDay"]:
            seen[key] = {"dateTime": _wall(moment.replace(tzinfo=None)), "timeZone": _zone_name(zone)}
        else:
            seen[key] = {"dateTime": _wall(moment.astimezone(zone)), "timeZone": _zone_name(zone)}
    return seen


def _window_locked(state: "MicrosoftState", calendar_id: str, start: datetime, end: datetime) -> dict[str, tuple]:
    """Every instance of the calendar's events that overlaps [start, end): id → (start, end, JSON)."""
    found = {}
    for event in state.events.values():
        if event["_calendar_id"] != calendar_id:
            continue
        for instance_id, first, last, instance in _instances(event, end):
            if first < end and last > start:
                found[instance_id] = (first, last, instance)
    return dict(sorted(found.items(), key=lambda item: (item[1][0], item[0])))


def _event_fields(body: dict, *, current: dict | None = None) -> dict:
    """The writable fields of an event body, checked; with `current`, a PATCH on top of it."""
    fields = {}
    if "subject" in body:
        fields["subject"] = _subject(body) or ""
    if "body" in body:
        item = body["body"]
        if not isinstance(item, dict) or not isinstance(item.get("content", ""), str):
            raise graph_error(400, "body must be an object with a content string.")
        fields["body"] = {"contentType": item.get("contentType", "text"), "content": item.get("content", "")}
    if "location" in body:
        item = body["location"]
        if not isinstance(item, dict) or not isinstance(item.get("displayName", ""), str):
            raise graph_error(400, "location must be an object with a displayName string.")
        fields["location"] = {"displayName": item.get("displayName", "")}
    if "showAs" in body:
        if body["showAs"] not in SHOW_AS:
            raise graph_error(400, f"showAs must be one of {', '.join(SHOW_AS)}.")
        fields["showAs"] = body["showAs"]
    if "isAllDay" in body:
        if not isinstance(body["isAllDay"], bool):
            raise graph_error(400, "isAllDay must be true or false.")
        fields["isAllDay"] = body["isAllDay"]
    if "transactionId" in body and current is None:
        if not isinstance(body["transactionId"], str) or len(body["transactionId"]) > 255:
            raise graph_error(400, "transactionId must be a string of at most 255 characters.")
        fields["transactionId"] = body["transactionId"]
    merged = {**(current or {}), **fields}
    for key in ("start", "end"):
        if key in body:
            moment = _local(body[key], key)
            fields[key] = merged[key] = {"dateTime": _wall(moment), "timeZone": _zone_name(moment.tzinfo)}
    if "start" not in merged or "end" not in merged:
        raise graph_error(400, "An event needs a start and an end.")
    start, end = _local(merged["start"], "start"), _local(merged["end"], "end")
    if end <= start and not (merged.get("isAllDay") and end == start):
        raise graph_error(400, "The end of an event must be after its start.")
    if merged.get("isAllDay") and (start.time() != time() or end.time() != time() or end <= start):
        raise graph_error(
            400, "The start and end of an all-day event must be midnight, and the end at least a day later."
        )
    if "recurrence" in body:
        fields["recurrence"] = _checked_recurrence(body["recurrence"], start)
        fields["type"] = "seriesMaster" if fields["recurrence"] else "singleInstance"
    return fields


def _new_event(user: SandboxUser, calendar: dict, fields: dict) -> dict:
    stamp = _graph_time(datetime.fromtimestamp(now(), UTC))
    return {
        "@odata.etag": "",
        "id": _new_id(),
        "createdDateTime": stamp,
        "lastModifiedDateTime": stamp,
        "changeKey": secrets.token_urlsafe(12),
        "subject": "",
        "body": {"contentType": "text", "content": ""},
        "location": {"displayName": ""},
        "showAs": "busy",
        "isAllDay": False,
        "isCancelled": False,
        "isOrganizer": True,
        "type": "singleInstance",
        "seriesMasterId": None,
        "recurrence": None,
        "transactionId": None,
        "organizer": {"emailAddress": {"name": user.display_name, "address": user.email}},
        "webLink": f"https://outlook.sandbox.invalid/calendar/item/{secrets.token_urlsafe(16)}",
        **fields,
        "_calendar_id": calendar["id"],
        "_owner_id": user.id,
        "_deleted_occurrences": [],
        "_exceptions": {},
    }


def _touched(event: dict) -> None:
    event["changeKey"] = secrets.token_urlsafe(12)
    event["@odata.etag"] = f'W/"{event["changeKey"]}"'
    event["lastModifiedDateTime"] = _graph_time(datetime.fromtimestamp(now(), UTC))


def _event_locked(state: "MicrosoftState", user: SandboxUser, event_id: str, calendar_id: str | None = None):
    """(series or single event, occurrence key or None) for an event or occurrence id of the user."""
    event, key = state.events.get(event_id), None
    if event is None and "_" in event_id:
        master_id, _, key = event_id.rpartition("_")
        event = state.events.get(master_id)
        if event is not None and (event["type"] != "seriesMaster" or key in event["_deleted_occurrences"]):
            event = None
        if event is not None and not any(found[0] == event_id for found in _instances(event, _far_future(event))):
            event = None
    if event is None or event["_owner_id"] != user.id or calendar_id not in (None, event["_calendar_id"]):
        raise graph_error(404, "The specified object was not found in the store.", "ErrorItemNotFound")
    return event, key


def _far_future(event: dict) -> datetime:
    return _local(event["start"], "start") + NO_END_SPAN


def _changed_locked(state: "MicrosoftState", event: dict, change: str) -> list[tuple]:
    """Count a change of the event's calendar and return the notifications it owes (sent by
    `_notify` once the lock is released)."""
    calendar = state.calendars[event["_calendar_id"]]
    calendar["_changes"] += 1
    moment, owner = now(), state.users[event["_owner_id"]]
    pending = []
    for subscription in state.subscriptions.values():
        if subscription["_calendar_id"] != calendar["id"] or subscription["_expires_at"] <= moment:
            continue
        if change not in subscription["changeType"].split(","):
            continue
        notification = {
            "subscriptionId": subscription["id"],
            "subscriptionExpirationDateTime": subscription["expirationDateTime"],
            "changeType": change,
            "resource": f"Users/{owner.id}/Events/{event['id']}",
            "clientState": subscription["clientState"],
            "tenantId": _tenant_id(owner),
            "resourceData": {
                "@odata.type": "#Microsoft.Graph.Event",
                "@odata.id": f"Users/{owner.id}/Events/{event['id']}",
                "@odata.etag": event.get("@odata.etag", ""),
                "id": event["id"],
            },
        }
        pending.append((subscription["notificationUrl"], notification))
    return pending


def _add_event_locked(
    state: "MicrosoftState", user: SandboxUser, calendar: dict, body: dict
) -> tuple[dict, bool, list]:
    """(event, made now, notifications). A transactionId already used in the mailbox answers with
    that event: a POST retried after a lost answer makes no second event."""
    if not calendar["canEdit"]:
        raise graph_error(403, "Access is denied. Check credentials and try again.", "ErrorAccessDenied")
    fields = _event_fields(body)
    transaction = fields.get("transactionId")
    if transaction:
        for event in state.events.values():
            if event["_owner_id"] == user.id and event["transactionId"] == transaction:
                return event, False, []
    event = _new_event(user, calendar, fields)
    _touched(event)
    state.events[event["id"]] = event
    return event, True, _changed_locked(state, event, "created")


def _update_event_locked(state: "MicrosoftState", user: SandboxUser, event_id: str, body: dict, calendar_id=None):
    event, key = _event_locked(state, user, event_id, calendar_id)
    if key is None:
        event.update(_event_fields(body, current=event))
        if event.get("recurrence") is None:
            event["type"] = "singleInstance"
        if event["type"] != "seriesMaster":
            event["_deleted_occurrences"], event["_exceptions"] = [], {}
        seen = event
    else:
        # One occurrence changed: an exception of the series.
        occurrence = next(found[3] for found in _instances(event, _far_future(event)) if found[0] == event_id)
        fields = _event_fields({k: v for k, v in body.items() if k != "recurrence"}, current=occurrence)
        event["_exceptions"][key] = {**event["_exceptions"].get(key, {}), **fields}
        seen = None
    _touched(event)
    pending = _changed_locked(state, event, "updated")
    if seen is None:
        seen = next(found[3] for found in _instances(event, _far_future(event)) if found[0] == event_id)
    return seen, pending


def _delete_event_locked(state: "MicrosoftState", user: SandboxUser, event_id: str, calendar_id=None) -> list:
    event, key = _event_locked(state, user, event_id, calendar_id)
    if key is None:
        del state.events[event["id"]]
        return _changed_locked(state, event, "deleted")
    event["_deleted_occurrences"].append(key)
    _touched(event)
    return _changed_locked(state, event, "updated")


# --- Notifications -----------------------------------------------------------------------------

_deliveries_running: set[threading.Thread] = set()
_deliveries_guard = threading.Lock()


def _notify(pending: list[tuple]) -> None:
    """Deliver notifications in the background, as Graph does: the change's own answer never
    waits on the receiver (which may well call Graph back)."""
    for url, notification in pending:
        thread = threading.Thread(
            target=_deliver, args=(url, notification), name="microsoft-sandbox-notify", daemon=True
        )
        with _deliveries_guard:
            _deliveries_running.add(thread)
        thread.start()


def _deliver(url: str, notification: dict) -> None:
    record = {
        "subscription_id": notification["subscriptionId"],
        "change_type": notification["changeType"],
        "event_id": notification["resourceData"]["id"],
        "url": url,
        "status": None,
        "error": "",
        "at": iso_z(now()),
    }
    try:
        response = requests.post(
            url, json={"value": [notification]}, timeout=NOTIFICATION_TIMEOUT_SECONDS, allow_redirects=False
        )
        record["status"] = response.status_code
    except requests.RequestException as error:
        record["error"] = type(error).__name__
        logger.warning("Microsoft sandbox: a notification was not delivered (%s)", record["error"])
    finally:
        with SANDBOX.lock as state:
            state.deliveries = [*state.deliveries, record][-DELIVERIES_KEPT:]
        with _deliveries_guard:
            _deliveries_running.discard(threading.current_thread())


def wait_for_deliveries(timeout: float = 5) -> bool:
    """Wait until the notifications sent so far (by this process) were delivered or failed;
    whether they all finished in time."""
    deadline = _time.monotonic() + timeout
    while True:
        with _deliveries_guard:
            running = list(_deliveries_running)
        if not running:
            return True
        remaining = deadline - _time.monotonic()
        if remaining <= 0:
            return False
        running[0].join(remaining)


def deliveries() -> list[dict]:
    """Every notification delivery recorded (the last DELIVERIES_KEPT): its subscription, change
    type, event id, the receiver's HTTP status (None when it could not be reached)."""
    with SANDBOX.lock as state:
        return copy.deepcopy(state.deliveries)


# --- Graph endpoints: calendars and events -----------------------------------------------------


def _absolute(request, path: str, params: dict) -> str:
    return with_query(request.build_absolute_uri(path), params)


@SANDBOX.endpoint("GET", "POST")
def calendars(request):
    user = _calendar_scope(request, write=request.method == "POST")
    if request.method == "POST":
        body = SANDBOX.json_object(request)
        if not isinstance(body.get("name"), str) or not body["name"].strip():
            raise graph_error(400, "A calendar needs a name.")
        with SANDBOX.lock as state:
            _calendars_locked(state, user)
            calendar = _new_calendar(user, body["name"].strip(), _new_id("AAMkAGC"))
            state.calendars[calendar["id"]] = calendar
        return JsonResponse(_public(calendar), status=201)
    try:
        size = min(int(request.GET.get("$top", CALENDAR_PAGE_SIZE)), MAX_CALENDAR_PAGE_SIZE)
        skip = int(request.GET.get("$skip", 0))
    except ValueError:
        raise graph_error(400, "$top and $skip must be whole numbers.") from None
    if size < 1 or skip < 0:
        raise graph_error(400, "$top must be positive and $skip not negative.")
    with SANDBOX.lock as state:
        found = [_public(calendar) for calendar in _calendars_locked(state, user)]
    answer = {"@odata.context": f"{GRAPH_CONTEXT}#users('{user.id}')/calendars", "value": found[skip : skip + size]}
    if skip + size < len(found):
        answer["@odata.nextLink"] = _absolute(request, request.path, {"$top": size, "$skip": skip + size})
    return JsonResponse(answer)


@SANDBOX.endpoint("GET", "POST")
def calendar_events(request, calendar_id: str | None = None):
    """/me/events and /me/calendars/{id}/events: list (GET) or make (POST) events."""
    user = _calendar_scope(request, write=request.method == "POST")
    zone = _preferred_zone(request)
    if request.method == "POST":
        body = SANDBOX.json_object(request)
        with SANDBOX.lock as state:
            event, made, pending = _add_event_locked(state, user, _calendar_locked(state, user, calendar_id), body)
            seen = _as_seen(event, zone)
        _notify(pending)
        return JsonResponse(seen, status=201)
    with SANDBOX.lock as state:
        calendar = _calendar_locked(state, user, calendar_id)
        found = [_as_seen(event, zone) for event in state.events.values() if event["_calendar_id"] == calendar["id"]]
    return JsonResponse({"@odata.context": f"{GRAPH_CONTEXT}#users('{user.id}')/events", "value": found})


@SANDBOX.endpoint("GET", "PATCH", "DELETE")
def calendar_event(request, event_id: str, calendar_id: str | None = None):
    """/me/events/{id} and /me/calendars/{cid}/events/{id}, for events and occurrences alike."""
    user = _calendar_scope(request, write=request.method != "GET")
    zone = _preferred_zone(request)
    if request.method == "DELETE":
        with SANDBOX.lock as state:
            pending = _delete_event_locked(state, user, event_id, calendar_id)
        _notify(pending)
        return HttpResponse(status=204)
    if request.method == "PATCH":
        body = SANDBOX.json_object(request)
        with SANDBOX.lock as state:
            if not _calendar_of_event_locked(state, user, event_id)["canEdit"]:
                raise graph_error(403, "Access is denied. Check credentials and try again.", "ErrorAccessDenied")
            instance, pending = _update_event_locked(state, user, event_id, body, calendar_id)
            seen = _as_seen(instance, zone)
        _notify(pending)
        return JsonResponse(seen)
    with SANDBOX.lock as state:
        event, key = _event_locked(state, user, event_id, calendar_id)
        if key is not None:
            event = next(found[3] for found in _instances(event, _far_future(event)) if found[0] == event_id)
        return JsonResponse(_as_seen(event, zone))


def _calendar_of_event_locked(state: "MicrosoftState", user: SandboxUser, event_id: str) -> dict:
    event, _ = _event_locked(state, user, event_id)
    return state.calendars[event["_calendar_id"]]


@SANDBOX.endpoint("POST")
def cancel_event_endpoint(request, event_id: str):
    """POST /me/events/{id}/cancel: the organizer cancels; attendees' copies show isCancelled."""
    user = _calendar_scope(request, write=True)
    with SANDBOX.lock as state:
        pending = _cancel_locked(state, user, event_id)
    _notify(pending)
    return HttpResponse(status=202)


def _cancel_locked(state: "MicrosoftState", user: SandboxUser, event_id: str) -> list:
    event, key = _event_locked(state, user, event_id)
    if key is None:
        event["isCancelled"] = True
    else:
        event["_exceptions"][key] = {**event["_exceptions"].get(key, {}), "isCancelled": True}
    _touched(event)
    return _changed_locked(state, event, "updated")


# --- Graph endpoints: calendarView delta -------------------------------------------------------


def _remember(store: dict, token: str, record: dict, *, keep: int, same=lambda other: True) -> None:
    """Store a token's record, forgetting the oldest of its kind beyond `keep`."""
    store[token] = record
    kin = [key for key, other in store.items() if same(other)]
    for key in kin[:-keep]:
        del store[key]


@SANDBOX.endpoint("GET")
def calendar_view_delta(request, calendar_id: str):
    user = _calendar_scope(request)
    zone, size = _preferred_zone(request), _page_size(request)
    skip_token, delta_token = request.GET.get("$skiptoken"), request.GET.get("$deltatoken")
    with SANDBOX.lock as state:
        calendar = _calendar_locked(state, user, calendar_id)
        if skip_token is not None:
            paging = state.skip_tokens.get(skip_token)
            if paging is None or paging["calendar_id"] != calendar["id"] or paging["epoch"] != calendar["_sync_epoch"]:
                raise _sync_state_gone()
            items, next_delta = paging["items"], paging["delta_token"]
        else:
            items, next_delta = _delta_locked(state, request, calendar, zone, delta_token)
        page, rest = items[:size], items[size:]
        answer = {"@odata.context": f"{GRAPH_CONTEXT}#Collection(event)", "value": page}
        base = request.build_absolute_uri(request.path)
        if rest:
            token = secrets.token_urlsafe(24)
            record = {"calendar_id": calendar["id"], "epoch": calendar["_sync_epoch"], "items": rest}
            _remember(state.skip_tokens, token, {**record, "delta_token": next_delta}, keep=SKIP_TOKENS_KEPT)
            answer["@odata.nextLink"] = f"{base}?$skiptoken={token}"  # URL-safe tokens: nothing to quote
        else:
            answer["@odata.deltaLink"] = f"{base}?$deltatoken={next_delta}"
    return JsonResponse(answer)


def _sync_state_gone() -> SandboxError:
    return graph_error(410, "The sync state generation is not found. Sync again from the start.", "SyncStateNotFound")


def _delta_locked(state: "MicrosoftState", request, calendar: dict, zone, delta_token: str | None):
    """Every item of a new listing (no token) or the changes since a deltatoken, and the next deltatoken."""
    if delta_token is not None:
        known = state.delta_tokens.get(delta_token)
        if known is None or known["calendar_id"] != calendar["id"] or known["epoch"] != calendar["_sync_epoch"]:
            raise _sync_state_gone()
        start, end, seen_before = known["start"], known["end"], known["seen"]
    else:
        start, end = _utc_param(request, "startDateTime"), _utc_param(request, "endDateTime")
        if start is None or end is None:
            raise graph_error(
                400,
                "This request requires a time window specified by the query string parameters "
                "StartDateTime and EndDateTime.",
                "ErrorInvalidParameter",
            )
        if end <= start:
            raise graph_error(400, "EndDateTime must be after StartDateTime.", "ErrorInvalidParameter")
        seen_before = {}
    window = _window_locked(state, calendar["id"], start, end)
    # An instance's version: its series' changeKey (an exception or a deleted occurrence changes it).
    seen_now = {instance_id: instance["changeKey"] for instance_id, (_, _, instance) in window.items()}
    items = [
        _as_seen(instance, zone)
        for instance_id, (_, _, instance) in window.items()
        if seen_before.get(instance_id) != seen_now[instance_id]
    ]
    items += [{"id": gone, "@removed": {"reason": "deleted"}} for gone in seen_before if gone not in seen_now]
    # calendarView delta also sends the series master of listed occurrences; clients skip it.
    masters = {item["seriesMasterId"] for item in items if item.get("seriesMasterId")}
    items += [_as_seen(state.events[master], zone) for master in sorted(masters) if master in state.events]
    token = secrets.token_urlsafe(24)
    record = {"calendar_id": calendar["id"], "epoch": calendar["_sync_epoch"], "start": start, "end": end}
    same_calendar = lambda other: other["calendar_id"] == calendar["id"]  # noqa: E731
    _remember(state.delta_tokens, token, {**record, "seen": seen_now}, keep=DELTA_TOKENS_KEPT, same=same_calendar)
    return items, token


# --- Graph endpoints: getSchedule --------------------------------------------------------------


@SANDBOX.endpoint("POST")
def get_schedule(request):
    """POST /me/calendar/getSchedule: the default calendars' items of some mailboxes in a window."""
    user = _calendar_scope(request)
    body = SANDBOX.json_object(request)
    schedules = body.get("schedules")
    if not isinstance(schedules, list) or not schedules or not all(isinstance(item, str) for item in schedules):
        raise graph_error(400, "schedules must be a list of email addresses.", "ErrorInvalidParameter")
    start, end = _local(body.get("startTime"), "startTime"), _local(body.get("endTime"), "endTime")
    if end <= start:
        raise graph_error(400, "endTime must be after startTime.", "ErrorInvalidParameter")
    interval = body.get("availabilityViewInterval", 30)
    if type(interval) is not int or not 5 <= interval <= 1440:
        raise graph_error(400, "availabilityViewInterval must be from 5 to 1440 minutes.", "ErrorInvalidParameter")
    zone = start.tzinfo
    with SANDBOX.lock as state:
        found = [_schedule_locked(state, address, start, end, interval, zone, user) for address in schedules]
    return JsonResponse(
        {"@odata.context": f"{GRAPH_CONTEXT}#Collection(microsoft.graph.scheduleInformation)", "value": found}
    )


def _schedule_locked(state, address: str, start: datetime, end: datetime, interval: int, zone, asking) -> dict:
    owner = SANDBOX.find_user_locked(state, address)
    if owner is None:
        return {
            "scheduleId": address,
            "availabilityView": "",
            "error": {"message": "The specified mailbox could not be found.", "responseCode": "ErrorMailboxNotFound"},
        }
    calendar = _calendars_locked(state, owner)[0]
    items, slots = [], []
    for first, last, instance in _window_locked(state, calendar["id"], start, end).values():
        if instance["isCancelled"]:
            continue
        if instance["isAllDay"]:
            # Floating dates: midnight to midnight in the zone asked about.
            first = datetime.combine(first.date(), time(), zone)
            last = datetime.combine(last.date(), time(), zone)
        seen = {"status": instance["showAs"], "isPrivate": False}
        seen["start"] = {"dateTime": _wall(first.astimezone(zone)), "timeZone": _zone_name(zone)}
        seen["end"] = {"dateTime": _wall(last.astimezone(zone)), "timeZone": _zone_name(zone)}
        if owner.id == asking.id:
            seen["subject"] = instance["subject"]
        items.append(seen)
        slots.append((first, last, AVAILABILITY_DIGITS.get(instance["showAs"], "0")))
    view, moment = "", start
    while moment < end:
        following = moment + timedelta(minutes=interval)
        view += max((digit for first, last, digit in slots if first < following and last > moment), default="0")
        moment = following
    return {"scheduleId": address, "availabilityView": view, "scheduleItems": items, "workingHours": None}


# --- Graph endpoints: subscriptions ------------------------------------------------------------


def _subscription_expiry(value) -> tuple[float, str]:
    if not isinstance(value, str):
        raise graph_error(400, "expirationDateTime is required.", "ValidationError")
    try:
        moment = datetime.fromisoformat(re.sub(r"(\.\d{6})\d+", r"\1", value).replace("Z", "+00:00"))
    except ValueError:
        raise graph_error(400, "expirationDateTime is not a date and time.", "ValidationError") from None
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    seconds, at = moment.timestamp(), now()
    if seconds <= at:
        raise graph_error(400, "Subscription expiration can only be in the future.", "ValidationError")
    if seconds > at + MAX_SUBSCRIPTION_MINUTES * 60:
        raise graph_error(
            400,
            f"Subscription expiration can only be {MAX_SUBSCRIPTION_MINUTES} minutes in the future.",
            "ValidationError",
        )
    return seconds, _graph_time(moment)


def _notification_url(value) -> str:
    parts = urlsplit(value) if isinstance(value, str) else None
    # Graph insists on HTTPS; the sandbox lets this machine's plain-HTTP server receive too.
    if (
        parts is None
        or not parts.netloc
        or not (parts.scheme == "https" or (parts.scheme == "http" and parts.hostname in LOOPBACK_HOSTS))
    ):
        raise graph_error(400, "The notificationUrl must be an https URL.", "ValidationError")
    return value


def _validated(url: str) -> None:
    """Graph's handshake: POST ?validationToken=<random> to the notificationUrl, which must answer
    200 with exactly that token as text/plain within 10 seconds."""
    token = f"Validation: Testing client application reachability for subscription Request-Id: {uuid.uuid4()}"
    try:
        response = requests.post(
            with_query(url, {"validationToken": token}),
            data=b"",
            headers={"Content-Type": "text/plain; charset=utf-8"},
            timeout=VALIDATION_TIMEOUT_SECONDS,
            allow_redirects=False,
        )
    except requests.RequestException as error:
        raise graph_error(
            400,
            f"Subscription validation request failed. Notification endpoint unreachable ({type(error).__name__}).",
            "ValidationError",
        ) from None
    plain = response.headers.get("Content-Type", "").split(";")[0].strip().lower() == "text/plain"
    if response.status_code != 200 or response.text != token or not plain:
        raise graph_error(
            400,
            "Subscription validation request failed. Response must exactly match validationToken query parameter "
            f"and be text/plain with status 200 (got HTTP {response.status_code}).",
            "ValidationError",
        )


def _subscription_locked(state: "MicrosoftState", user: SandboxUser, subscription_id: str) -> dict:
    subscription = state.subscriptions.get(subscription_id)
    if subscription is not None and subscription["_expires_at"] <= now():
        del state.subscriptions[subscription_id]  # Graph deletes a lapsed subscription
        subscription = None
    if subscription is None or subscription["_owner_id"] != user.id:
        raise graph_error(404, f"The object was not found: {subscription_id}.", "ResourceNotFound")
    return subscription


@SANDBOX.endpoint("POST")
def subscriptions_endpoint(request):
    user = _calendar_scope(request)
    body = SANDBOX.json_object(request)
    changes = body.get("changeType")
    if (
        not isinstance(changes, str)
        or not changes
        or any(change not in ("created", "updated", "deleted") for change in changes.split(","))
    ):
        raise graph_error(400, "changeType must be created, updated, deleted or a list of them.", "ValidationError")
    resource = RESOURCE_PATTERN.match(str(body.get("resource", "")))
    if resource is None:
        raise graph_error(400, "The sandbox subscribes to me/events or me/calendars/{id}/events.", "ValidationError")
    client_state = body.get("clientState")
    if client_state is not None and (not isinstance(client_state, str) or len(client_state) > 128):
        raise graph_error(400, "clientState must be a string of at most 128 characters.", "ValidationError")
    expires_at, expiration = _subscription_expiry(body.get("expirationDateTime"))
    url = _notification_url(body.get("notificationUrl"))
    with SANDBOX.lock as state:
        calendar = _calendar_locked(state, user, resource.group("calendar"))
        client_id = state.access_tokens[SANDBOX.bearer_value(request)].client_id
    _validated(url)  # outside the lock: the receiver may call Graph while it answers
    subscription = {
        "@odata.context": f"{GRAPH_CONTEXT}#subscriptions/$entity",
        "id": str(uuid.uuid4()),
        "resource": body["resource"],
        "applicationId": client_id,
        "changeType": changes,
        "clientState": client_state,
        "notificationUrl": url,
        "expirationDateTime": expiration,
        "creatorId": user.id,
        "latestSupportedTlsVersion": "v1_2",
        "_owner_id": user.id,
        "_calendar_id": calendar["id"],
        "_expires_at": expires_at,
    }
    with SANDBOX.lock as state:
        state.subscriptions[subscription["id"]] = subscription
    return JsonResponse(_public(subscription), status=201)


@SANDBOX.endpoint("GET", "PATCH", "DELETE")
def subscription_endpoint(request, subscription_id: str):
    user = _calendar_scope(request)
    body = SANDBOX.json_object(request) if request.method == "PATCH" else {}
    with SANDBOX.lock as state:
        subscription = _subscription_locked(state, user, subscription_id)
        if request.method == "DELETE":
            del state.subscriptions[subscription_id]
            return HttpResponse(status=204)
        if request.method == "PATCH":
            subscription["_expires_at"], subscription["expirationDateTime"] = _subscription_expiry(
                body.get("expirationDateTime")
            )
        return JsonResponse(_public(subscription))


# --- Python helpers for tests and the control page ---------------------------------------------


def _user_locked(state: "MicrosoftState", email: str) -> SandboxUser:
    return SANDBOX.user_for_email_locked(state, email)


def calendars_of(email: str = DEFAULT_EMAIL) -> list[dict]:
    """The user's calendars as Graph lists them (the default one made on first use)."""
    with SANDBOX.lock as state:
        return [_public(calendar) for calendar in _calendars_locked(state, _user_locked(state, email))]


def default_calendar_id(email: str = DEFAULT_EMAIL) -> str:
    return calendars_of(email)[0]["id"]


def add_calendar(email: str, name: str, *, can_edit: bool = True) -> str:
    """Another calendar of the user (`can_edit` False: one shared with them read-only); its id."""
    with SANDBOX.lock as state:
        user = _user_locked(state, email)
        _calendars_locked(state, user)
        calendar = _new_calendar(user, name, _new_id("AAMkAGC"), can_edit=can_edit)
        state.calendars[calendar["id"]] = calendar
    return calendar["id"]


def _time_body(moment: datetime, time_zone: str | None) -> dict:
    if time_zone:
        zone = UTC if time_zone == "UTC" else ZoneInfo(time_zone)
        moment = moment.astimezone(zone) if moment.tzinfo else moment.replace(tzinfo=zone)
    elif moment.tzinfo is None:
        raise ValueError("give an aware datetime or a time_zone")
    elif not isinstance(moment.tzinfo, ZoneInfo):
        moment = moment.astimezone(UTC)  # a fixed offset has no zone name Graph would take
    return {"dateTime": _wall(moment), "timeZone": _zone_name(moment.tzinfo)}


def add_event(
    email: str,
    start: datetime,
    end: datetime,
    *,
    calendar_id: str | None = None,
    all_day: bool = False,
    show_as: str = "busy",
    recurrence: dict | None = None,
    subject: str = "Busy",
    time_zone: str | None = None,
    transaction_id: str | None = None,
) -> str:
    """An event the user made in Outlook (notifications go out as for any change); its id.
    `start`/`end` aware, or wall times in `time_zone`; for `all_day`, midnights (or dates)."""
    if all_day:
        start, end = (_midnight(value) for value in (start, end))
        time_zone = time_zone or "UTC"
    body = {
        "subject": subject,
        "start": _time_body(start, time_zone),
        "end": _time_body(end, time_zone),
        "isAllDay": all_day,
        "showAs": show_as,
    }
    if recurrence is not None:
        body["recurrence"] = recurrence
    if transaction_id is not None:
        body["transactionId"] = transaction_id
    with SANDBOX.lock as state:
        user = _user_locked(state, email)
        event, _, pending = _add_event_locked(state, user, _calendar_locked(state, user, calendar_id), body)
    _notify(pending)
    return event["id"]


def _midnight(value) -> datetime:
    day = value.date() if isinstance(value, datetime) else value
    return datetime.combine(day, time())


def move_event(event_id: str, start: datetime, end: datetime, *, time_zone: str | None = None, **changes) -> None:
    """Move an event, a series or one occurrence (which becomes an exception); `changes` are more
    Graph fields (showAs="free" …). Raises LookupError for an unknown event."""
    body = {"start": _time_body(start, time_zone), "end": _time_body(end, time_zone), **changes}
    _as_owner(event_id, lambda state, user: _update_event_locked(state, user, event_id, body)[1])


def change_event(event_id: str, **changes) -> None:
    """Change an event's Graph fields (showAs, subject, isAllDay …) without moving it."""
    _as_owner(event_id, lambda state, user: _update_event_locked(state, user, event_id, changes)[1])


def delete_event(event_id: str) -> None:
    """Delete an event, a series or one occurrence of it. Raises LookupError for an unknown one."""
    _as_owner(event_id, lambda state, user: _delete_event_locked(state, user, event_id))


def cancel_event(event_id: str) -> None:
    """The organizer cancelled it: it stays, with isCancelled true (as attendees see it)."""
    _as_owner(event_id, lambda state, user: _cancel_locked(state, user, event_id))


def _as_owner(event_id: str, change) -> None:
    with SANDBOX.lock as state:
        master = state.events.get(event_id) or state.events.get(event_id.rpartition("_")[0])
        if master is None:
            raise LookupError(f"No such event: {event_id}")
        try:
            pending = change(state, state.users[master["_owner_id"]])
        except SandboxError as error:
            if error.status == 404:
                raise LookupError(f"No such event: {event_id}") from error
            raise ValueError(error.body["error"]["message"]) from error
    _notify(pending)


def events_of(email: str = DEFAULT_EMAIL, calendar_id: str | None = None) -> list[dict]:
    """The user's events (of one calendar, if given) as Graph returns them, in UTC; series as
    their masters (not expanded)."""
    with SANDBOX.lock as state:
        user = _user_locked(state, email)
        wanted = {calendar["id"] for calendar in _calendars_locked(state, user)}
        if calendar_id is not None:
            wanted &= {calendar_id}
        return [_as_seen(event, UTC) for event in state.events.values() if event["_calendar_id"] in wanted]


def subscriptions() -> list[dict]:
    """Every subscription (lapsed ones too), as Graph shows them, plus the owner's email and whether it lapsed."""
    with SANDBOX.lock as state:
        moment = now()
        return [
            {**_public(item), "email": state.users[item["_owner_id"]].email, "expired": item["_expires_at"] <= moment}
            for item in state.subscriptions.values()
        ]


def expire_subscriptions(email: str | None = None) -> int:
    """Let subscriptions (all, or one user's) lapse now, as if their expiry had passed; how many."""
    with SANDBOX.lock as state:
        user_id = SANDBOX.user_or_error_locked(state, email).id if email else None
        moment, changed = now(), 0
        for item in state.subscriptions.values():
            if user_id in (None, item["_owner_id"]) and item["_expires_at"] > moment:
                item["_expires_at"] = moment - 1
                changed += 1
        return changed


def expire_delta_tokens(email: str | None = None) -> int:
    """Make Graph forget the sync state of calendars (all, or one user's): their deltaLinks and
    nextLinks answer 410 SyncStateNotFound from now on. How many calendars."""
    with SANDBOX.lock as state:
        user_id = SANDBOX.user_or_error_locked(state, email).id if email else None
        changed = 0
        for calendar in state.calendars.values():
            if user_id in (None, calendar["_owner_id"]):
                calendar["_sync_epoch"] += 1
                changed += 1
        return changed


# --- Control API and the control page's calendars ----------------------------------------------

CONTROL_PAGE_EVENTS = 20  # per calendar: the page lists the next ones


def _control_call(sandbox, action):
    try:
        return action()
    except (LookupError, ValueError, TypeError) as error:
        raise sandbox.error(404 if isinstance(error, LookupError) else 400, str(error)) from error


def _known_user(email: str) -> None:
    with SANDBOX.lock as state:
        SANDBOX.user_or_error_locked(state, email)


@control_endpoint("POST")
def control_add_calendar(request, sandbox):
    body = sandbox.json_object(request)
    email = email_param(sandbox, body) or DEFAULT_EMAIL
    name = body.get("name")
    if not isinstance(name, str) or not name.strip():
        raise sandbox.error(400, "name (a non-empty string) is required.")
    can_edit = body.get("can_edit", True)
    return JsonResponse(
        {"id": _control_call(sandbox, lambda: add_calendar(email, name.strip(), can_edit=bool(can_edit)))}
    )


def _moment_param(value, name: str) -> datetime:
    if not isinstance(value, str):
        raise ValueError(f"{name} must be an ISO 8601 string")
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


@control_endpoint("POST")
def control_add_event(request, sandbox):
    """{email, start, end (ISO; without offset: wall times in time_zone), time_zone, calendar_id,
    all_day, show_as, subject, recurrence (Graph's)} → {"id"}."""
    body = sandbox.json_object(request)
    email = email_param(sandbox, body) or DEFAULT_EMAIL
    keys = ("calendar_id", "show_as", "recurrence", "subject", "time_zone")

    def add() -> str:
        if body.get("show_as", "busy") not in SHOW_AS:
            raise ValueError(f"show_as must be one of {', '.join(SHOW_AS)}")
        start, end = _moment_param(body.get("start"), "start"), _moment_param(body.get("end"), "end")
        extra = {key: body[key] for key in keys if key in body}
        return add_event(email, start, end, all_day=bool(body.get("all_day")), **extra)

    return JsonResponse({"id": _control_call(sandbox, add)})


@control_endpoint("POST")
def control_delete_event(request, sandbox):
    body = sandbox.json_object(request)
    event_id = body.get("event_id")
    if not isinstance(event_id, str) or not event_id:
        raise sandbox.error(400, "event_id (a string) is required.")
    _control_call(sandbox, lambda: delete_event(event_id))
    return JsonResponse({"deleted": event_id})


@control_endpoint("GET")
def control_subscriptions(request, sandbox):
    return JsonResponse({"subscriptions": subscriptions(), "deliveries": deliveries()})


@control_endpoint("POST")
def control_expire_subscriptions(request, sandbox):
    body = sandbox.json_object(request, empty_ok=True)
    email = email_param(sandbox, body)
    return JsonResponse({"expired_subscriptions": _control_call(sandbox, lambda: expire_subscriptions(email))})


@control_endpoint("POST")
def control_expire_delta_tokens(request, sandbox):
    body = sandbox.json_object(request, empty_ok=True)
    email = email_param(sandbox, body)
    return JsonResponse({"expired_calendars": _control_call(sandbox, lambda: expire_delta_tokens(email))})


def _page_event(instance_start: datetime, instance_end: datetime, event: dict) -> dict:
    zone = instance_start.tzinfo
    if event["isAllDay"]:
        days = (instance_end.date() - instance_start.date()).days
        when = f"{instance_start:%Y-%m-%d} all day" + (f" ({days} days)" if days > 1 else "")
    else:
        when = f"{instance_start:%Y-%m-%d %H:%M}–{instance_end:%H:%M} {_zone_name(zone)}"
    return {
        "id": event["id"],
        "subject": event["subject"] or "(no subject)",
        "when": when,
        "shows_as": event["showAs"],
        "cancelled": event["isCancelled"],
        "repeats": bool(event.get("seriesMasterId")),
        "ours": str(event.get("transactionId") or "").startswith("tsp-"),
    }


def _page_calendars_locked(state: MicrosoftState) -> list[dict]:
    """What the control page shows of each user's calendars: their coming events and occurrences."""
    moment = datetime.fromtimestamp(now(), UTC)
    start, end = moment - timedelta(days=1), moment + timedelta(days=366)
    users = []
    for number, user in enumerate(state.users.values(), 1):
        calendars = []
        for calendar in _calendars_locked(state, user):
            window = list(_window_locked(state, calendar["id"], start, end).values())
            calendars.append(
                {
                    "key": f"{number}-{len(calendars) + 1}",  # the page's element ids
                    "id": calendar["id"],
                    "name": calendar["name"],
                    "default": calendar["isDefaultCalendar"],
                    "can_edit": calendar["canEdit"],
                    "subscribed": any(
                        item["_calendar_id"] == calendar["id"] and item["_expires_at"] > now()
                        for item in state.subscriptions.values()
                    ),
                    "events": [_page_event(*found) for found in window[:CONTROL_PAGE_EVENTS]],
                    "more_events": max(0, len(window) - CONTROL_PAGE_EVENTS),
                }
            )
        users.append({"email": user.email, "calendars": calendars})
    return users


def _back_to_control(request, level, text: str):
    messages.add_message(request, level, text)
    return redirect("microsoft_sandbox:control")


def _page_only(view):
    """A form of the control page: the same callers as the control API, with the page's CSRF token."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if not may_control(request):
            return HttpResponse(CONTROL_REFUSED, status=403, content_type="text/plain; charset=utf-8")
        return view(request, *args, **kwargs)

    return require_POST(wrapper)


@_page_only
def control_page_add_event(request, sandbox):
    """The control page's "Add event": a date and wall times in a zone, or all day; how it shows."""
    form = request.POST
    email, calendar_id = form.get("email", ""), form.get("calendar_id", "")
    show_as = form.get("show_as", "busy")
    subject = form.get("subject", "").strip()[:SUBJECT_LIMIT] or "Busy"
    try:
        _known_user(email)
        if show_as not in SHOW_AS:
            raise ValueError(f"show as must be one of {', '.join(SHOW_AS)}")
        day = date.fromisoformat(form.get("date", ""))
        if form.get("all_day") == "on":
            start, end, zone = datetime.combine(day, time()), datetime.combine(day + timedelta(days=1), time()), "UTC"
        else:
            zone = form.get("time_zone", "").strip() or "UTC"
            _zone(zone, "time zone")
            start = datetime.combine(day, time.fromisoformat(form.get("start_time", "")))
            end = datetime.combine(day, time.fromisoformat(form.get("end_time", "")))
        add_event(
            email,
            start,
            end,
            calendar_id=calendar_id,
            all_day=form.get("all_day") == "on",
            show_as=show_as,
            subject=subject,
            time_zone=zone,
        )
    except SandboxError as error:
        return _back_to_control(request, messages.ERROR, f"Event not added: {error.body['error']['message']}")
    except (LookupError, ValueError) as error:
        return _back_to_control(request, messages.ERROR, f"Event not added: {error}")
    return _back_to_control(request, messages.SUCCESS, f'"{subject}" added for {email}.')


@_page_only
def control_page_delete_event(request, sandbox):
    try:
        delete_event(request.POST.get("event_id", ""))
    except (LookupError, ValueError) as error:
        return _back_to_control(request, messages.ERROR, f"Event not deleted: {error}")
    return _back_to_control(request, messages.SUCCESS, "Event deleted.")


@_page_only
def control_page_add_calendar(request, sandbox):
    form = request.POST
    email, name = form.get("email", ""), form.get("name", "").strip()
    try:
        _known_user(email)
        if not name:
            raise ValueError("give it a name")
        add_calendar(email, name[:200], can_edit=form.get("read_only") != "on")
    except (LookupError, ValueError) as error:
        return _back_to_control(request, messages.ERROR, f"Calendar not added: {error}")
    return _back_to_control(request, messages.SUCCESS, f'Calendar "{name[:200]}" added for {email}.')


def control_urlpatterns() -> list:
    """Microsoft's own controls, beside the shared ones (common.control_urlpatterns)."""
    bound = {"sandbox": SANDBOX}
    return [
        path("control/calendars", control_add_calendar, bound, name="control_add_calendar"),
        path("control/events", control_add_event, bound, name="control_add_event"),
        path("control/events/delete", control_delete_event, bound, name="control_delete_event"),
        path("control/subscriptions", control_subscriptions, bound, name="control_subscriptions"),
        path("control/expire-subscriptions", control_expire_subscriptions, bound, name="control_expire_subscriptions"),
        path("control/expire-delta-tokens", control_expire_delta_tokens, bound, name="control_expire_delta_tokens"),
        path("control/page/add-event", control_page_add_event, bound, name="control_page_add_event"),
        path("control/page/delete-event", control_page_delete_event, bound, name="control_page_delete_event"),
        path("control/page/add-calendar", control_page_add_calendar, bound, name="control_page_add_calendar"),
    ]
