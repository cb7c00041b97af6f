"""What the member card shows of a member's calendars (templates/members/_calendars.html)."""

from dataclasses import dataclass
from datetime import datetime

from django import template

register = template.Library()


@dataclass(frozen=True)
class SyncState:
    """How fresh the busy time of some calendars is: the worst of them decides."""

    # The sync's last error (a diagnostic for the log and the admin, not shown as is: the card
    # says in the viewer's language that it keeps trying).
    error: str = ""
    checking: bool = False  # busy time not read yet
    updated_at: datetime | None = None  # the oldest of their last successful syncs


def sync_state(calendars) -> SyncState | None:
    """The state of the calendars that count as busy; None when none does."""
    checked = [calendar for calendar in calendars if calendar.checks_busy]
    if not checked:
        return None
    failing = [calendar for calendar in checked if calendar.sync_error]
    if failing:
        synced = [calendar.synced_at for calendar in failing if calendar.synced_at is not None]
        return SyncState(error=failing[0].sync_error, updated_at=min(synced) if len(synced) == len(failing) else None)
    if any(calendar.synced_at is None for calendar in checked):
        return SyncState(checking=True)
    return SyncState(updated_at=min(calendar.synced_at for calendar in checked))


@dataclass(frozen=True)
class CalendarAccount:
    provider: object
    connection: object
    calendars: list

    @property
    def busy_count(self) -> int:
        return sum(1 for calendar in self.calendars if calendar.checks_busy)

    @property
    def sync_state(self) -> SyncState | None:
        return sync_state(self.calendars)


@register.simple_tag
def calendar_accounts(member) -> list[CalendarAccount]:
    """The member's working accounts that allow calendar access, each with its calendars (primary
    first), from the page's prefetch (members.selectors.members_for_viewer)."""
    accounts = []
    for provider, connection in member.video_accounts:
        if connection is not None and connection.is_active and connection.grants_calendars:
            calendars = getattr(connection, "calendar_list", None)
            if calendars is None:
                calendars = list(connection.calendars.all())
            accounts.append(CalendarAccount(provider, connection, calendars))
    return accounts


@register.filter
def calendar_sync_state(calendar) -> SyncState | None:
    return sync_state([calendar])


@register.simple_tag
def booking_calendar_chosen(accounts: list[CalendarAccount]) -> bool:
    return any(calendar.receives_bookings for account in accounts for calendar in account.calendars)
