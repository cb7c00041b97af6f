"""Zoom's OAuth and REST API, as documented (shared/reference/providers.md). HTTP via integrations.http."""

from datetime import UTC

from django.conf import settings

from .. import http
from ..base import Account, CreatedMeeting, MeetingRequest, ProviderResponseError, TokenSet

AGENDA_LIMIT = 2000
TOPIC_LIMIT = 200
LIST_PAGE_SIZE = 300  # Zoom's maximum
LIST_MAX_PAGES = 20


def _basic_auth() -> tuple[str, str]:
    return settings.ZOOM_CLIENT_ID, settings.ZOOM_CLIENT_SECRET


def _bearer(access_token: str) -> dict:
    # Zoom rejects tokens in the query string: the header is the only place for it.
    return {"Authorization": f"Bearer {access_token}"}


def authorize_url() -> str:
    return f"{settings.ZOOM_OAUTH_BASE_URL}/oauth/authorize"


def authorize_params(redirect_uri: str) -> dict:
    return {"response_type": "code", "client_id": settings.ZOOM_CLIENT_ID, "redirect_uri": redirect_uri}


def _token_set(body) -> TokenSet:
    if not isinstance(body, dict) or not body.get("access_token") or not body.get("refresh_token"):
        raise ProviderResponseError("Zoom's token response lacks access_token or refresh_token")
    try:
        expires_in = int(body.get("expires_in", 3599))
    except (TypeError, ValueError) as error:
        raise ProviderResponseError("Zoom's token response has a malformed expires_in") from error
    return TokenSet(
        access_token=str(body["access_token"]),
        refresh_token=str(body["refresh_token"]),
        expires_in=expires_in,
        scope=str(body.get("scope", "")),
    )


def exchange_code(*, code: str, redirect_uri: str, verifier: str) -> TokenSet:
    response = http.request(
        "POST",
        f"{settings.ZOOM_OAUTH_BASE_URL}/oauth/token",
        auth=_basic_auth(),
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "code_verifier": verifier,
        },
    )
    return _token_set(response.body)


def refresh(refresh_token: str) -> TokenSet:
    response = http.request(
        "POST",
        f"{settings.ZOOM_OAUTH_BASE_URL}/oauth/token",
        auth=_basic_auth(),
        data={"grant_type": "refresh_token", "refresh_token": refresh_token},
    )
    return _token_set(response.body)


def revoke(access_token: str) -> None:
    http.request(
        "POST", f"{settings.ZOOM_OAUTH_BASE_URL}/oauth/revoke", auth=_basic_auth(), data={"token": access_token}
    )


def get_account(access_token: str) -> Account:
    body = http.request("GET", f"{settings.ZOOM_API_BASE_URL}/users/me", headers=_bearer(access_token)).body
    if not isinstance(body, dict) or not body.get("id"):
        raise ProviderResponseError("Zoom's /users/me answer has no user id")
    return Account(
        user_id=str(body["id"]), account_id=str(body.get("account_id", "")), email=str(body.get("email", ""))
    )


def _numeric(meeting_id: str) -> str:
    # Zoom's ids are digits; anything else in a path would be a request to another resource.
    if not str(meeting_id).isdigit():
        raise ValueError(f"not a Zoom meeting id: {meeting_id!r}")
    return str(meeting_id)


def _meeting_body(meeting: MeetingRequest) -> dict:
    return {
        "topic": meeting.topic[:TOPIC_LIMIT],
        "type": 2,  # scheduled
        # Always UTC with a Z: a local time sent as UTC is how meetings end up at the wrong hour.
        "start_time": meeting.start.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "duration": meeting.duration_minutes,
        "timezone": meeting.time_zone,
        "agenda": meeting.agenda[:AGENDA_LIMIT],
    }


def create_meeting(access_token: str, meeting: MeetingRequest) -> CreatedMeeting:
    body = {
        **_meeting_body(meeting),
        "settings": {"join_before_host": False, "waiting_room": True, "host_video": True, "participant_video": True},
    }
    response = http.request(
        "POST", f"{settings.ZOOM_API_BASE_URL}/users/me/meetings", headers=_bearer(access_token), json=body
    )
    return _created(response.body)


def _created(data) -> CreatedMeeting:
    if not isinstance(data, dict) or not data.get("join_url"):
        raise ProviderResponseError("Zoom's meeting has no join_url")
    meeting_id = str(data.get("id", ""))
    if not meeting_id.isdigit():
        raise ProviderResponseError("Zoom's meeting has no numeric id")
    return CreatedMeeting(
        meeting_id=meeting_id,
        external_ref=str(data.get("uuid", "")),
        join_url=str(data["join_url"]),
        passcode=str(data.get("password", "")),
    )


def find_meeting(access_token: str, marker: str) -> CreatedMeeting | None:
    """The user's upcoming meeting whose agenda carries `marker`, or None when there is none.

    Zoom has no idempotency key; this is how an unknown create outcome (a timeout, a worker that
    died mid-call) is settled. Listing the user's meetings is within the classic `meeting:write`
    scope ("view and manage"). The list shortens agendas to 250 characters, so the marker goes
    first in ours; the match is read back in full from the meeting itself."""
    url = f"{settings.ZOOM_API_BASE_URL}/users/me/meetings"
    params = {"type": "upcoming", "page_size": LIST_PAGE_SIZE}
    for _page in range(LIST_MAX_PAGES):
        body = http.request("GET", url, headers=_bearer(access_token), params=params).body
        if not isinstance(body, dict) or not isinstance(body.get("meetings", []), list):
            raise ProviderResponseError("Zoom's meeting list is not a list")
        for item in body.get("meetings", []):
            if isinstance(item, dict) and marker in str(item.get("agenda", "")) and str(item.get("id")).isdigit():
                return _created(get_meeting(access_token, str(item["id"])))
        token = body.get("next_page_token")
        if not token:
            return None
        params = {**params, "next_page_token": token}
    raise ProviderResponseError("Zoom's meeting list did not end")


def get_meeting(access_token: str, meeting_id: str) -> dict:
    return http.request(
        "GET", f"{settings.ZOOM_API_BASE_URL}/meetings/{_numeric(meeting_id)}", headers=_bearer(access_token)
    ).body


def update_meeting(access_token: str, meeting_id: str, meeting: MeetingRequest) -> None:
    http.request(
        "PATCH",
        f"{settings.ZOOM_API_BASE_URL}/meetings/{_numeric(meeting_id)}",
        headers=_bearer(access_token),
        json=_meeting_body(meeting),
    )


def delete_meeting(access_token: str, meeting_id: str) -> None:
    """Delete a meeting; one that no longer exists (404, code 3001) counts as deleted."""
    try:
        http.request(
            "DELETE", f"{settings.ZOOM_API_BASE_URL}/meetings/{_numeric(meeting_id)}", headers=_bearer(access_token)
        )
    except http.PermanentHTTPError as error:
        if error.status == 404:
            return
        raise
