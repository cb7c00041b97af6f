"""Google as a video provider: Meet links made through the host's Google Calendar."""

from ..base import Account, CreatedMeeting, MeetingRequest, TokenSet, VideoProvider
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

    def extra_urls(self):
        # Where a watched calendar's change notifications come (integrations/calendars/webhooks.py).
        from django.urls import path

        from ..calendars.webhooks import google_calendar_push

        return [path("calendar-push/", google_calendar_push, name="google_calendar_push")]


provider = GoogleProvider()
