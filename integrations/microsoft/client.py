"""Microsoft's identity platform (v2, with PKCE) and Microsoft Graph's online meetings, as documented
(shared/reference/providers.md). HTTP via integrations.http.

Microsoft's refresh tokens rotate (every refresh spends the old one), so `refresh` must only run under
the connection's row lock (integrations/tokens.py). There is no endpoint to revoke one authorization:
disconnecting deletes our tokens and the member removes the app in their Microsoft account.
"""

import base64
import binascii
import json
from datetime import UTC, datetime
from urllib.parse import quote

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


def authorize_params(redirect_uri: str) -> dict:
    """The consent request, without state and PKCE (the shared flow adds those)."""
    return {
        "response_type": "code",
        "client_id": settings.MICROSOFT_CLIENT_ID,
        "redirect_uri": redirect_uri,
        "scope": settings.MICROSOFT_SCOPES,
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


def _token_request(form: dict) -> dict:
    # Microsoft takes the client's credentials in the form body (client_secret_post).
    data = {
        "client_id": settings.MICROSOFT_CLIENT_ID,
        "client_secret": settings.MICROSOFT_CLIENT_SECRET,
        "scope": settings.MICROSOFT_SCOPES,
        **form,
    }
    return http.request("POST", token_url(), data=data).body


def exchange_code(*, code: str, redirect_uri: str, verifier: str) -> tuple[TokenSet, bool]:
    """The tokens for an authorization code, and whether the account is a personal one."""
    body = _token_request(
        {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri, "code_verifier": verifier}
    )
    tokens = _token_set(body, refresh_required=True)
    granted = {name.lower().removeprefix(GRAPH_RESOURCE) for name in tokens.scope.split()}
    # An answer without a scope list says nothing either way; one without the meetings permission
    # (consent given to fewer permissions than asked) could never make a link.
    if granted and MEETINGS_SCOPE not in granted:
        raise PermissionNotGranted("Microsoft's grant lacks OnlineMeetings.ReadWrite")
    return tokens, is_personal_account(body.get("id_token"))


def refresh(refresh_token: str) -> TokenSet:
    """A new access token and (Microsoft rotates them) a new refresh token; the old one is spent."""
    body = _token_request({"grant_type": "refresh_token", "refresh_token": refresh_token})
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
