"""Zoom as a video provider: its OAuth app, its meetings, and its deauthorization webhook."""

from django.conf import settings
from django.urls import path

from ..base import Account, CreatedMeeting, MeetingRequest, TokenSet, VideoProvider
from . import client


class ZoomProvider(VideoProvider):
    key = "zoom"
    name = "Zoom"
    meeting_name = "Zoom"
    location = "zoom"
    settings_prefix = "ZOOM"
    can_revoke = True
    removal_help = (("Zoom App Marketplace", "https://marketplace.zoom.us/user/installed"),)
    guide_url_name = "help:zoom"

    def authorize_url(self, redirect_uri: str) -> tuple[str, dict]:
        return client.authorize_url(), {**client.authorize_params(redirect_uri), "scope": settings.ZOOM_SCOPES}

    def exchange_code(self, *, code: str, redirect_uri: str, verifier: str) -> TokenSet:
        return client.exchange_code(code=code, redirect_uri=redirect_uri, verifier=verifier)

    def refresh(self, refresh_token: str) -> TokenSet:
        return client.refresh(refresh_token)

    def revoke(self, *, access_token: str, refresh_token: str) -> None:
        client.revoke(access_token)

    def get_account(self, access_token: str) -> Account:
        return client.get_account(access_token)

    def create_meeting(self, access_token: str, meeting: MeetingRequest) -> CreatedMeeting:
        return client.create_meeting(access_token, meeting)

    def find_meeting(self, access_token: str, meeting: MeetingRequest) -> CreatedMeeting | None:
        # Zoom has no idempotency key: our meetings carry the booking's marker in their agenda.
        return client.find_meeting(access_token, meeting.marker)

    def update_meeting(self, access_token: str, meeting_id: str, meeting: MeetingRequest) -> None:
        client.update_meeting(access_token, meeting_id, meeting)

    def delete_meeting(self, access_token: str, meeting_id: str) -> None:
        client.delete_meeting(access_token, meeting_id)

    def extra_urls(self):
        from .views import zoom_webhook

        return [path("webhook/", zoom_webhook, name="zoom_webhook")]


provider = ZoomProvider()
