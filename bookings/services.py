"""Booking, rescheduling and cancelling. The rules live here; views only translate HTTP."""

import dataclasses
import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, OperationalError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from integrations import video
from integrations.calendars import live
from meetingtypes.models import MeetingType, MeetingTypeHost
from members.models import TeamMember
from tsp.formatting import normalize_locale
from tsp.tasks import enqueue_after_commit

from . import availability, cache, followup, last_booked, selectors
from .models import Booking, BookingChange, BookingHost

logger = logging.getLogger(__name__)

# A booking is checked against availability in a window this wide around its start.
_CHECK_WINDOW = timedelta(days=1)


class SlotUnavailable(Exception):
    """The time is not (or no longer) bookable: someone else took it a moment ago."""


class SlotNotOffered(SlotUnavailable):
    """The time was never one of the offered slots: off the grid, outside hours, notice or window.

    Only a tampered or stale request sends one; the client is told so, not that it was "just taken".
    """


class BookingLocked(Exception):
    """The booking can no longer be changed (cancelled, or already started)."""


class MeetingTypeClosed(Exception):
    """The booking's meeting type no longer takes bookings, so the booking can't move to another
    time (it can still be cancelled)."""


class VideoLinkRefused(Exception):
    """The booking takes no video link now; the message says why."""


def after_booking_change(
    booking: Booking, change: str, *, previous_start: datetime | None = None, previous_host_ids=()
) -> None:
    """The one place that handles what follows a booking change: the cached booking pages of the
    meeting types that share a host with the booking (before or after the change) are forgotten,
    and the video meeting and emails are recorded as steps, in this transaction (nothing can lose
    them), and run by a task queued after the commit (a rolled-back booking records and queues
    nothing; a task the broker never got is made up by the sweep).
    """
    from .tasks import booking_changed

    cache.booking_changed(booking, previous_host_ids=previous_host_ids, previous_start=previous_start)
    followup.record_change(booking, change, previous_start=previous_start, previous_host_ids=previous_host_ids)
    enqueue_after_commit(booking_changed, booking.pk)


def _lock_hosts_for_daily_limit(meeting_type: MeetingType) -> None:
    """With a per-host daily limit, book one at a time per host.

    The exclusion constraint stops overlapping bookings, but two bookings at different times of
    one day could both pass the limit check, each not seeing the other. Locking the hosts' rows
    first (in id order, so two bookings never wait on each other) makes the second wait, and its
    check then reads the first booking (each statement sees what committed before it began).
    """
    if meeting_type.daily_limit_per_host:
        host_ids = meeting_type.host_links.values_list("member_id", flat=True)
        list(TeamMember.objects.select_for_update().filter(pk__in=host_ids).order_by("pk").values_list("pk"))


def _free_hosts(meeting_type: MeetingType, start: datetime, now: datetime, exclude_booking_id=None) -> tuple[int, ...]:
    """The hosts free at `start`; SlotUnavailable when bookings fill it, SlotNotOffered when it
    would not be offered even with no bookings at all."""
    rules, hosts = selectors.load_availability(
        meeting_type, start=start - _CHECK_WINDOW, end=start + _CHECK_WINDOW, exclude_booking_id=exclude_booking_id
    )
    free = availability.is_bookable(rules, hosts, slot_start=start, now=now)
    if free:
        return free
    unbooked = [dataclasses.replace(host, busy=(), booked_starts=()) for host in hosts]
    if availability.is_bookable(rules, unbooked, slot_start=start, now=now):
        raise SlotUnavailable
    raise SlotNotOffered


def _occupy(booking: Booking, member_ids: list[int], rules) -> None:
    occupied_start, occupied_end = availability.occupied_range(booking.start, rules)
    BookingHost.objects.bulk_create(
        BookingHost(booking=booking, member_id=member_id, occupied_start=occupied_start, occupied_end=occupied_end)
        for member_id in member_ids
    )


def _host_choices(meeting_type: MeetingType, free: tuple[int, ...], prefer: list[int] | None = None) -> list[list[int]]:
    """Host sets to try, best first. Collective: all of them together. Otherwise one host each,
    the preferred (current) host first, then least recently booked."""
    if meeting_type.assignment == MeetingType.Assignment.COLLECTIVE:
        return [list(free)]
    ordered = selectors.least_recently_booked_first(meeting_type, list(free))
    if prefer and prefer[0] in ordered:
        ordered.remove(prefer[0])
        ordered.insert(0, prefer[0])
    return [[member_id] for member_id in ordered]


class _HostsTaken(Exception):
    """The database no longer has the host set free (a concurrent booking took one of them)."""


# PostgreSQL's "deadlock detected".
_DEADLOCK = "40P01"


def _assign(booking: Booking, member_ids: list[int], rules) -> None:
    """The exclusion constraint is the final word: a host taken by a concurrent booking since our
    check makes the insert fail.

    Two bookings inserting overlapping rows at the same instant can each wait for the other while
    the constraint is checked; PostgreSQL then cancels one of them as a deadlock. That one lost the
    race like any other: "just taken", not a server error."""
    try:
        with transaction.atomic():
            _occupy(booking, member_ids, rules)
    except IntegrityError:
        raise _HostsTaken from None
    except OperationalError as error:
        if getattr(error.__cause__, "pgcode", None) != _DEADLOCK:
            raise
        logger.info("booking %s: host(s) %s lost a deadlock to a concurrent booking", booking.pk, member_ids)
        raise _HostsTaken from None


def _ensure_free(meeting_type: MeetingType, member_ids: list[int], start: datetime, now: datetime, **exclude) -> None:
    """Inside the booking's transaction: the database check, as it stands now, for this host set."""
    if not set(member_ids) <= set(_free_hosts(meeting_type, start, now, **exclude)):
        raise _HostsTaken


def _with_first_free_hosts(meeting_type: MeetingType, choices: list[list[int]], start: datetime, commit):
    """`commit(host set)` with the first host set, best first, that the hosts' own calendars say is
    free and the database still accepts; SlotUnavailable when none is.

    The calendars are asked (live.py) before each set's transaction opens, never inside one: a
    provider taking its time must not hold locks. The transaction then checks the database again,
    so a booking that came in meanwhile still wins, and the next set is tried.
    """
    window_start, window_end = availability.occupied_range(start, selectors.slot_rules(meeting_type))
    for member_ids in live.confirmed_free(choices, start=window_start, end=window_end):
        try:
            return commit(member_ids)
        except _HostsTaken:
            logger.info("host(s) %s of meeting type %s were just taken, trying the next", member_ids, meeting_type.pk)
    raise SlotUnavailable


def _first_free_hosts_in_transaction(
    meeting_type: MeetingType, start: datetime, now: datetime, write, *, prefer=None, exclude_booking_id=None
):
    """`write(host set)` with the first host set, best first, that the database has free: for
    bookings none of whose possible hosts has a calendar to ask, so no check needs to come before
    the transaction. Called inside it, after its locks: its read of the hosts' availability is the
    check (as `_ensure_free`'s is when calendars are asked first), and a host set a concurrent
    booking takes meanwhile is refused by the exclusion constraint (`_HostsTaken`), its writes
    undone by a savepoint, and the next set is tried."""
    free = _free_hosts(meeting_type, start, now, exclude_booking_id=exclude_booking_id)
    for member_ids in _host_choices(meeting_type, free, prefer):
        try:
            with transaction.atomic():
                return write(member_ids)
        except _HostsTaken:
            logger.info("host(s) %s of meeting type %s were just taken, trying the next", member_ids, meeting_type.pk)
    raise SlotUnavailable


def _calendars_to_ask(meeting_type: MeetingType) -> bool:
    """Whether any active host of the meeting type has a calendar the live check asks (one query)."""
    hosts = MeetingTypeHost.objects.filter(meeting_type=meeting_type, member__is_active=True).values("member_id")
    return live.any_calendar_to_ask(hosts)


def book(
    *,
    meeting_type: MeetingType,
    start: datetime,
    client_name: str,
    client_email: str,
    client_notes: str,
    client_time_zone: str,
    client_locale: str = "",
    now: datetime | None = None,
) -> Booking:
    """Book `start` with the first free host set. When a possible host has a calendar to ask, the
    hosts free in our database are read first, their own calendars asked live (outside any
    transaction), then the booking is written in a transaction that checks the database again.
    Otherwise the transaction's own read of the database chooses the hosts."""
    now = now or timezone.now()
    if not meeting_type.is_active:
        raise SlotUnavailable
    rules = selectors.slot_rules(meeting_type)

    def write(member_ids: list[int]) -> Booking:
        booking = Booking.objects.create(
            organization_id=meeting_type.organization_id,
            meeting_type=meeting_type,
            start=start,
            end=start + meeting_type.duration,
            client_name=client_name,
            client_email=client_email,
            client_notes=client_notes,
            client_time_zone=client_time_zone,
            client_locale=normalize_locale(client_locale) or "",
        )
        _assign(booking, member_ids, rules)
        last_booked.hosts_changed(booking, added=member_ids)
        after_booking_change(booking, BookingChange.CREATED)
        return booking

    def commit(member_ids: list[int]) -> Booking:
        with transaction.atomic():
            _lock_hosts_for_daily_limit(meeting_type)
            _ensure_free(meeting_type, member_ids, start, now)
            return write(member_ids)

    if not _calendars_to_ask(meeting_type):
        with transaction.atomic():
            _lock_hosts_for_daily_limit(meeting_type)
            return _first_free_hosts_in_transaction(meeting_type, start, now, write)
    free = _free_hosts(meeting_type, start, now)
    return _with_first_free_hosts(meeting_type, _host_choices(meeting_type, free), start, commit)


def manage_link_expired(booking: Booking, *, now: datetime) -> bool:
    """A client's manage link stops working MANAGE_LINK_GRACE_DAYS after the meeting ended (long
    after it stopped changing anything: see `_ensure_changeable`)."""
    return now >= booking.end + timedelta(days=settings.MANAGE_LINK_GRACE_DAYS)


def _ensure_changeable(booking: Booking, now: datetime) -> None:
    if booking.is_cancelled or booking.start <= now:
        raise BookingLocked


def reschedule(
    *, booking: Booking, start: datetime, client_locale: str | None = None, now: datetime | None = None
) -> Booking:
    """Move the same booking (same calendar UID, higher sequence), keeping its host when still free.

    `client_locale`: the client's browser locale when the client moves it (their emails follow it).
    Checked like a new booking (`book`): the database, then the hosts' calendars live, then the
    database again in the transaction that moves it."""
    now = now or timezone.now()

    def changeable(bookings) -> Booking:
        found = bookings.select_related("meeting_type").get(pk=booking.pk)
        _ensure_changeable(found, now)
        if not found.meeting_type.is_active:
            raise MeetingTypeClosed
        return found

    def hosts_of(found: Booking) -> list[int]:
        return list(found.host_rows.filter(is_active=True).values_list("member_id", flat=True))

    def commit(member_ids: list[int]) -> Booking:
        with transaction.atomic():
            found = changeable(Booking.objects.select_for_update())
            meeting_type = found.meeting_type
            _lock_hosts_for_daily_limit(meeting_type)
            _ensure_free(meeting_type, member_ids, start, now, exclude_booking_id=found.pk)
            current = hosts_of(found)
            previous_start = found.start
            BookingHost.objects.filter(booking=found).delete()
            found.start, found.end = start, start + meeting_type.duration
            found.sequence += 1
            found.client_locale = normalize_locale(client_locale) or found.client_locale
            found.save(update_fields=["start", "end", "sequence", "client_locale", "updated_at"])
            _assign(found, member_ids, selectors.slot_rules(meeting_type))
            last_booked.hosts_changed(
                found, added=set(member_ids) - set(current), removed=set(current) - set(member_ids)
            )
            after_booking_change(
                found, BookingChange.RESCHEDULED, previous_start=previous_start, previous_host_ids=current
            )
        return found

    found = changeable(Booking.objects.all())
    meeting_type = found.meeting_type
    free = _free_hosts(meeting_type, start, now, exclude_booking_id=found.pk)
    choices = _host_choices(meeting_type, free, prefer=hosts_of(found))
    return _with_first_free_hosts(meeting_type, choices, start, commit)


def cancel(*, booking: Booking, reason: str = "", now: datetime | None = None) -> Booking:
    now = now or timezone.now()
    with transaction.atomic():
        booking = Booking.objects.select_for_update().get(pk=booking.pk)
        _ensure_changeable(booking, now)
        booking.status = Booking.Status.CANCELLED
        booking.cancelled_at = now
        booking.cancel_reason = reason.strip()[:500]
        booking.sequence += 1
        booking.save(update_fields=["status", "cancelled_at", "cancel_reason", "sequence", "updated_at"])
        BookingHost.objects.filter(booking=booking).update(is_active=False)
        last_booked.hosts_changed(booking, removed=booking.host_rows.values_list("member_id", flat=True))
        after_booking_change(booking, BookingChange.CANCELLED)
    return booking


def set_video_link(
    *, booking: Booking, by: TeamMember, join_url: str, passcode: str = "", now: datetime | None = None
) -> Booking:
    """A host or admin gives the booking its video link (none was made, or they want another).

    The booking's sequence goes up, so the client and hosts get an updated invitation (same UID)
    and an email with the new link, each once, like any other change. Who may do this is the
    view's decision; `by` is recorded as the link's author.
    """
    now = now or timezone.now()
    with transaction.atomic():
        booking = Booking.objects.select_for_update().select_related("meeting_type").get(pk=booking.pk)
        if booking.is_cancelled:
            raise VideoLinkRefused(_("This booking was cancelled."))
        if booking.end <= now:
            raise VideoLinkRefused(_("This meeting is over."))
        if not booking.meeting_type.is_video:
            raise VideoLinkRefused(_("This meeting type is not a video meeting."))
        try:
            video.use_manual_link(booking, added_by_id=by.pk, join_url=join_url, passcode=passcode)
        except video.LinkBeingCreated as error:
            raise VideoLinkRefused(
                _("The video meeting is being created right now. Please try again in a minute.")
            ) from error
        booking.sequence += 1
        booking.save(update_fields=["sequence", "updated_at"])
        after_booking_change(booking, BookingChange.LINK_CHANGED)
    return booking
