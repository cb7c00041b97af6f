"""The video meeting of a booking: created once, moved with it, deleted when it is cancelled.

At most one meeting per booking. Zoom has no idempotency key, so the guarantee comes from our
database: the VideoMeeting row is claimed (PENDING → CREATING) with a conditional UPDATE before
the provider is called, and only the task whose UPDATE changed the row makes the call. A second
run of the task finds the claim and leaves. If a worker dies during the call we can't know
whether Zoom made the meeting; a later run that finds a claim older than any request could take
marks the outcome UNKNOWN and tells the host, rather than risk a second meeting. For the same
reason a request that timed out after it was sent is not retried; a connection error (nothing
sent), a 5xx or a 429 (Zoom answered "no") is.
"""

import logging
from dataclasses import dataclass
from datetime import timedelta

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from bookings.models import Booking
from meetingtypes.models import MeetingType

from . import http
from .base import MeetingRequest, ProviderResponseError
from .models import Connection, Provider, VideoMeeting
from .providers import client_for
from .tokens import ConnectionBroken, call_with_token

logger = logging.getLogger(__name__)

# Longer than any single provider call can take (connect + read timeouts, one refresh, one retry).
STALE_CLAIM = timedelta(minutes=2)

# Which providers can host a meeting of each location, in the order they are tried.
PROVIDERS_FOR_LOCATION = {
    MeetingType.Location.ZOOM: [Provider.ZOOM],
}


class RetryLater(Exception):
    def __init__(self, reason: str, retry_after: float | None = None):
        super().__init__(reason)
        self.retry_after = retry_after


@dataclass(frozen=True)
class Outcome:
    state: str  # a VideoMeeting.State, or "not_needed"
    detail: str = ""

    @property
    def needs_host_action(self) -> bool:
        return self.state in (VideoMeeting.State.FAILED, VideoMeeting.State.UNKNOWN)


NOT_NEEDED = Outcome("not_needed")


def _hosts_in_order(booking: Booking) -> list[int]:
    """The booking's hosts; for several (collective), in the meeting type's host order."""
    hosts = [row.member_id for row in booking.host_rows.all() if row.is_active]
    order = dict(booking.meeting_type.host_links.values_list("member_id", "position"))
    return sorted(hosts, key=lambda member_id: (order.get(member_id, 1_000), member_id))


def choose_connection(booking: Booking) -> Connection | None:
    """The first host (in host order) with a working account of a provider the location allows."""
    providers = PROVIDERS_FOR_LOCATION.get(booking.meeting_type.location, [])
    hosts = _hosts_in_order(booking)
    connections = {
        (c.member_id, c.provider): c
        for c in Connection.objects.filter(
            member_id__in=hosts, provider__in=providers, status=Connection.Status.ACTIVE
        ).select_related("member")
    }
    for provider in providers:
        for member_id in hosts:
            if (member_id, provider) in connections:
                return connections[(member_id, provider)]
    return None


def meeting_request(booking: Booking, host_time_zone: str) -> MeetingRequest:
    meeting_type = booking.meeting_type
    agenda = f"{meeting_type.name} booked by {booking.client_name} <{booking.client_email}>."
    if booking.client_notes:
        agenda += f"\n\n{booking.client_notes}"
    return MeetingRequest(
        topic=f"{meeting_type.name} with {booking.client_name}",
        start=booking.start,
        duration_minutes=meeting_type.duration_minutes,
        time_zone=host_time_zone,
        agenda=agenda,
        request_id=f"{booking.uid}-{booking.sequence}",
    )


def _set(meeting: VideoMeeting, **fields) -> None:
    fields["updated_at"] = timezone.now()
    VideoMeeting.objects.filter(pk=meeting.pk).update(**fields)
    for name, value in fields.items():
        setattr(meeting, name, value)


def ensure_meeting(booking: Booking) -> Outcome:
    """Create the booking's video meeting unless it exists or another worker is creating it."""
    if not booking.meeting_type.is_video or booking.is_cancelled:
        return NOT_NEEDED
    meeting, _ = VideoMeeting.objects.get_or_create(booking=booking)
    if meeting.state == VideoMeeting.State.CREATING:
        if meeting.claimed_at and timezone.now() - meeting.claimed_at > STALE_CLAIM:
            _set(meeting, state=VideoMeeting.State.UNKNOWN, last_error="A worker stopped while creating the meeting.")
            return Outcome(VideoMeeting.State.UNKNOWN, meeting.last_error)
        return Outcome(VideoMeeting.State.CREATING)
    if meeting.state != VideoMeeting.State.PENDING:
        return Outcome(meeting.state, meeting.last_error)

    connection = choose_connection(booking)
    if connection is None:
        _set(meeting, state=VideoMeeting.State.FAILED, last_error="No host has a video account connected.")
        return Outcome(VideoMeeting.State.FAILED, meeting.last_error)

    claimed = VideoMeeting.objects.filter(pk=meeting.pk, state=VideoMeeting.State.PENDING).update(
        state=VideoMeeting.State.CREATING,
        claimed_at=timezone.now(),
        attempts=F("attempts") + 1,
        provider=connection.provider,
        host_id=connection.member_id,
        updated_at=timezone.now(),
    )
    if claimed != 1:
        return Outcome(VideoMeeting.State.CREATING)  # someone else got there first
    meeting.refresh_from_db()
    return _create(meeting, booking, connection)


def _create(meeting: VideoMeeting, booking: Booking, connection: Connection) -> Outcome:
    client = client_for(connection.provider)
    request = meeting_request(booking, connection.member.time_zone)
    create_errors = []

    def create(token: str):
        try:
            return client.create_meeting(token, request)
        except http.TransientHTTPError as error:
            create_errors.append(error)
            raise

    try:
        created = call_with_token(connection.pk, create)
    except http.TransientHTTPError as error:
        # Only the create request itself can have made a meeting; a token refresh that failed,
        # even by timing out, means the create was never sent.
        from_create = any(error is seen for seen in create_errors)
        if not from_create or error.sent is False or error.status is not None:
            # Nothing was created: give the claim back for the retry.
            _set(meeting, state=VideoMeeting.State.PENDING, last_error=str(error)[:500])
            raise RetryLater(str(error), error.retry_after) from error
        _set(meeting, state=VideoMeeting.State.UNKNOWN, last_error=f"{error} (it may or may not exist now)"[:500])
        return Outcome(VideoMeeting.State.UNKNOWN, meeting.last_error)
    except (http.PermanentHTTPError, ProviderResponseError, ConnectionBroken) as error:
        logger.warning("booking %s: %s meeting not created: %s", booking.pk, connection.provider, error)
        _set(meeting, state=VideoMeeting.State.FAILED, last_error=str(error)[:500])
        return Outcome(VideoMeeting.State.FAILED, meeting.last_error)
    _set(
        meeting,
        state=VideoMeeting.State.READY,
        meeting_id=created.meeting_id,
        external_ref=created.external_ref,
        join_url=created.join_url,
        passcode=created.passcode,
        last_error="",
    )
    return Outcome(VideoMeeting.State.READY)


class LinkBeingCreated(Exception):
    """A worker is creating the provider's meeting right now: a typed link would race with it."""


def use_manual_link(booking: Booking, *, added_by_id: int, join_url: str, passcode: str) -> VideoMeeting:
    """Make a typed link the booking's meeting link, replacing whatever was there (a failed or
    unknown creation, an earlier link). Call inside the transaction that locks the booking.

    A provider meeting it replaces stays at the provider, as on disconnect: the host chose to use
    another link, and deleting theirs unasked could end a call they set up.
    """
    meeting, _ = VideoMeeting.objects.select_for_update().get_or_create(booking=booking)
    fresh_claim = meeting.claimed_at is not None and timezone.now() - meeting.claimed_at <= STALE_CLAIM
    if meeting.state == VideoMeeting.State.CREATING and fresh_claim:
        raise LinkBeingCreated
    _set(
        meeting,
        provider=VideoMeeting.MANUAL,
        host_id=added_by_id,
        state=VideoMeeting.State.READY,
        meeting_id=None,
        external_ref="",
        join_url=join_url,
        passcode=passcode,
        last_error="",
        claimed_at=None,
    )
    return meeting


def give_up(booking: Booking, reason: str) -> Outcome:
    """The last retry failed: the booking stays confirmed without a link; the host is told."""
    meeting = VideoMeeting.objects.filter(booking=booking).first()
    if meeting is not None and meeting.state in (VideoMeeting.State.PENDING, VideoMeeting.State.CREATING):
        _set(meeting, state=VideoMeeting.State.FAILED, last_error=reason[:500])
    return Outcome(VideoMeeting.State.FAILED, reason)


def _host_connection(meeting: VideoMeeting) -> Connection | None:
    return Connection.objects.filter(
        member_id=meeting.host_id, provider=meeting.provider, status=Connection.Status.ACTIVE
    ).first()


def _delete_remote(meeting: VideoMeeting) -> bool:
    """Delete the provider's meeting. False when the host's account is gone (it stays there)."""
    connection = _host_connection(meeting)
    if connection is None or meeting.meeting_id is None:
        return False
    client = client_for(meeting.provider)
    try:
        call_with_token(connection.pk, lambda token: client.delete_meeting(token, meeting.meeting_id))
    except http.TransientHTTPError as error:
        raise RetryLater(str(error), error.retry_after) from error
    except (http.PermanentHTTPError, ConnectionBroken) as error:
        logger.warning("video meeting %s: could not delete: %s", meeting.pk, error)
        return False
    return True


def move_meeting(booking: Booking) -> Outcome:
    """After a reschedule: move the same meeting (same host) or replace it (new host)."""
    if not booking.meeting_type.is_video or booking.is_cancelled:
        return NOT_NEEDED
    with transaction.atomic():
        meeting = VideoMeeting.objects.select_for_update().filter(booking=booking).first()
        if meeting is not None and meeting.is_manual and meeting.is_ready:
            return Outcome(VideoMeeting.State.READY)  # a typed link is not tied to a time; it stays
        if meeting is None or meeting.state != VideoMeeting.State.READY:
            if meeting is not None and meeting.state == VideoMeeting.State.FAILED:
                _set(meeting, state=VideoMeeting.State.PENDING, last_error="")
            moved = None
        else:
            wanted = choose_connection(booking)
            if wanted is not None and wanted.member_id == meeting.host_id and wanted.provider == meeting.provider:
                moved = _patch(meeting, booking, wanted)
            else:
                moved = False
            if not moved:
                _delete_remote(meeting)
                _set(
                    meeting,
                    state=VideoMeeting.State.PENDING,
                    meeting_id=None,
                    external_ref="",
                    join_url="",
                    passcode="",
                )
    if moved:
        return Outcome(VideoMeeting.State.READY)
    return ensure_meeting(booking)


def _patch(meeting: VideoMeeting, booking: Booking, connection: Connection) -> bool:
    client = client_for(connection.provider)
    request = meeting_request(booking, connection.member.time_zone)
    try:
        call_with_token(connection.pk, lambda token: client.update_meeting(token, meeting.meeting_id, request))
    except http.TransientHTTPError as error:
        raise RetryLater(str(error), error.retry_after) from error
    except (http.PermanentHTTPError, ConnectionBroken) as error:
        # Gone at the provider (404), refused, or the account broke: replace the meeting instead.
        logger.info("video meeting %s: could not move (%s); replacing it", meeting.pk, error)
        return False
    return True


def delete_meeting(booking: Booking) -> Outcome:
    """After a cancel: delete the provider's meeting (already gone counts as deleted)."""
    with transaction.atomic():
        meeting = VideoMeeting.objects.select_for_update().filter(booking=booking).first()
        if meeting is None or meeting.state != VideoMeeting.State.READY:
            return NOT_NEEDED
        if meeting.is_manual:
            _set(meeting, state=VideoMeeting.State.DELETED)  # nothing exists at a provider
            return Outcome(VideoMeeting.State.DELETED)
        if _delete_remote(meeting):
            _set(meeting, state=VideoMeeting.State.DELETED)
            return Outcome(VideoMeeting.State.DELETED)
        _set(meeting, last_error="Could not delete the meeting: the host's account is no longer connected.")
        return Outcome(VideoMeeting.State.FAILED, meeting.last_error)
