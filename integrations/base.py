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
    # The calendar to write the meeting's event on, for providers whose meetings are calendar
    # events (meeting_is_calendar_event): the host's booking calendar, so that one event is both.
    # "" for the account's primary calendar.
    calendar_id: str = ""

    @property
    def end(self) -> datetime:
        return self.start + timedelta(minutes=self.duration_minutes)


@dataclass(frozen=True)
class CreatedMeeting:
    meeting_id: str  # the provider's id, as text (Zoom's are int64, Google's and Graph's strings)
    external_ref: str
    join_url: str
    passcode: str


# --- Calendars --------------------------------------------------------------------------------
# Providers whose accounts have calendars (Google, Microsoft) set `has_calendars` and implement the
# calendar methods of VideoProvider. integrations/calendars/ does the rest: which calendars count,
# keeping their busy time in our database, push channels, the live check at booking time, and the
# bookings' own events.


@dataclass(frozen=True)
class CalendarInfo:
    external_id: str  # the provider's calendar id
    name: str
    is_primary: bool
    can_write: bool = True  # False for calendars shared read-only with the member
    time_zone: str = ""  # the calendar's own zone when the provider has one (Google: all-day events)


@dataclass(frozen=True)
class BusyPeriod:
    """One busy event (or one occurrence of a recurring event) of a calendar."""

    event_id: str  # the provider's id of the event or occurrence: a later change names it again
    start: datetime  # aware UTC
    end: datetime  # aware UTC


@dataclass(frozen=True)
class CalendarChanges:
    """What a calendar listing or an incremental sync found.

    Events that take no time (free / transparent, tentative, declined, cancelled, deleted) and the
    events the product wrote itself for bookings (counted through the bookings already) come in
    `freed`, never in `busy`.
    """

    busy: tuple[BusyPeriod, ...]  # busy now: stored, replacing what was stored for the same event id
    freed: tuple[str, ...]  # event ids that no longer take time
    cursor: str  # Google's nextSyncToken / Graph's deltaLink: hand it back for the next changes
    complete: bool  # a full listing of the window: anything stored before and not in `busy` is gone


class SyncCursorExpired(Exception):
    """The provider no longer knows the cursor (HTTP 410): list the whole window again."""


@dataclass(frozen=True)
class PushChannel:
    """A Google events.watch channel or a Microsoft Graph subscription."""

    channel_id: str  # Google: the id we chose; Microsoft: the subscription id Graph gave
    resource_id: str  # Google's resourceId (needed to stop the channel); "" for Microsoft
    expires_at: datetime


@dataclass(frozen=True)
class CalendarEvent:
    """A booking as an event on a host's calendar."""

    request_id: str  # unique per booking and host: Google's event id, Graph's transactionId
    summary: str
    description: str
    location: str
    start: datetime  # aware UTC
    end: datetime
    time_zone: str  # the host's zone


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

    # -------------------------------------------------------------- calendars
    # Implemented by providers whose accounts have calendars (has_calendars = True). HTTP errors
    # come as in the meeting calls; a 401 makes the caller refresh once and retry.

    has_calendars: bool = False
    # True when a meeting is itself an event on the host's calendar (Google Meet): made on the
    # host's booking calendar, it is the booking's event there too (integrations/calendars/events.py).
    meeting_is_calendar_event: bool = False

    @property
    def calendar_scopes(self) -> str:
        """The scopes calendars need beyond the meeting scopes: {prefix}_CALENDAR_SCOPES."""
        from django.conf import settings

        return getattr(settings, f"{self.settings_prefix}_CALENDAR_SCOPES", "") if self.has_calendars else ""

    def grants_calendars(self, granted_scopes: str) -> bool:
        """Whether a connection with these granted scopes may read and write its calendars."""
        wanted = set(self.calendar_scopes.split())
        return bool(wanted) and wanted <= set(granted_scopes.split())

    def list_calendars(self, access_token: str) -> list[CalendarInfo]:
        raise NotImplementedError

    def calendar_changes(
        self,
        access_token: str,
        calendar: CalendarInfo,
        *,
        cursor: str,
        start: datetime,
        end: datetime,
        host_time_zone: str,
    ) -> CalendarChanges:
        """With `cursor` "": every event of [start, end) (complete=True), and a cursor. With a
        cursor: what changed since it (complete=False). SyncCursorExpired when the provider no
        longer knows the cursor. All-day events count in the calendar's zone, or `host_time_zone`
        when the provider gives none."""
        raise NotImplementedError

    def watch_calendar(
        self, access_token: str, calendar_id: str, *, address: str, channel_id: str, token: str, expires_at: datetime
    ) -> PushChannel:
        """Ask the provider to POST to `address` when the calendar changes, sending `token` back
        (Google's X-Goog-Channel-Token, Graph's clientState) so the notification can be checked."""
        raise NotImplementedError

    def renew_watch(
        self,
        access_token: str,
        calendar_id: str,
        channel: PushChannel,
        *,
        address: str,
        new_channel_id: str,
        token: str,
        expires_at: datetime,
    ) -> PushChannel:
        """Keep notifications coming past `channel.expires_at`: a new channel (Google, then the old
        one is stopped) or the same subscription with a later expiry (Microsoft)."""
        raise NotImplementedError

    def stop_watch(self, access_token: str, channel: PushChannel) -> None:
        """Stop a channel; one the provider no longer knows counts as stopped."""
        raise NotImplementedError

    def free_busy(
        self,
        access_token: str,
        calendar_ids: list[str],
        *,
        start: datetime,
        end: datetime,
        account_email: str,
        timeout: float,
    ) -> list[tuple[datetime, datetime]]:
        """The busy periods of these calendars in [start, end), asked live (Google's freeBusy,
        Graph's getSchedule), within `timeout` seconds."""
        raise NotImplementedError

    def create_event(self, access_token: str, calendar_id: str, event: CalendarEvent) -> str:
        """Write the event and return its id. Exactly once: a retry with the same request_id finds
        the event an earlier attempt made instead of making a second one."""
        raise NotImplementedError

    def update_event(self, access_token: str, calendar_id: str, event_id: str, event: CalendarEvent) -> None:
        raise NotImplementedError

    def delete_event(self, access_token: str, calendar_id: str, event_id: str) -> None:
        """Delete it; one that is already gone counts as deleted."""
        raise NotImplementedError

    # -------------------------------------------------------------- extras

    def extra_urls(self) -> list[URLPattern]:
        """URLs of the provider beyond connect / callback / disconnect (Zoom's webhook), mounted
        under /integrations/<key>/."""
        return []

    def __repr__(self) -> str:
        return f"<VideoProvider {self.key}>"
