"""A booking as an event on each host's chosen calendar: written once, moved with the booking,
deleted when it is cancelled or the host no longer has it.

Each host whose booking calendar (Calendar.receives_bookings) can be written gets a
BookingCalendarEvent row, recorded by bookings.followup in the transaction of the change, and the
work runs as one more follow-up step (the task queued at the commit, then the sweep).

Exactly once, like the video meeting: the row is claimed with a conditional UPDATE (PENDING →
CREATING) before create_event is called, and only the worker whose UPDATE changed the row calls.
When the outcome is unknown (a timeout after the request was sent, a worker that died), the
claim runs out and create_event is called again with the same request id: the providers make that
idempotent (Google's event id is derived from it, Graph's transactionId), so the second call
finds the first one's event instead of making another.

A change marks the row `needs_sync`. Moving or deleting starts by taking that mark back with a
conditional UPDATE, so two workers never both write; a change that comes in meanwhile marks it
again and the event is written once more with what holds then.

Retries are budgeted in time, not in attempts: a provider that is down (unreachable, 5xx, 429)
is tried again with backoff until the meeting ends (an event written after that helps no one),
then the row fails. A refusal (4xx) or a connection that needs reconnecting fails it at once,
with the reason in `last_error`.

Google Meet: when the booking's Meet is made on the same Google account as the host's booking
calendar, its event is made on that calendar (integrations/video.py) and is this row's event too
(`shares_video_event`): the video step moves and deletes it, and this step only follows it. While
such a meeting is still being made, the step waits for it instead of writing a second event.
"""

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Case, F, Q, Value, When
from django.db.models.functions import Least
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from bookings.models import Booking, BookingHost
from integrations import http, registry, video
from integrations.base import CalendarEvent, ProviderResponseError
from integrations.models import BookingCalendarEvent, Calendar, VideoMeeting
from integrations.tokens import ConnectionBroken, call_with_token

logger = logging.getLogger(__name__)

State = BookingCalendarEvent.State
Outcome = video.Outcome
NOT_NEEDED = video.NOT_NEEDED
STALE_CLAIM = video.STALE_CLAIM
# attempts is a small integer; a provider down for weeks must not overflow it.
MAX_ATTEMPTS_COUNTED = 32_000


def request_id(row: BookingCalendarEvent) -> str:
    """What makes create_event idempotent: one per row (a new row for a host gets a new one)."""
    return f"{row.booking.uid}-event-{row.pk}"


def manage_url(booking: Booking) -> str:
    """The booking on the hosts' dashboard."""
    return f"{settings.SITE_URL}{reverse('bookings:list')}#booking-{booking.pk}"


def description(booking: Booking, *, join_url: str = "", passcode: str = "") -> str:
    """What the host reads in their calendar: who booked, their notes, the link, and where to
    manage the booking."""
    with translation.override(settings.LANGUAGE_CODE):
        parts = [
            _("%(meeting_type)s booked by %(name)s <%(email)s>.")
            % {"meeting_type": booking.meeting_type.name, "name": booking.client_name, "email": booking.client_email}
        ]
        if booking.client_notes:
            parts.append(booking.client_notes)
        link = []
        if join_url:
            link.append(_("Join: %(url)s") % {"url": join_url})
        if passcode:
            link.append(_("Passcode: %(passcode)s") % {"passcode": passcode})
        if link:
            parts.append("\n".join(link))
        parts.append(_("Manage this booking: %(url)s") % {"url": manage_url(booking)})
    return "\n\n".join(parts)


def summary(booking: Booking) -> str:
    with translation.override(settings.LANGUAGE_CODE):
        return _("%(meeting_type)s with %(name)s") % {
            "meeting_type": booking.meeting_type.name,
            "name": booking.client_name,
        }


def calendar_event(booking: Booking, row: BookingCalendarEvent) -> CalendarEvent:
    meeting = booking.video_meeting_or_none
    ready = meeting is not None and meeting.is_ready
    join_url, passcode = (meeting.join_url, meeting.passcode) if ready else ("", "")
    meeting_type = booking.meeting_type
    return CalendarEvent(
        request_id=request_id(row),
        summary=summary(booking),
        description=description(booking, join_url=join_url, passcode=passcode),
        location=join_url or meeting_type.location_detail or meeting_type.get_location_display(),
        start=booking.start,
        end=booking.end,
        time_zone=row.member.time_zone,
    )


# ---------------------------------------------------------------- recording a change


def _made_nothing(row: BookingCalendarEvent) -> bool:
    """No event of this row exists or can exist: it can be replaced by a fresh one."""
    if row.state == State.DELETED:
        return True
    return row.state in (State.PENDING, State.FAILED) and not row.event_id and not row.shares_video_event


def record_change(booking: Booking, *, due: datetime, only_new: bool = False) -> None:
    """The calendar work a booking change calls for. Call inside the transaction of the change.

    Every host with a writable booking calendar gets a row; every row that holds an event (or may:
    a create under way) is marked to be brought up to date: moved, rewritten, or deleted when the
    booking was cancelled or the host no longer has it. Rows that made nothing start afresh, with
    the host's current booking calendar. `only_new`: the booking was just made (a repeated call
    leaves what was recorded)."""
    rows = list(BookingCalendarEvent.objects.select_for_update().filter(booking=booking))
    hosts = set()
    if not booking.is_cancelled:
        hosts = set(BookingHost.objects.filter(booking=booking, is_active=True).values_list("member_id", flat=True))
    calendars = {
        calendar.member_id: calendar
        for calendar in Calendar.objects.filter(member_id__in=hosts, receives_bookings=True, can_write=True)
        .select_related("connection")
        .only("id", "member_id", "external_id", "connection__provider")
    }
    if only_new:
        kept = rows
    else:
        kept = [row for row in rows if not _made_nothing(row)]
        stale = [row.pk for row in rows if _made_nothing(row)]
        if stale:
            BookingCalendarEvent.objects.filter(pk__in=stale).delete()
        _mark_for_sync([row.pk for row in kept], due)
    have_row = {row.member_id for row in kept}
    BookingCalendarEvent.objects.bulk_create(
        [
            BookingCalendarEvent(
                booking=booking,
                member_id=member_id,
                calendar=calendar,
                provider=calendar.connection.provider,
                calendar_external_id=calendar.external_id,
                next_attempt_at=due,
            )
            for member_id, calendar in calendars.items()
            if member_id not in have_row
        ],
        ignore_conflicts=True,  # recorded already (a repeated call)
    )


def _mark_for_sync(row_ids: list[int], due: datetime) -> None:
    if not row_ids:
        return
    now = timezone.now()
    rows = BookingCalendarEvent.objects.filter(pk__in=row_ids)
    rows.update(needs_sync=True, updated_at=now)
    # An update that was refused before may go through now: a new change, a new chance.
    rows.filter(state=State.FAILED).update(state=State.READY)
    # A claim keeps its own expiry: the create then goes on to the update.
    rows.exclude(state__in=[State.CREATING, State.UNKNOWN]).update(attempts=0, next_attempt_at=due)


def video_changed(booking: Booking, *, now: datetime) -> None:
    """The video step settled (a link made, or none will be): events written without the link get
    it, and the steps that waited for the meeting go now. Inside the video step's transaction."""
    rows = BookingCalendarEvent.objects.filter(booking=booking)
    rows.filter(shares_video_event=False, state__in=[State.READY, State.CREATING, State.UNKNOWN]).update(
        needs_sync=True, updated_at=now
    )
    rows.filter(state__in=[State.READY, State.PENDING]).update(next_attempt_at=now, updated_at=now)


def resend(booking: Booking, *, now: datetime) -> int:
    """An admin's "Send again": failed calendar steps are due again, with a fresh budget; a host who
    chose another booking calendar since gets the event there. Returns how many were failed."""
    with transaction.atomic():
        failed = list(BookingCalendarEvent.objects.select_for_update().filter(booking=booking, state=State.FAILED))
        if not failed or booking.is_cancelled:
            return 0
        held = [row.pk for row in failed if row.event_id]
        BookingCalendarEvent.objects.filter(pk__in=held).update(
            state=State.READY, needs_sync=True, attempts=0, next_attempt_at=now, last_error="", updated_at=now
        )
        # The others made nothing: recorded afresh, as for a new booking.
        BookingCalendarEvent.objects.filter(pk__in=[row.pk for row in failed if not row.event_id]).delete()
        record_change(booking, due=now, only_new=True)
    return len(failed)


# ---------------------------------------------------------------- the Meet event shared


def share_with_video(booking: Booking, connection) -> str:
    """Called by the video step before it makes a meeting that is a calendar event (Google Meet)
    on `connection`: when that account holds the host's booking calendar and nothing was written
    there for this booking yet, the row is taken for the meeting's event (conditional UPDATE, so
    this step can't write one of its own meanwhile). The calendar's id, or "" for the primary."""
    row = (
        BookingCalendarEvent.objects.filter(
            booking=booking, member_id=connection.member_id, calendar__connection_id=connection.pk
        )
        .only("pk", "calendar_external_id", "shares_video_event")
        .first()
    )
    if row is None:
        return ""
    if row.shares_video_event:
        return row.calendar_external_id
    taken = (
        BookingCalendarEvent.objects.filter(pk=row.pk, shares_video_event=False, event_id__isnull=True)
        .filter(state__in=[State.PENDING, State.FAILED])
        .update(shares_video_event=True, state=State.PENDING, last_error="", updated_at=timezone.now())
    )
    return row.calendar_external_id if taken else ""


def video_calendar_id(booking: Booking, member_id: int | None, provider: str) -> str:
    """The calendar the booking's meeting event of this host and provider was made on ("" for the
    primary calendar): where the video step finds, moves and deletes it."""
    row = BookingCalendarEvent.objects.filter(
        booking=booking, member_id=member_id, provider=provider, shares_video_event=True
    ).first()
    return row.calendar_external_id if row is not None else ""


def _on_this_host(row: BookingCalendarEvent, meeting: VideoMeeting | None) -> bool:
    """The booking's meeting is (or is being) made on this row's account."""
    return (
        meeting is not None
        and meeting.provider == row.provider
        and meeting.host_id == row.member_id
        and [row.provider, row.member_id] not in meeting.passed_over
        and meeting.state not in (VideoMeeting.State.FAILED, VideoMeeting.State.DELETED)
    )


def _meeting_may_come_here(row: BookingCalendarEvent, booking: Booking, meeting: VideoMeeting | None) -> bool:
    """A Meet-first booking whose meeting is still being made may make its event on this calendar,
    or give this event its link: worth waiting for (the video step settles by the meeting's start)."""
    if meeting is None or meeting.is_settled or meeting.next_attempt_at is None:
        return False
    try:
        provider = registry.get(row.provider)
    except LookupError:
        return False
    if not provider.meeting_is_calendar_event or [row.provider, row.member_id] in meeting.passed_over:
        return False
    wanted = registry.for_location(booking.meeting_type.location)
    meet_first = wanted is not None and wanted.key == row.provider and meeting.provider in ("", row.provider)
    return meet_first or _on_this_host(row, meeting)


# ---------------------------------------------------------------- running the step


def run(booking: Booking, *, now: datetime, first_run: bool = False, providers_down=frozenset()) -> set[str]:
    """Run the booking's calendar steps that are due, leaving out providers known to be down.
    Returns the providers found down."""
    rows = list(
        BookingCalendarEvent.objects.filter(booking=booking, next_attempt_at__isnull=False)
        .select_related("calendar__connection", "member")
        .order_by("id")
    )
    down = set()
    for row in rows:
        if row.provider in providers_down or row.provider in down:
            continue
        row.booking = booking
        outcome = run_step(row, booking, now=now, first_run=first_run)
        if outcome.outage:
            down.add(row.provider)
    return down


def run_step(row: BookingCalendarEvent, booking: Booking, *, now: datetime, first_run: bool = False) -> Outcome:
    """Do the row's work if it is due: create, follow the shared Meet event, move, or delete.
    `first_run`: work recorded for this change and never tried runs even before its due time."""
    due = row.next_attempt_at is not None and row.next_attempt_at <= now
    fresh = first_run and row.attempts == 0 and row.next_attempt_at is not None
    if not (due or fresh):
        return Outcome(row.state, row.last_error)
    wanted = not booking.is_cancelled and any(
        host.member_id == row.member_id and host.is_active for host in booking.host_rows.all()
    )
    meeting = booking.video_meeting_or_none
    if row.shares_video_event:
        return _follow_video(row, booking, meeting, wanted, now)
    if row.state in (State.CREATING, State.UNKNOWN):
        return _create(row, booking, now)  # only once the claim has run out
    if row.state == State.PENDING:
        if not wanted:
            _set(row, state=State.DELETED, next_attempt_at=None, needs_sync=False)
            return NOT_NEEDED
        if _meeting_may_come_here(row, booking, meeting):
            _set(row, next_attempt_at=now + timedelta(seconds=settings.FOLLOW_UP_SWEEP_SECONDS))
            return Outcome(row.state)
        return _create(row, booking, now)
    if row.state == State.READY:
        if row.claimed_at is not None:
            if row.claimed_at + STALE_CLAIM > now:
                return Outcome(row.state)  # another worker is writing it
            _set(row, needs_sync=True, claimed_at=None)  # that worker died: write it again
        if not wanted:
            if not row.needs_sync:
                _set(row, needs_sync=True)
            return _delete(row, booking, now)
        if row.needs_sync:
            return _update(row, booking, now)
    if row.state == State.DELETED and wanted and row.needs_sync:
        # The host got the booking back while their event was being deleted: a new one.
        with transaction.atomic():
            BookingCalendarEvent.objects.filter(pk=row.pk).delete()
            record_change(booking, due=now, only_new=True)
        return Outcome(State.PENDING)
    if row.state != State.READY:
        _set(row, next_attempt_at=None, needs_sync=False)
    else:  # nothing to do, unless a change was recorded since we read the row
        BookingCalendarEvent.objects.filter(pk=row.pk, needs_sync=False).update(
            next_attempt_at=None, updated_at=timezone.now()
        )
    return Outcome(row.state, row.last_error)


def _set(row: BookingCalendarEvent, **fields) -> None:
    fields["updated_at"] = timezone.now()
    BookingCalendarEvent.objects.filter(pk=row.pk).update(**fields)
    for name, value in fields.items():
        setattr(row, name, value)


def _fail(row: BookingCalendarEvent, booking: Booking, reason: str) -> Outcome:
    _set(row, state=State.FAILED, last_error=reason[:500], claimed_at=None, next_attempt_at=None, needs_sync=False)
    logger.warning("booking %s: calendar event for member %s failed: %s", booking.pk, row.member_id, reason)
    return Outcome(State.FAILED, row.last_error)


def _connection(row: BookingCalendarEvent):
    """The account of the row's calendar; None when it was disconnected (calendar and all)."""
    return row.calendar.connection if row.calendar is not None else None


def _broken(connection) -> str:
    return _("Your %(provider)s account needs reconnecting, so the booking could not be written to your calendar.") % {
        "provider": connection.provider_info.name
    }


def _gone() -> str:
    return _("The calendar is no longer connected.")


def _gave_up(error: Exception) -> str:
    return _("Gave up when the meeting ended: %(error)s") % {"error": error}


def _retry_at(row: BookingCalendarEvent, now: datetime, error: http.TransientHTTPError) -> datetime:
    from bookings.emails import retry_delay

    return now + retry_delay(row.attempts, retry_after=error.retry_after)


def _outage(error: http.TransientHTTPError) -> bool:
    return error.status is None or error.status >= 500


def _counted_attempt():
    return Least(F("attempts") + 1, Value(MAX_ATTEMPTS_COUNTED))


def _create(row: BookingCalendarEvent, booking: Booking, now: datetime) -> Outcome:
    claimable = Q(state=State.PENDING) | Q(state__in=[State.CREATING, State.UNKNOWN], next_attempt_at__lte=now)
    claimed = BookingCalendarEvent.objects.filter(claimable, pk=row.pk, shares_video_event=False).update(
        state=State.CREATING,
        claimed_at=now,
        attempts=_counted_attempt(),
        next_attempt_at=now + STALE_CLAIM,
        updated_at=timezone.now(),
    )
    if claimed != 1:
        return Outcome(State.CREATING)  # another worker has it
    row.refresh_from_db(fields=["state", "attempts", "claimed_at", "next_attempt_at", "needs_sync"])
    connection = _connection(row)
    if connection is None:
        return _fail(row, booking, _gone())
    provider = registry.get(connection.provider)
    event = calendar_event(booking, row)
    create_errors = []

    def create(token: str) -> str:
        try:
            return provider.create_event(token, row.calendar_external_id, event)
        except http.TransientHTTPError as error:
            create_errors.append(error)
            raise

    try:
        event_id = call_with_token(connection.pk, create)
    except http.TransientHTTPError as error:
        # Only the create itself can have made an event, and only if it was sent and not answered:
        # then the same request id is sent again once no request of this try can still be on its way.
        sent = any(error is seen for seen in create_errors) and error.sent is not False and error.status is None
        retry_at = row.next_attempt_at if sent else _retry_at(row, now, error)
        if retry_at >= booking.end:
            return _fail(row, booking, _gave_up(error))
        if sent:
            _set(row, state=State.UNKNOWN, last_error=f"{error} (it may exist now)"[:500])
            return Outcome(State.UNKNOWN, row.last_error, outage=True)
        _set(row, state=State.PENDING, claimed_at=None, last_error=str(error)[:500], next_attempt_at=retry_at)
        return Outcome(State.PENDING, row.last_error, outage=_outage(error))
    except ConnectionBroken:
        return _fail(row, booking, _broken(connection))
    except (http.PermanentHTTPError, ProviderResponseError) as error:
        return _fail(row, booking, str(error))
    # A change recorded while we were writing (needs_sync) is written next, at once.
    _written(row, now, state=State.READY, event_id=event_id)
    if row.next_attempt_at is not None:
        return run_step(row, booking, now=now)
    return Outcome(State.READY)


def _take_sync(row: BookingCalendarEvent, now: datetime) -> bool:
    """Take the row's pending change: only the worker whose UPDATE clears `needs_sync` writes, and
    none while another one's write is under way (`claimed_at`)."""
    taken = BookingCalendarEvent.objects.filter(
        pk=row.pk, state=State.READY, needs_sync=True, claimed_at__isnull=True
    ).update(
        needs_sync=False,
        claimed_at=now,
        attempts=_counted_attempt(),
        next_attempt_at=now + STALE_CLAIM,
        updated_at=timezone.now(),
    )
    if taken:
        row.attempts = min(row.attempts + 1, MAX_ATTEMPTS_COUNTED)
    return taken == 1


def _written(row: BookingCalendarEvent, now: datetime, **fields) -> Outcome:
    """The provider has what held when we started; a change since is written next."""
    BookingCalendarEvent.objects.filter(pk=row.pk).update(
        last_error="",
        claimed_at=None,
        next_attempt_at=Case(When(needs_sync=True, then=Value(now)), default=None),
        updated_at=timezone.now(),
        **fields,
    )
    row.refresh_from_db(fields=["state", "event_id", "last_error", "claimed_at", "next_attempt_at", "needs_sync"])
    return Outcome(row.state)


def _not_yet(row: BookingCalendarEvent, booking: Booking, now: datetime, error: http.TransientHTTPError) -> Outcome:
    """The change was not written: it stays to be written, after the backoff, until the meeting ends."""
    retry_at = _retry_at(row, now, error)
    if retry_at >= booking.end:
        return _fail(row, booking, _gave_up(error))
    _set(row, needs_sync=True, claimed_at=None, last_error=str(error)[:500], next_attempt_at=retry_at)
    return Outcome(row.state, row.last_error, outage=_outage(error))


def _update(row: BookingCalendarEvent, booking: Booking, now: datetime) -> Outcome:
    """Move the event to the booking's time and write what it says now (a new link)."""
    if not _take_sync(row, now):
        return Outcome(row.state)
    connection = _connection(row)
    if connection is None:
        _set(row, claimed_at=None, next_attempt_at=None, last_error=_gone())
        return Outcome(row.state, row.last_error)  # nothing to call: the event stays where it is
    provider = registry.get(connection.provider)
    event = calendar_event(booking, row)
    try:
        call_with_token(
            connection.pk, lambda token: provider.update_event(token, row.calendar_external_id, row.event_id, event)
        )
    except http.TransientHTTPError as error:
        return _not_yet(row, booking, now, error)
    except ConnectionBroken:
        return _fail(row, booking, _broken(connection))
    except http.PermanentHTTPError as error:
        if error.status in (404, 410):
            # The host deleted it in their calendar: theirs to decide; a later change writes a new one.
            _set(
                row,
                state=State.DELETED,
                claimed_at=None,
                next_attempt_at=None,
                last_error=_("Deleted in the calendar."),
            )
            return Outcome(State.DELETED, row.last_error)
        return _fail(row, booking, str(error))
    return _written(row, now)


def _delete(row: BookingCalendarEvent, booking: Booking, now: datetime) -> Outcome:
    """The booking was cancelled or the host no longer has it: the event goes."""
    if not _take_sync(row, now):
        return Outcome(row.state)
    connection = _connection(row)
    if connection is None:
        _set(row, claimed_at=None, next_attempt_at=None, last_error=_gone())
        return Outcome(row.state, row.last_error)  # nothing to call: the event stays there
    provider = registry.get(connection.provider)
    try:
        call_with_token(
            connection.pk, lambda token: provider.delete_event(token, row.calendar_external_id, row.event_id)
        )
    except http.TransientHTTPError as error:
        return _not_yet(row, booking, now, error)
    except ConnectionBroken:
        return _fail(row, booking, _broken(connection))
    except http.PermanentHTTPError as error:
        return _fail(row, booking, str(error))
    return _written(row, now, state=State.DELETED)


def _follow_video(
    row: BookingCalendarEvent, booking: Booking, meeting: VideoMeeting | None, wanted: bool, now: datetime
) -> Outcome:
    """The row's event is the booking's Meet event: the video step writes, moves and deletes it."""
    if not wanted:
        _set(row, state=State.DELETED, next_attempt_at=None, needs_sync=False)
        return Outcome(State.DELETED)
    if _on_this_host(row, meeting):
        if meeting.state == VideoMeeting.State.READY:
            _set(
                row,
                state=State.READY,
                event_id=meeting.meeting_id,
                last_error="",
                next_attempt_at=None,
                needs_sync=False,
            )
            return Outcome(State.READY)
        if meeting.next_attempt_at is not None:
            _set(row, next_attempt_at=now + timedelta(seconds=settings.FOLLOW_UP_SWEEP_SECONDS))
            return Outcome(row.state)
    if meeting is not None and meeting.is_manual and row.state == State.READY:
        # A typed link replaced the Meet, whose event stays in the calendar (video.use_manual_link):
        # it becomes this row's own event, rewritten with the typed link.
        _set(row, shares_video_event=False, needs_sync=True, next_attempt_at=now)
        return run_step(row, booking, now=now)
    # The meeting went elsewhere (another host or provider) or won't be made: an event of our own.
    _set(row, shares_video_event=False, state=State.PENDING, event_id=None, needs_sync=False, next_attempt_at=now)
    return run_step(row, booking, now=now)
