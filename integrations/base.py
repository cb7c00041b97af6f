"""What every video provider offers the rest of the product.

A provider is one folder (integrations/<key>/) holding a `provider.py` with a VideoProvider
subclass, plus one line in integrations/registry.py. Everything else (the member card, the
connect / callback / disconnect URLs, the fallback chain, token refresh and revocation, the
permission matrix) reads the registry and calls these methods; nothing outside the folder knows
how a provider's API looks.
"""

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.urls import URLPattern


@dataclass(frozen=True)
class TokenSet:
    # repr=False: a TokenSet that ends up in a log line or a traceback shows no secret.
    access_token: str = field(repr=False)
    refresh_token: str = field(repr=False)  # empty when the provider didn't send a new one (Google keeps the old)
    expires_in: int
    scope: str
    # The OpenID Connect ID token of a code exchange, when the provider sends one: read during the
    # connect (who the account is), never stored.
    id_token: str = field(default="", repr=False)


@dataclass(frozen=True)
class Account:
    user_id: str
    account_id: str
    email: str
    # False for an account the provider will not let host meetings (a personal Microsoft account
    # and Teams): the connection is kept, the card says so and the fallback chain skips it.
    can_host_meetings: bool = True


@dataclass(frozen=True)
class MeetingRequest:
    topic: str
    start: datetime  # aware UTC
    duration_minutes: int
    time_zone: str  # the host's zone
    agenda: str
    request_id: str  # unique per booking and host: providers that support idempotency use it
    marker: str = ""  # what identifies our meeting at the provider when its creation is in doubt

    @property
    def end(self) -> datetime:
        return self.start + timedelta(minutes=self.duration_minutes)


@dataclass(frozen=True)
class CreatedMeeting:
    meeting_id: str  # the provider's id, as text (Zoom's are int64, Google's and Graph's strings)
    external_ref: str
    join_url: str
    passcode: str


class ProviderResponseError(Exception):
    """The provider answered 2xx with something we can't use (missing fields, wrong types)."""


class PermissionNotGranted(ProviderResponseError):
    """The member unticked a permission on the consent page that meetings can't be made without."""


class CannotHostMeetings(Exception):
    """The account is connected but the provider refuses to let it host meetings (Microsoft's
    403 for a personal account). Not a broken connection: the chain skips it and goes on."""


class VideoProvider:
    """One video provider. Subclasses set the attributes and implement the methods.

    HTTP goes through integrations.http, so errors arrive as TransientHTTPError (retry later) or
    PermanentHTTPError (4xx); a 401 from a meeting call makes the caller refresh once and retry.
    """

    key: str = ""  # URL and database name: "zoom"
    name: str = ""  # the brand, as on its own buttons: "Zoom", "Google", "Microsoft"
    meeting_name: str = ""  # what the call is called: "Zoom", "Google Meet", "Microsoft Teams"
    location: str = ""  # the MeetingType.Location value that asks for this provider
    settings_prefix: str = ""  # "ZOOM": {prefix}_CLIENT_ID, {prefix}_SCOPES …
    # False when the provider has no way to revoke one authorization (Microsoft): disconnecting
    # deletes the tokens and the card tells the member where to remove the app themselves.
    can_revoke: bool = True
    # Where a member removes the app in their provider account: (label, url) pairs, one per kind of
    # account (Microsoft's work or school accounts and personal ones differ). Shown on the card, the
    # disconnect question and the message after it when the provider can't revoke for us.
    removal_help: tuple = ()
    # The name of the guide page (help:<name>) that explains what is stored and how to remove it.
    guide_url_name: str = ""

    # -------------------------------------------------------------- OAuth

    def authorize_url(self, redirect_uri: str) -> tuple[str, dict]:
        """The consent page's URL and its query (without state and PKCE, which the flow adds)."""
        raise NotImplementedError

    def exchange_code(self, *, code: str, redirect_uri: str, verifier: str) -> TokenSet:
        raise NotImplementedError

    def refresh(self, refresh_token: str) -> TokenSet:
        """A fresh access token. Rotating providers return a new refresh token; others ""."""
        raise NotImplementedError

    def revoke(self, *, access_token: str, refresh_token: str) -> None:
        """End the authorization at the provider. Only called when `can_revoke`."""
        raise NotImplementedError

    def get_account(self, access_token: str) -> Account:
        raise NotImplementedError

    def account_for(self, tokens: TokenSet) -> Account:
        """The account a connect authorized, with the code exchange's tokens in hand (providers
        whose ID token says more than their API override this)."""
        return self.get_account(tokens.access_token)

    def is_broken_grant(self, error) -> bool:
        """Whether a refresh refused with `error` (a PermanentHTTPError) means the member must
        connect again (revoked, expired, password changed), as opposed to our own mistake."""
        return error.status in (400, 401) and error.provider_code in ("invalid_grant", "invalid_request", None)

    # -------------------------------------------------------------- meetings

    def create_meeting(self, access_token: str, meeting: MeetingRequest) -> CreatedMeeting:
        """Make the meeting. May raise CannotHostMeetings."""
        raise NotImplementedError

    def find_meeting(self, access_token: str, meeting: MeetingRequest) -> CreatedMeeting | None:
        """The meeting an earlier create for this request may have made (its outcome is unknown:
        a timeout, a worker that died), or None when there is none."""
        raise NotImplementedError

    def update_meeting(self, access_token: str, meeting_id: str, meeting: MeetingRequest) -> None:
        """Move the meeting to the request's start and duration; the link stays."""
        raise NotImplementedError

    def delete_meeting(self, access_token: str, meeting_id: str) -> None:
        """Delete it; one that is already gone counts as deleted."""
        raise NotImplementedError

    # -------------------------------------------------------------- extras

    def extra_urls(self) -> list[URLPattern]:
        """URLs of the provider beyond connect / callback / disconnect (Zoom's webhook), mounted
        under /integrations/<key>/."""
        return []

    def __repr__(self) -> str:
        return f"<VideoProvider {self.key}>"
