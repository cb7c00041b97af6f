"""A member's own meetings block their booking page: the busy time of the calendars they chose is
kept in our database, synced over real HTTP from the Google and Microsoft fakes, and the booking
page reads only that. Every story runs with both providers (the `account` fixture).
"""

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings
from django.utils import timezone

from integrations.calendars import push, sweep, sync
from integrations.models import BusyInterval, Calendar, Connection

from . import google_helpers, microsoft_helpers
from .calendar_helpers import (
    HOST_ZONE,
    WHOLE_DAY,
    a_day_ahead,
    busy_rows,
    calendars_of,
    checked_calendar,
    local,
    offered,
    sync_now,
)

pytestmark = pytest.mark.django_db(transaction=True)


def without(*times: str) -> list[str]:
    return [slot for slot in WHOLE_DAY if slot not in times]


# ---------------------------------------------------------------- the calendar list


def test_connecting_lists_the_calendars_and_the_primary_one_counts_and_takes_the_bookings(account, hana):
    account.add_calendar("Team holidays")

    account.connect(hana)

    calendars = calendars_of(hana)
    assert len(calendars) == 2
    primary = next(calendar for calendar in calendars if calendar.is_primary)
    other = next(calendar for calendar in calendars if not calendar.is_primary)
    assert (primary.checks_busy, primary.receives_bookings) == (True, True)
    assert (other.name, other.checks_busy, other.receives_bookings) == ("Team holidays", False, False)
    assert primary.synced_at is not None and other.synced_at is None  # checked ones are synced at once
    assert primary.sync_error == ""


def test_listing_again_keeps_the_members_choices_and_drops_a_calendar_that_is_gone(account, hana, client, intro_call):
    holidays = account.add_calendar("Team holidays")
    connection = account.connect(hana)
    primary = checked_calendar(hana)
    other = Calendar.objects.get(member=hana, is_primary=False)
    sync.stop_checking(primary)
    sync.start_checking(other)
    day = a_day_ahead()
    account.add_meeting(local(day, "09:00"), local(day, "10:00"), calendar_id=holidays)
    sync_now(hana)
    assert offered(client, intro_call, day) == without("09:00", "09:30")

    sync.refresh_calendar_list(connection.pk)  # nothing changed at the provider
    assert [(c.pk, c.checks_busy) for c in calendars_of(hana)] == [(primary.pk, False), (other.pk, True)]

    # The listing no longer names the calendar we kept (the member left it): it goes with its busy time.
    Calendar.objects.filter(pk=other.pk).update(external_id="a-calendar-the-member-left")
    sync.refresh_calendar_list(connection.pk)
    assert not Calendar.objects.filter(pk=other.pk).exists()
    assert Calendar.objects.get(member=hana, external_id=holidays).checks_busy is False  # listed anew
    assert not BusyInterval.objects.filter(member=hana).exists()
    assert offered(client, intro_call, day) == WHOLE_DAY


def test_a_member_with_a_booking_calendar_elsewhere_keeps_it(google_sandbox, microsoft_sandbox, hana):
    from .calendar_helpers import FakeAccount

    FakeAccount("google", "hana@gmail-like.example.com").connect(hana)
    FakeAccount("microsoft", "hana@outlook-like.example.com").connect(hana)

    receiving = Calendar.objects.filter(member=hana, receives_bookings=True)
    assert [calendar.connection.provider for calendar in receiving] == ["google"]
    assert Calendar.objects.filter(member=hana, checks_busy=True).count() == 2  # both primaries count


def test_an_account_without_calendar_access_lists_nothing(google_sandbox, hana):
    from integrations.sandbox import google

    from .google_helpers import connected_in_sandbox

    connection = connected_in_sandbox(hana, "hana@old-grant.example.com")
    Connection.objects.filter(pk=connection.pk).update(scopes=settings.GOOGLE_SCOPES)  # granted before calendars

    assert sync.refresh_calendar_list(connection.pk) == 0
    assert not Calendar.objects.filter(member=hana).exists()
    assert google.calendars_of("hana@old-grant.example.com")  # the fake has calendars; we did not ask


# ---------------------------------------------------------------- busy time on the booking page


def test_a_meeting_blocks_exactly_the_slots_it_overlaps_in_the_hosts_zone(account, hana, client, intro_call):
    account.connect(hana)
    day = a_day_ahead()
    assert offered(client, intro_call, day) == WHOLE_DAY

    account.add_meeting(local(day, "10:15"), local(day, "11:00"))
    sync_now(hana)

    assert offered(client, intro_call, day) == without("10:00", "10:30")
    # A client in New York sees the same instants, in their own clock.
    new_york = offered(client, intro_call, day, zone="America/New_York")
    assert "04:00" not in new_york and "04:30" not in new_york and "05:00" in new_york and "03:30" in new_york


def test_on_the_day_the_clocks_change_the_meeting_blocks_its_wall_clock_slots(account, hana, client, intro_call):
    account.connect(hana)
    day = next_clock_change(HOST_ZONE)

    account.add_meeting(local(day, "10:00"), local(day, "11:00"))
    sync_now(hana)

    assert offered(client, intro_call, day) == without("10:00", "10:30")
    assert offered(client, intro_call, day + timedelta(days=1)) == WHOLE_DAY


def test_a_deleted_meeting_frees_its_slots_and_a_moved_one_frees_the_old_time(account, hana, client, intro_call):
    account.connect(hana)
    day = a_day_ahead()
    standup = account.add_meeting(local(day, "09:00"), local(day, "09:30"))
    review = account.add_meeting(local(day, "14:00"), local(day, "15:00"))
    sync_now(hana)
    assert offered(client, intro_call, day) == without("09:00", "14:00", "14:30")

    account.delete(standup)
    account.move(review, local(day, "16:00"), local(day, "16:30"))
    sync_now(hana)

    assert offered(client, intro_call, day) == without("16:00")
    assert len(busy_rows(hana)) == 1


def test_an_all_day_event_blocks_the_whole_day_in_the_calendars_zone(account, hana, client, intro_call):
    account.connect(hana)
    day = a_day_ahead()

    account.add_all_day(day, HOST_ZONE)
    sync_now(hana)

    assert offered(client, intro_call, day) == []
    assert offered(client, intro_call, day - timedelta(days=1)) == WHOLE_DAY
    assert offered(client, intro_call, day + timedelta(days=1)) == WHOLE_DAY


def test_a_weekly_meeting_blocks_each_of_its_occurrences(account, hana, client, intro_call):
    account.connect(hana)
    day = a_day_ahead()

    account.add_weekly(local(day, "12:00"), local(day, "13:00"), times=3)
    sync_now(hana)

    for week in range(3):
        assert offered(client, intro_call, day + timedelta(weeks=week)) == without("12:00", "12:30")
    assert offered(client, intro_call, day + timedelta(weeks=3)) == WHOLE_DAY


def test_free_and_tentative_events_block_nothing(account, hana, client, intro_call):
    account.connect(hana)
    day = a_day_ahead()

    account.add_free_time_block(local(day, "09:00"), local(day, "12:00"))
    account.add_tentative_meeting(local(day, "13:00"), local(day, "14:00"))
    sync_now(hana)

    assert offered(client, intro_call, day) == WHOLE_DAY
    assert busy_rows(hana) == []


def test_an_unchecked_calendar_frees_its_slots_at_once_and_checking_it_again_blocks_them(
    account, hana, client, intro_call
):
    account.connect(hana)
    day = a_day_ahead()
    account.add_meeting(local(day, "11:00"), local(day, "12:00"))
    sync_now(hana)
    calendar = checked_calendar(hana)

    sync.stop_checking(calendar)

    assert offered(client, intro_call, day) == WHOLE_DAY
    calendar.refresh_from_db()
    assert (calendar.sync_cursor, calendar.next_sync_at, BusyInterval.objects.count()) == ("", None, 0)

    sync.start_checking(calendar)  # synced at once

    assert offered(client, intro_call, day) == without("11:00", "11:30")


# ---------------------------------------------------------------- cursors and full listings


def test_an_expired_sync_token_means_one_full_listing_that_keeps_exactly_the_busy_set(
    account, hana, client, intro_call
):
    account.connect(hana)
    day = a_day_ahead()
    lunch = account.add_meeting(local(day, "12:00"), local(day, "13:00"))
    sync_now(hana)
    cursor_before = checked_calendar(hana).sync_cursor

    account.forget_sync_cursors()
    account.delete(lunch)
    account.add_meeting(local(day, "15:00"), local(day, "15:30"))
    sync_now(hana)

    assert offered(client, intro_call, day) == without("15:00")
    assert busy_rows(hana) == [(local(day, "15:00"), local(day, "15:30"))]
    calendar = checked_calendar(hana)
    assert calendar.sync_cursor and calendar.sync_cursor != cursor_before
    assert (calendar.sync_error, calendar.sync_failures) == ("", 0)


def test_an_incremental_sync_asks_only_for_changes(account, hana):
    account.connect(hana)
    calendar = checked_calendar(hana)
    listed_until = calendar.busy_known_until
    day = a_day_ahead()
    account.add_meeting(local(day, "09:00"), local(day, "10:00"))

    assert sync.sync_calendar(calendar.pk) is True
    assert sync.sync_calendar(calendar.pk) is False  # nothing new

    calendar.refresh_from_db()
    assert calendar.busy_known_until == listed_until  # no full listing since the first one
    assert calendar.busy_known_until - calendar.busy_known_from >= timedelta(days=settings.CALENDAR_SYNC_DAYS)


def test_busy_time_is_kept_for_the_sync_window_only(account, hana):
    now = timezone.now()
    hour = now.replace(minute=0, second=0, microsecond=0)
    far = hour + timedelta(days=settings.CALENDAR_SYNC_DAYS + 10)
    account.add_meeting(far, far + timedelta(hours=1))  # beyond any booking window
    account.add_meeting(hour - timedelta(days=3), hour + timedelta(hours=2))  # a conference, under way

    account.connect(hana)

    [(start, end)] = busy_rows(hana)
    assert end == hour + timedelta(hours=2)
    assert now - sync.KEEP_PAST - timedelta(minutes=1) < start < now  # kept from the window's start


# ---------------------------------------------------------------- polling, errors, claims


def test_without_push_the_sweep_polls_each_calendar_when_it_is_due(account, hana, client, intro_call, settings):
    settings.CALENDAR_PUSH = "auto"  # and SITE_URL is the live server's http:// address
    assert not push.push_enabled()
    account.connect(hana)
    calendar = checked_calendar(hana)
    day = a_day_ahead()
    account.add_meeting(local(day, "10:00"), local(day, "11:00"))

    assert sweep.run() == 0  # not due yet: polled every CALENDAR_POLL_SECONDS
    assert offered(client, intro_call, day) == WHOLE_DAY

    later = calendar.next_sync_at + timedelta(seconds=1)
    assert sweep.run(now=later) == 1

    assert offered(client, intro_call, day) == without("10:00", "10:30")
    calendar.refresh_from_db()
    assert calendar.next_sync_at == later + timedelta(seconds=settings.CALENDAR_POLL_SECONDS)
    assert account.channels() == [] and calendar.channel_id == ""


def test_a_provider_that_is_down_is_asked_again_later_and_the_busy_time_stays(account, hana, client, intro_call):
    account.connect(hana)
    day = a_day_ahead()
    account.add_meeting(local(day, "10:00"), local(day, "11:00"))
    sync_now(hana)
    calendar = checked_calendar(hana)
    account.fail_event_reads(503, times=3)
    before = timezone.now()

    assert sync.sync_calendar(calendar.pk) is False

    calendar.refresh_from_db()
    assert calendar.sync_error == "HTTP 503" and calendar.sync_failures == 1
    assert calendar.next_sync_at > before and calendar.sync_claimed_at is None
    assert offered(client, intro_call, day) == without("10:00", "10:30")  # what we knew still counts


def test_a_revoked_account_stops_being_synced_until_it_is_reconnected(account, hana):
    connection = account.connect(hana)
    calendar = checked_calendar(hana)
    account.fake.revoke_grant(account.email)
    Connection.objects.filter(pk=connection.pk).update(expires_at=timezone.now())  # the access token ran out

    sync.sync_calendar(calendar.pk)

    connection.refresh_from_db()
    calendar.refresh_from_db()
    assert connection.status == Connection.Status.BROKEN
    assert calendar.next_sync_at is None and calendar.sync_error
    assert sweep.due_calendars(timezone.now() + timedelta(days=1)) == []

    # She connects the same account again: the calendar, her choice kept, is synced at once.
    day = a_day_ahead()
    account.add_meeting(local(day, "10:00"), local(day, "11:00"))
    account.connect(hana)
    calendar.refresh_from_db()
    assert calendar.checks_busy and calendar.sync_error == "" and calendar.next_sync_at is not None
    assert busy_rows(hana) == [(local(day, "10:00"), local(day, "11:00"))]


def test_a_sync_asked_for_while_another_runs_makes_that_one_run_again(account, hana):
    account.connect(hana)
    calendar = checked_calendar(hana)
    now = timezone.now()
    Calendar.objects.filter(pk=calendar.pk).update(sync_claimed_at=now)

    assert sync.sync_calendar(calendar.pk, now=now) is False

    calendar.refresh_from_db()
    assert calendar.sync_again is True and calendar.synced_at < now
    # A claim older than any sync can take belongs to a worker that died: it is taken over.
    later = now + sync.STALE_CLAIM + timedelta(seconds=1)
    day = a_day_ahead()
    account.add_meeting(local(day, "10:00"), local(day, "11:00"))
    assert sync.sync_calendar(calendar.pk, now=later) is True
    calendar.refresh_from_db()
    assert (calendar.sync_claimed_at, calendar.sync_again, calendar.synced_at) == (None, False, later)


def test_a_connection_whose_calendar_list_was_lost_is_listed_by_the_sweep(account, hana, client, intro_call):
    helpers = google_helpers if account.key == "google" else microsoft_helpers
    connection = helpers.connected_in_sandbox(hana, account.email)  # the listing task never ran
    day = a_day_ahead()
    account.add_meeting(local(day, "10:00"), local(day, "11:00"))

    sweep.run()
    assert not Calendar.objects.filter(connection=connection).exists()  # the task may still come

    sweep.run(now=timezone.now() + sweep.LISTING_GRACE + timedelta(seconds=1))
    assert checked_calendar(hana).connection_id == connection.pk
    assert offered(client, intro_call, day) == without("10:00", "10:30")


def test_the_sweep_makes_a_few_queries_per_due_calendar_and_three_when_none_is_due(
    google_sandbox, make_member, organization, django_assert_max_num_queries, settings
):
    from .calendar_helpers import FakeAccount

    members = [make_member(organization, time_zone=HOST_ZONE) for _ in range(3)]
    for number, member in enumerate(members):
        FakeAccount("google", f"member{number}@sweep.example.com").connect(member)
    with django_assert_max_num_queries(3):
        assert sweep.run() == 0  # lapsed channels forgotten, due calendars and unlisted accounts looked up

    # Each due calendar: claim, load, the token (locked), the changes applied, release; whatever
    # the number of events, and nothing per calendar beyond it.
    later = timezone.now() + timedelta(seconds=settings.CALENDAR_POLL_SECONDS + 1)
    with django_assert_max_num_queries(3 + 3 * 11):
        assert sweep.run(now=later) == 3


def next_clock_change(zone_name: str) -> date:
    """The next date (within the booking window) on which `zone_name` changes its UTC offset."""
    zone = ZoneInfo(zone_name)
    day = a_day_ahead(1)
    for _ in range(190):
        at_midnight = datetime.combine(day, time(0), tzinfo=zone).utcoffset()
        next_midnight = datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone).utcoffset()
        if at_midnight != next_midnight:
            return day
        day += timedelta(days=1)
    raise AssertionError(f"{zone_name} has no clock change in the next 190 days")
