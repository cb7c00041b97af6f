"""Microsoft Teams as a video provider: a work or school Microsoft account's Teams meetings, and the
Outlook calendars of any Microsoft account (personal ones too)."""

from datetime import datetime

from django.utils.translation import gettext_lazy as _

from ..base import (
    Account,
    CalendarChanges,
    CalendarEvent,
    CalendarInfo,
    CreatedMeeting,
    MeetingRequest,
    PushChannel,
    TokenSet,
    VideoProvider,
)
from . import client

WORK_OR_SCHOOL_APPS_URL = "https://myapps.microsoft.com"
PERSONAL_APPS_URL = "https://account.live.com/consent/Manage"

# Refresh errors after which only the member can help: the grant was spent, expired or revoked
# (invalid_grant, AADSTS70000 / 700082 / 50173 …), or their organization now wants them to sign in
# again, e.g. for multi-factor authentication (interaction_required). invalid_client and
# invalid_request are our own configuration's fault and must not break every member's connection.
BROKEN_GRANT_ERRORS = ("invalid_grant", "interaction_required")


class MicrosoftProvider(VideoProvider):
    key = "microsoft"
    name = "Microsoft"
    meeting_name = "Microsoft Teams"
    location = "microsoft_teams"
    settings_prefix = "MICROSOFT"
    # The identity platform has no endpoint that ends one app's authorization.
    can_revoke = False
    # Where each kind of Microsoft account removes an app: the card and the guide show both.
    removal_help = (
        (_("Work or school account"), WORK_OR_SCHOOL_APPS_URL),
        (_("Personal Microsoft account"), PERSONAL_APPS_URL),
    )
    guide_url_name = "help:microsoft"

    def authorize_url(self, redirect_uri: str) -> tuple[str, dict]:
        return client.authorize_url(), client.authorize_params(redirect_uri)

    def exchange_code(self, *, code: str, redirect_uri: str, verifier: str) -> TokenSet:
        tokens, _personal = client.exchange_code(code=code, redirect_uri=redirect_uri, verifier=verifier)
        return tokens

    def refresh(self, refresh_token: str) -> TokenSet:
        return client.refresh(refresh_token)

    def get_account(self, access_token: str) -> Account:
        # Without the ID token the kind of account is unknown: it counts as able to host, and
        # Graph's 403 on its first meeting marks it and moves the fallback chain on.
        return client.get_account(access_token)

    def account_for(self, tokens: TokenSet) -> Account:
        # Only the ID token of the exchange tells a personal account (Microsoft's consumer tenant),
        # so the card can say "can't host Teams meetings" before any booking.
        return client.get_account(tokens.access_token, personal=client.is_personal_account(tokens.id_token))

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

    # -------------------------------------------------------------- calendars

    has_calendars = True

    def grants_calendars(self, granted_scopes: str) -> bool:
        # Microsoft may write granted scopes with Graph's resource prefix and in any letter case.
        wanted = client.scope_names(self.calendar_scopes)
        return bool(wanted) and wanted <= client.scope_names(granted_scopes)

    def list_calendars(self, access_token: str) -> list[CalendarInfo]:
        return client.list_calendars(access_token)

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
        return client.calendar_changes(
            access_token, calendar.external_id, cursor=cursor, start=start, end=end, host_time_zone=host_time_zone
        )

    def watch_calendar(
        self, access_token: str, calendar_id: str, *, address: str, channel_id: str, token: str, expires_at: datetime
    ) -> PushChannel:
        # Graph names the subscription itself: `channel_id` is not needed.
        return client.watch_calendar(access_token, calendar_id, address=address, token=token, expires_at=expires_at)

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
        return client.renew_watch(
            access_token, calendar_id, channel, address=address, token=token, expires_at=expires_at
        )

    def stop_watch(self, access_token: str, channel: PushChannel) -> None:
        client.stop_watch(access_token, channel)

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
        # getSchedule asks by mailbox, not by calendar: see client.free_busy.
        return client.free_busy(access_token, start=start, end=end, account_email=account_email, timeout=timeout)

    def create_event(self, access_token: str, calendar_id: str, event: CalendarEvent) -> str:
        return client.create_event(access_token, calendar_id, event)

    def update_event(self, access_token: str, calendar_id: str, event_id: str, event: CalendarEvent) -> None:
        client.update_event(access_token, calendar_id, event_id, event)

    def delete_event(self, access_token: str, calendar_id: str, event_id: str) -> None:
        client.delete_event(access_token, calendar_id, event_id)

    def extra_urls(self):
        # Where a watched calendar's change notifications come (integrations/calendars/webhooks.py).
        from django.urls import path

        from ..calendars.webhooks import microsoft_calendar_notifications

        return [path("calendar-notifications/", microsoft_calendar_notifications, name="microsoft_calendar_push")]


provider = MicrosoftProvider()
