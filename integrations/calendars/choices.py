"""A member's choice of calendars: which count as busy, and the one that receives their bookings.

Only the member's own calendars on accounts that allow calendar access can be chosen; anything
else in the request is refused whole, so a bad form never leaves half its changes behind.
"""

from collections.abc import Iterable

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from bookings.cache import hosts_changed
from members.models import TeamMember

from ..models import Calendar, Connection
from . import sync


def choosable_calendars(member: TeamMember):
    """The calendars the member's card offers: those of their working accounts that allow calendar access."""
    calendars = Calendar.objects.filter(member=member, connection__status=Connection.Status.ACTIVE)
    return [calendar for calendar in calendars.select_related("connection") if calendar.connection.grants_calendars]


def _calendar_ids(values: Iterable) -> set[int]:
    try:
        return {int(value) for value in values}
    except (TypeError, ValueError):
        raise ValidationError(_("That calendar choice is not valid. Nothing was changed.")) from None


@transaction.atomic
def save_calendar_choices(*, member: TeamMember, busy_ids: Iterable, booking_calendar_id) -> None:
    """Count exactly `busy_ids` as busy and add bookings to `booking_calendar_id` (None or "": to none).

    ValidationError, and nothing changed, when an id is not one of the member's choosable calendars
    or the booking calendar is read-only.
    """
    # Locked in a fixed order: two saves at once (two tabs) end with one whole choice, not a mix.
    TeamMember.objects.select_for_update().filter(pk=member.pk).first()
    calendars = {calendar.pk: calendar for calendar in choosable_calendars(member)}
    busy = _calendar_ids(busy_ids)
    booking = _calendar_ids([booking_calendar_id]) if booking_calendar_id not in (None, "") else set()
    if not busy <= set(calendars) or not booking <= set(calendars):
        raise ValidationError(_("That is not one of your calendars. Nothing was changed."))
    if any(not calendars[pk].can_write for pk in booking):
        raise ValidationError(_("Bookings can't be added to a read-only calendar. Nothing was changed."))

    # One booking calendar across all the member's accounts: clear the old one before marking the new.
    Calendar.objects.filter(member=member, receives_bookings=True).exclude(pk__in=booking).update(
        receives_bookings=False
    )
    Calendar.objects.filter(pk__in=booking).update(receives_bookings=True)

    started = [calendar for pk, calendar in calendars.items() if pk in busy and not calendar.checks_busy]
    stopped = [calendar for pk, calendar in calendars.items() if pk not in busy and calendar.checks_busy]
    for calendar in started:
        sync.start_checking(calendar)  # read its busy time now
    for calendar in stopped:
        sync.stop_checking(calendar)  # its busy time goes at once
    if started or stopped:
        hosts_changed([member.pk])
