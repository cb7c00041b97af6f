"""The Microsoft sandbox: a local fake of the Microsoft identity platform (v2) and of Microsoft
Graph's online meetings (Teams), for tests and the demo.

It follows shared/reference/providers.md: refresh tokens rotate (each refresh answers with a new
one and spends the old, which then fails with invalid_grant AADSTS70000); a refresh token comes
only with the offline_access scope; PKCE (S256) is required; there is no revoke endpoint (the
control page's "Remove app" ends the grant, as removing the app in the Microsoft account does).
The consent page asks whether the account is a personal one: personal accounts carry Microsoft's
consumer tenant id in their ID token (an unsigned JWT here, so a client can read it) and are
refused Teams meetings with 403. Graph errors are {"error": {"code", "message"}}.

Paths (under /sandbox/microsoft, where MICROSOFT_OAUTH_BASE_URL=<site>/sandbox/microsoft/common and
MICROSOFT_API_BASE_URL=<site>/sandbox/microsoft/v1.0): common/oauth2/v2.0/authorize,
common/oauth2/v2.0/token, v1.0/me, v1.0/me/onlineMeetings[/{id}].
"""

import base64
import copy
import hashlib
import secrets
import uuid
from datetime import UTC, datetime, timedelta

from django.http import HttpResponse, JsonResponse

from .common import (
    ACCESS_TOKEN_TTL_SECONDS,
    ProviderSandbox,
    SandboxError,
    SandboxState,
    SandboxUser,
    identity_digest,
    iso_z,
    unsigned_jwt,
)

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
        return {"meetings": [_meeting_summary(state, meeting) for meeting in state.meetings.values()]}

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


def issue_tokens(email: str = DEFAULT_EMAIL, personal: bool = False, scope: str | None = None) -> dict:
    """A new grant for this user (a personal account if `personal`), as if they had just allowed
    the app. Returns the token endpoint's JSON (a refresh token if the scope has offline_access,
    as the default MICROSOFT_SCOPES has). A shortcut for tests that don't need the consent page."""
    scope = SANDBOX.normalized_scope(scope)
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
