"""Reads for bookings: the data the availability engine needs, and the dashboard lists."""

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

import numpy as np
from django.db import connections
from django.db.models import Count, Exists, OuterRef, Prefetch, Q

from integrations.models import BusyInterval
from meetingtypes.models import MeetingType, MeetingTypeHost
from members.models import DateOverride, TeamMember, WorkingHours

from . import availability
from .models import LONGEST_OCCUPIED, Booking, BookingHost, BusyDay, EmailDelivery

# Busy time and daily limits near the edges of a range matter too (buffers, local dates that
# straddle the UTC range): load a day more on each side.
_MARGIN = timedelta(days=1)


def slot_rules(meeting_type: MeetingType) -> availability.SlotRules:
    return availability.SlotRules(
        duration=timedelta(minutes=meeting_type.duration_minutes),
        interval=timedelta(minutes=meeting_type.slot_interval_minutes or meeting_type.duration_minutes),
        buffer_before=timedelta(minutes=meeting_type.buffer_before_minutes),
        buffer_after=timedelta(minutes=meeting_type.buffer_after_minutes),
        minimum_notice=timedelta(minutes=meeting_type.minimum_notice_minutes),
        booking_window=timedelta(days=meeting_type.booking_window_days),
        daily_limit=meeting_type.daily_limit_per_host,
        collective=meeting_type.assignment == MeetingType.Assignment.COLLECTIVE,
    )


def load_availability(
    meeting_type: MeetingType, *, start: datetime, end: datetime, exclude_booking_id: int | None = None
) -> tuple[availability.SlotRules, list[availability.HostAvailability]]:
    """Everything the engine needs for [start, end), in a number of queries that does not grow with
    hosts, days or bookings: on PostgreSQL one (two with a daily limit), each host's hours, date
    overrides and busy time in one row, the busy time from the per-day sums the database keeps
    (`BusyDay`, a few dozen rows per host for a month); four (five) when a booking is left out (a
    client moving theirs: the busy rows themselves are read) and on SQLite."""
    override_days = ((start - 2 * _MARGIN).date(), (end + 2 * _MARGIN).date())
    busy_from, busy_until = start - _MARGIN, end + _MARGIN
    if exclude_booking_id is None and connections[BusyDay.objects.db].vendor == "postgresql":
        hosts = _hosts_in_one_query(meeting_type, override_days, busy_from, busy_until)
    else:
        hosts = _hosts_in_queries(meeting_type, override_days, busy_from, busy_until, exclude_booking_id)

    booked_starts: dict[int, list] = defaultdict(list)
    if meeting_type.daily_limit_per_host and hosts:
        taken = _taken([host.member_id for host in hosts], busy_from, busy_until, exclude_booking_id)
        for member_id, booking_start in taken.filter(booking__meeting_type=meeting_type).values_list(
            "member_id", "booking__start"
        ):
            booked_starts[member_id].append(booking_start)

    host_data = [
        availability.HostAvailability(
            host_id=host.member_id,
            time_zone=host.time_zone,
            weekly=tuple(host.weekly),
            overrides=tuple(availability.DateOverride(day, tuple(spans)) for day, spans in host.overrides.items()),
            busy=host.busy,
            booked_starts=tuple(booked_starts[host.member_id]),
        )
        for host in hosts
    ]
    return slot_rules(meeting_type), host_data


@dataclass
class _HostRows:
    """One host's rows as read: hours, overrides by date (an empty list is a day off), busy time."""

    member_id: int
    time_zone: str
    weekly: list = field(default_factory=list)
    overrides: dict = field(default_factory=lambda: defaultdict(list))
    busy: availability.BusyColumns | tuple = ()


def _hosts_in_one_query(meeting_type: MeetingType, override_days, busy_from, busy_until) -> list[_HostRows]:
    """The meeting type's active hosts in the admin's order, each with everything about them in one
    row: hours and overrides as JSON, busy time as the per-day sums joined (see `_instants`)."""
    sql = f"""
        SELECT h.member_id, m.time_zone,
            (SELECT json_agg(json_build_array(w.weekday, w.start, w."end"))
             FROM {WorkingHours._meta.db_table} AS w WHERE w.member_id = h.member_id),
            (SELECT json_agg(json_build_array(o.date, o.start, o."end"))
             FROM {DateOverride._meta.db_table} AS o WHERE o.member_id = h.member_id AND o.date BETWEEN %s AND %s),
            busy.starts, busy.ends
        FROM {MeetingTypeHost._meta.db_table} AS h
        JOIN {TeamMember._meta.db_table} AS m ON m.id = h.member_id
        LEFT JOIN LATERAL (
            SELECT STRING_AGG(d.starts, '' ORDER BY d.day) AS starts, STRING_AGG(d.ends, '' ORDER BY d.day) AS ends
            FROM {BusyDay._meta.db_table} AS d WHERE d.member_id = h.member_id AND d.day BETWEEN %s AND %s
        ) AS busy ON TRUE
        WHERE h.meeting_type_id = %s AND m.is_active
        ORDER BY h.position, h.id
        {"LIMIT 1" if meeting_type.assignment == MeetingType.Assignment.ONE_PERSON else ""}
    """
    first_busy_day = busy_from.astimezone(UTC).date()
    last_busy_day = (busy_until - timedelta(microseconds=1)).astimezone(UTC).date()
    with connections[BusyDay.objects.db].cursor() as cursor:
        cursor.execute(sql, [*override_days, first_busy_day, last_busy_day, meeting_type.pk])
        rows = cursor.fetchall()
    clock = _Clock()
    hosts = []
    for member_id, time_zone, weekly, overrides, starts, ends in rows:
        host = _HostRows(member_id, time_zone)
        host.weekly = [clock.interval(*row) for row in weekly or ()]
        for day, from_, until in overrides or ():
            spans = host.overrides[date.fromisoformat(day)]
            if from_ is not None:
                spans.append((clock.time(from_), clock.time(until)))
        if starts is not None:
            host.busy = availability.BusyColumns(_instants(starts), _instants(ends))
        hosts.append(host)
    return hosts


class _Clock:
    """Wall-clock times and working intervals read from text, each distinct one made once: a team
    mostly shares a few sets of hours."""

    def __init__(self) -> None:
        self._times: dict[str, time] = {}
        self._intervals: dict[tuple, availability.WorkingInterval] = {}

    def time(self, text: str) -> time:
        if text not in self._times:
            self._times[text] = time.fromisoformat(text)
        return self._times[text]

    def interval(self, weekday: int, start: str, end: str) -> availability.WorkingInterval:
        key = (weekday, start, end)
        if key not in self._intervals:
            self._intervals[key] = availability.WorkingInterval(weekday, self.time(start), self.time(end))
        return self._intervals[key]


def _hosts_in_queries(
    meeting_type: MeetingType, override_days, busy_from, busy_until, exclude_booking_id: int | None
) -> list[_HostRows]:
    """`_hosts_in_one_query` as four ORM queries, the busy time read from the rows themselves
    (leaving out `exclude_booking_id`)."""
    members = (
        MeetingTypeHost.objects.filter(meeting_type=meeting_type, member__is_active=True)
        .order_by("position", "id")
        .values_list("member_id", "member__time_zone")
    )
    hosts = {member_id: _HostRows(member_id, time_zone) for member_id, time_zone in members}
    if meeting_type.assignment == MeetingType.Assignment.ONE_PERSON:
        hosts = dict(list(hosts.items())[:1])
    if not hosts:
        return []
    ids = list(hosts)
    for member_id, weekday, from_, until in WorkingHours.objects.filter(member_id__in=ids).values_list(
        "member_id", "weekday", "start", "end"
    ):
        hosts[member_id].weekly.append(availability.WorkingInterval(weekday, from_, until))
    for member_id, day, from_, until in DateOverride.objects.filter(
        member_id__in=ids, date__range=override_days
    ).values_list("member_id", "date", "start", "end"):
        spans = hosts[member_id].overrides[day]
        if from_ is not None:
            spans.append((from_, until))
    # Their own calendars' meetings, as last synced. Unlike a booking's occupied range these
    # carry no buffers: the engine holds each candidate's own buffers against them, so the
    # slot plus its buffers never overlaps a meeting (a booking's buffers meet ours as today).
    # Only calendars that count as busy have rows (unticking one deletes them), and our own
    # bookings' events never get here: the sync leaves them out.
    external = BusyInterval.objects.filter(member_id__in=ids, start__lt=busy_until, end__gt=busy_from)
    taken = _taken(ids, busy_from, busy_until, exclude_booking_id)
    for member_id, starts, ends in _busy_per_member(taken, external):
        hosts[member_id].busy = availability.BusyColumns(starts, ends)
    return list(hosts.values())


def _taken(ids: list[int], busy_from: datetime, busy_until: datetime, exclude_booking_id: int | None):
    """The hosts' active booking rows overlapping [busy_from, busy_until)."""
    taken = BookingHost.objects.filter(
        member_id__in=ids,
        is_active=True,
        occupied_start__gte=busy_from - LONGEST_OCCUPIED,
        occupied_start__lt=busy_until,
        occupied_end__gt=busy_from,
    )
    return taken.exclude(booking_id=exclude_booking_id) if exclude_booking_id is not None else taken


def _busy_per_member(taken, external) -> list[tuple[int, Sequence, Sequence]]:
    """(member id, starts, ends) of the busy intervals, bookings' and calendars' alike, one row
    per member, in one query (UNION ALL of the two sources), read from the rows themselves: for a
    client moving a booking (which leaves it out, so the day sums won't do) and on SQLite.

    Every booking and calendar event of every host, tens of thousands for a big team's month. On
    PostgreSQL each host's intervals come as two columns of integers (the engine's epoch
    microseconds, as numpy arrays), one row per host: no Python object per interval at all, and
    one row per host saves the per-row overhead. SQLite keeps the plain read of datetimes.

    Each column is the timestamps' own binary form (timestamptz_send: the stored 8-byte count of
    microseconds since 2000-01-01, big-endian) run together in one bytea: no conversion per value
    on the server, exact to the microsecond, and the bytes are read as an array in place
    (`_instants`). An array of numbers instead is written out and parsed by the driver one element
    at a time, which cost more than the query itself with a month of calendar meetings (about
    25 ms for 30,000 intervals).

    The two columns pair up element by element: PostgreSQL feeds each input row to every
    aggregate of its group in one pass, and neither aggregate sorts its input on its own.
    """
    both = (
        taken.order_by()
        .values_list("member_id", "occupied_start", "occupied_end")
        .union(external.order_by().values_list("member_id", "start", "end"), all=True)
    )
    if connections[taken.db].vendor == "postgresql":
        union_sql, params = both.query.sql_with_params()
        sql = (
            "SELECT member_id, STRING_AGG(timestamptz_send(busy_start), ''), STRING_AGG(timestamptz_send(busy_end), '')"
            f" FROM ({union_sql}) AS busy (member_id, busy_start, busy_end)"
            " GROUP BY member_id"
        )
        with connections[taken.db].cursor() as cursor:
            cursor.execute(sql, params)
            return [(member_id, _instants(starts), _instants(ends)) for member_id, starts, ends in cursor.fetchall()]
    per_member: dict[int, tuple[list, list]] = defaultdict(lambda: ([], []))
    for member_id, start, end in both:
        per_member[member_id][0].append(start)
        per_member[member_id][1].append(end)
    return [(member_id, starts, ends) for member_id, (starts, ends) in per_member.items()]


# PostgreSQL counts timestamps in microseconds from 2000-01-01 UTC; the engine from 1970.
_POSTGRES_EPOCH = availability.epoch_microseconds(datetime(2000, 1, 1, tzinfo=UTC))


def _instants(data) -> np.ndarray:
    """timestamptz_send's values run together (big-endian 8-byte signed integers, microseconds
    since 2000), as the engine's epoch microseconds."""
    return np.frombuffer(data, dtype=">i8").astype(np.int64) + _POSTGRES_EPOCH


def least_recently_booked_first(meeting_type: MeetingType, candidate_ids: list[int]) -> list[int]:
    """Round-robin order: hosts never booked for this type first, then the longest since their last
    booking that is still confirmed; ties go to the admin's host order, then the lower id
    (deterministic). One query of one row per candidate, whatever the bookings' history: the last
    booking is kept on the host link (bookings.last_booked)."""
    links = {
        member_id: (position, last_booked_at)
        for member_id, position, last_booked_at in MeetingTypeHost.objects.filter(
            meeting_type=meeting_type, member_id__in=candidate_ids
        ).values_list("member_id", "position", "last_booked_at")
    }
    never = datetime.min.replace(tzinfo=None)

    def key(member_id: int):
        position, last = links.get(member_id, (0, None))
        return (last is not None, last.replace(tzinfo=None) if last else never, position, member_id)

    return sorted(candidate_ids, key=key)


def get_booking_by_link(uid: str, token: str) -> Booking | None:
    if Booking.uid_from_token(uid, token) is None:
        return None
    return (
        Booking.objects.select_related("meeting_type", "organization", "video_meeting")
        .prefetch_related(Prefetch("host_rows", queryset=BookingHost.objects.select_related("member__user")))
        .filter(uid=uid)
        .first()
    )


DASHBOARD_TABS = ("upcoming", "past", "cancelled")


def _visible_to(viewer: TeamMember):
    """Admins see every booking of the organization, members the ones they host."""
    bookings = Booking.objects.filter(organization_id=viewer.organization_id)
    if not viewer.is_admin:
        bookings = bookings.filter(Exists(BookingHost.objects.filter(booking=OuterRef("pk"), member=viewer)))
    return bookings


def _in_tab(tab: str, now: datetime) -> Q:
    if tab == "cancelled":
        return Q(status=Booking.Status.CANCELLED)
    confirmed = Q(status=Booking.Status.CONFIRMED)
    return confirmed & (Q(end__gte=now) if tab == "upcoming" else Q(end__lt=now))


def dashboard_tab_counts(*, viewer: TeamMember, now: datetime) -> dict[str, int]:
    """How many bookings each tab holds, in one query."""
    return _visible_to(viewer).aggregate(**{tab: Count("pk", filter=_in_tab(tab, now)) for tab in DASHBOARD_TABS})


def bookings_for_dashboard(*, viewer: TeamMember, tab: str, now: datetime):
    """One tab of the Bookings page: upcoming soonest first, past and cancelled latest first.
    Three queries a page, whatever its length."""
    return (
        _visible_to(viewer)
        .filter(_in_tab(tab, now))
        .select_related("meeting_type", "video_meeting__host")
        .prefetch_related(
            Prefetch("host_rows", queryset=BookingHost.objects.select_related("member")),
            Prefetch(
                "email_deliveries",
                queryset=EmailDelivery.objects.filter(
                    state__in=[EmailDelivery.State.FAILED, EmailDelivery.State.PENDING, EmailDelivery.State.SENDING]
                ),
                to_attr="unsent_emails",
            ),
        )
        .order_by("start" if tab == "upcoming" else "-start", "id")
    )


def get_booking_for_staff(*, viewer: TeamMember, pk: int) -> Booking | None:
    bookings = Booking.objects.filter(organization_id=viewer.organization_id, pk=pk)
    return bookings.select_related("meeting_type", "video_meeting__host").first()


def may_change_booking(*, viewer: TeamMember, booking: Booking) -> bool:
    """Admins change any booking of their organization; a member only one they host."""
    return viewer.is_admin or booking.host_rows.filter(member=viewer).exists()
