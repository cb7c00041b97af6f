"""A change forgets only the booking pages it can change.

Ana, Ben and Cleo work at the same company. Ana and Ben each have their own booking page; Ana and
Cleo also take team calls together (both must be free). When a client books Ana, Ana's page and
the team page must stop offering that time at once, but Ben's page, which nothing of Ana's can
change, keeps being served from the cache: on a busy day, pages worked out again for nothing are
what makes every client wait.
"""

from datetime import time, timedelta

import pytest
from cryptography.fernet import Fernet
from django.db import connection
from django.test.utils import CaptureQueriesContext

from bookings import cache as page_cache
from bookings import services as booking_services
from integrations import registry
from integrations.base import BusyPeriod, CalendarChanges
from integrations.calendars import sync
from integrations.models import Calendar, Connection
from meetingtypes import services as meetingtype_services
from meetingtypes.models import MeetingType
from members import services as member_services
from members.models import DateOverride

from .booking_helpers import TUESDAY, WEDNESDAY, at, book_through_service, get_slots, make_booking, make_meeting_type

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("frozen_now")]

DECEMBER = "2026-12"
JANUARY = "2027-01"
FEBRUARY = "2027-02"
TUESDAY_KEY = TUESDAY.isoformat()
WEDNESDAY_KEY = WEDNESDAY.isoformat()
WHOLE_DAY = [f"{hour:02d}:{minute:02d}" for hour in range(9, 17) for minute in (0, 30)]


@pytest.fixture
def ana(make_member, organization):
    return make_member(organization, name="Ana", time_zone="UTC")


@pytest.fixture
def ben(make_member, organization):
    return make_member(organization, name="Ben", time_zone="UTC")


@pytest.fixture
def cleo(make_member, organization):
    return make_member(organization, name="Cleo", time_zone="UTC")


@pytest.fixture
def dan(make_member, organization):
    return make_member(organization, name="Dan", time_zone="UTC")


def one_person(member, name: str) -> MeetingType:
    return make_meeting_type(member.organization, [member], name=name, assignment=MeetingType.Assignment.ONE_PERSON)


@pytest.fixture
def anas_page(ana):
    return one_person(ana, "Call with Ana")


@pytest.fixture
def bens_page(ben):
    return one_person(ben, "Call with Ben")


@pytest.fixture
def team_call(ana, cleo):
    """Shares Ana with her own page; needs both hosts free, so a time Ana loses leaves it too."""
    return make_meeting_type(
        ana.organization, [ana, cleo], name="Team call", assignment=MeetingType.Assignment.COLLECTIVE
    )


def load_december(client, meeting_type, month: str = DECEMBER) -> tuple[dict, list[str]]:
    """The page's times per day and the SQL it took."""
    with CaptureQueriesContext(connection) as queries:
        response = get_slots(client, meeting_type, month=month)
    assert response.status_code == 200, response.content
    days = {day: [slot["time"] for slot in times] for day, times in response.json()["days"].items()}
    return days, [query["sql"] for query in queries.captured_queries]


def december(client, meeting_type) -> dict:
    return load_december(client, meeting_type)[0]


def served_from_the_cache(client, meeting_type, month: str = DECEMBER) -> bool:
    """Whether the page came without working the month out: none of the tables availability is read
    from, and at most one query (finding the meeting type by its address, when that left the cache)."""
    _days, sql = load_december(client, meeting_type, month)
    availability_tables = ("meetingtypes_meetingtypehost", "members_workinghours", "bookings_bookinghost")
    return len(sql) <= 1 and not any(table in statement for statement in sql for table in availability_tables)


def clients_opened(client, *meeting_types) -> None:
    """Each page loaded once, as the day's first clients do: from here on it is cached."""
    for meeting_type in meeting_types:
        december(client, meeting_type)
        assert served_from_the_cache(client, meeting_type)


def test_a_booking_empties_the_pages_that_share_its_host_and_no_other(client, anas_page, bens_page, team_call):
    clients_opened(client, anas_page, bens_page, team_call)

    book_through_service(anas_page, at(TUESDAY, "10:00"))

    assert "10:00" not in december(client, anas_page)[TUESDAY_KEY]
    assert "10:00" not in december(client, team_call)[TUESDAY_KEY]  # Ana is no longer free for it
    assert served_from_the_cache(client, bens_page)
    assert december(client, bens_page)[TUESDAY_KEY] == WHOLE_DAY


def test_a_booking_this_week_leaves_next_month_s_page_cached(client, anas_page, team_call):
    for month in (DECEMBER, JANUARY):
        load_december(client, anas_page, month)
        load_december(client, team_call, month)

    book_through_service(anas_page, at(TUESDAY, "10:00"))

    assert not served_from_the_cache(client, anas_page, DECEMBER)
    assert not served_from_the_cache(client, team_call, DECEMBER)
    assert served_from_the_cache(client, anas_page, JANUARY)
    assert served_from_the_cache(client, team_call, JANUARY)


def test_a_booking_moved_to_next_month_changes_both_months_pages(client, anas_page):
    booking = book_through_service(anas_page, at(TUESDAY, "10:00"))
    for month in (DECEMBER, JANUARY, FEBRUARY):
        load_december(client, anas_page, month)

    booking_services.reschedule(booking=booking, start=at(TUESDAY + timedelta(days=35), "10:00"))

    assert "10:00" in december(client, anas_page)[TUESDAY_KEY]  # free again where it was
    assert not served_from_the_cache(client, anas_page, JANUARY)  # taken where it went
    assert served_from_the_cache(client, anas_page, FEBRUARY)


def test_a_cancelled_booking_comes_back_on_the_pages_that_share_its_host_only(client, anas_page, bens_page, team_call):
    booking = book_through_service(anas_page, at(TUESDAY, "10:00"))
    clients_opened(client, anas_page, bens_page, team_call)

    booking_services.cancel(booking=booking)

    assert "10:00" in december(client, anas_page)[TUESDAY_KEY]
    assert "10:00" in december(client, team_call)[TUESDAY_KEY]
    assert served_from_the_cache(client, bens_page)


def test_new_working_hours_change_the_pages_of_that_member_only(client, ana, anas_page, bens_page, team_call):
    clients_opened(client, anas_page, bens_page, team_call)

    member_services.set_weekly_hours(member=ana, weekly={1: [(time(13, 0), time(14, 0))]})

    assert december(client, anas_page)[TUESDAY_KEY] == ["13:00", "13:30"]
    assert december(client, team_call)[TUESDAY_KEY] == ["13:00", "13:30"]
    assert served_from_the_cache(client, bens_page)


def test_a_day_off_changes_the_pages_of_that_member_only(client, ana, anas_page, bens_page, team_call):
    clients_opened(client, anas_page, bens_page, team_call)

    member_services.set_date_override(member=ana, date=TUESDAY, intervals=[])

    assert TUESDAY_KEY not in december(client, anas_page)
    assert TUESDAY_KEY not in december(client, team_call)
    assert served_from_the_cache(client, bens_page)


def test_a_meeting_synced_from_a_calendar_changes_the_pages_of_its_owner_only(
    client, ana, anas_page, bens_page, team_call, monkeypatch, settings
):
    settings.TOKEN_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]  # the sync stores its cursor encrypted
    google = Connection.objects.create(member=ana, provider="google", external_user_id="ana-g", email="ana@example.com")
    work = Calendar.objects.create(
        connection=google, member=ana, external_id="primary", name="Work", is_primary=True, checks_busy=True
    )
    clients_opened(client, anas_page, bens_page, team_call)

    # Google answers the sync with a meeting Ana just put in her calendar, Tuesday 11:00-12:00.
    meeting = BusyPeriod("standup", at(TUESDAY, "11:00"), at(TUESDAY, "12:00"))
    changes = CalendarChanges(busy=(meeting,), freed=(), cursor="next-page-token", complete=True)
    monkeypatch.setattr(sync, "call_with_token", lambda connection_id, call: call("access-token"))
    monkeypatch.setattr(registry.get("google"), "calendar_changes", lambda *args, **kwargs: changes)

    assert sync.sync_calendar(work.pk)

    for meeting_type in (anas_page, team_call):
        tuesday = december(client, meeting_type)[TUESDAY_KEY]
        assert "10:30" in tuesday and "11:00" not in tuesday and "11:30" not in tuesday
    assert served_from_the_cache(client, bens_page)


def test_a_booking_moved_to_another_host_changes_the_pages_of_the_old_and_the_new_host(
    client, ana, dan, anas_page, bens_page
):
    pool = make_meeting_type(ana.organization, [ana, dan], name="Pool")  # round robin
    dans_page = one_person(dan, "Call with Dan")
    booking = make_booking(pool, [ana], at(TUESDAY, "10:00"))
    DateOverride.objects.create(member=ana, date=WEDNESDAY)  # Ana's day off: a move to Wednesday goes to Dan
    clients_opened(client, anas_page, bens_page, dans_page, pool)
    assert "10:00" not in december(client, anas_page)[TUESDAY_KEY]

    moved = booking_services.reschedule(booking=booking, start=at(WEDNESDAY, "10:00"))

    assert list(moved.host_rows.values_list("member_id", flat=True)) == [dan.pk]
    assert "10:00" in december(client, anas_page)[TUESDAY_KEY]  # the old host is free again
    assert "10:00" not in december(client, dans_page)[WEDNESDAY_KEY]  # the new host is taken
    assert served_from_the_cache(client, bens_page)


def test_changing_a_meeting_type_s_hosts_changes_that_page_only(client, ana, cleo, anas_page, bens_page, team_call):
    clients_opened(client, anas_page, bens_page, team_call)

    meetingtype_services.move_host_up(meeting_type=team_call, member=cleo)

    assert not served_from_the_cache(client, team_call)
    assert served_from_the_cache(client, anas_page)
    assert served_from_the_cache(client, bens_page)


def test_a_page_worked_out_before_the_change_is_committed_does_not_stay(
    client, ana, anas_page, django_capture_on_commit_callbacks
):
    december(client, anas_page)
    with django_capture_on_commit_callbacks(execute=False) as at_commit:
        member_services.set_date_override(member=ana, date=TUESDAY, intervals=[])
    # Another request works the page out while the change is not yet committed (this test's
    # transaction lets it see the change, a real one would not): whatever it cached must go.
    december(client, anas_page)
    assert served_from_the_cache(client, anas_page)

    for callback in at_commit:
        callback()

    assert not served_from_the_cache(client, anas_page)


# ---------------------------------------------------------------- what forgetting costs


@pytest.fixture
def busy_team(make_member, organization):
    """Ten hosts, each on three of ten meeting types: what a change costs must not grow with them."""
    hosts = [make_member(organization, time_zone="UTC") for _ in range(10)]
    types = [
        make_meeting_type(organization, [hosts[n], hosts[(n + 1) % 10], hosts[(n + 2) % 10]], name=f"Type {n}")
        for n in range(10)
    ]
    return hosts, types


def test_forgetting_what_hosts_changed_takes_one_query_however_many(busy_team, django_assert_max_num_queries):
    hosts, _types = busy_team

    with django_assert_max_num_queries(1):
        page_cache.hosts_changed(host.pk for host in hosts)


def test_forgetting_what_a_booking_changed_takes_one_query(busy_team, django_assert_max_num_queries):
    hosts, types = busy_team
    booking = make_booking(types[0], hosts[:3], at(TUESDAY, "10:00"))

    with django_assert_max_num_queries(1):
        page_cache.booking_changed(booking, previous_host_ids=[host.pk for host in hosts[3:]])


def test_a_meeting_type_s_own_change_takes_no_query(busy_team, django_assert_max_num_queries):
    _hosts, types = busy_team

    with django_assert_max_num_queries(0):
        page_cache.meeting_type_changed(types[0].pk)


def test_a_booking_gives_new_versions_to_exactly_the_meeting_types_of_its_hosts(busy_team, monkeypatch):
    hosts, types = busy_team
    written: list[dict] = []
    monkeypatch.setattr(page_cache, "_new_versions", lambda keys: written.append(sorted(keys)))

    booking = make_booking(types[0], [hosts[0]], at(TUESDAY, "10:00") + timedelta(days=1))
    page_cache.booking_changed(booking)

    # Host 0 is on types 0, 9 and 8 (each type n has hosts n, n+1, n+2); the booking, on
    # 9 December, can change their December pages only.
    assert written == [
        sorted(f"slots-version:{meeting_type.pk}:2026-12" for meeting_type in (types[0], types[8], types[9]))
    ]
