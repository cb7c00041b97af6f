"""Google as a video provider: Meet links made through the host's Google Calendar, and the
member's own calendars (busy time, push channels, free/busy, the bookings' events)."""

from datetime import datetime

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


class GoogleProvider(VideoProvider):
    key = "google"
    name = "Google"
    meeting_name = "Google Meet"
    location = "google_meet"
    settings_prefix = "GOOGLE"
    can_revoke = True
    removal_help = (("Google Account", "https://myaccount.google.com/connections"),)
    guide_url_name = "help:google"
    has_calendars = True
    # A Meet link is an event on the host's calendar: on their booking calendar it is the booking's event.
    meeting_is_calendar_event = True

    def authorize_url(self, redirect_uri: str) -> tuple[str, dict]:
        return client.authorize_url(), client.authorize_params(redirect_uri)

    def exchange_code(self, *, code: str, redirect_uri: str, verifier: str) -> TokenSet:
        return client.exchange_code(code=code, redirect_uri=redirect_uri, verifier=verifier)

    def refresh(self, refresh_token: str) -> TokenSet:
        return client.refresh(refresh_token)

    def revoke(self, *, access_token: str, refresh_token: str) -> None:
        # The refresh token stands for the whole grant; an access token alone only when none is left.
        client.revoke(refresh_token or access_token)

    def get_account(self, access_token: str) -> Account:
        return client.get_account(access_token)

    def is_broken_grant(self, error) -> bool:
        return client.is_broken_grant(error)

    def create_meeting(self, access_token: str, meeting: MeetingRequest) -> CreatedMeeting:
        return client.create_meeting(access_token, meeting)

    def find_meeting(self, access_token: str, meeting: MeetingRequest) -> CreatedMeeting | None:
        # The event id is derived from the request: looking it up settles an unknown outcome.
        return client.find_meeting(access_token, meeting)

    def update_meeting(self, access_token: str, meeting_id: str, meeting: MeetingRequest) -> None:
        client.update_meeting(access_token, meeting_id, meeting)

    def delete_meeting(self, access_token: str, meeting_id: str) -> None:
        client.delete_meeting(access_token, meeting_id)

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
            access_token, calendar, cursor=cursor, start=start, end=end, host_time_zone=host_time_zone
        )

    def watch_calendar(
        self, access_token: str, calendar_id: str, *, address: str, channel_id: str, token: str, expires_at: datetime
    ) -> PushChannel:
        return client.watch_calendar(
            access_token, calendar_id, address=address, channel_id=channel_id, token=token, expires_at=expires_at
        )

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
            access_token,
            calendar_id,
            channel,
            address=address,
            new_channel_id=new_channel_id,
            token=token,
            expires_at=expires_at,
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
        # Google's freeBusy takes the calendars' own ids; the account's email is the primary one's.
        return client.free_busy(access_token, calendar_ids, start=start, end=end, timeout=timeout)

    def create_event(self, access_token: str, calendar_id: str, event: CalendarEvent) -> str:
        return client.create_event(access_token, calendar_id, event)

    def update_event(self, access_token: str, calendar_id: str, event_id: str, event: CalendarEvent) -> None:
        client.update_event(access_token, calendar_id, event_id, event)

    def delete_event(self, access_token: str, calendar_id: str, event_id: str) -> None:
        client.delete_event(access_token, calendar_id, event_id)

    def extra_urls(self):
        # Where a watched calendar's change notifications come (integrations/calendars/webhooks.py).
        from django.urls import path

        from ..calendars.webhooks import google_calendar_push

        return [path("calendar-push/", google_calendar_push, name="google_calendar_push")]


provider = GoogleProvider()
