"""The video meeting of a booking: created once, moved with it, deleted when it is cancelled.

Which account hosts the call is the fallback chain (`choose_connection`): the provider the meeting
type's location names, then the other video providers in registry order (Zoom, Google Meet,
Microsoft Teams); within each, the hosts in host order. A provider that fails for good on a host
(refused, broken, an account that can't host, out of retries) is passed over and the next one
tried at once; the booking records which provider and whose account hosts the call.

At most one meeting per booking. Zoom has no idempotency key, so the guarantee comes from our
database: the VideoMeeting row is claimed (PENDING → CREATING) with a conditional UPDATE before
the provider is called, and only the task whose UPDATE changed the row makes the call. A second
run finds the claim and leaves.

When the outcome of a create is unknown (a worker died during the call, or the request timed
out after it was sent), we ask the provider instead of guessing: every meeting we make carries
the booking's UID at the start of its agenda, and once the claim is older than any request can
take, the host's upcoming meetings are listed; the one found is adopted, and only if there is
none is the meeting created. A connection error (nothing sent), a 5xx or a 429 (Zoom answered
"no") is retried with backoff until shortly before the meeting starts; then, or at once on a
permanent refusal, the chain goes on; when nothing is left the booking stays confirmed without a
link and the host is told.

Each entry point is one step of bookings.followup: it runs when the row is due
(`next_attempt_at`) and leaves the row either settled or due again later.
"""

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from bookings.models import Booking

from . import http, registry
from .base import CannotHostMeetings, CreatedMeeting, MeetingRequest, ProviderResponseError, VideoProvider
from .models import Connection, VideoMeeting
from .tokens import ConnectionBroken, call_with_token

logger = logging.getLogger(__name__)

# Longer than any one attempt can take: up to four requests (a refresh, the call, a forced refresh
# after a 401, the call again), each within its connect and read timeouts. A claim older than this
# belongs to a worker that died, and no request of it can still reach the provider.
STALE_CLAIM = timedelta(seconds=4 * (http.CONNECT_TIMEOUT + http.READ_TIMEOUT) + 3)
State = VideoMeeting.State


@dataclass(frozen=True)
class Outcome:
    state: str  # a VideoMeeting.State, or "not_needed"
    detail: str = ""
    # The provider itself is failing (unreachable, 5xx): other bookings' steps for it can wait.
    outage: bool = False


NOT_NEEDED = Outcome("not_needed")


def marker(booking: Booking) -> str:
    """What identifies our meeting for a booking at the provider (see find_meeting)."""
    return f"Booking {booking.uid}"


def providers_for(location: str) -> list[VideoProvider]:
    """The providers that may host a meeting of `location`, in the order they are tried: the one
    the location names, then the others in registry order (Zoom, Google Meet, Microsoft Teams).
    Only providers members can connect on this site."""
    wanted = registry.for_location(location)
    if wanted is None:
        return []  # phone, in person, a custom link: no video meeting to make
    offered = registry.offered()
    return sorted(offered, key=lambda provider: provider.key != wanted.key)


def choose_connection(booking: Booking, passed_over=()) -> Connection | None:
    """The fallback chain: for each provider in order, the first host (in host order) with a
    working account of it that may host meetings, leaving out [provider, member id] pairs that
    already failed for good on this booking."""
    providers = [provider.key for provider in providers_for(booking.meeting_type.location)]
    hosts = [member.pk for member in booking.hosts_in_order()]
    skip = {(provider, member_id) for provider, member_id in passed_over}
    connections = {
        (c.member_id, c.provider): c
        for c in Connection.objects.filter(
            member_id__in=hosts, provider__in=providers, status=Connection.Status.ACTIVE, can_host_meetings=True
        ).select_related("member")
    }
    for provider in providers:
        for member_id in hosts:
            if (member_id, provider) in connections and (provider, member_id) not in skip:
                return connections[(member_id, provider)]
    return None


def meeting_request(booking: Booking, host_time_zone: str, *, calendar_id: str = "") -> MeetingRequest:
    """What the provider is asked to make. `calendar_id`: the meeting is an event on the host's
    booking calendar (see event_calendar), and reads like the booking events made there."""
    from .calendars import events

    meeting_type = booking.meeting_type
    # The marker first: lists of meetings show only the agenda's first 250 characters.
    if calendar_id:
        agenda = f"{marker(booking)}\n{events.description(booking)}"
    else:
        agenda = f"{marker(booking)}\n{meeting_type.name} booked by {booking.client_name} <{booking.client_email}>."
        if booking.client_notes:
            agenda += f"\n\n{booking.client_notes}"
    return MeetingRequest(
        topic=f"{meeting_type.name} with {booking.client_name}",
        start=booking.start,
        duration_minutes=meeting_type.duration_minutes,
        time_zone=host_time_zone,
        agenda=agenda,
        request_id=f"{booking.uid}-{booking.sequence}",
        marker=marker(booking),
        calendar_id=calendar_id,
    )


def event_calendar(booking: Booking, connection: Connection) -> str:
    """Where a meeting that is a calendar event (Google Meet) is made: on the host's booking
    calendar when it belongs to the same account, so that one event is both the meeting and the
    booking's event there; else ("") on the account's primary calendar."""
    if not registry.get(connection.provider).meeting_is_calendar_event:
        return ""
    from .calendars import events

    return events.share_with_video(booking, connection)


def _made_on(meeting: VideoMeeting) -> str:
    """The calendar the meeting's event was made on ("" for the primary one, or no such event)."""
    from .calendars import events

    return events.video_calendar_id(meeting.booking_id, meeting.host_id, meeting.provider)


def _set(meeting: VideoMeeting, **fields) -> None:
    fields["updated_at"] = timezone.now()
    VideoMeeting.objects.filter(pk=meeting.pk).update(**fields)
    for name, value in fields.items():
        setattr(meeting, name, value)


def _retry_at(meeting: VideoMeeting, now: datetime, retry_after: float | None = None) -> datetime:
    from bookings.emails import retry_delay

    return now + retry_delay(meeting.attempts, retry_after=retry_after)


def give_up_at(booking: Booking) -> datetime:
    """A meeting still not made by then is handed to the host."""
    return booking.start - timedelta(minutes=settings.VIDEO_RETRY_UNTIL_MINUTES_BEFORE)


# ---------------------------------------------------------------- the step


def run_step(booking: Booking, *, now: datetime, first_run: bool = False) -> Outcome:
    """Do the video work of the booking that is due: create, resolve an unknown outcome, move,
    or delete. `first_run`: work recorded for this change and never tried runs even before its
    due time (the task queued at the commit; the sweep is the safety net)."""
    meeting = VideoMeeting.objects.filter(booking=booking).first()
    if meeting is None:
        return NOT_NEEDED
    if not booking.meeting_type.is_video and meeting.state == State.PENDING:
        _set(meeting, next_attempt_at=None)  # the meeting type's location changed since: none to make
        return NOT_NEEDED
    due = meeting.next_attempt_at is not None and meeting.next_attempt_at <= now
    fresh = first_run and meeting.attempts == 0 and meeting.next_attempt_at is not None
    if not (due or fresh):
        return Outcome(meeting.state, meeting.last_error)
    if meeting.state in (State.CREATING, State.UNKNOWN):
        return _resolve(meeting, booking, now)
    if booking.is_cancelled:
        return _delete(meeting, booking, now)
    if meeting.state == State.PENDING:
        return _start_create(meeting, booking, now)
    if meeting.state == State.READY and meeting.needs_sync:
        return _move(meeting, booking, now)
    _set(meeting, next_attempt_at=None, needs_sync=False)
    return Outcome(meeting.state, meeting.last_error)


def _give_up(meeting: VideoMeeting, booking: Booking, reason: str, *, state: str = State.FAILED) -> Outcome:
    """The booking stays confirmed without a link; the host is told, in the same transaction."""
    from bookings import followup

    with transaction.atomic():
        _set(meeting, state=state, last_error=reason[:500], next_attempt_at=None)
        followup.video_gave_up(booking)
    logger.warning("booking %s: no video meeting: %s", booking.pk, reason)
    return Outcome(state, meeting.last_error)


def _start_create(meeting: VideoMeeting, booking: Booking, now: datetime) -> Outcome:
    if now >= give_up_at(booking) and (meeting.attempts or now >= booking.start):
        return _give_up(meeting, booking, f"Gave up shortly before the meeting. {meeting.last_error}".strip())
    connection = choose_connection(booking, meeting.passed_over)
    if connection is None:
        reason = meeting.last_error if meeting.passed_over else "No host has a video account connected."
        return _give_up(meeting, booking, reason or "No host has a video account connected.")
    claimed = VideoMeeting.objects.filter(pk=meeting.pk, state=State.PENDING).update(
        state=State.CREATING,
        claimed_at=now,
        attempts=F("attempts") + 1,
        provider=connection.provider,
        host_id=connection.member_id,
        needs_sync=False,
        next_attempt_at=now + STALE_CLAIM,
        updated_at=timezone.now(),
    )
    if claimed != 1:
        return Outcome(State.CREATING)  # someone else got there first
    meeting.refresh_from_db()
    return _create(meeting, booking, connection, now)


def _create(meeting: VideoMeeting, booking: Booking, connection: Connection, now: datetime) -> Outcome:
    provider = registry.get(connection.provider)
    calendar_id = event_calendar(booking, connection)
    request = meeting_request(booking, connection.member.time_zone, calendar_id=calendar_id)
    create_errors = []

    def create(token: str):
        try:
            return provider.create_meeting(token, request)
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
            return _later(meeting, booking, now, error)
        # It may exist now: look it up once no request can still be on its way.
        _set(
            meeting,
            state=State.UNKNOWN,
            last_error=f"{error} (it may or may not exist now)"[:500],
            next_attempt_at=meeting.claimed_at + STALE_CLAIM,
        )
        return Outcome(State.UNKNOWN, meeting.last_error)
    except CannotHostMeetings as error:
        Connection.objects.filter(pk=connection.pk).update(can_host_meetings=False, updated_at=timezone.now())
        return _pass_over(meeting, booking, now, f"{provider.meeting_name}: this account can't host meetings ({error})")
    except (http.PermanentHTTPError, ProviderResponseError, ConnectionBroken) as error:
        return _pass_over(meeting, booking, now, f"{provider.meeting_name}: {error}")
    return _ready(meeting, booking, created)


def _pass_over(meeting: VideoMeeting, booking: Booking, now: datetime, reason: str) -> Outcome:
    """The provider failed for good on this host (refused, broken, can't host, out of retries):
    go on down the chain at once; give up only when nothing is left."""
    passed_over = [*meeting.passed_over, [meeting.provider, meeting.host_id]]
    logger.info("booking %s: %s failed for good, trying the next video provider", booking.pk, meeting.provider)
    _set(
        meeting,
        state=State.PENDING,
        passed_over=passed_over,
        last_error=reason[:500],
        attempts=0,
        claimed_at=None,
        next_attempt_at=now,
    )
    if choose_connection(booking, passed_over) is None:
        return _give_up(meeting, booking, reason)
    return _start_create(meeting, booking, now)


def _later(meeting: VideoMeeting, booking: Booking, now: datetime, error: http.TransientHTTPError) -> Outcome:
    """Nothing was created: give the claim back and come again after the backoff (Retry-After
    honoured), unless the meeting is too close for that."""
    retry_at = _retry_at(meeting, now, error.retry_after)
    if retry_at >= give_up_at(booking):
        provider_name = registry.get(meeting.provider).meeting_name
        return _pass_over(meeting, booking, now, f"{provider_name}: still failing shortly before the meeting. {error}")
    _set(meeting, state=State.PENDING, last_error=str(error)[:500], next_attempt_at=retry_at)
    outage = error.status is None or error.status >= 500
    return Outcome(State.PENDING, meeting.last_error, outage=outage)


def _ready(meeting: VideoMeeting, booking: Booking, created: CreatedMeeting) -> Outcome:
    """Store the link. Emails that already went out without it are followed by one that has it."""
    from bookings import followup

    with transaction.atomic():
        locked = Booking.objects.select_for_update().get(pk=booking.pk)
        needs_sync = VideoMeeting.objects.select_for_update().values_list("needs_sync", flat=True).get(pk=meeting.pk)
        _set(
            meeting,
            state=State.READY,
            meeting_id=created.meeting_id,
            external_ref=created.external_ref,
            join_url=created.join_url,
            passcode=created.passcode,
            last_error="",
            # Moved or cancelled while it was being made: write that to the provider next.
            next_attempt_at=timezone.now() if needs_sync else None,
        )
        if not locked.is_cancelled:
            followup.link_made(locked)
    return Outcome(State.READY)


def _resolve(meeting: VideoMeeting, booking: Booking, now: datetime) -> Outcome:
    """A create whose outcome is unknown: find the meeting it may have made, adopt it, or (none
    there) make it now. The row is claimed again meanwhile, like a create."""
    connection = (
        Connection.objects.filter(member_id=meeting.host_id, provider=meeting.provider, status=Connection.Status.ACTIVE)
        .select_related("member")
        .first()
    )
    if connection is None:
        return _give_up(
            meeting, booking, "The host's video account was disconnected while the meeting was being created.",
            state=State.UNKNOWN,
        )  # fmt: skip
    claimed = VideoMeeting.objects.filter(
        pk=meeting.pk, state__in=[State.CREATING, State.UNKNOWN], next_attempt_at__lte=now
    ).update(
        state=State.CREATING,
        claimed_at=now,
        attempts=F("attempts") + 1,
        next_attempt_at=now + STALE_CLAIM,
        updated_at=timezone.now(),
    )
    if claimed != 1:
        return Outcome(State.CREATING)
    meeting.refresh_from_db()
    provider = registry.get(connection.provider)
    request = meeting_request(booking, connection.member.time_zone, calendar_id=_made_on(meeting))
    try:
        found = call_with_token(connection.pk, lambda token: provider.find_meeting(token, request))
    except http.TransientHTTPError as error:
        retry_at = _retry_at(meeting, now, error.retry_after)
        if retry_at >= give_up_at(booking) and not booking.is_cancelled:
            return _give_up(meeting, booking, f"Could not find out whether it was made. {error}", state=State.UNKNOWN)
        _set(meeting, state=State.UNKNOWN, last_error=str(error)[:500], next_attempt_at=retry_at)
        return Outcome(State.UNKNOWN, meeting.last_error, outage=error.status is None or error.status >= 500)
    except (http.PermanentHTTPError, ProviderResponseError, ConnectionBroken) as error:
        return _give_up(
            meeting, booking, f"Could not find out whether it was made ({error}); it may exist.", state=State.UNKNOWN
        )
    if found is not None:
        logger.info("booking %s: adopted the %s meeting made by an earlier try", booking.pk, connection.provider)
        if booking.is_cancelled:
            _set(meeting, meeting_id=found.meeting_id, state=State.READY, needs_sync=True)
            return _delete(meeting, booking, now)
        return _ready(meeting, booking, found)
    if booking.is_cancelled:
        _set(meeting, state=State.DELETED, last_error="", next_attempt_at=None)
        return Outcome(State.DELETED)
    return _create(meeting, booking, connection, now)


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
        next_attempt_at=None,
        needs_sync=False,
    )
    return meeting


def _host_connection(meeting: VideoMeeting) -> Connection | None:
    return Connection.objects.filter(
        member_id=meeting.host_id, provider=meeting.provider, status=Connection.Status.ACTIVE
    ).first()


class _ProviderBusy(Exception):
    def __init__(self, error: http.TransientHTTPError):
        super().__init__(str(error))
        self.error = error


def _delete_remote(meeting: VideoMeeting) -> bool:
    """Delete the provider's meeting. False when the host's account is gone (it stays there)."""
    connection = _host_connection(meeting)
    if connection is None or meeting.meeting_id is None:
        return False
    provider = registry.get(meeting.provider)
    calendar_id = _made_on(meeting)

    def delete(token: str) -> None:
        if calendar_id:  # an event on the host's booking calendar: deleted there
            provider.delete_event(token, calendar_id, meeting.meeting_id)
        else:
            provider.delete_meeting(token, meeting.meeting_id)

    try:
        call_with_token(connection.pk, delete)
    except http.TransientHTTPError as error:
        raise _ProviderBusy(error) from error
    except (http.PermanentHTTPError, ConnectionBroken) as error:
        logger.warning("video meeting %s: could not delete: %s", meeting.pk, error)
        return False
    return True


def _busy(meeting: VideoMeeting, now: datetime, error: http.TransientHTTPError) -> Outcome:
    _set(meeting, last_error=str(error)[:500], next_attempt_at=_retry_at(meeting, now, error.retry_after))
    return Outcome(meeting.state, meeting.last_error, outage=error.status is None or error.status >= 500)


def _move(meeting: VideoMeeting, booking: Booking, now: datetime) -> Outcome:
    """After a reschedule: move the same meeting (same host) or replace it (new host)."""
    if meeting.is_manual:
        _set(meeting, needs_sync=False, next_attempt_at=None)  # a typed link is not tied to a time
        return Outcome(State.READY)
    VideoMeeting.objects.filter(pk=meeting.pk).update(attempts=F("attempts") + 1)
    meeting.attempts += 1
    try:
        with transaction.atomic():
            locked = VideoMeeting.objects.select_for_update().get(pk=meeting.pk)
            if locked.state != State.READY or not locked.needs_sync:
                return Outcome(locked.state)
            # The same account still serves the booking (its host is still a host of it): move that
            # meeting, so the link stays, even if the chain would now start elsewhere.
            current = _host_connection(meeting)
            still_host = (
                current is not None
                and current.can_host_meetings
                and any(member.pk == current.member_id for member in booking.hosts_in_order())
            )
            moved = _patch(meeting, booking, current) if still_host else False
            if moved:
                _set(meeting, needs_sync=False, next_attempt_at=None, last_error="")
                return Outcome(State.READY)
            _delete_remote(meeting)
            _set(
                meeting,
                state=State.PENDING,
                meeting_id=None,
                external_ref="",
                join_url="",
                passcode="",
                needs_sync=False,
                attempts=0,
                passed_over=[],  # a new time, a new try down the whole chain
            )
    except _ProviderBusy as busy:
        return _busy(meeting, now, busy.error)
    return _start_create(meeting, booking, now)


def _patch(meeting: VideoMeeting, booking: Booking, connection: Connection) -> bool:
    provider = registry.get(connection.provider)
    request = meeting_request(booking, connection.member.time_zone, calendar_id=_made_on(meeting))
    try:
        call_with_token(connection.pk, lambda token: provider.update_meeting(token, meeting.meeting_id, request))
    except http.TransientHTTPError as error:
        raise _ProviderBusy(error) from error
    except (http.PermanentHTTPError, ConnectionBroken) as error:
        # Gone at the provider (404), refused, or the account broke: replace the meeting instead.
        logger.info("video meeting %s: could not move (%s); replacing it", meeting.pk, error)
        return False
    return True


def _delete(meeting: VideoMeeting, booking: Booking, now: datetime) -> Outcome:
    """After a cancel: delete the provider's meeting (already gone counts as deleted)."""
    if meeting.state != State.READY:
        _set(meeting, next_attempt_at=None, needs_sync=False)  # nothing was made at a provider
        return NOT_NEEDED
    if meeting.is_manual:
        _set(meeting, state=State.DELETED, next_attempt_at=None, needs_sync=False)
        return Outcome(State.DELETED)
    VideoMeeting.objects.filter(pk=meeting.pk).update(attempts=F("attempts") + 1)
    meeting.attempts += 1
    try:
        with transaction.atomic():
            locked = VideoMeeting.objects.select_for_update().get(pk=meeting.pk)
            if locked.state != State.READY:
                return Outcome(locked.state)
            deleted = _delete_remote(meeting)
    except _ProviderBusy as busy:
        if now >= booking.end:  # the meeting is over: its link leads nowhere useful any more
            _set(meeting, next_attempt_at=None, needs_sync=False, last_error=f"Not deleted: {busy.error}"[:500])
            return Outcome(State.READY, meeting.last_error)
        return _busy(meeting, now, busy.error)
    if deleted:
        _set(meeting, state=State.DELETED, next_attempt_at=None, needs_sync=False, last_error="")
        return Outcome(State.DELETED)
    _set(
        meeting,
        next_attempt_at=None,
        needs_sync=False,
        last_error="Could not delete the meeting: the host's account is no longer connected.",
    )
    return Outcome(State.FAILED, meeting.last_error)
