from django.db.models import Prefetch

from accounts.models import Organization
from integrations.models import Calendar, Connection

from .models import DateOverride, TeamMember, WorkingHours


def members_for_viewer(*, organization: Organization, viewer: TeamMember):
    """Cards on the Team Members page (with every video connection and its calendars): admins also
    see deactivated members. Three queries (two when nobody has a connection)."""
    calendars = Prefetch("calendars", queryset=Calendar.objects.all(), to_attr="calendar_list")  # primary first
    connections = Prefetch(
        "connections", queryset=Connection.objects.order_by("pk").prefetch_related(calendars), to_attr="connection_list"
    )
    members = TeamMember.objects.filter(organization=organization).select_related("user").prefetch_related(connections)
    if not viewer.is_admin:
        members = members.filter(is_active=True)
    return members.order_by("-is_active", "display_name", "id")


def get_member(*, organization: Organization, pk: int) -> TeamMember | None:
    return TeamMember.objects.select_related("user").filter(organization=organization, pk=pk).first()


def weekly_hours_by_day(member: TeamMember) -> dict[int, list[tuple]]:
    by_day: dict[int, list[tuple]] = {day: [] for day in range(7)}
    for row in WorkingHours.objects.filter(member=member).order_by("weekday", "start"):
        by_day[row.weekday].append((row.start, row.end))
    return by_day


def upcoming_overrides(member: TeamMember, *, today) -> list[tuple]:
    """[(date, [(start, end), …]), …] from today on; an empty list means a day off."""
    grouped: dict = {}
    for row in DateOverride.objects.filter(member=member, date__gte=today).order_by("date", "start"):
        intervals = grouped.setdefault(row.date, [])
        if not row.is_day_off:
            intervals.append((row.start, row.end))
    return list(grouped.items())
