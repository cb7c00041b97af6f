"""What every fake provider of the sandbox shares: state, clock, users, tokens, failure injection,
JSON errors, the consent page and the control API.

Each provider is a `ProviderSandbox` subclass in its own module (zoom.py, google.py, microsoft.py),
created once as that module's `SANDBOX`. Its state (users, codes, tokens, queued failures, its own
meetings or events, its clock) lives in the sandbox's cache under the provider's name, so every
process of the site (several gunicorn workers, a Celery worker) sees the same fake provider, and
the providers never see each other's. `with sandbox.lock as state:` holds a lock across processes
and threads, loads that state, and stores it back at the end.

Sandbox time is `sandbox.now()`: real time plus an offset that `advance_clock()` moves forward, one
offset per provider. A provider module routes `now()` through its own module-level `now` function,
so tests may monkeypatch e.g. `zoom.now`.

The control API (page, reset, state, fail, expire-tokens, remove-app) is mounted under each
provider's /control/ by `control_urlpatterns(sandbox)`; it answers only signed-in staff and admins
or callers on this machine. Developer tooling: its pages and messages are not translated.
"""

import base64
import hashlib
import hmac
import json
import logging
import re
import secrets
import threading
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import cache, wraps
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from django.conf import settings
from django.contrib import messages
from django.core.cache import caches
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.http import HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import redirect
from django.template.backends.django import DjangoTemplates
from django.urls import path
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

logger = logging.getLogger(__name__)

CODE_TTL_SECONDS = 300
ACCESS_TOKEN_TTL_SECONDS = 3599
# The entry of settings.CACHES that holds the sandbox's state (named when Zoom was its only provider).
CACHE_ALIAS = "provider_sandbox"
LOCK_TTL_SECONDS = 10  # a process that died holding the lock blocks the others this long at most
LOCK_WAIT_SECONDS = 15
TEMPLATE_DIR = Path(__file__).resolve().parent / "templates"
LOOPBACK = {"127.0.0.1", "::1"}
CONTROL_REFUSED = "The sandbox's controls are for signed-in admins or callers on this machine."


# --- Small pieces ------------------------------------------------------------------------------


def iso_z(moment: float | datetime) -> str:
    if not isinstance(moment, datetime):
        moment = datetime.fromtimestamp(moment, UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def with_query(url: str, params: dict) -> str:
    """url with params added to whatever query string it already has (None values left out)."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    query += [(key, value) for key, value in params.items() if value is not None]
    return urlunsplit(parts._replace(query=urlencode(query)))


def s256(verifier: str) -> str:
    """PKCE's S256 transform (RFC 7636): base64url(sha256(verifier)) without padding."""
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")


def identity_digest(provider: str, email: str) -> bytes:
    # Ids derive from the email so they stay the same across restarts of the demo server: a
    # connection saved before a restart still matches the account the provider reports later.
    return hashlib.sha256(f"{provider}-sandbox:{email}".encode()).digest()


def unsigned_jwt(claims: dict) -> str:
    """An ID token shaped like the real ones (base64url header.payload.signature), not signed: a
    client may read its claims; none should trust a token it did not get from the token endpoint."""

    def part(value: bytes) -> str:
        return base64.urlsafe_b64encode(value).decode().rstrip("=")

    header = json.dumps({"alg": "none", "typ": "JWT"}, separators=(",", ":")).encode()
    payload = json.dumps(claims, separators=(",", ":")).encode()
    return f"{part(header)}.{part(payload)}.{part(b'sandbox-unsigned')}"


def same_secret(given: str, expected: str) -> bool:
    return bool(expected) and hmac.compare_digest(given.encode(), expected.encode())


# --- State -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SandboxUser:
    id: str
    email: str
    first_name: str
    last_name: str
    account_id: str
    personal: bool = False  # a consumer account (Microsoft's personal accounts can't host Teams meetings)
    timezone: str = "UTC"

    @property
    def display_name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()


@dataclass
class AuthorizationCode:
    client_id: str
    redirect_uri: str
    user_id: str
    scope: str
    challenge: str
    challenge_method: str
    expires_at: float
    with_refresh_token: bool = True  # Google: access_type=offline; Microsoft: the offline_access scope


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


class SandboxState:
    """One provider's users, codes, tokens, queued failures and clock; providers add their own stores."""

    def __init__(self):
        self.clock_offset = 0.0
        self.users: dict[str, SandboxUser] = {}  # by user id
        self.codes: dict[str, AuthorizationCode] = {}
        self.access_tokens: dict[str, AccessToken] = {}
        self.refresh_tokens: dict[str, RefreshToken] = {}
        self.failures: list[InjectedFailure] = []


class SharedState:
    """`with sandbox.lock as state:` one provider's state, the same in every process: a lock in the
    cache (add() is atomic there), the state read from the cache into `self.state`, and written back
    on the way out, also after an error (a code popped by a failed exchange stays spent). With the
    cache unreachable, each process goes on with its own copy rather than failing every call."""

    def __init__(self, provider: str, state_class: type[SandboxState]):
        self.provider = provider
        self.state_class = state_class
        self.state = state_class()
        self._state_key, self._lock_key = f"sandbox:{provider}:state", f"sandbox:{provider}:lock"
        self._threads = threading.Lock()  # one thread of this process at a time
        self._token = None

    def __enter__(self) -> SandboxState:
        self._threads.acquire()
        try:
            self._token = self._acquire_shared_lock()
            self._load()
        except BaseException:
            self._release()
            raise
        return self.state

    def __exit__(self, *exc_info):
        try:
            self._store()
        finally:
            self._release()

    def replace_state(self, state: SandboxState) -> None:
        """Inside the lock: start over from `state` (stored on the way out)."""
        self.state = state

    def _release(self):
        try:
            if self._token is not None:
                self._release_shared_lock(self._token)
        finally:
            self._token = None
            self._threads.release()

    @staticmethod
    def _cache():
        return caches[CACHE_ALIAS]

    def _acquire_shared_lock(self) -> str | None:
        token = secrets.token_hex(8)
        deadline = time.monotonic() + LOCK_WAIT_SECONDS
        while True:
            try:
                if self._cache().add(self._lock_key, token, timeout=LOCK_TTL_SECONDS):
                    return token
            except Exception:  # the cache server is down: this process's copy will do
                logger.warning("%s sandbox: cache unavailable, state is per process", self.provider, exc_info=True)
                return None
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.provider} sandbox: its state stayed locked for too long")
            time.sleep(0.002)

    def _release_shared_lock(self, token: str) -> None:
        try:
            if self._cache().get(self._lock_key) == token:
                self._cache().delete(self._lock_key)
        except Exception:
            logger.warning("%s sandbox: cache unavailable, lock left to expire", self.provider, exc_info=True)

    def _load(self) -> None:
        try:
            stored = self._cache().get(self._state_key)
        except Exception:
            return
        self.state = stored if isinstance(stored, self.state_class) else self.state_class()

    def _store(self) -> None:
        try:
            self._cache().set(self._state_key, self.state, timeout=None)
        except Exception:
            logger.warning(
                "%s sandbox: cache unavailable, state kept in this process only", self.provider, exc_info=True
            )


# --- Errors ------------------------------------------------------------------------------------


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


# --- One provider ------------------------------------------------------------------------------


class ProviderSandbox:
    """The parts of a fake provider that don't depend on which provider it is. Subclasses name the
    provider and give its error format (`error_body`) and its JSON for a user (`user_json`)."""

    name = ""  # the URL segment under /sandbox/, the cache key and the URL namespace's prefix
    title = ""  # the provider as people know it, on the consent and control pages
    brand_mark = "▶"
    settings_prefix = ""  # its app is settings.<prefix>_CLIENT_ID / _CLIENT_SECRET, its scopes <prefix>_SCOPES
    default_email = ""
    account_label = ""  # the consent page's email field
    extra_choices: tuple[tuple[str, str], ...] = ()  # consent page checkboxes: (field name, label)
    pkce_required = False
    state_class = SandboxState
    items_label = "Meetings"  # what the control page counts per user, from user_summary's "items"
    remove_app_label = "Remove app"
    # A provider's own part of the control page (a template, given control_section_context()), if any.
    control_section_template = ""

    def __init__(self):
        self.lock = SharedState(self.name, self.state_class)

    # --- The app registered at the provider --------------------------------------------------

    @property
    def client_id(self) -> str:
        return getattr(settings, f"{self.settings_prefix}_CLIENT_ID", "") or ""

    @property
    def client_secret(self) -> str:
        return getattr(settings, f"{self.settings_prefix}_CLIENT_SECRET", "") or ""

    def registered_redirect_uri(self) -> str:
        """The one redirect URI the sandbox's app lists, as the provider's app lists the product's callback."""
        site = getattr(settings, "SITE_URL", "http://127.0.0.1:8000").rstrip("/")
        return f"{site}/integrations/{self.name}/callback/"

    def is_registered_redirect_uri(self, value: str) -> bool:
        # A query string of the client's own may follow (providers match the URL without it);
        # anything else would let the consent page send a code to whichever site asked.
        given, registered = urlsplit(value), urlsplit(self.registered_redirect_uri())
        return (given.scheme, given.netloc, given.path) == (registered.scheme, registered.netloc, registered.path)

    def normalized_scope(self, scope: str | None) -> str:
        scope = scope if scope else getattr(settings, f"{self.settings_prefix}_SCOPES", "")
        return " ".join(scope.replace(",", " ").split())

    def client_is_ours(self, client_id: str, secret: str) -> bool:
        return same_secret(client_id, self.client_id) and same_secret(secret, self.client_secret)

    # --- Clock -------------------------------------------------------------------------------

    def clock_time(self) -> float:
        """Real time plus this provider's offset (as last loaded by this process)."""
        return time.time() + self.lock.state.clock_offset

    def now(self) -> float:
        """Sandbox time, epoch seconds: decides token and code expiry. Subclasses route it through
        their module's `now` so that tests can monkeypatch that."""
        return self.clock_time()

    def advance_clock(self, seconds: float) -> None:
        """Move sandbox time forward, e.g. advance_clock(3600) expires every access token issued so far."""
        with self.lock as state:
            state.clock_offset += seconds

    def reset(self) -> None:
        """Forget everything (users, codes, tokens, the provider's own records, queued failures) and
        undo advance_clock()."""
        with self.lock:
            self.lock.replace_state(self.state_class())

    # --- Users -------------------------------------------------------------------------------

    def user_id(self, digest: bytes) -> str:
        return base64.urlsafe_b64encode(digest[:16]).decode().rstrip("=")

    def make_user(self, email: str, *, personal: bool = False) -> SandboxUser:
        digest = identity_digest(self.name, email)
        parts = [part for part in re.split(r"[._+\-]+", email.split("@")[0]) if part]
        return SandboxUser(
            id=self.user_id(digest),
            email=email,
            first_name=parts[0].capitalize() if parts else self.title,
            last_name=" ".join(part.capitalize() for part in parts[1:]),
            account_id=base64.urlsafe_b64encode(digest[16:32]).decode().rstrip("="),
            personal=personal,
        )

    @staticmethod
    def find_user_locked(state: SandboxState, email: str) -> SandboxUser | None:
        email = email.strip().lower()
        return next((user for user in state.users.values() if user.email == email), None)

    def user_for_email_locked(self, state: SandboxState, email: str, *, personal: bool | None = None) -> SandboxUser:
        """The user with this email, made on first use; `personal`, if given, is what the person
        said about the account this time."""
        user = self.find_user_locked(state, email)
        if user is None:
            user = self.make_user(email.strip().lower(), personal=bool(personal))
        elif personal is not None and user.personal != personal:
            user = replace(user, personal=personal)
        state.users[user.id] = user
        return user

    def user_or_error_locked(self, state: SandboxState, email: str) -> SandboxUser:
        user = self.find_user_locked(state, email)
        if user is None:
            raise LookupError(f"User does not exist: {email}.")
        return user

    def get_or_create_user(self, email: str | None = None, *, personal: bool | None = None) -> dict:
        """The sandbox user with this email (as the provider's "me" call shows it), made on first use."""
        with self.lock as state:
            return self.user_json(self.user_for_email_locked(state, email or self.default_email, personal=personal))

    def user_json(self, user: SandboxUser) -> dict:
        raise NotImplementedError

    # --- Tokens ------------------------------------------------------------------------------

    def issue_tokens_locked(
        self, state: SandboxState, user_id: str, client_id: str, scope: str, *, with_refresh_token: bool = True
    ) -> tuple[str, str | None]:
        access = secrets.token_urlsafe(64)
        state.access_tokens[access] = AccessToken(user_id, client_id, scope, self.now() + ACCESS_TOKEN_TTL_SECONDS)
        if not with_refresh_token:
            return access, None
        refresh = secrets.token_urlsafe(64)
        state.refresh_tokens[refresh] = RefreshToken(user_id, client_id, scope)
        return access, refresh

    @staticmethod
    def revoke_locked(state: SandboxState, user_id: str, client_id: str | None = None) -> int:
        """Drop every access and refresh token of the user (of one client, if given); how many went."""
        removed = 0
        for store in (state.access_tokens, state.refresh_tokens):
            for value, grant in list(store.items()):
                if grant.user_id == user_id and client_id in (None, grant.client_id):
                    del store[value]
                    removed += 1
        return removed

    def new_code_locked(self, state: SandboxState, params, user: SandboxUser) -> str:
        code = secrets.token_urlsafe(24)
        state.codes[code] = AuthorizationCode(
            client_id=params["client_id"],
            redirect_uri=params["redirect_uri"],
            user_id=user.id,
            scope=self.normalized_scope(params.get("scope")),
            challenge=params.get("code_challenge", ""),
            challenge_method=params.get("code_challenge_method") or "plain",  # RFC 7636's default
            expires_at=self.now() + CODE_TTL_SECONDS,
            with_refresh_token=self.wants_refresh_token(params),
        )
        return code

    def take_code_locked(
        self, state: SandboxState, value: str, *, client_id: str, redirect_uri: str, verifier: str | None
    ) -> AuthorizationCode | None:
        """The code if it is valid for this exchange, else None. Popped at the first attempt,
        failed or not: a code is good for one try only."""
        code = state.codes.pop(value, None)
        valid = (
            code is not None
            and code.expires_at > self.now()
            and code.client_id == client_id
            and code.redirect_uri == redirect_uri
            and self.pkce_ok(code, verifier)
        )
        return code if valid else None

    @staticmethod
    def pkce_ok(code: AuthorizationCode, verifier: str | None) -> bool:
        if not code.challenge:
            return True  # no challenge at authorize time: a verifier is ignored, as by servers without PKCE
        if not verifier:
            return False
        if code.challenge_method == "S256":
            verifier = s256(verifier)
        return hmac.compare_digest(verifier.encode(), code.challenge.encode())

    def expire_access_tokens(self, email: str | None = None, *, include_refresh: bool = False) -> int:
        """Make current access tokens (all, or one user's) expired; with include_refresh, also drop
        refresh tokens, so that refreshing fails with invalid_grant. Returns how many tokens changed."""
        with self.lock as state:
            user_id = self.user_or_error_locked(state, email).id if email else None
            moment, changed = self.now(), 0
            for grant in state.access_tokens.values():
                if user_id in (None, grant.user_id) and grant.expires_at > moment:
                    grant.expires_at = moment - 1
                    changed += 1
            if include_refresh:
                for value, grant in list(state.refresh_tokens.items()):
                    if user_id in (None, grant.user_id):
                        del state.refresh_tokens[value]
                        changed += 1
            return changed

    def revoke_grant(self, email: str) -> int:
        """What the user removing the app in their account at the provider does: every token of
        the user stops working. Returns how many tokens went. Raises LookupError."""
        with self.lock as state:
            return self.revoke_locked(state, self.user_or_error_locked(state, email).id)

    @staticmethod
    def bearer_value(request) -> str | None:
        """The access token of `Authorization: Bearer`, or None. A token in the query string makes
        the request invalid even with a valid header: providers accept the header only."""
        if "access_token" in request.GET:
            return None
        scheme, _, value = request.headers.get("Authorization", "").partition(" ")
        return value.strip() if scheme.lower() == "bearer" and value.strip() else None

    @staticmethod
    def client_credentials(request, *, in_body: bool) -> tuple[str, str]:
        """client_id and secret from `Authorization: Basic`, or (if `in_body`) from the form body."""
        scheme, _, encoded = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "basic":
            try:
                decoded = base64.b64decode(encoded.strip(), validate=True).decode()
            except (ValueError, UnicodeDecodeError):
                decoded = ""
            client_id, _, secret = decoded.partition(":")
            return client_id, secret
        if in_body:
            return request.POST.get("client_id", ""), request.POST.get("client_secret", "")
        return "", ""

    # --- Failure injection -------------------------------------------------------------------

    def inject_failure(
        self,
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
        is only delayed and then answered normally (a slow provider that still does the work).
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
        with self.lock as state:
            state.failures.append(failure)

    def take_failure(self, method: str, path: str) -> InjectedFailure | None:
        with self.lock as state:
            for failure in state.failures:
                if failure.matches(method, path):
                    failure.times -= 1
                    if failure.times == 0:
                        state.failures.remove(failure)
                    return failure
        return None

    def failure_response(self, failure: InjectedFailure) -> HttpResponse:
        if failure.raw_body is not None:
            content_type = failure.content_type or "text/html; charset=utf-8"
            response = HttpResponse(failure.raw_body, status=failure.status, content_type=content_type)
        elif failure.body is not None:
            response = JsonResponse(failure.body, status=failure.status, safe=False)
        else:
            message = self.rate_limit_message if failure.status == 429 else f"Injected failure ({self.title} sandbox)."
            response = JsonResponse(self.error_body(failure.status, message), status=failure.status)
        if failure.retry_after is not None:
            response["Retry-After"] = failure.retry_after
        return response

    rate_limit_message = "Rate limit exceeded. Try again later."

    # --- JSON answers ------------------------------------------------------------------------

    def error_body(self, status: int, message: str) -> dict:
        """The provider's JSON error for this status."""
        raise NotImplementedError

    def error(self, status: int, message: str, headers: dict | None = None) -> SandboxError:
        return SandboxError(status, self.error_body(status, message), headers)

    def endpoint(self, *methods: str, injectable: bool = True):
        """A JSON endpoint: CSRF-exempt (machines call it), only these methods, injected failures
        first (unless `injectable` is false), and SandboxError turned into its JSON answer."""

        def decorate(view):
            @wraps(view)
            def wrapper(request, *args, **kwargs):
                return _answer(self, methods, injectable, view, request, *args, **kwargs)

            return csrf_exempt(wrapper)

        return decorate

    def json_object(self, request, *, empty_ok: bool = False) -> dict:
        if empty_ok and not request.body.strip():
            return {}
        try:
            body = json.loads(request.body)
        except (ValueError, UnicodeDecodeError):
            body = None
        if not isinstance(body, dict):
            raise self.error(400, "Request Body should be a valid JSON object.")
        return body

    # --- Consent -----------------------------------------------------------------------------

    def authorize_problem(self, params) -> str | None:
        """Why this authorization request can't be shown a consent page, or None."""
        setting = f"settings.{self.settings_prefix}_CLIENT_ID"
        if not self.client_id or params.get("client_id") != self.client_id:
            return f"Invalid client_id: this sandbox only knows the app configured as {setting}."
        if params.get("response_type") != "code":
            return "Unsupported response_type: only response_type=code is supported."
        if not self.is_registered_redirect_uri(params.get("redirect_uri", "")):
            return (
                "Invalid redirect_uri: it must be the app's registered callback, "
                + self.registered_redirect_uri()
                + "."
            )
        method, challenge = params.get("code_challenge_method"), params.get("code_challenge")
        if self.pkce_required and (method != "S256" or not challenge):
            return "PKCE is required: send a code_challenge with code_challenge_method=S256."
        if method and (method not in {"S256", "plain"} or not challenge):
            return "Invalid PKCE parameters: code_challenge_method must be S256 (or plain) with a code_challenge."
        return None

    def wants_refresh_token(self, params) -> bool:
        """Whether exchanging the code will also give a refresh token."""
        return True

    def denial(self, params) -> dict:
        """What the redirect back carries when the person presses Deny (besides the state)."""
        return {"error": "access_denied"}

    def consent_page(self, request, params, *, email: str = "", email_error: str = "", status: int = 200):
        context = {
            "client_id": params["client_id"],
            "scopes": self.normalized_scope(params.get("scope")).split(),
            "redirect_host": urlsplit(params["redirect_uri"]).netloc,
            "email": email or self.default_email,
            "email_error": email_error,
            "choices": [
                {"name": name, "label": label, "checked": request.POST.get(name) == "on"}
                for name, label in self.extra_choices
            ],
            "action": request.get_full_path(),
            **self.consent_context(request, params),
        }
        return self.render(request, "sandbox/consent.html", context, status)

    def consent_context(self, request, params) -> dict:
        """A provider's additions to its consent page (Google's per-scope checkboxes)."""
        return {}

    def decide(self, request, params) -> HttpResponse:
        redirect_uri, state_param = params["redirect_uri"], params.get("state")
        if request.POST.get("decision") != "allow":
            return HttpResponseRedirect(with_query(redirect_uri, {**self.denial(params), "state": state_param}))
        email = request.POST.get("email", "").strip().lower()
        try:
            validate_email(email)
        except ValidationError:
            return self.consent_page(request, params, email=email, email_error="Enter an email address.", status=400)
        choices = {name: request.POST.get(name) == "on" for name, _ in self.extra_choices}
        with self.lock as state:
            user = self.user_from_consent_locked(state, email, choices)
            code = self.new_code_locked(state, params, user)
        return HttpResponseRedirect(with_query(redirect_uri, {"code": code, "state": state_param}))

    def user_from_consent_locked(self, state: SandboxState, email: str, choices: dict[str, bool]) -> SandboxUser:
        """The user the person signed in as; `choices` are the consent page's checkboxes."""
        return self.user_for_email_locked(state, email)

    def render(self, request, template: str, context: dict, status: int = 200) -> HttpResponse:
        context = {
            "provider": self.title,
            "brand_mark": self.brand_mark,
            "account_label": self.account_label,
            **context,
        }
        html = _templates().get_template(template).render(context, request)
        return HttpResponse(html, status=status)

    # --- Inspection --------------------------------------------------------------------------

    def state_summary(self) -> dict:
        """Users, tokens (first 4 characters only), pending codes, queued failures and the provider's
        own records (see `extra_summary_locked`)."""
        with self.lock as state:
            moment = self.now()
            return {
                "now": iso_z(moment),
                "clock_offset_seconds": state.clock_offset,
                "users": [self.user_summary_locked(state, user, moment) for user in state.users.values()],
                "tokens": self._token_summaries_locked(state, moment),
                "pending_codes": len(state.codes),
                "failures": [_failure_summary(failure) for failure in state.failures],
                **self.extra_summary_locked(state, moment),
            }

    def user_summary_locked(self, state: SandboxState, user: SandboxUser, moment: float) -> dict:
        access = [grant for grant in state.access_tokens.values() if grant.user_id == user.id]
        return {
            **self.user_json(user),
            "email": user.email,  # under the same key for every provider
            "live_access_tokens": sum(1 for grant in access if grant.expires_at > moment),
            "expired_access_tokens": sum(1 for grant in access if grant.expires_at <= moment),
            "refresh_tokens": sum(1 for grant in state.refresh_tokens.values() if grant.user_id == user.id),
        }

    def extra_summary_locked(self, state: SandboxState, moment: float) -> dict:
        return {}

    @staticmethod
    def _token_summaries_locked(state: SandboxState, moment: float) -> list[dict]:
        def owner(grant) -> str:
            return state.users[grant.user_id].email

        access = [
            {
                "kind": "access",
                "prefix": value[:4],
                "email": owner(grant),
                "scope": grant.scope,
                "expires_in": int(grant.expires_at - moment),
                "expired": grant.expires_at <= moment,
            }
            for value, grant in state.access_tokens.items()
        ]
        refresh = [
            {"kind": "refresh", "prefix": value[:4], "email": owner(grant), "scope": grant.scope}
            for value, grant in state.refresh_tokens.items()
        ]
        return access + refresh

    # --- The control page's "Remove app" -----------------------------------------------------

    def remove_app_help(self) -> str:
        return (
            f'"{self.remove_app_label}" revokes every token of the user, as removing the app in their '
            f"{self.title} account does."
        )

    def remove_app(self, email: str) -> tuple[int, str]:
        """The "Remove app" button: (message level, what to tell the person). Raises LookupError."""
        revoked = self.revoke_grant(email)
        return messages.SUCCESS, f"{revoked} tokens of {email.strip().lower()} revoked."

    def control_rows(self) -> list[dict]:
        with self.lock as state:
            moment = self.now()
            rows = []
            for user in state.users.values():
                summary = self.user_summary_locked(state, user, moment)
                rows.append(
                    {
                        "email": user.email,
                        "id": user.id,
                        "items": self.items_of_locked(state, user),
                        "live_access_tokens": summary["live_access_tokens"],
                        "refresh_tokens": summary["refresh_tokens"],
                    }
                )
            return rows

    def items_of_locked(self, state: SandboxState, user: SandboxUser) -> int:
        """How many of the provider's own records (meetings, events) the user has."""
        return 0

    def control_section_context(self) -> dict:
        """What `control_section_template` shows."""
        return {}


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


def _failure_summary(failure: InjectedFailure) -> dict:
    return {
        "path_contains": failure.path_contains,
        "method": failure.method,
        "status": failure.status,
        "times_left": failure.times,
        "delay_seconds": failure.delay_seconds,
    }


def _answer(sandbox: ProviderSandbox, methods, injectable: bool, view, request, *args, **kwargs) -> HttpResponse:
    if request.method not in methods:
        response = JsonResponse(sandbox.error_body(405, f"Method {request.method} not allowed."), status=405)
        response["Allow"] = ", ".join(methods)
        return response
    try:
        if injectable:
            failure = sandbox.take_failure(request.method, request.path)
            if failure is not None:
                if failure.delay_seconds:
                    time.sleep(failure.delay_seconds)  # outside the lock: other requests go on meanwhile
                if failure.status is not None:
                    return sandbox.failure_response(failure)
        return view(request, *args, **kwargs)
    except SandboxError as error:
        return error.response()


@cache
def _templates() -> DjangoTemplates:
    # This package is not an installed app, so the project's engine does not search its templates
    # directory. This engine is the project's configuration with that directory in front.
    project = settings.TEMPLATES[0]
    return DjangoTemplates(
        {
            "NAME": "provider_sandbox",
            "DIRS": [TEMPLATE_DIR, *project.get("DIRS", [])],
            "APP_DIRS": project.get("APP_DIRS", False),
            "OPTIONS": project.get("OPTIONS", {}),
        }
    )


# --- Views every provider mounts (the URL passes its sandbox as the `sandbox` keyword) -----------


def authorize(request, sandbox: ProviderSandbox):
    """GET: the consent page. POST (from that page, with its CSRF token): Allow or Deny."""
    if request.method not in {"GET", "POST"}:
        return JsonResponse(sandbox.error_body(405, f"Method {request.method} not allowed."), status=405)
    return _answer(sandbox, ("GET", "POST"), True, _authorize_page, request, sandbox)


def _authorize_page(request, sandbox: ProviderSandbox):
    problem = sandbox.authorize_problem(request.GET)
    if problem:
        return sandbox.render(request, "sandbox/consent.html", {"error": problem}, status=400)
    if request.method == "POST":
        return sandbox.decide(request, request.GET)
    return sandbox.consent_page(request, request.GET)


@csrf_exempt
def not_found(request, *args, sandbox: ProviderSandbox, **kwargs):
    return JsonResponse(sandbox.error_body(404, f"Not found ({sandbox.title} sandbox)."), status=404)


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


def control_endpoint(*methods: str):
    """A JSON control endpoint: the controls change what the provider answers everyone, so not for
    anyone on the network; never subject to injected failures."""

    def decorate(view):
        @wraps(view)
        def wrapper(request, *args, sandbox: ProviderSandbox, **kwargs):
            def controlled(request, *args, **kwargs):
                if not may_control(request):
                    raise sandbox.error(403, CONTROL_REFUSED)
                return view(request, *args, sandbox=sandbox, **kwargs)

            return _answer(sandbox, methods, False, controlled, request, *args, **kwargs)

        return csrf_exempt(wrapper)

    return decorate


def _control_page_only(view):
    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if not may_control(request):
            return HttpResponse(CONTROL_REFUSED, status=403, content_type="text/plain; charset=utf-8")
        return view(request, *args, **kwargs)

    return wrapper


def email_param(sandbox: ProviderSandbox, body: dict) -> str | None:
    email = body.get("email")
    if email is not None and (not isinstance(email, str) or not email.strip()):
        raise sandbox.error(400, "email must be a non-empty string.")
    return email


@control_endpoint("POST")
def control_fail(request, sandbox: ProviderSandbox):
    body = sandbox.json_object(request)
    keys = ("method", "status", "times", "retry_after", "body", "raw_body", "content_type", "delay_seconds")
    if not isinstance(body.get("path_contains"), str):
        raise sandbox.error(400, "path_contains (a string) is required.")
    try:
        sandbox.inject_failure(body["path_contains"], **{key: body[key] for key in keys if key in body})
    except (ValueError, TypeError) as error:
        raise sandbox.error(400, str(error)) from error
    return JsonResponse({"queued": sandbox.state_summary()["failures"]})


@control_endpoint("POST")
def control_expire_tokens(request, sandbox: ProviderSandbox):
    body = sandbox.json_object(request, empty_ok=True)
    try:
        changed = sandbox.expire_access_tokens(email_param(sandbox, body), include_refresh=bool(body.get("refresh")))
    except LookupError as error:
        raise sandbox.error(404, str(error)) from error
    return JsonResponse({"changed_tokens": changed})


@control_endpoint("POST")
def control_reset(request, sandbox: ProviderSandbox):
    sandbox.reset()
    return JsonResponse({"status": "reset"})


@control_endpoint("GET")
def control_state(request, sandbox: ProviderSandbox):
    return JsonResponse(sandbox.state_summary())


@require_GET
@_control_page_only
def control_page(request, sandbox: ProviderSandbox):
    context = {
        "namespace": f"{sandbox.name}_sandbox",
        "users": sandbox.control_rows(),
        "items_label": sandbox.items_label,
        "remove_app_label": sandbox.remove_app_label,
        "remove_app_help": sandbox.remove_app_help(),
        "section_template": sandbox.control_section_template,
        **sandbox.control_section_context(),
    }
    return sandbox.render(request, "sandbox/control.html", context)


@require_POST
@_control_page_only
def control_remove_app(request, sandbox: ProviderSandbox):
    try:
        level, text = sandbox.remove_app(request.POST.get("email", ""))
    except LookupError:
        level, text = messages.ERROR, "No such sandbox user."
    messages.add_message(request, level, text)
    return redirect(f"{sandbox.name}_sandbox:control")


def control_urlpatterns(sandbox: ProviderSandbox) -> list:
    """The control API and page under <provider>/control/, the same for every provider."""
    bound = {"sandbox": sandbox}
    return [
        path("control/", control_page, bound, name="control"),
        path("control/remove-app", control_remove_app, bound, name="control_remove_app"),
        path("control/fail", control_fail, bound, name="control_fail"),
        path("control/expire-tokens", control_expire_tokens, bound, name="control_expire_tokens"),
        path("control/reset", control_reset, bound, name="control_reset"),
        path("control/state", control_state, bound, name="control_state"),
    ]
