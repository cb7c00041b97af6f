"""Microsoft Teams as a video provider: a work or school Microsoft account's Teams meetings."""

import hashlib
import threading

from django.utils.translation import gettext_lazy as _

from ..base import Account, CreatedMeeting, MeetingRequest, TokenSet, VideoProvider
from . import client

WORK_OR_SCHOOL_APPS_URL = "https://myapps.microsoft.com"
PERSONAL_APPS_URL = "https://account.live.com/consent/Manage"

# Refresh errors after which only the member can help: the grant was spent, expired or revoked
# (invalid_grant, AADSTS70000 / 700082 / 50173 …), or their organization now wants them to sign in
# again, e.g. for multi-factor authentication (interaction_required). invalid_client and
# invalid_request are our own configuration's fault and must not break every member's connection.
BROKEN_GRANT_ERRORS = ("invalid_grant", "interaction_required")

# How many connects may be between the code exchange and the account lookup at once.
PENDING_ACCOUNT_KINDS_LIMIT = 256


class MicrosoftProvider(VideoProvider):
    key = "microsoft"
    name = "Microsoft"
    meeting_name = "Microsoft Teams"
    location = "microsoft_teams"
    settings_prefix = "MICROSOFT"
    # The identity platform has no endpoint that ends one app's authorization.
    can_revoke = False
    removal_url = WORK_OR_SCHOOL_APPS_URL
    # Where each kind of Microsoft account removes an app: the card and the guide show both.
    removal_help = (
        (_("Work or school account"), WORK_OR_SCHOOL_APPS_URL),
        (_("Personal Microsoft account"), PERSONAL_APPS_URL),
    )
    guide_url_name = "help:microsoft"

    def __init__(self):
        # Whether the account of a just-exchanged code is a personal one, which only the ID token of
        # the exchange tells; get_account, called next with the access token, picks it up. Keyed by
        # a digest so no token is kept in memory longer than the request needs it.
        self._personal_by_token: dict[str, bool] = {}
        self._lock = threading.Lock()

    @staticmethod
    def _digest(access_token: str) -> str:
        return hashlib.sha256(access_token.encode()).hexdigest()

    def authorize_url(self, redirect_uri: str) -> tuple[str, dict]:
        return client.authorize_url(), client.authorize_params(redirect_uri)

    def exchange_code(self, *, code: str, redirect_uri: str, verifier: str) -> TokenSet:
        tokens, personal = client.exchange_code(code=code, redirect_uri=redirect_uri, verifier=verifier)
        with self._lock:
            while len(self._personal_by_token) >= PENDING_ACCOUNT_KINDS_LIMIT:
                self._personal_by_token.pop(next(iter(self._personal_by_token)))
            self._personal_by_token[self._digest(tokens.access_token)] = personal
        return tokens

    def refresh(self, refresh_token: str) -> TokenSet:
        return client.refresh(refresh_token)

    def get_account(self, access_token: str) -> Account:
        with self._lock:
            personal = self._personal_by_token.pop(self._digest(access_token), False)
        # Unknown (another process exchanged the code) counts as able to host: Graph's 403 on the
        # first meeting then marks the connection, and the fallback chain moves on.
        return client.get_account(access_token, personal=personal)

    def is_broken_grant(self, error) -> bool:
        return error.status == 400 and error.provider_code in BROKEN_GRANT_ERRORS

    def create_meeting(self, access_token: str, meeting: MeetingRequest) -> CreatedMeeting:
        return client.create_meeting(access_token, meeting)

    def find_meeting(self, access_token: str, meeting: MeetingRequest) -> CreatedMeeting | None:
        # Graph can't look an online meeting up by anything of ours (an online meeting has no
        # agenda to carry a marker, and listing a user's meetings needs their join URL). So a
        # create whose outcome is unknown (a timeout after sending, a worker that died) may leave
        # one unused Teams meeting nobody has the link of; the booking's claim, taken before the
        # call, still keeps a second task run from making another one alongside ours.
        return None

    def update_meeting(self, access_token: str, meeting_id: str, meeting: MeetingRequest) -> None:
        client.update_meeting(access_token, meeting_id, meeting)

    def delete_meeting(self, access_token: str, meeting_id: str) -> None:
        client.delete_meeting(access_token, meeting_id)


provider = MicrosoftProvider()
