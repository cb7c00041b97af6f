"""What every video provider offers the rest of the product."""

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class TokenSet:
    access_token: str
    refresh_token: str  # empty when the provider didn't send a new one (Google keeps the old)
    expires_in: int
    scope: str


@dataclass(frozen=True)
class Account:
    user_id: str
    account_id: str
    email: str


@dataclass(frozen=True)
class MeetingRequest:
    topic: str
    start: datetime  # aware UTC
    duration_minutes: int
    time_zone: str
    agenda: str
    request_id: str  # unique per booking: providers that support idempotency use it


@dataclass(frozen=True)
class CreatedMeeting:
    meeting_id: int | None
    external_ref: str
    join_url: str
    passcode: str


class ProviderResponseError(Exception):
    """The provider answered 2xx with something we can't use (missing fields, wrong types)."""
