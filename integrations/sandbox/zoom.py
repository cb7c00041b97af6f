"""The Zoom sandbox: a local fake of Zoom's OAuth and REST API, for tests and the demo.

It follows shared/reference/providers.md: the same paths, status codes, error bodies, token rotation
and int64 meeting ids, so the product's real Zoom client runs against it unchanged (set
ZOOM_OAUTH_BASE_URL=<site>/sandbox/zoom and ZOOM_API_BASE_URL=<site>/sandbox/zoom/v2).

What every provider shares (state in the cache, clock, users, tokens, failure injection, the
consent page and the control API) is in common.py; this module is what only Zoom does: its
scopes, meetings and their list, its daily write limit, and the app_deauthorized webhook. The
module-level functions are the Python helpers tests use (`reset()`, `issue_tokens(email)`, ...).

Sandbox time is `now()`: real time plus an offset that `advance_clock()` moves forward. Tests may
also monkeypatch `zoom.now`. Webhook timestamps use the real clock instead, because receivers
compare them with their own clock to reject stale deliveries.
"""

import base64
import copy
import hashlib
import hmac
import json
import logging
import secrets
import threading
import time
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import requests
from django.conf import settings
from django.contrib import messages
from django.core import signing
from django.http import HttpResponse, JsonResponse
from django.urls import reverse

from .common import (
    ACCESS_TOKEN_TTL_SECONDS,
    ProviderSandbox,
    SandboxError,
    SandboxState,
    SandboxUser,
    control_endpoint,
    email_param,
    identity_digest,
    iso_z,
)

logger = logging.getLogger(__name__)

# Refresh tokens never expire here: their real lifetime is unknown (providers.md). To simulate a
# dead refresh token, use control/expire-tokens with "refresh": true.
DAILY_MEETING_WRITE_LIMIT = 100
DEFAULT_EMAIL = "zoom.user@example.com"
MEETING_HOST = "https://zoom.sandbox.invalid"  # .invalid: a join link from the sandbox can never reach anything
WEBHOOK_TIMEOUT = (3.05, 5)  # Zoom gives receivers 3 s; a little more keeps slow test machines green
TOPIC_LIMIT = 200
AGENDA_LIMIT = 2000
DEFAULT_TOPIC = "Zoom Meeting"
DEFAULT_DURATION = 60
DEFAULT_MEETING_SETTINGS = {
    "host_video": False,
    "participant_video": False,
    "join_before_host": False,
    "jbh_time": 0,
    "mute_upon_entry": False,
    "waiting_room": False,
    "approval_type": 2,
    "audio": "both",
    "auto_recording": "none",
}

# Scopes each call accepts: (the granular scope Zoom names in its error, every scope that grants it).
USER_READ = ("user:read:user", {"user:read", "user:read:admin", "user:read:user"})
MEETING_CREATE = ("meeting:write:meeting", {"meeting:write", "meeting:write:admin", "meeting:write:meeting"})
MEETING_UPDATE = ("meeting:update:meeting", {"meeting:write", "meeting:write:admin", "meeting:update:meeting"})
MEETING_DELETE = ("meeting:delete:meeting", {"meeting:write", "meeting:write:admin", "meeting:delete:meeting"})
# Listing a user's meetings: Zoom's classic meeting:write ("view and manage") grants it, as do the read scopes.
MEETING_LIST = (
    "meeting:read:list_meetings",
    {
        "meeting:read",
        "meeting:read:admin",
        "meeting:read:list_meetings",
        "meeting:read:list_meetings:admin",
        "meeting:write",
        "meeting:write:admin",
    },
)
LIST_TYPES = ("scheduled", "live", "upcoming")
LIST_PAGE_SIZE_DEFAULT = 30
LIST_PAGE_SIZE_MAX = 300
LIST_AGENDA_LIMIT = 250  # Zoom shortens agendas in lists
PAGE_TOKEN_SALT = "zoom-sandbox.next-page-token"
PAGE_TOKEN_TTL = 15 * 60
# Reading a meeting is for tests and inspection: the sandbox lets meeting:write read too.
MEETING_READ = (
    "meeting:read:meeting",
    {"meeting:read", "meeting:read:admin", "meeting:read:meeting", *MEETING_CREATE[1]},
)


# --- The provider ------------------------------------------------------------------------------


class ZoomState(SandboxState):
    def __init__(self):
        super().__init__()
        self.meetings: dict[int, dict] = {}  # the meeting JSON as Zoom returns it
        self.meeting_writes: dict[tuple[str, str], int] = {}  # (user id, UTC day) → creates + updates


class ZoomSandbox(ProviderSandbox):
    name = "zoom"
    title = "Zoom"
    settings_prefix = "ZOOM"
    default_email = DEFAULT_EMAIL
    account_label = "Sandbox Zoom account (email)"
    state_class = ZoomState
    remove_app_label = "Remove app (send app_deauthorized)"
    rate_limit_message = "You have reached the maximum per-second rate limit for this API. Try again later."

    def now(self) -> float:
        return now()  # the module's function, looked up at call time: tests may monkeypatch it

    def user_json(self, user: SandboxUser) -> dict:
        return {
            "id": user.id,
            "email": user.email,
            "first_name": user.first_name,
            "last_name": user.last_name,
            "display_name": user.display_name,
            "type": 1,
            "account_id": user.account_id,
            "timezone": user.timezone,
            "pmi": _personal_meeting_id(user),
            "status": "active",
        }

    def error_body(self, status: int, message: str) -> dict:
        # Zoom answers a bad request with its validation code 300; other statuses carry themselves.
        return {"code": 300 if status == 400 else status, "message": message}

    def user_summary_locked(self, state: ZoomState, user: SandboxUser, moment: float) -> dict:
        return {
            **super().user_summary_locked(state, user, moment),
            "meetings": self.items_of_locked(state, user),
            "meeting_writes_today": state.meeting_writes.get((user.id, _utc_day()), 0),
        }

    def items_of_locked(self, state: ZoomState, user: SandboxUser) -> int:
        return sum(1 for meeting in state.meetings.values() if meeting["host_id"] == user.id)

    def extra_summary_locked(self, state: ZoomState, moment: float) -> dict:
        return {"meetings": [_meeting_summary(meeting) for meeting in state.meetings.values()]}

    def remove_app_help(self) -> str:
        return (
            f'"Remove app" revokes the user\'s tokens and sends a signed app_deauthorized webhook to '
            f"{default_webhook_url()}, as Zoom does when someone removes the app in its Marketplace."
        )

    def remove_app(self, email: str) -> tuple[int, str]:
        """What a user removing the app in Zoom's Marketplace causes."""
        result = deauthorize(email)
        if result.get("webhook_status") is None:
            return messages.ERROR, f"Tokens revoked, but the webhook could not be delivered to {result['webhook_url']}."
        return (
            messages.SUCCESS,
            f"Tokens of {result['email']} revoked; app_deauthorized delivered: HTTP {result['webhook_status']}.",
        )


SANDBOX = ZoomSandbox()


def now() -> float:
    """Sandbox time, epoch seconds: decides token and code expiry and the rate-limit day."""
    return SANDBOX.clock_time()


def _utc_day() -> str:
    return datetime.fromtimestamp(now(), UTC).date().isoformat()


def _personal_meeting_id(user: SandboxUser) -> int:
    return 1_000_000_000 + int.from_bytes(identity_digest("zoom", user.email)[:8]) % 9_000_000_000


def api_error(status: int, code: int, message: str, **extra) -> SandboxError:
    return SandboxError(status, {"code": code, "message": message, **extra})


def oauth_error(status: int, reason: str, error: str) -> SandboxError:
    return SandboxError(status, {"reason": reason, "error": error})


# --- Python helpers for tests ------------------------------------------------------------------

reset = SANDBOX.reset
advance_clock = SANDBOX.advance_clock
get_or_create_user = SANDBOX.get_or_create_user
expire_access_tokens = SANDBOX.expire_access_tokens
inject_failure = SANDBOX.inject_failure
state_summary = SANDBOX.state_summary
revoke_grant = SANDBOX.revoke_grant


def _token_body(access: str, refresh: str, scope: str) -> dict:
    return {
        "access_token": access,
        "token_type": "bearer",
        "refresh_token": refresh,
        "expires_in": ACCESS_TOKEN_TTL_SECONDS,
        "scope": scope,
    }


def issue_tokens(email: str = DEFAULT_EMAIL, scope: str | None = None) -> dict:
    """A fresh token pair for this user, as if they had just authorized the app (earlier tokens
    are revoked). Returns the token endpoint's JSON without api_url. A shortcut for tests that
    need a connected account but not the consent page."""
    scope = SANDBOX.normalized_scope(scope)
    with SANDBOX.lock as state:
        user = SANDBOX.user_for_email_locked(state, email)
        SANDBOX.revoke_locked(state, user.id, SANDBOX.client_id)
        access, refresh = SANDBOX.issue_tokens_locked(state, user.id, SANDBOX.client_id, scope)
    return _token_body(access, refresh, scope)


def get_meeting(meeting_id: int) -> dict | None:
    """A copy of the meeting's JSON, whoever hosts it, or None if it doesn't exist (any more)."""
    with SANDBOX.lock as state:
        meeting = state.meetings.get(int(meeting_id))
        return copy.deepcopy(meeting) if meeting else None


# --- Webhooks ----------------------------------------------------------------------------------


def sign_webhook(secret: str, timestamp: str, raw_body: bytes) -> str:
    """Zoom's x-zm-signature: "v0=" + hex(HMAC_SHA256(secret, "v0:" + timestamp + ":" + body))."""
    message = b"v0:" + timestamp.encode() + b":" + raw_body
    return "v0=" + hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def default_webhook_url() -> str:
    """Where the control page's "Remove app" delivers: the configured URL, else the product's own."""
    configured = getattr(settings, "ZOOM_SANDBOX_WEBHOOK_URL", None)
    site = getattr(settings, "SITE_URL", "http://127.0.0.1:8000")
    return configured or site.rstrip("/") + "/integrations/zoom/webhook/"


def _deauthorization_event(user: SandboxUser, client_id: str, secret: str) -> bytes:
    when = time.time()
    deauthorized_at = datetime.fromtimestamp(when, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    # The payload's own "signature" is a legacy field that receivers don't check; any stable hex will do.
    legacy = hmac.new(secret.encode(), f"{user.account_id}:{user.id}:{deauthorized_at}".encode(), hashlib.sha256)
    event = {
        "event": "app_deauthorized",
        "event_ts": int(when * 1000),
        "payload": {
            "account_id": user.account_id,
            "user_id": user.id,
            "signature": legacy.hexdigest(),
            "deauthorization_time": deauthorized_at,
            "client_id": client_id,
        },
    }
    return json.dumps(event, separators=(",", ":")).encode()


def _send_deauthorization(user: SandboxUser, client_id: str, url: str) -> int:
    secret = getattr(settings, "ZOOM_WEBHOOK_SECRET_TOKEN", "") or ""
    raw_body = _deauthorization_event(user, client_id, secret)
    timestamp = str(int(time.time()))
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "Zoom Marketplace/1.0a (Zoom sandbox)",
        "x-zm-request-timestamp": timestamp,
        "x-zm-signature": sign_webhook(secret, timestamp, raw_body),
    }
    response = requests.post(url, data=raw_body, headers=headers, timeout=WEBHOOK_TIMEOUT, allow_redirects=False)
    logger.info("Zoom sandbox: app_deauthorized for user %s delivered, HTTP %s", user.id, response.status_code)
    return response.status_code


def deliver_deauthorization(email: str, url: str | None = None) -> int:
    """Send a signed app_deauthorized webhook for this user to `url` (default: default_webhook_url())
    and return the receiver's HTTP status. Tokens are not touched: calling it again is what a
    Zoom retry looks like. Raises LookupError (unknown user) or requests.RequestException."""
    with SANDBOX.lock as state:
        user = SANDBOX.user_or_error_locked(state, email)
    return _send_deauthorization(user, SANDBOX.client_id, url or default_webhook_url())


def deauthorize(email: str, webhook_url: str | None = None) -> dict:
    """What removing the app in Zoom's Marketplace does: revoke the user's tokens, then deliver a
    signed app_deauthorized webhook (synchronously). Returns a summary with the webhook's HTTP
    status (None and an error name if it could not be delivered). Raises LookupError."""
    with SANDBOX.lock as state:
        user = SANDBOX.user_or_error_locked(state, email)
        revoked = SANDBOX.revoke_locked(state, user.id)
    url = webhook_url or default_webhook_url()
    result = {"email": user.email, "user_id": user.id, "revoked_tokens": revoked, "webhook_url": url}
    try:
        result["webhook_status"] = _send_deauthorization(user, SANDBOX.client_id, url)
    except requests.RequestException as error:
        logger.warning("Zoom sandbox: app_deauthorized for user %s not delivered (%s)", user.id, type(error).__name__)
        result.update(webhook_status=None, webhook_error=type(error).__name__)
    return result


def _deliver_in_background(user: SandboxUser, client_id: str, url: str) -> None:
    def deliver():
        try:
            _send_deauthorization(user, client_id, url)
        except requests.RequestException as error:
            logger.warning(
                "Zoom sandbox: app_deauthorized for user %s not delivered (%s)", user.id, type(error).__name__
            )

    threading.Thread(target=deliver, name="zoom-sandbox-webhook", daemon=True).start()


@control_endpoint("POST")
def control_deauthorize(request, sandbox: ProviderSandbox):
    body = sandbox.json_object(request)
    email = email_param(sandbox, body)
    if not email:
        raise api_error(400, 300, "email is required.")
    if "webhook_url" in body:
        # The sandbox would POST wherever it was told: a request must not choose the target.
        raise api_error(
            400, 300, "webhook_url is not accepted: deliveries go to ZOOM_SANDBOX_WEBHOOK_URL or this site's webhook."
        )
    try:
        return JsonResponse(deauthorize(email))
    except LookupError as error:
        raise api_error(404, 1001, str(error)) from error


# --- OAuth: token and revoke -------------------------------------------------------------------


def _authenticated_client(request) -> str:
    """The client_id from `Authorization: Basic` (the only client authentication Zoom accepts)."""
    client_id, secret = SANDBOX.client_credentials(request, in_body=False)
    if not SANDBOX.client_is_ours(client_id, secret):
        raise oauth_error(401, "Invalid client_id or client_secret", "invalid_client")
    return client_id


def _exchange_code(request, client_id: str) -> JsonResponse:
    value, redirect_uri = request.POST.get("code"), request.POST.get("redirect_uri")
    if not value or not redirect_uri:
        raise oauth_error(400, "Bad request", "invalid_request")
    with SANDBOX.lock as state:
        code = SANDBOX.take_code_locked(
            state, value, client_id=client_id, redirect_uri=redirect_uri, verifier=request.POST.get("code_verifier")
        )
        if code is None:
            raise oauth_error(400, "Invalid authorization code", "invalid_grant")
        # A newer authorization by the same user revokes the earlier tokens (providers.md).
        SANDBOX.revoke_locked(state, code.user_id, client_id)
        access, refresh = SANDBOX.issue_tokens_locked(state, code.user_id, client_id, code.scope)
    return JsonResponse({**_token_body(access, refresh, code.scope), "api_url": _api_url(request)})


def _refresh(request, client_id: str) -> JsonResponse:
    value = request.POST.get("refresh_token")
    if not value:
        raise oauth_error(400, "Bad request", "invalid_request")
    with SANDBOX.lock as state:
        grant = state.refresh_tokens.get(value)
        if grant is None or grant.client_id != client_id:
            raise oauth_error(400, "Invalid Token!", "invalid_grant")
        # Rotation: the old refresh token dies now. The old access token is left alone and works
        # until it expires, as at Zoom, so a request already under way with it still succeeds.
        del state.refresh_tokens[value]
        access, refresh = SANDBOX.issue_tokens_locked(state, grant.user_id, client_id, grant.scope)
    return JsonResponse({**_token_body(access, refresh, grant.scope), "api_url": _api_url(request)})


def _api_url(request) -> str:
    # Zoom answers "https://api.zoom.us": the API base without /v2.
    return request.build_absolute_uri(reverse("zoom_sandbox:token")).removesuffix("/oauth/token")


@SANDBOX.endpoint("POST")
def token(request):
    client_id = _authenticated_client(request)
    grant_type = request.POST.get("grant_type")
    if grant_type == "authorization_code":
        return _exchange_code(request, client_id)
    if grant_type == "refresh_token":
        return _refresh(request, client_id)
    if not grant_type:
        raise oauth_error(400, "Bad request", "invalid_request")
    raise oauth_error(400, "Unsupported grant type", "unsupported_grant_type")


@SANDBOX.endpoint("POST")
def revoke(request):
    client_id = _authenticated_client(request)
    value = request.POST.get("token")
    if not value:
        raise oauth_error(400, "Bad request", "invalid_request")
    with SANDBOX.lock as state:
        grant = state.access_tokens.get(value)
        if grant is None or grant.client_id != client_id:
            raise oauth_error(400, "Invalid Token!", "invalid_request")
        SANDBOX.revoke_locked(state, grant.user_id, client_id)
        user = state.users[grant.user_id]
    # Zoom follows a revocation with app_deauthorized. Delivered in the background, as Zoom does,
    # so the product's revoke call never waits on its own webhook handler.
    url = getattr(settings, "ZOOM_SANDBOX_WEBHOOK_URL", None)
    if url:
        _deliver_in_background(user, client_id, url)
    return JsonResponse({"status": "success"})


# --- REST: authentication and rate limits ------------------------------------------------------


def _authenticate(request, required: tuple[str, set]) -> SandboxUser:
    """The user of the bearer token, if it is valid and carries one of the `required` scopes."""
    invalid = api_error(401, 124, "Invalid access token.")
    value = SANDBOX.bearer_value(request)
    if value is None:
        raise invalid
    with SANDBOX.lock as state:
        grant = state.access_tokens.get(value)
        if grant is None:
            raise invalid
        if grant.expires_at <= now():
            raise api_error(401, 124, "Access token has expired.")
        user = state.users[grant.user_id]
    named, accepted = required
    if not set(grant.scope.split()) & accepted:
        raise api_error(400, 4711, f"Invalid access token, does not contain scopes:[{named}].")
    return user


def _check_daily_limit_locked(state: ZoomState, user_id: str) -> None:
    if state.meeting_writes.get((user_id, _utc_day()), 0) < DAILY_MEETING_WRITE_LIMIT:
        return
    message = (
        f"You have exceeded the daily rate limit ({DAILY_MEETING_WRITE_LIMIT}) of Meeting Create/Update API "
        "requests permitted for this particular user."
    )
    headers = {
        "Retry-After": str(86400 - int(now()) % 86400),  # the limit resets at 00:00 UTC
        "X-RateLimit-Type": "Daily-limit",
        "X-RateLimit-Limit": str(DAILY_MEETING_WRITE_LIMIT),
        "X-RateLimit-Remaining": "0",
    }
    raise SandboxError(429, {"code": 429, "message": message}, headers)


def _count_meeting_write_locked(state: ZoomState, user_id: str) -> None:
    key = (user_id, _utc_day())
    state.meeting_writes[key] = state.meeting_writes.get(key, 0) + 1


# --- REST: meeting validation ------------------------------------------------------------------


def _valid_timezone(name) -> bool:
    if not isinstance(name, str) or not name:
        return False
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def _parse_start_time(value, local_zone: str | None) -> datetime | str:
    """The start as an aware UTC datetime, or an error message."""
    if not isinstance(value, str):
        return "start_time must be a string."
    try:
        if value.endswith("Z"):
            return datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        local = datetime.strptime(value, "%Y-%m-%dT%H:%M:%S")
    except ValueError:
        return "start_time must be yyyy-MM-ddTHH:mm:ssZ (UTC) or yyyy-MM-ddTHH:mm:ss with a timezone."
    if not local_zone:
        return "A start_time without Z is a local time and needs a timezone."
    return local.replace(tzinfo=ZoneInfo(local_zone)).astimezone(UTC)


def _validated_meeting_fields(body: dict, *, partial: bool, fallback_zone: str | None) -> dict:
    """The meeting fields of a create (partial=False) or update body, checked and normalized.
    Raises Zoom's code-300 validation error listing every bad field."""
    errors, fields = [], {}

    def fail(field: str, message: str) -> None:
        errors.append({"field": field, "message": message})

    def given(field: str) -> bool:
        return field in body or not partial

    if given("type"):
        if type(body.get("type")) is not int or body["type"] != 2:
            fail("type", "The sandbox supports scheduled meetings only: type must be 2.")
    zone = fallback_zone
    if "timezone" in body:
        zone = body["timezone"] if _valid_timezone(body["timezone"]) else None
        if zone is None:
            fail("timezone", "Invalid timezone.")
        else:
            fields["timezone"] = zone
    if given("start_time"):
        start = _parse_start_time(body.get("start_time"), zone)
        if isinstance(start, str):
            fail("start_time", start)
        else:
            fields["start_time"] = start
    if "duration" in body:
        if type(body["duration"]) is not int or body["duration"] <= 0:
            fail("duration", "duration must be a positive whole number of minutes.")
        fields["duration"] = body["duration"]
    for field, limit in (("topic", TOPIC_LIMIT), ("agenda", AGENDA_LIMIT)):
        if field in body:
            if not isinstance(body[field], str) or len(body[field]) > limit:
                fail(field, f"{field} must be a string of at most {limit} characters.")
            fields[field] = body[field]
    if "settings" in body:
        if not isinstance(body["settings"], dict):
            fail("settings", "settings must be an object.")
        fields["settings"] = body["settings"]
    if errors:
        raise api_error(400, 300, "Validation Failed.", errors=errors)
    return fields


def _merged_settings(current: dict, changes: dict) -> dict:
    merged = {**current, **changes}
    if merged.get("waiting_room"):
        merged["join_before_host"] = False  # Zoom: a waiting room disables join before host
    return merged


# --- REST: meetings ----------------------------------------------------------------------------


def _new_meeting_id_locked(state: ZoomState) -> int:
    # Real ids exceed 32 bits; so do these, so that an int32 column or parse fails in tests.
    while True:
        meeting_id = 80_000_000_000 + secrets.randbelow(10_000_000_000)
        if meeting_id not in state.meetings:
            return meeting_id


def _create_meeting_locked(state: ZoomState, user: SandboxUser, fields: dict) -> dict:
    meeting_id = _new_meeting_id_locked(state)
    encrypted_password = secrets.token_urlsafe(24)
    meeting = {
        "uuid": base64.b64encode(secrets.token_bytes(16)).decode(),
        "id": meeting_id,
        "host_id": user.id,
        "host_email": user.email,
        "topic": fields.get("topic", DEFAULT_TOPIC),
        "type": 2,
        "status": "waiting",
        "start_time": iso_z(fields["start_time"]),
        "duration": fields.get("duration", DEFAULT_DURATION),
        "timezone": fields.get("timezone", user.timezone),
        "agenda": fields.get("agenda", ""),
        "created_at": iso_z(now()),
        "start_url": f"{MEETING_HOST}/s/{meeting_id}?zak={secrets.token_urlsafe(24)}",
        "join_url": f"{MEETING_HOST}/j/{meeting_id}?pwd={encrypted_password}",
        "password": f"{secrets.randbelow(1_000_000):06d}",
        "encrypted_password": encrypted_password,
        "pre_schedule": False,
        "settings": _merged_settings(DEFAULT_MEETING_SETTINGS, fields.get("settings", {})),
    }
    state.meetings[meeting_id] = meeting
    return copy.deepcopy(meeting)


def _update_meeting_locked(meeting: dict, fields: dict) -> None:
    for field in ("topic", "duration", "timezone", "agenda"):
        if field in fields:
            meeting[field] = fields[field]
    if "start_time" in fields:
        meeting["start_time"] = iso_z(fields["start_time"])
    if "settings" in fields:
        meeting["settings"] = _merged_settings(meeting["settings"], fields["settings"])


def _owned_meeting_locked(state: ZoomState, user: SandboxUser, meeting_id: str) -> dict:
    """The user's meeting; another user's meeting is as unknown as a deleted one (404, code 3001)."""
    meeting = state.meetings.get(int(meeting_id)) if meeting_id.isdigit() else None
    if meeting is None or meeting["host_id"] != user.id:
        raise api_error(404, 3001, f"Meeting does not exist: {meeting_id}.")
    return meeting


@SANDBOX.endpoint("GET")
def users_me(request):
    return JsonResponse(SANDBOX.user_json(_authenticate(request, USER_READ)))


@SANDBOX.endpoint("GET", "POST")
def user_meetings(request):
    if request.method == "GET":
        return _list_meetings(request)
    user = _authenticate(request, MEETING_CREATE)
    body = SANDBOX.json_object(request)
    with SANDBOX.lock as state:
        _check_daily_limit_locked(state, user.id)
        fields = _validated_meeting_fields(body, partial=False, fallback_zone=None)
        meeting = _create_meeting_locked(state, user, fields)
        _count_meeting_write_locked(state, user.id)
    logger.info("Zoom sandbox: meeting %s created for user %s", meeting["id"], user.id)
    return JsonResponse(meeting, status=201)


def _list_meetings(request) -> JsonResponse:
    """GET /users/me/meetings as Zoom documents it: `type` (scheduled, live, upcoming), `page_size`
    (default 30, at most 300) and an opaque `next_page_token` valid for 15 minutes; each item is a
    summary whose agenda is cut to 250 characters."""
    user = _authenticate(request, MEETING_LIST)
    kind = request.GET.get("type", "scheduled")
    if kind not in LIST_TYPES:
        raise api_error(400, 300, f"Invalid field: type must be one of {', '.join(LIST_TYPES)}.")
    size = request.GET.get("page_size", str(LIST_PAGE_SIZE_DEFAULT))
    if not size.isdigit() or not 1 <= int(size) <= LIST_PAGE_SIZE_MAX:
        raise api_error(400, 300, f"Invalid field: page_size must be between 1 and {LIST_PAGE_SIZE_MAX}.")
    offset = 0
    if request.GET.get("next_page_token"):
        try:
            page = signing.loads(request.GET["next_page_token"], salt=PAGE_TOKEN_SALT, max_age=PAGE_TOKEN_TTL)
        except signing.BadSignature:
            raise api_error(400, 300, "The next page token is invalid or expired.") from None
        if page.get("user") != user.id or page.get("type") != kind:
            raise api_error(400, 300, "The next page token is invalid or expired.")
        offset = int(page["offset"])
    moment = datetime.fromtimestamp(now(), UTC)
    with SANDBOX.lock as state:
        mine = [copy.deepcopy(m) for m in state.meetings.values() if m["host_id"] == user.id]
    listed = sorted((m for m in mine if _listed_as(m, kind, moment)), key=lambda m: (m["start_time"], m["id"]))
    chunk, rest = listed[offset : offset + int(size)], listed[offset + int(size) :]
    token = ""
    if rest:
        token = signing.dumps(
            {"user": user.id, "type": kind, "offset": offset + int(size)}, salt=PAGE_TOKEN_SALT, compress=True
        )
    return JsonResponse(
        {
            "page_size": int(size),
            "total_records": len(listed),
            "next_page_token": token,
            "meetings": [_list_item(m) for m in chunk],
        }
    )


def _listed_as(meeting: dict, kind: str, moment: datetime) -> bool:
    start = datetime.strptime(meeting["start_time"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    end = start.timestamp() + 60 * meeting["duration"]
    if kind == "live":
        return start <= moment and end > moment.timestamp()
    if kind == "upcoming":
        return end > moment.timestamp()
    return True  # scheduled: every meeting the sandbox keeps


def _list_item(meeting: dict) -> dict:
    fields = ("uuid", "id", "host_id", "topic", "type", "start_time", "duration", "timezone", "created_at", "join_url")
    return {**{field: meeting[field] for field in fields}, "agenda": meeting["agenda"][:LIST_AGENDA_LIMIT]}


@SANDBOX.endpoint("GET", "PATCH", "DELETE")
def meeting_detail(request, meeting_id: str):
    if request.method == "GET":
        user = _authenticate(request, MEETING_READ)
        with SANDBOX.lock as state:
            return JsonResponse(copy.deepcopy(_owned_meeting_locked(state, user, meeting_id)))
    if request.method == "PATCH":
        return _patch_meeting(request, meeting_id)
    user = _authenticate(request, MEETING_DELETE)
    with SANDBOX.lock as state:
        del state.meetings[_owned_meeting_locked(state, user, meeting_id)["id"]]
    return HttpResponse(status=204)


def _patch_meeting(request, meeting_id: str) -> HttpResponse:
    user = _authenticate(request, MEETING_UPDATE)
    body = SANDBOX.json_object(request)
    with SANDBOX.lock as state:
        meeting = _owned_meeting_locked(state, user, meeting_id)
        _check_daily_limit_locked(state, user.id)
        fields = _validated_meeting_fields(body, partial=True, fallback_zone=meeting["timezone"])
        _update_meeting_locked(meeting, fields)
        _count_meeting_write_locked(state, user.id)
    return HttpResponse(status=204)


def _meeting_summary(meeting: dict) -> dict:
    fields = ("id", "host_id", "host_email", "topic", "start_time", "duration", "timezone", "agenda", "join_url")
    return {field: meeting[field] for field in fields}
