"""The Zoom sandbox: a local fake of Zoom's OAuth and REST API, for tests and the demo.

It follows shared/reference/providers.md: the same paths, status codes, error bodies, token rotation
and int64 meeting ids, so the product's real Zoom client runs against it unchanged (set
ZOOM_OAUTH_BASE_URL=<site>/sandbox/zoom and ZOOM_API_BASE_URL=<site>/sandbox/zoom/v2).

The state (users, codes, tokens, meetings, queued failures) lives in the "zoom_sandbox" cache
(Redis when REDIS_URL is set), so every process of the site (several gunicorn workers, a Celery
worker) sees the same Zoom; `with _lock:` holds a lock across processes and threads, loads the state
into this module and stores it back at the end. `reset()` empties it. Besides the fake endpoints
there is a control API (failure injection, token expiry, an app_deauthorized webhook), only for
signed-in staff and admins or for callers on this machine, and Python helpers for the same things,
for tests that prefer calls.

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
import re
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache, wraps
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import requests
from django.conf import settings
from django.contrib import messages
from django.core import signing
from django.core.cache import caches
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.http import HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import redirect
from django.template.backends.django import DjangoTemplates
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

logger = logging.getLogger(__name__)

CODE_TTL_SECONDS = 300
ACCESS_TOKEN_TTL_SECONDS = 3599
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
TEMPLATE_DIR = Path(__file__).resolve().parent / "templates"

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


# --- Clock -------------------------------------------------------------------------------------

_clock_offset = 0.0


def now() -> float:
    """Sandbox time, epoch seconds: decides token and code expiry and the rate-limit day."""
    return time.time() + _clock_offset


def advance_clock(seconds: float) -> None:
    """Move sandbox time forward, e.g. advance_clock(3600) expires every access token issued so far."""
    global _clock_offset
    with _lock:
        _clock_offset += seconds


def _iso_z(moment: float | datetime) -> str:
    if not isinstance(moment, datetime):
        moment = datetime.fromtimestamp(moment, UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _utc_day() -> str:
    return datetime.fromtimestamp(now(), UTC).date().isoformat()


# --- State -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SandboxUser:
    id: str
    email: str
    account_id: str
    first_name: str
    last_name: str
    pmi: int
    timezone: str = "UTC"

    def as_json(self) -> dict:
        return {
            "id": self.id,
            "email": self.email,
            "first_name": self.first_name,
            "last_name": self.last_name,
            "display_name": f"{self.first_name} {self.last_name}".strip(),
            "type": 1,
            "account_id": self.account_id,
            "timezone": self.timezone,
            "pmi": self.pmi,
            "status": "active",
        }


@dataclass
class AuthorizationCode:
    client_id: str
    redirect_uri: str
    user_id: str
    scope: str
    challenge: str
    challenge_method: str
    expires_at: float


@dataclass
class AccessToken:
    user_id: str
    client_id: str
    scope: str
    expires_at: float


@dataclass
class RefreshToken:
    user_id: str
    client_id: str
    scope: str


@dataclass
class InjectedFailure:
    path_contains: str
    method: str | None
    status: int | None  # None: only delay, then answer normally
    times: int
    retry_after: str | None = None
    body: object = None
    raw_body: str | None = None
    content_type: str | None = None
    delay_seconds: float = 0.0

    def matches(self, method: str, path: str) -> bool:
        return self.path_contains in path and (self.method is None or self.method == method)


class _State:
    def __init__(self):
        self.users: dict[str, SandboxUser] = {}  # by Zoom user id
        self.codes: dict[str, AuthorizationCode] = {}
        self.access_tokens: dict[str, AccessToken] = {}
        self.refresh_tokens: dict[str, RefreshToken] = {}
        self.meetings: dict[int, dict] = {}  # the meeting JSON as Zoom returns it
        self.meeting_writes: dict[tuple[str, str], int] = {}  # (user id, UTC day) → creates + updates
        self.failures: list[InjectedFailure] = []


class _SharedState:
    """`with _lock:` the sandbox's state, the same in every process: a lock in the cache (add() is
    atomic there), the state read from the cache into `_state` / `_clock_offset`, and written back
    on the way out, also after an error (a code popped by a failed exchange stays spent). With the
    cache unreachable, each process goes on with its own copy rather than failing every call."""

    def __init__(self):
        self._threads = threading.Lock()  # one thread of this process at a time
        self._token = None

    def __enter__(self):
        self._threads.acquire()
        try:
            self._token = _acquire_shared_lock()
            _load_state()
        except BaseException:
            self._release()
            raise
        return self

    def __exit__(self, *exc_info):
        try:
            _store_state()
        finally:
            self._release()

    def _release(self):
        try:
            if self._token is not None:
                _release_shared_lock(self._token)
        finally:
            self._token = None
            self._threads.release()


STATE_KEY, LOCK_KEY = "zoom-sandbox:state", "zoom-sandbox:lock"
LOCK_TTL_SECONDS = 10  # a process that died holding the lock blocks the others this long at most
LOCK_WAIT_SECONDS = 15


def _shared():
    return caches["zoom_sandbox"]


def _acquire_shared_lock() -> str | None:
    token = secrets.token_hex(8)
    deadline = time.monotonic() + LOCK_WAIT_SECONDS
    while True:
        try:
            if _shared().add(LOCK_KEY, token, timeout=LOCK_TTL_SECONDS):
                return token
        except Exception:  # the cache server is down: this process's copy will do
            logger.warning("Zoom sandbox: cache unavailable, state is per process", exc_info=True)
            return None
        if time.monotonic() > deadline:
            raise RuntimeError("Zoom sandbox: its state stayed locked for too long")
        time.sleep(0.002)


def _release_shared_lock(token: str) -> None:
    try:
        if _shared().get(LOCK_KEY) == token:
            _shared().delete(LOCK_KEY)
    except Exception:
        logger.warning("Zoom sandbox: cache unavailable, lock left to expire", exc_info=True)


def _load_state() -> None:
    global _state, _clock_offset
    try:
        stored = _shared().get(STATE_KEY)
    except Exception:
        return
    _state, _clock_offset = stored if stored is not None else (_State(), 0.0)


def _store_state() -> None:
    try:
        _shared().set(STATE_KEY, (_state, _clock_offset), timeout=None)
    except Exception:
        logger.warning("Zoom sandbox: cache unavailable, state kept in this process only", exc_info=True)


_lock = _SharedState()
_state = _State()


def reset() -> None:
    """Forget everything (users, codes, tokens, meetings, queued failures) and undo advance_clock()."""
    global _state, _clock_offset
    with _lock:
        _state = _State()
        _clock_offset = 0.0


# --- Users -------------------------------------------------------------------------------------


def _make_user(email: str) -> SandboxUser:
    # Ids derive from the email so they stay the same across restarts of the demo server: a
    # connection saved before a restart still matches the user_id of a later app_deauthorized.
    digest = hashlib.sha256(f"zoom-sandbox:{email}".encode()).digest()
    parts = [part for part in re.split(r"[._+\-]+", email.split("@")[0]) if part]
    return SandboxUser(
        id=base64.urlsafe_b64encode(digest[:16]).decode().rstrip("="),
        email=email,
        account_id=base64.urlsafe_b64encode(digest[16:32]).decode().rstrip("="),
        first_name=parts[0].capitalize() if parts else "Zoom",
        last_name=" ".join(part.capitalize() for part in parts[1:]),
        pmi=1_000_000_000 + int.from_bytes(digest[:8]) % 9_000_000_000,
    )


def _find_user_locked(email: str) -> SandboxUser | None:
    email = email.strip().lower()
    return next((user for user in _state.users.values() if user.email == email), None)


def _user_for_email_locked(email: str) -> SandboxUser:
    user = _find_user_locked(email)
    if user is None:
        user = _make_user(email.strip().lower())
        _state.users[user.id] = user
    return user


def get_or_create_user(email: str = DEFAULT_EMAIL) -> dict:
    """The sandbox Zoom user with this email (as GET /users/me shows it), made on first use."""
    with _lock:
        return _user_for_email_locked(email).as_json()


def _user_or_error_locked(email: str) -> SandboxUser:
    user = _find_user_locked(email)
    if user is None:
        raise LookupError(f"User does not exist: {email}.")
    return user


# --- Tokens ------------------------------------------------------------------------------------


def _normalized_scope(scope: str | None) -> str:
    scope = scope if scope else getattr(settings, "ZOOM_SCOPES", "")
    return " ".join(scope.replace(",", " ").split())


def _issue_tokens_locked(user_id: str, client_id: str, scope: str) -> tuple[str, str]:
    access, refresh = secrets.token_urlsafe(64), secrets.token_urlsafe(64)
    _state.access_tokens[access] = AccessToken(user_id, client_id, scope, now() + ACCESS_TOKEN_TTL_SECONDS)
    _state.refresh_tokens[refresh] = RefreshToken(user_id, client_id, scope)
    return access, refresh


def _revoke_locked(user_id: str, client_id: str | None = None) -> int:
    """Drop every access and refresh token of the user (of one client, if given); how many went."""
    removed = 0
    for store in (_state.access_tokens, _state.refresh_tokens):
        for value, grant in list(store.items()):
            if grant.user_id == user_id and client_id in (None, grant.client_id):
                del store[value]
                removed += 1
    return removed


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
    client_id = getattr(settings, "ZOOM_CLIENT_ID", "")
    scope = _normalized_scope(scope)
    with _lock:
        user = _user_for_email_locked(email)
        _revoke_locked(user.id, client_id)
        access, refresh = _issue_tokens_locked(user.id, client_id, scope)
    return _token_body(access, refresh, scope)


def expire_access_tokens(email: str | None = None, *, include_refresh: bool = False) -> int:
    """Make current access tokens (all, or one user's) expired; with include_refresh, also drop
    refresh tokens, so that refreshing fails with invalid_grant. Returns how many tokens changed."""
    with _lock:
        user_id = _user_or_error_locked(email).id if email else None
        changed = 0
        for grant in _state.access_tokens.values():
            if user_id in (None, grant.user_id) and grant.expires_at > now():
                grant.expires_at = now() - 1
                changed += 1
        if include_refresh:
            for value, grant in list(_state.refresh_tokens.items()):
                if user_id in (None, grant.user_id):
                    del _state.refresh_tokens[value]
                    changed += 1
        return changed


# --- Failure injection -------------------------------------------------------------------------


def inject_failure(
    path_contains: str,
    *,
    method: str | None = None,
    status: int | None = None,
    times: int = 1,
    retry_after: str | int | None = None,
    body: object = None,
    raw_body: str | None = None,
    content_type: str | None = None,
    delay_seconds: float = 0.0,
) -> None:
    """Answer the next `times` requests whose path contains `path_contains` (and whose method is
    `method`, if given) with `status`, after sleeping `delay_seconds`. Without a status the request
    is only delayed and then answered normally (a slow Zoom that still does the work).
    Raises ValueError for arguments that make no sense."""
    failure = InjectedFailure(
        path_contains=str(path_contains),
        method=method.upper() if method else None,
        status=status,
        times=times,
        retry_after=None if retry_after is None else str(retry_after),
        body=body,
        raw_body=raw_body,
        content_type=content_type,
        delay_seconds=delay_seconds,
    )
    _check_failure(failure)
    with _lock:
        _state.failures.append(failure)


def _check_failure(failure: InjectedFailure) -> None:
    if failure.status is not None and (type(failure.status) is not int or not 200 <= failure.status <= 599):
        raise ValueError("status must be an HTTP status code (200-599)")
    if type(failure.times) is not int or failure.times < 1:
        raise ValueError("times must be a positive integer")
    if not isinstance(failure.delay_seconds, int | float) or not 0 <= failure.delay_seconds <= 60:
        raise ValueError("delay_seconds must be a number between 0 and 60")
    if failure.status is None and not failure.delay_seconds:
        raise ValueError("give a status, a delay_seconds, or both")
    if failure.raw_body is not None and not isinstance(failure.raw_body, str):
        raise ValueError("raw_body must be a string")


def _take_failure(method: str, path: str) -> InjectedFailure | None:
    with _lock:
        for failure in _state.failures:
            if failure.matches(method, path):
                failure.times -= 1
                if failure.times == 0:
                    _state.failures.remove(failure)
                return failure
    return None


def _failure_response(failure: InjectedFailure) -> HttpResponse:
    if failure.raw_body is not None:
        content_type = failure.content_type or "text/html; charset=utf-8"
        response = HttpResponse(failure.raw_body, status=failure.status, content_type=content_type)
    elif failure.body is not None:
        response = JsonResponse(failure.body, status=failure.status, safe=False)
    elif failure.status == 429:
        message = "You have reached the maximum per-second rate limit for this API. Try again later."
        response = JsonResponse({"code": 429, "message": message}, status=429)
    else:
        response = JsonResponse(
            {"code": failure.status, "message": "Injected failure (Zoom sandbox)."}, status=failure.status
        )
    if failure.retry_after is not None:
        response["Retry-After"] = failure.retry_after
    return response


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
    with _lock:
        user = _user_or_error_locked(email)
    return _send_deauthorization(user, getattr(settings, "ZOOM_CLIENT_ID", ""), url or default_webhook_url())


def deauthorize(email: str, webhook_url: str | None = None) -> dict:
    """What removing the app in Zoom's Marketplace does: revoke the user's tokens, then deliver a
    signed app_deauthorized webhook (synchronously). Returns a summary with the webhook's HTTP
    status (None and an error name if it could not be delivered). Raises LookupError."""
    with _lock:
        user = _user_or_error_locked(email)
        revoked = _revoke_locked(user.id)
    url = webhook_url or default_webhook_url()
    result = {"email": user.email, "user_id": user.id, "revoked_tokens": revoked, "webhook_url": url}
    try:
        result["webhook_status"] = _send_deauthorization(user, getattr(settings, "ZOOM_CLIENT_ID", ""), url)
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


# --- Responses and decorators ------------------------------------------------------------------


class SandboxError(Exception):
    """An error answer: raised anywhere inside an endpoint, turned into a JSON response."""

    def __init__(self, status: int, body: dict, headers: dict | None = None):
        super().__init__(status)
        self.status, self.body, self.headers = status, body, headers or {}

    def response(self) -> JsonResponse:
        response = JsonResponse(self.body, status=self.status)
        for name, value in self.headers.items():
            response[name] = value
        return response


def api_error(status: int, code: int, message: str, **extra) -> SandboxError:
    return SandboxError(status, {"code": code, "message": message, **extra})


def oauth_error(status: int, reason: str, error: str) -> SandboxError:
    return SandboxError(status, {"reason": reason, "error": error})


def _endpoint(*methods: str, injectable: bool = True):
    """A JSON endpoint: CSRF-exempt (machines call it), only these methods, injected failures
    first (unless it is a control endpoint), and SandboxError turned into its JSON answer."""

    def decorate(view):
        answer = _injectable(view) if injectable else view

        @wraps(view)
        def wrapper(request, *args, **kwargs):
            if request.method not in methods:
                response = JsonResponse({"code": 405, "message": f"Method {request.method} not allowed."}, status=405)
                response["Allow"] = ", ".join(methods)
                return response
            try:
                return answer(request, *args, **kwargs)
            except SandboxError as error:
                return error.response()

        return csrf_exempt(wrapper)

    return decorate


def _injectable(view):
    """Answer from the queue of injected failures first, when one matches the request."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        failure = _take_failure(request.method, request.path)
        if failure is None:
            return view(request, *args, **kwargs)
        if failure.delay_seconds:
            time.sleep(failure.delay_seconds)  # outside the lock: other requests go on meanwhile
        return view(request, *args, **kwargs) if failure.status is None else _failure_response(failure)

    return wrapper


def _json_object(request, *, empty_ok: bool = False) -> dict:
    if empty_ok and not request.body.strip():
        return {}
    try:
        body = json.loads(request.body)
    except (ValueError, UnicodeDecodeError):
        body = None
    if not isinstance(body, dict):
        raise api_error(400, 300, "Request Body should be a valid JSON object.")
    return body


@cache
def _templates() -> DjangoTemplates:
    # This package is not an installed app, so the project's engine does not search its templates
    # directory. This engine is the project's configuration with that directory in front.
    project = settings.TEMPLATES[0]
    return DjangoTemplates(
        {
            "NAME": "zoom_sandbox",
            "DIRS": [TEMPLATE_DIR, *project.get("DIRS", [])],
            "APP_DIRS": project.get("APP_DIRS", False),
            "OPTIONS": project.get("OPTIONS", {}),
        }
    )


def _render(request, template: str, context: dict, status: int = 200) -> HttpResponse:
    html = _templates().get_template(template).render(context, request)
    return HttpResponse(html, status=status)


@csrf_exempt
def not_found(request, *args, **kwargs):
    return JsonResponse({"code": 404, "message": "Not found (Zoom sandbox)."}, status=404)


# --- OAuth: authorize (the consent page) -------------------------------------------------------


def _with_query(url: str, params: dict) -> str:
    """url with params added to whatever query string it already has (None values left out)."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    query += [(key, value) for key, value in params.items() if value is not None]
    return urlunsplit(parts._replace(query=urlencode(query)))


def _authorize_problem(params) -> str | None:
    client_id = getattr(settings, "ZOOM_CLIENT_ID", "")
    if not client_id or params.get("client_id") != client_id:
        return "Invalid client_id: this sandbox only knows the app configured as settings.ZOOM_CLIENT_ID."
    if params.get("response_type") != "code":
        return "Unsupported response_type: only response_type=code is supported."
    if not _registered_redirect_uri(params.get("redirect_uri", "")):
        return "Invalid redirect_uri: it must be the app's registered callback, " + registered_redirect_uri() + "."
    method = params.get("code_challenge_method")
    if method and (method not in {"S256", "plain"} or not params.get("code_challenge")):
        return "Invalid PKCE parameters: code_challenge_method must be S256 (or plain) with a code_challenge."
    return None


def registered_redirect_uri() -> str:
    """The one redirect URI the sandbox's app lists, as a Zoom app lists the product's callback."""
    return getattr(settings, "SITE_URL", "http://127.0.0.1:8000").rstrip("/") + "/integrations/zoom/callback/"


def _registered_redirect_uri(value: str) -> bool:
    # A query string of the client's own may follow (Zoom matches the URL without it); anything
    # else would let the consent page send a code to whichever site asked.
    given, registered = urlsplit(value), urlsplit(registered_redirect_uri())
    return (given.scheme, given.netloc, given.path) == (registered.scheme, registered.netloc, registered.path)


def _consent_page(request, params, *, email: str = DEFAULT_EMAIL, email_error: str = "", status: int = 200):
    context = {
        "client_id": params["client_id"],
        "scopes": _normalized_scope(params.get("scope")).split(),
        "redirect_host": urlsplit(params["redirect_uri"]).netloc,
        "email": email,
        "email_error": email_error,
        "action": request.get_full_path(),
    }
    return _render(request, "sandbox/zoom_authorize.html", context, status)


def _decide(request, params) -> HttpResponse:
    redirect_uri, state = params["redirect_uri"], params.get("state")
    if request.POST.get("decision") != "allow":
        return HttpResponseRedirect(_with_query(redirect_uri, {"error": "access_denied", "state": state}))
    email = request.POST.get("email", "").strip().lower()
    try:
        validate_email(email)
    except ValidationError:
        return _consent_page(request, params, email=email, email_error="Enter an email address.", status=400)
    code = secrets.token_urlsafe(24)
    with _lock:
        user = _user_for_email_locked(email)
        _state.codes[code] = AuthorizationCode(
            client_id=params["client_id"],
            redirect_uri=redirect_uri,
            user_id=user.id,
            scope=_normalized_scope(params.get("scope")),
            challenge=params.get("code_challenge", ""),
            challenge_method=params.get("code_challenge_method") or "plain",  # RFC 7636's default
            expires_at=now() + CODE_TTL_SECONDS,
        )
    return HttpResponseRedirect(_with_query(redirect_uri, {"code": code, "state": state}))


def authorize(request):
    """GET: the consent page. POST (from that page, with its CSRF token): Allow or Deny."""
    if request.method not in {"GET", "POST"}:
        return JsonResponse({"code": 405, "message": f"Method {request.method} not allowed."}, status=405)
    return _authorize_page(request)


@_injectable
def _authorize_page(request):
    problem = _authorize_problem(request.GET)
    if problem:
        return _render(request, "sandbox/zoom_authorize.html", {"error": problem}, status=400)
    if request.method == "POST":
        return _decide(request, request.GET)
    return _consent_page(request, request.GET)


# --- OAuth: token and revoke -------------------------------------------------------------------


def _authenticated_client(request) -> str:
    """The client_id from `Authorization: Basic` (the only client authentication Zoom accepts)."""
    scheme, _, encoded = request.headers.get("Authorization", "").partition(" ")
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode()
    except (ValueError, UnicodeDecodeError):
        decoded = ""
    client_id, _, secret = decoded.partition(":")
    expected_id = getattr(settings, "ZOOM_CLIENT_ID", "") or ""
    expected_secret = getattr(settings, "ZOOM_CLIENT_SECRET", "") or ""
    valid = (
        scheme.lower() == "basic"
        and bool(expected_id and expected_secret)
        and hmac.compare_digest(client_id.encode(), expected_id.encode())
        and hmac.compare_digest(secret.encode(), expected_secret.encode())
    )
    if not valid:
        raise oauth_error(401, "Invalid client_id or client_secret", "invalid_client")
    return client_id


def _pkce_ok(code: AuthorizationCode, verifier: str | None) -> bool:
    if not code.challenge:
        return True  # no challenge at authorize time: a verifier is ignored, as by servers without PKCE
    if not verifier:
        return False
    if code.challenge_method == "S256":
        verifier = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
    return hmac.compare_digest(verifier.encode(), code.challenge.encode())


def _exchange_code(request, client_id: str) -> JsonResponse:
    value, redirect_uri = request.POST.get("code"), request.POST.get("redirect_uri")
    if not value or not redirect_uri:
        raise oauth_error(400, "Bad request", "invalid_request")
    with _lock:
        # Popped at the first attempt, failed or not: a code is good for one try only.
        code = _state.codes.pop(value, None)
        valid = (
            code is not None
            and code.expires_at > now()
            and code.client_id == client_id
            and code.redirect_uri == redirect_uri
            and _pkce_ok(code, request.POST.get("code_verifier"))
        )
        if not valid:
            raise oauth_error(400, "Invalid authorization code", "invalid_grant")
        # A newer authorization by the same user revokes the earlier tokens (providers.md).
        _revoke_locked(code.user_id, client_id)
        access, refresh = _issue_tokens_locked(code.user_id, client_id, code.scope)
    return JsonResponse({**_token_body(access, refresh, code.scope), "api_url": _api_url(request)})


def _refresh(request, client_id: str) -> JsonResponse:
    value = request.POST.get("refresh_token")
    if not value:
        raise oauth_error(400, "Bad request", "invalid_request")
    with _lock:
        grant = _state.refresh_tokens.get(value)
        if grant is None or grant.client_id != client_id:
            raise oauth_error(400, "Invalid Token!", "invalid_grant")
        # Rotation: the old refresh token dies now. The old access token is left alone and works
        # until it expires, as at Zoom, so a request already under way with it still succeeds.
        del _state.refresh_tokens[value]
        access, refresh = _issue_tokens_locked(grant.user_id, client_id, grant.scope)
    return JsonResponse({**_token_body(access, refresh, grant.scope), "api_url": _api_url(request)})


def _api_url(request) -> str:
    # Zoom answers "https://api.zoom.us": the API base without /v2.
    return request.build_absolute_uri(reverse("zoom_sandbox:token")).removesuffix("/oauth/token")


@_endpoint("POST")
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


@_endpoint("POST")
def revoke(request):
    client_id = _authenticated_client(request)
    value = request.POST.get("token")
    if not value:
        raise oauth_error(400, "Bad request", "invalid_request")
    with _lock:
        grant = _state.access_tokens.get(value)
        if grant is None or grant.client_id != client_id:
            raise oauth_error(400, "Invalid Token!", "invalid_request")
        _revoke_locked(grant.user_id, client_id)
        user = _state.users[grant.user_id]
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
    if "access_token" in request.GET:
        raise invalid  # Zoom accepts the token in the Authorization header only, even a valid one
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise invalid
    with _lock:
        grant = _state.access_tokens.get(value.strip())
        if grant is None:
            raise invalid
        if grant.expires_at <= now():
            raise api_error(401, 124, "Access token has expired.")
        user = _state.users[grant.user_id]
    named, accepted = required
    if not set(grant.scope.split()) & accepted:
        raise api_error(400, 4711, f"Invalid access token, does not contain scopes:[{named}].")
    return user


def _check_daily_limit_locked(user_id: str) -> None:
    if _state.meeting_writes.get((user_id, _utc_day()), 0) < DAILY_MEETING_WRITE_LIMIT:
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


def _count_meeting_write_locked(user_id: str) -> None:
    key = (user_id, _utc_day())
    _state.meeting_writes[key] = _state.meeting_writes.get(key, 0) + 1


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


def _new_meeting_id_locked() -> int:
    # Real ids exceed 32 bits; so do these, so that an int32 column or parse fails in tests.
    while True:
        meeting_id = 80_000_000_000 + secrets.randbelow(10_000_000_000)
        if meeting_id not in _state.meetings:
            return meeting_id


def _create_meeting_locked(user: SandboxUser, fields: dict) -> dict:
    meeting_id = _new_meeting_id_locked()
    encrypted_password = secrets.token_urlsafe(24)
    meeting = {
        "uuid": base64.b64encode(secrets.token_bytes(16)).decode(),
        "id": meeting_id,
        "host_id": user.id,
        "host_email": user.email,
        "topic": fields.get("topic", DEFAULT_TOPIC),
        "type": 2,
        "status": "waiting",
        "start_time": _iso_z(fields["start_time"]),
        "duration": fields.get("duration", DEFAULT_DURATION),
        "timezone": fields.get("timezone", user.timezone),
        "agenda": fields.get("agenda", ""),
        "created_at": _iso_z(now()),
        "start_url": f"{MEETING_HOST}/s/{meeting_id}?zak={secrets.token_urlsafe(24)}",
        "join_url": f"{MEETING_HOST}/j/{meeting_id}?pwd={encrypted_password}",
        "password": f"{secrets.randbelow(1_000_000):06d}",
        "encrypted_password": encrypted_password,
        "pre_schedule": False,
        "settings": _merged_settings(DEFAULT_MEETING_SETTINGS, fields.get("settings", {})),
    }
    _state.meetings[meeting_id] = meeting
    return copy.deepcopy(meeting)


def _update_meeting_locked(meeting: dict, fields: dict) -> None:
    for field in ("topic", "duration", "timezone", "agenda"):
        if field in fields:
            meeting[field] = fields[field]
    if "start_time" in fields:
        meeting["start_time"] = _iso_z(fields["start_time"])
    if "settings" in fields:
        meeting["settings"] = _merged_settings(meeting["settings"], fields["settings"])


def _owned_meeting_locked(user: SandboxUser, meeting_id: str) -> dict:
    """The user's meeting; another user's meeting is as unknown as a deleted one (404, code 3001)."""
    meeting = _state.meetings.get(int(meeting_id)) if meeting_id.isdigit() else None
    if meeting is None or meeting["host_id"] != user.id:
        raise api_error(404, 3001, f"Meeting does not exist: {meeting_id}.")
    return meeting


@_endpoint("GET")
def users_me(request):
    return JsonResponse(_authenticate(request, USER_READ).as_json())


@_endpoint("GET", "POST")
def user_meetings(request):
    if request.method == "GET":
        return _list_meetings(request)
    user = _authenticate(request, MEETING_CREATE)
    body = _json_object(request)
    with _lock:
        _check_daily_limit_locked(user.id)
        meeting = _create_meeting_locked(user, _validated_meeting_fields(body, partial=False, fallback_zone=None))
        _count_meeting_write_locked(user.id)
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
    with _lock:
        mine = [copy.deepcopy(m) for m in _state.meetings.values() if m["host_id"] == user.id]
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


@_endpoint("GET", "PATCH", "DELETE")
def meeting_detail(request, meeting_id: str):
    if request.method == "GET":
        user = _authenticate(request, MEETING_READ)
        with _lock:
            return JsonResponse(copy.deepcopy(_owned_meeting_locked(user, meeting_id)))
    if request.method == "PATCH":
        return _patch_meeting(request, meeting_id)
    user = _authenticate(request, MEETING_DELETE)
    with _lock:
        del _state.meetings[_owned_meeting_locked(user, meeting_id)["id"]]
    return HttpResponse(status=204)


def _patch_meeting(request, meeting_id: str) -> HttpResponse:
    user = _authenticate(request, MEETING_UPDATE)
    body = _json_object(request)
    with _lock:
        meeting = _owned_meeting_locked(user, meeting_id)
        _check_daily_limit_locked(user.id)
        fields = _validated_meeting_fields(body, partial=True, fallback_zone=meeting["timezone"])
        _update_meeting_locked(meeting, fields)
        _count_meeting_write_locked(user.id)
    return HttpResponse(status=204)


def get_meeting(meeting_id: int) -> dict | None:
    """A copy of the meeting's JSON, whoever hosts it, or None if it doesn't exist (any more)."""
    with _lock:
        meeting = _state.meetings.get(int(meeting_id))
        return copy.deepcopy(meeting) if meeting else None


# --- Control: inspection -----------------------------------------------------------------------


def state_summary() -> dict:
    """Users, meetings, tokens (first 4 characters only), pending codes and queued failures."""
    with _lock:
        moment = now()
        return {
            "now": _iso_z(moment),
            "clock_offset_seconds": _clock_offset,
            "users": [_user_summary_locked(user, moment) for user in _state.users.values()],
            "meetings": [_meeting_summary(meeting) for meeting in _state.meetings.values()],
            "tokens": _token_summaries_locked(moment),
            "pending_codes": len(_state.codes),
            "failures": [_failure_summary(failure) for failure in _state.failures],
        }


def _user_summary_locked(user: SandboxUser, moment: float) -> dict:
    access = [grant for grant in _state.access_tokens.values() if grant.user_id == user.id]
    return {
        **user.as_json(),
        "meetings": sum(1 for meeting in _state.meetings.values() if meeting["host_id"] == user.id),
        "live_access_tokens": sum(1 for grant in access if grant.expires_at > moment),
        "expired_access_tokens": sum(1 for grant in access if grant.expires_at <= moment),
        "refresh_tokens": sum(1 for grant in _state.refresh_tokens.values() if grant.user_id == user.id),
        "meeting_writes_today": _state.meeting_writes.get((user.id, _utc_day()), 0),
    }


def _meeting_summary(meeting: dict) -> dict:
    fields = ("id", "host_id", "host_email", "topic", "start_time", "duration", "timezone", "agenda", "join_url")
    return {field: meeting[field] for field in fields}


def _token_summaries_locked(moment: float) -> list[dict]:
    def owner(grant) -> str:
        return _state.users[grant.user_id].email

    access = [
        {
            "kind": "access",
            "prefix": value[:4],
            "email": owner(grant),
            "scope": grant.scope,
            "expires_in": int(grant.expires_at - moment),
            "expired": grant.expires_at <= moment,
        }
        for value, grant in _state.access_tokens.items()
    ]
    refresh = [
        {"kind": "refresh", "prefix": value[:4], "email": owner(grant), "scope": grant.scope}
        for value, grant in _state.refresh_tokens.items()
    ]
    return access + refresh


def _failure_summary(failure: InjectedFailure) -> dict:
    return {
        "path_contains": failure.path_contains,
        "method": failure.method,
        "status": failure.status,
        "times_left": failure.times,
        "delay_seconds": failure.delay_seconds,
    }


# --- Control: who may use it ------------------------------------------------------------------

LOOPBACK = {"127.0.0.1", "::1"}


def may_control(request) -> bool:
    """Signed-in staff or admins, or a caller on this machine (tests, scripts, the developer).

    A request relayed by a proxy on this machine also arrives from loopback, so one that carries a
    forwarding header doesn't count as local. A browser's cross-site POST (a page elsewhere aiming
    at a developer's 127.0.0.1) carries a foreign Origin: refused whoever sends it.
    """
    origin = request.headers.get("Origin")
    if origin and request.method not in {"GET", "HEAD"} and origin != f"{request.scheme}://{request.get_host()}":
        return False
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        member = getattr(request, "member", None)
        if user.is_staff or (member is not None and member.is_admin):
            return True
    forwarded = any(name in request.headers for name in ("X-Forwarded-For", "Forwarded", "X-Real-IP"))
    return request.META.get("REMOTE_ADDR") in LOOPBACK and not forwarded


def _control_only(view):
    """The control API and page change what Zoom answers everyone: not for anyone on the network."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if not may_control(request):
            raise api_error(403, 403, "The sandbox's controls are for signed-in admins or callers on this machine.")
        return view(request, *args, **kwargs)

    return wrapper


def _control_page_only(view):
    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if not may_control(request):
            text = "The sandbox's controls are for signed-in admins or callers on this machine."
            return HttpResponse(text, status=403, content_type="text/plain; charset=utf-8")
        return view(request, *args, **kwargs)

    return wrapper


# --- Control: JSON API -------------------------------------------------------------------------


def _email_param(body: dict) -> str | None:
    email = body.get("email")
    if email is not None and (not isinstance(email, str) or not email.strip()):
        raise api_error(400, 300, "email must be a non-empty string.")
    return email


@_endpoint("POST", injectable=False)
@_control_only
def control_fail(request):
    body = _json_object(request)
    keys = ("method", "status", "times", "retry_after", "body", "raw_body", "content_type", "delay_seconds")
    if not isinstance(body.get("path_contains"), str):
        raise api_error(400, 300, "path_contains (a string) is required.")
    try:
        inject_failure(body["path_contains"], **{key: body[key] for key in keys if key in body})
    except (ValueError, TypeError) as error:
        raise api_error(400, 300, str(error)) from error
    return JsonResponse({"queued": state_summary()["failures"]})


@_endpoint("POST", injectable=False)
@_control_only
def control_expire_tokens(request):
    body = _json_object(request, empty_ok=True)
    try:
        changed = expire_access_tokens(_email_param(body), include_refresh=bool(body.get("refresh")))
    except LookupError as error:
        raise api_error(404, 1001, str(error)) from error
    return JsonResponse({"changed_tokens": changed})


@_endpoint("POST", injectable=False)
@_control_only
def control_reset(request):
    reset()
    return JsonResponse({"status": "reset"})


@_endpoint("GET", injectable=False)
@_control_only
def control_state(request):
    return JsonResponse(state_summary())


@_endpoint("POST", injectable=False)
@_control_only
def control_deauthorize(request):
    body = _json_object(request)
    email = _email_param(body)
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


# --- Control: the page for people running the demo ---------------------------------------------


@require_GET
@_control_page_only
def control_page(request):
    context = {"users": state_summary()["users"], "webhook_url": default_webhook_url()}
    return _render(request, "sandbox/zoom_control.html", context)


@require_POST
@_control_page_only
def control_remove_app(request):
    """The "Remove app" button: what a user removing the app in Zoom's Marketplace causes."""
    try:
        result = deauthorize(request.POST.get("email", ""))
    except LookupError:
        messages.error(request, "No such sandbox user.")
        return redirect("zoom_sandbox:control")
    if result.get("webhook_status") is None:
        messages.error(request, f"Tokens revoked, but the webhook could not be delivered to {result['webhook_url']}.")
    else:
        text = f"Tokens of {result['email']} revoked; app_deauthorized delivered: HTTP {result['webhook_status']}."
        messages.success(request, text)
    return redirect("zoom_sandbox:control")
