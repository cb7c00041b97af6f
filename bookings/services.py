"""Booking, rescheduling and cancelling. The rules live here; views only translate HTTP."""

import dataclasses
import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from integrations import video
from meetingtypes.models import MeetingType
from members.models import TeamMember
from tsp.formatting import normalize_locale
from tsp.tasks import enqueue_after_commit

from . import availability, cache, followup, selectors
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
    organization are forgotten, and the video meeting and emails are recorded as steps, in this
    transaction (nothing can lose them), and run by a task queued after the commit (a rolled-back
    booking records and queues nothing; a task the broker never got is made up by the sweep).
    """
    from .tasks import booking_changed

    cache.availability_changed(booking.organization_id)
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


def _assign(booking: Booking, choices: list[list[int]], rules) -> None:
    """Take the first host set the database accepts. The exclusion constraint is the final word:
    a host taken by a concurrent booking since our check makes its insert fail, and we try the next."""
    for member_ids in choices:
        try:
            with transaction.atomic():
                _occupy(booking, member_ids, rules)
            return
        except IntegrityError:
            logger.info("booking %s: host(s) %s were just taken, trying the next", booking.pk, member_ids)
    raise SlotUnavailable


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
    now = now or timezone.now()
    if not meeting_type.is_active:
        raise SlotUnavailable
    with transaction.atomic():
        _lock_hosts_for_daily_limit(meeting_type)
        free = _free_hosts(meeting_type, start, now)
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
        _assign(booking, _host_choices(meeting_type, free), selectors.slot_rules(meeting_type))
        after_booking_change(booking, BookingChange.CREATED)
    return booking


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

    `client_locale`: the client's browser locale when the client moves it (their emails follow it)."""
    now = now or timezone.now()
    with transaction.atomic():
        booking = Booking.objects.select_for_update().select_related("meeting_type").get(pk=booking.pk)
        _ensure_changeable(booking, now)
        meeting_type = booking.meeting_type
        if not meeting_type.is_active:
            raise MeetingTypeClosed
        _lock_hosts_for_daily_limit(meeting_type)
        free = _free_hosts(meeting_type, start, now, exclude_booking_id=booking.pk)
        current = list(booking.host_rows.filter(is_active=True).values_list("member_id", flat=True))
        previous_start = booking.start
        BookingHost.objects.filter(booking=booking).delete()
        booking.start, booking.end = start, start + meeting_type.duration
        booking.sequence += 1
        booking.client_locale = normalize_locale(client_locale) or booking.client_locale
        booking.save(update_fields=["start", "end", "sequence", "client_locale", "updated_at"])
        _assign(booking, _host_choices(meeting_type, free, prefer=current), selectors.slot_rules(meeting_type))
        after_booking_change(
            booking, BookingChange.RESCHEDULED, previous_start=previous_start, previous_host_ids=current
        )
    return booking


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
