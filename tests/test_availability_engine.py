"""The availability engine, told as the stories of the hosts and invitees who rely on it.

Pure Python: no database, no Django settings. Times in the examples are UTC unless a
zone is named; 2026-03-09 is a Monday.
"""

from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bookings.availability import (
    BusyColumns,
    DateOverride,
    HostAvailability,
    Slot,
    SlotRules,
    WorkingInterval,
    available_slots,
    available_start_instants,
    available_starts,
    epoch_microseconds,
    is_bookable,
    occupied_range,
)

MONDAY = "2026-03-09"
LONG_AGO = "2026-01-01 00:00"
EVERY_DAY = range(7)
SUNDAY = 6


# --------------------------------------------------------------------------- helpers


def utc(text: str) -> datetime:
    """'2026-03-09 14:00' as an aware UTC datetime."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def wall_time(text: str) -> time:
    """'09:30' as a time; '24:00' is midnight at the end of the day, i.e. time(0)."""
    return time(0) if text == "24:00" else time.fromisoformat(text)


def span(text: str) -> tuple[time, time]:
    start, end = text.split("-")
    return wall_time(start), wall_time(end)


def hours(*spans: str, days: Iterable[int] = EVERY_DAY) -> tuple[WorkingInterval, ...]:
    """Weekly hours, e.g. hours("09:00-12:00", "13:00-17:00", days=range(5))."""
    return tuple(WorkingInterval(day, *span(text)) for day in days for text in spans)


def host(
    host_id: int = 1,
    zone: str = "UTC",
    weekly: tuple[WorkingInterval, ...] | None = None,
    *,
    overrides: dict[str, Sequence[str]] | None = None,
    busy: Sequence[tuple[str, str]] = (),
    booked: Sequence[str] = (),
) -> HostAvailability:
    return HostAvailability(
        host_id=host_id,
        time_zone=zone,
        weekly=hours("09:00-17:00") if weekly is None else weekly,
        overrides=tuple(
            DateOverride(date.fromisoformat(day), tuple(span(text) for text in spans))
            for day, spans in (overrides or {}).items()
        ),
        busy=tuple((utc(start), utc(end)) for start, end in busy),
        booked_starts=tuple(utc(start) for start in booked),
    )


def rules(duration: int = 30, interval: int | None = None, **options) -> SlotRules:
    """Slot rules with durations in minutes; the interval defaults to the duration.
    `booking_window`, `daily_limit` and `collective` are passed through as they are."""
    minutes = {key: timedelta(minutes=value) for key, value in options.items() if key.startswith(("buffer", "min"))}
    others = {key: value for key, value in options.items() if key not in minutes}
    return SlotRules(
        duration=timedelta(minutes=duration),
        interval=timedelta(minutes=duration if interval is None else interval),
        **minutes,
        **others,
    )


def slots(
    slot_rules: SlotRules, hosts: Sequence[HostAvailability], start: str, end: str, now: str = LONG_AGO
) -> list[Slot]:
    return available_slots(slot_rules, hosts, start=utc(start), end=utc(end), now=utc(now))


def starts(slot_rules: SlotRules, hosts: Sequence[HostAvailability], start: str, end: str, now: str = LONG_AGO):
    """Offered starts as UTC 'HH:MM'."""
    return utc_times(slots(slot_rules, hosts, start, end, now))


def dated_starts(slot_rules: SlotRules, hosts: Sequence[HostAvailability], start: str, end: str, now: str = LONG_AGO):
    """Offered starts as UTC 'YYYY-MM-DD HH:MM'."""
    return utc_times(slots(slot_rules, hosts, start, end, now), "%Y-%m-%d %H:%M")


def utc_times(offered: Sequence[Slot], fmt: str = "%H:%M") -> list[str]:
    return [slot.start.strftime(fmt) for slot in offered]


def wall_clock(offered: Sequence[Slot], zone: str) -> list[str]:
    """Slot starts read on the wall clock of `zone`, with its abbreviation: '01:30 EDT'."""
    return [slot.start.astimezone(ZoneInfo(zone)).strftime("%H:%M %Z") for slot in offered]


def day(text: str = MONDAY) -> tuple[str, str]:
    """That UTC day as a (start, end) range."""
    return f"{text} 00:00", f"{date.fromisoformat(text) + timedelta(days=1)} 00:00"


def half_hours(first: str, last: str) -> list[str]:
    """['09:00', '09:30', ..., last]."""
    moment, end, result = datetime.strptime(first, "%H:%M"), datetime.strptime(last, "%H:%M"), []
    while moment <= end:
        result.append(moment.strftime("%H:%M"))
        moment += timedelta(minutes=30)
    return result


# --------------------------------------------------------------------------- working hours


def test_host_working_nine_to_five_offers_every_half_hour():
    assert starts(rules(30), [host()], *day()) == half_hours("09:00", "16:30")


def test_meetings_longer_than_the_interval_are_offered_at_every_step_until_the_last_that_fits():
    offered = starts(rules(duration=60, interval=15), [host()], *day())
    assert offered[:3] == ["09:00", "09:15", "09:30"]
    assert offered[-1] == "16:00"
    assert len(offered) == 29


def test_last_start_is_the_last_grid_step_that_still_ends_by_closing_time():
    offered = starts(rules(duration=60, interval=45), [host()], *day())
    assert offered == ["09:00", "09:45", "10:30", "11:15", "12:00", "12:45", "13:30", "14:15", "15:00", "15:45"]


def test_starts_are_anchored_at_the_start_of_working_hours_not_at_the_requested_range():
    quarter_past = host(weekly=hours("09:15-12:00"))
    assert starts(rules(30), [quarter_past], f"{MONDAY} 10:00", f"{MONDAY} 12:00") == ["10:15", "10:45", "11:15"]


def test_requested_range_includes_its_start_and_excludes_its_end():
    assert starts(rules(30), [host()], f"{MONDAY} 10:00", f"{MONDAY} 11:00") == ["10:00", "10:30"]


def test_slots_are_aware_utc_datetimes():
    (first, *_) = slots(rules(30), [host(zone="Europe/Berlin")], *day())
    assert first.start.utcoffset() == timedelta(0)
    assert first.start == utc(f"{MONDAY} 08:00")


def test_host_with_a_lunch_break_is_not_offered_across_it():
    split = host(weekly=hours("09:00-12:00", "13:00-15:00"))
    assert starts(rules(60), [split], *day()) == ["09:00", "10:00", "11:00", "13:00", "14:00"]


def test_overlapping_and_touching_hours_are_merged_into_one_run_without_duplicates():
    messy = host(weekly=hours("09:00-11:00", "10:00-12:00", "12:00-13:00", "10:15-10:45"))
    assert starts(rules(duration=60, interval=30), [messy], *day()) == half_hours("09:00", "12:00")


def test_a_meeting_may_run_across_two_touching_intervals_of_the_same_day():
    touching = host(weekly=hours("09:00-12:00", "12:00-13:00"))
    assert "11:30" in starts(rules(duration=60, interval=30), [touching], *day())


def test_hours_ending_at_midnight_run_to_the_end_of_the_day():
    late = host(weekly=hours("22:00-24:00"))
    assert starts(rules(30), [late], *day()) == ["22:00", "22:30", "23:00", "23:30"]


def test_a_meeting_never_spans_two_local_dates_even_when_their_hours_touch_at_midnight():
    # Each date's hours form their own grid, so an answer never depends on how far back the
    # range reaches; the price is that a night shift is split at midnight.
    night = host(weekly=hours("23:00-24:00", days=[0]) + hours("00:00-01:00", days=[1]))
    offered = dated_starts(rules(duration=60, interval=30), [night], f"{MONDAY} 00:00", "2026-03-11 00:00")
    assert offered == ["2026-03-09 23:00", "2026-03-10 00:00"]


def test_a_host_without_hours_that_day_is_not_offered():
    weekdays_only = host(weekly=hours("09:00-17:00", days=range(5)))
    assert starts(rules(30), [weekdays_only], *day("2026-03-14")) == []


# --------------------------------------------------------------------------- date overrides


def test_date_override_replaces_the_weekly_hours_on_that_date_only():
    short_monday = host(overrides={MONDAY: ["10:00-11:00", "15:00-16:00"]})
    assert starts(rules(30), [short_monday], *day()) == ["10:00", "10:30", "15:00", "15:30"]
    assert starts(rules(30), [short_monday], *day("2026-03-10")) == half_hours("09:00", "16:30")


def test_empty_date_override_is_a_day_off():
    assert starts(rules(30), [host(overrides={MONDAY: []})], *day()) == []


def test_date_override_opens_a_day_without_weekly_hours():
    weekdays_only = host(weekly=hours("09:00-17:00", days=range(5)), overrides={"2026-03-14": ["10:00-11:00"]})
    assert starts(rules(30), [weekdays_only], *day("2026-03-14")) == ["10:00", "10:30"]


def test_date_override_applies_to_the_hosts_local_date():
    # Monday 08:00-09:00 in Tokyo is Sunday 23:00-24:00 UTC.
    tokyo = host(zone="Asia/Tokyo", overrides={MONDAY: ["08:00-09:00"]}, weekly=())
    assert starts(rules(30), [tokyo], *day("2026-03-08")) == ["23:00", "23:30"]


# --------------------------------------------------------------------------- time zones


def test_host_in_kolkata_offers_half_hour_aligned_slots_in_utc():
    kolkata = host(zone="Asia/Kolkata", weekly=hours("09:00-11:00"))
    assert starts(rules(60), [kolkata], *day()) == ["03:30", "04:30"]


def test_host_in_adelaide_offers_half_hour_aligned_slots_in_utc_during_daylight_saving():
    # March: Adelaide is on ACDT, UTC+10:30, so Monday 09:00 is Sunday 22:30 UTC.
    adelaide = host(zone="Australia/Adelaide", weekly=hours("09:00-11:00"))
    assert starts(rules(60), [adelaide], *day("2026-03-08")) == ["22:30", "23:30"]


def test_new_york_host_keeps_wall_clock_hours_across_spring_forward():
    new_york = host(zone="America/New_York", weekly=hours("09:00-10:00"))
    before, after = "2026-03-06", MONDAY  # Friday on EST (UTC-5), Monday on EDT (UTC-4)
    assert starts(rules(30), [new_york], *day(before)) == ["14:00", "14:30"]
    assert starts(rules(30), [new_york], *day(after)) == ["13:00", "13:30"]


def test_new_york_night_shift_over_spring_forward_skips_the_missing_hour():
    night = host(zone="America/New_York", weekly=hours("00:00-06:00", days=[SUNDAY]))
    offered = slots(rules(30), [night], *day("2026-03-08"))
    assert wall_clock(offered, "America/New_York") == [
        "00:00 EST", "00:30 EST", "01:00 EST", "01:30 EST",
        "03:00 EDT", "03:30 EDT", "04:00 EDT", "04:30 EDT", "05:00 EDT", "05:30 EDT",
    ]  # fmt: skip


def test_new_york_night_shift_over_fall_back_offers_the_repeated_hour_twice():
    night = host(zone="America/New_York", weekly=hours("00:00-04:00", days=[SUNDAY]))
    offered = slots(rules(30), [night], *day("2026-11-01"))
    assert wall_clock(offered, "America/New_York") == [
        "00:00 EDT", "00:30 EDT", "01:00 EDT", "01:30 EDT",
        "01:00 EST", "01:30 EST", "02:00 EST", "02:30 EST", "03:00 EST", "03:30 EST",
    ]  # fmt: skip
    assert utc_times(offered) == half_hours("04:00", "08:30")


def test_berlin_early_shift_over_spring_forward_skips_the_missing_hour():
    early = host(zone="Europe/Berlin", weekly=hours("01:00-04:00", days=[SUNDAY]))
    offered = slots(rules(30), [early], "2026-03-28 12:00", "2026-03-29 12:00")
    assert wall_clock(offered, "Europe/Berlin") == ["01:00 CET", "01:30 CET", "03:00 CEST", "03:30 CEST"]
    assert utc_times(offered) == ["00:00", "00:30", "01:00", "01:30"]


def test_berlin_early_shift_over_fall_back_offers_the_repeated_hour_twice():
    early = host(zone="Europe/Berlin", weekly=hours("01:00-04:00", days=[SUNDAY]))
    offered = slots(rules(30), [early], "2026-10-24 12:00", "2026-10-25 12:00")
    assert utc_times(offered, "%d %H:%M") == [
        "24 23:00", "24 23:30", "25 00:00", "25 00:30", "25 01:00", "25 01:30", "25 02:00", "25 02:30",
    ]  # fmt: skip
    assert wall_clock(offered, "Europe/Berlin") == [
        "01:00 CEST", "01:30 CEST", "02:00 CEST", "02:30 CEST", "02:00 CET", "02:30 CET", "03:00 CET", "03:30 CET",
    ]  # fmt: skip


def test_adelaide_early_shift_over_fall_back_offers_the_repeated_half_hour_offsets():
    # 2026-04-05 03:00 ACDT (UTC+10:30) becomes 02:00 ACST (UTC+9:30).
    early = host(zone="Australia/Adelaide", weekly=hours("01:00-04:00", days=[SUNDAY]))
    offered = slots(rules(30), [early], "2026-04-04 00:00", "2026-04-05 00:00")
    assert utc_times(offered) == half_hours("14:30", "18:00")
    assert wall_clock(offered, "Australia/Adelaide") == [
        "01:00 ACDT", "01:30 ACDT", "02:00 ACDT", "02:30 ACDT",
        "02:00 ACST", "02:30 ACST", "03:00 ACST", "03:30 ACST",
    ]  # fmt: skip


def test_adelaide_early_shift_over_spring_forward_skips_the_missing_hour():
    # 2026-10-04 02:00 ACST (UTC+9:30) becomes 03:00 ACDT (UTC+10:30).
    early = host(zone="Australia/Adelaide", weekly=hours("01:00-04:00", days=[SUNDAY]))
    offered = slots(rules(30), [early], "2026-10-03 00:00", "2026-10-04 00:00")
    assert utc_times(offered) == half_hours("15:30", "17:00")
    assert wall_clock(offered, "Australia/Adelaide") == [
        "01:00 ACST", "01:30 ACST", "03:00 ACDT", "03:30 ACDT",
    ]  # fmt: skip


def test_hours_starting_inside_the_spring_forward_gap_begin_right_after_it():
    # 02:30 does not exist on 2026-03-08 in New York; fold=0 reads it with the old offset,
    # 07:30 UTC, which is 03:30 EDT.
    odd = host(zone="America/New_York", weekly=hours("02:30-05:00", days=[SUNDAY]))
    offered = slots(rules(30), [odd], *day("2026-03-08"))
    assert wall_clock(offered, "America/New_York") == ["03:30 EDT", "04:00 EDT", "04:30 EDT"]


def test_hours_that_vanish_in_the_spring_forward_gap_offer_nothing():
    # 02:30 (fold=0) is 07:30 UTC but 03:00 EDT is 07:00 UTC: the interval is empty.
    vanished = host(zone="America/New_York", weekly=hours("02:30-03:00", days=[SUNDAY]))
    assert starts(rules(15), [vanished], *day("2026-03-08")) == []


def test_hours_starting_in_the_repeated_hour_start_at_its_first_occurrence():
    odd = host(zone="America/New_York", weekly=hours("01:30-03:00", days=[SUNDAY]))
    offered = slots(rules(30), [odd], *day("2026-11-01"))
    assert wall_clock(offered, "America/New_York") == ["01:30 EDT", "01:00 EST", "01:30 EST", "02:00 EST", "02:30 EST"]


def test_hosts_in_different_zones_are_merged_by_instant():
    berlin = host(1, "Europe/Berlin", hours("09:00-10:00"))  # 08:00-09:00 UTC in March
    london = host(2, "Europe/London", hours("08:00-09:00"))  # 08:00-09:00 UTC in March
    offered = slots(rules(30), [berlin, london], *day())
    assert [(slot.start.strftime("%H:%M"), slot.host_ids) for slot in offered] == [
        ("08:00", (1, 2)),
        ("08:30", (1, 2)),
    ]


# --------------------------------------------------------------------------- busy time and buffers


def test_existing_booking_blocks_the_starts_that_would_overlap_it():
    booked = host(busy=[(f"{MONDAY} 10:00", f"{MONDAY} 11:00")])
    assert starts(rules(30), [booked], f"{MONDAY} 09:00", f"{MONDAY} 12:00") == ["09:00", "09:30", "11:00", "11:30"]


def test_busy_time_that_only_partly_covers_a_slot_still_blocks_it():
    booked = host(busy=[(f"{MONDAY} 10:10", f"{MONDAY} 10:20")])
    assert starts(rules(30), [booked], f"{MONDAY} 09:00", f"{MONDAY} 11:00") == ["09:00", "09:30", "10:30"]


def test_buffer_after_keeps_the_new_meeting_clear_of_the_next_booking():
    booked = host(busy=[(f"{MONDAY} 10:00", f"{MONDAY} 11:00")])
    offered = starts(rules(30, buffer_after=15), [booked], f"{MONDAY} 09:00", f"{MONDAY} 12:00")
    assert offered == ["09:00", "11:00", "11:30"]


def test_buffer_before_keeps_the_new_meeting_clear_of_the_previous_booking():
    booked = host(busy=[(f"{MONDAY} 10:00", f"{MONDAY} 11:00")])
    offered = starts(rules(30, buffer_before=15), [booked], f"{MONDAY} 09:00", f"{MONDAY} 12:00")
    assert offered == ["09:00", "09:30", "11:30"]


def test_buffers_may_reach_outside_working_hours():
    offered = starts(rules(30, buffer_before=60, buffer_after=60), [host()], *day())
    assert offered == half_hours("09:00", "16:30")


def test_buffers_may_not_reach_into_busy_time_outside_working_hours():
    early_call = host(busy=[(f"{MONDAY} 08:00", f"{MONDAY} 09:00")], weekly=hours("09:00-11:00"))
    assert starts(rules(30, buffer_before=15), [early_call], *day()) == ["09:30", "10:00", "10:30"]


def test_busy_time_given_in_another_zone_is_compared_by_instant():
    berlin = ZoneInfo("Europe/Berlin")
    booked = HostAvailability(
        1,
        "UTC",
        hours("09:00-12:00"),
        busy=((datetime(2026, 3, 9, 11, 0, tzinfo=berlin), datetime(2026, 3, 9, 12, 0, tzinfo=berlin)),),
    )
    assert starts(rules(30), [booked], *day()) == ["09:00", "09:30", "11:00", "11:30"]


def test_zero_length_busy_interval_blocks_nothing():
    odd = host(busy=[(f"{MONDAY} 10:00", f"{MONDAY} 10:00")], weekly=hours("09:00-11:00"))
    assert starts(rules(30, buffer_before=30, buffer_after=30), [odd], *day()) == half_hours("09:00", "10:30")


# --------------------------------------------------------------------------- notice and booking window


def test_minimum_notice_hides_starts_that_come_too_soon():
    offered = starts(rules(30, minimum_notice=120), [host()], *day(), now=f"{MONDAY} 09:10")
    assert offered[0] == "11:30"


def test_a_start_exactly_at_the_minimum_notice_is_still_offered():
    offered = starts(rules(30, minimum_notice=60), [host()], *day(), now=f"{MONDAY} 09:00")
    assert offered[0] == "10:00"


def test_past_starts_are_never_offered():
    offered = starts(rules(30), [host()], *day(), now=f"{MONDAY} 12:00")
    assert offered == half_hours("12:00", "16:30")


def test_booking_window_is_rolling_and_includes_its_last_instant():
    window = rules(30, booking_window=timedelta(days=2))
    offered = dated_starts(window, [host()], f"{MONDAY} 00:00", "2026-03-16 00:00", now=f"{MONDAY} 09:00")
    assert offered[-2:] == ["2026-03-10 16:30", "2026-03-11 09:00"]
    assert offered[0] == "2026-03-09 09:00"


# --------------------------------------------------------------------------- daily limit


def test_daily_limit_closes_the_day_once_reached():
    busy_monday = host(booked=[f"{MONDAY} 09:00", f"{MONDAY} 15:00"])
    assert starts(rules(30, daily_limit=2), [busy_monday], *day()) == []
    assert len(starts(rules(30, daily_limit=2), [busy_monday], *day("2026-03-10"))) == 16


def test_daily_limit_not_yet_reached_keeps_the_day_open():
    one_booking = host(booked=[f"{MONDAY} 09:00"])
    assert len(starts(rules(30, daily_limit=2), [one_booking], *day())) == 16


def test_daily_limit_counts_bookings_by_the_hosts_local_date():
    # 2026-03-10 02:00 UTC is still Monday 22:00 in New York: Monday is full, Tuesday is not.
    new_york = host(zone="America/New_York", booked=["2026-03-10 02:00"])
    limited = rules(60, daily_limit=1)
    assert starts(limited, [new_york], *day()) == []
    assert starts(limited, [new_york], *day("2026-03-10"))[:2] == ["13:00", "14:00"]


def test_daily_limit_of_one_host_leaves_the_others_bookable():
    full, free = host(1, booked=[f"{MONDAY} 09:00"]), host(2)
    offered = slots(rules(60, daily_limit=1), [full, free], *day())
    assert {slot.host_ids for slot in offered} == {(2,)}
    assert len(offered) == 8


# --------------------------------------------------------------------------- several hosts


def test_round_robin_offers_a_start_when_any_host_is_free_and_lists_them_in_id_order():
    morning = host(3, weekly=hours("09:00-10:00"))
    all_day = host(1, weekly=hours("09:00-11:00"))
    late = host(2, weekly=hours("09:30-11:00"))
    offered = slots(rules(30), [morning, all_day, late], *day())
    assert [(slot.start.strftime("%H:%M"), slot.host_ids) for slot in offered] == [
        ("09:00", (1, 3)),
        ("09:30", (1, 2, 3)),
        ("10:00", (1, 2)),
        ("10:30", (1, 2)),
    ]


def test_collective_meeting_needs_every_host_free():
    first = host(1, weekly=hours("09:00-12:00"), busy=[(f"{MONDAY} 09:00", f"{MONDAY} 10:00")])
    second = host(2, weekly=hours("09:00-12:00"), busy=[(f"{MONDAY} 11:00", f"{MONDAY} 11:30")])
    offered = slots(rules(30, collective=True), [second, first], *day())
    assert [(slot.start.strftime("%H:%M"), slot.host_ids) for slot in offered] == [
        ("10:00", (1, 2)),
        ("10:30", (1, 2)),
        ("11:30", (1, 2)),
    ]


def test_collective_meeting_across_zones_is_offered_where_the_working_days_overlap():
    berlin = host(1, "Europe/Berlin", hours("09:00-17:00"))  # 08:00-16:00 UTC in early March
    new_york = host(2, "America/New_York", hours("09:00-17:00"))  # 14:00-22:00 UTC before 8 March
    assert starts(rules(60, collective=True), [berlin, new_york], *day("2026-03-03")) == ["14:00", "15:00"]


def test_collective_meeting_is_not_offered_when_the_hosts_grids_never_meet():
    kolkata = host(1, "Asia/Kolkata", hours("09:00-17:00"))  # starts on the half hour UTC
    utc_host = host(2, "UTC", hours("00:00-24:00"))  # starts on the hour
    assert starts(rules(60, collective=True), [kolkata, utc_host], *day()) == []


def test_no_hosts_means_no_slots():
    assert slots(rules(30), [], *day()) == []
    assert slots(rules(30, collective=True), [], *day()) == []
    assert is_bookable(rules(30), [], slot_start=utc(f"{MONDAY} 09:00"), now=utc(LONG_AGO)) == ()


# --------------------------------------------------------------------------- booking a slot


def test_is_bookable_names_the_hosts_free_at_an_offered_start():
    hosts = [host(1), host(2, busy=[(f"{MONDAY} 10:00", f"{MONDAY} 11:00")])]
    check = rules(30)
    assert is_bookable(check, hosts, slot_start=utc(f"{MONDAY} 10:00"), now=utc(LONG_AGO)) == (1,)
    assert is_bookable(check, hosts, slot_start=utc(f"{MONDAY} 11:00"), now=utc(LONG_AGO)) == (1, 2)


def test_is_bookable_refuses_a_start_off_the_grid_or_outside_hours():
    check = rules(30)
    assert is_bookable(check, [host()], slot_start=utc(f"{MONDAY} 10:15"), now=utc(LONG_AGO)) == ()
    assert is_bookable(check, [host()], slot_start=utc(f"{MONDAY} 16:45"), now=utc(LONG_AGO)) == ()
    assert is_bookable(check, [host()], slot_start=utc(f"{MONDAY} 08:30"), now=utc(LONG_AGO)) == ()


def test_is_bookable_refuses_a_start_in_the_past():
    check = rules(30)
    assert is_bookable(check, [host()], slot_start=utc(f"{MONDAY} 10:00"), now=utc(f"{MONDAY} 10:01")) == ()


def test_a_start_is_no_longer_bookable_once_someone_took_it():
    check = rules(30, buffer_before=10, buffer_after=10)
    start = utc(f"{MONDAY} 10:00")
    assert is_bookable(check, [host()], slot_start=start, now=utc(LONG_AGO)) == (1,)

    saved = occupied_range(start, check)  # 09:50-10:40, what the new booking now blocks
    taken = HostAvailability(1, "UTC", hours("09:00-17:00"), busy=(saved,))
    assert is_bookable(check, [taken], slot_start=start, now=utc(LONG_AGO)) == ()
    assert is_bookable(check, [taken], slot_start=utc(f"{MONDAY} 09:30"), now=utc(LONG_AGO)) == ()
    assert is_bookable(check, [taken], slot_start=utc(f"{MONDAY} 10:30"), now=utc(LONG_AGO)) == ()
    # 09:00 plus its buffer ends at 09:40 and 11:00 minus its buffer begins at 10:50: both clear.
    assert is_bookable(check, [taken], slot_start=utc(f"{MONDAY} 09:00"), now=utc(LONG_AGO)) == (1,)
    assert is_bookable(check, [taken], slot_start=utc(f"{MONDAY} 11:00"), now=utc(LONG_AGO)) == (1,)


def test_is_bookable_accepts_the_start_in_any_zone():
    berlin_wall_clock = datetime(2026, 3, 9, 11, 0, tzinfo=ZoneInfo("Europe/Berlin"))  # 10:00 UTC
    assert is_bookable(rules(30), [host()], slot_start=berlin_wall_clock, now=utc(LONG_AGO)) == (1,)


def test_occupied_range_adds_both_buffers():
    assert occupied_range(utc(f"{MONDAY} 10:00"), rules(30, buffer_before=10, buffer_after=5)) == (
        utc(f"{MONDAY} 09:50"),
        utc(f"{MONDAY} 10:35"),
    )


def test_occupied_range_measures_real_time_across_a_dst_change():
    # 01:30 CET + 60 minutes is 03:30 CEST (02:30 UTC), not the wall-clock 02:30.
    start = datetime(2026, 3, 29, 1, 30, tzinfo=ZoneInfo("Europe/Berlin"))
    assert occupied_range(start, rules(60)) == (utc("2026-03-29 00:30"), utc("2026-03-29 01:30"))


# --------------------------------------------------------------------------- invalid input

NAIVE = datetime(2026, 3, 9, 9, 0)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        pytest.param(lambda: rules(0), "duration must be positive", id="zero duration"),
        pytest.param(lambda: rules(30, interval=0), "interval must be positive", id="zero step"),
        pytest.param(lambda: rules(30, interval=-5), "interval must be positive", id="negative step"),
        pytest.param(lambda: rules(30, buffer_before=-5), "buffer_before must not be negative", id="negative buffer"),
        pytest.param(lambda: rules(30, daily_limit=0), "daily_limit must be at least 1", id="daily limit of zero"),
        pytest.param(lambda: host(zone="Mars/Olympus_Mons"), "unknown time zone 'Mars/Olympus_Mons'", id="bad zone"),
        pytest.param(lambda: host(zone="America"), "unknown time zone 'America'", id="zone directory"),
        pytest.param(lambda: WorkingInterval(0, time(17), time(9)), "must be after start", id="hours backwards"),
        pytest.param(lambda: WorkingInterval(7, time(9), time(17)), "weekday must be 0", id="weekday 7"),
        pytest.param(lambda: DateOverride(date(2026, 3, 9), ((time(12), time(11)),)), "must be after start",
                     id="override backwards"),
        pytest.param(lambda: HostAvailability(1, "UTC", (), (DateOverride(date(2026, 3, 9), ()),) * 2),
                     "more than one override", id="two overrides for one date"),
        pytest.param(lambda: HostAvailability(1, "UTC", (), busy=((NAIVE, NAIVE + timedelta(hours=1)),)),
                     "busy interval bounds must be timezone-aware", id="naive busy time"),
        pytest.param(lambda: host(busy=[(f"{MONDAY} 11:00", f"{MONDAY} 10:00")]), "ends before it starts",
                     id="busy time backwards"),
        pytest.param(lambda: HostAvailability(1, "UTC", (), booked_starts=(NAIVE,)),
                     "booked_starts must be timezone-aware", id="naive booked start"),
        pytest.param(lambda: HostAvailability(1, "UTC", (), booked_starts=("2026-03-09 09:00",)),
                     "booked_starts must be timezone-aware", id="booked start as text"),
    ],
)  # fmt: skip
def test_invalid_definitions_are_rejected_with_a_clear_message(make, message):
    with pytest.raises(ValueError, match=message):
        make()


@pytest.mark.parametrize(
    ("hosts", "query", "message"),
    [
        pytest.param([host()], {"start": NAIVE}, "start must be a timezone-aware datetime", id="naive start"),
        pytest.param([host()], {"end": NAIVE}, "end must be a timezone-aware datetime", id="naive end"),
        pytest.param([host()], {"now": NAIVE}, "now must be a timezone-aware datetime", id="naive now"),
        pytest.param([host(1), host(1)], {}, "duplicate host ids", id="duplicate host ids"),
    ],
)
def test_invalid_queries_are_rejected_with_a_clear_message(hosts, query, message):
    query = {"start": utc(f"{MONDAY} 00:00"), "end": utc("2026-03-10 00:00"), "now": utc(LONG_AGO)} | query
    with pytest.raises(ValueError, match=message):
        available_slots(rules(30), hosts, **query)


def test_naive_start_is_rejected_when_checking_or_saving_a_booking():
    with pytest.raises(ValueError, match="slot_start must be a timezone-aware datetime"):
        is_bookable(rules(30), [host()], slot_start=NAIVE, now=utc(LONG_AGO))
    with pytest.raises(ValueError, match="slot_start must be a timezone-aware datetime"):
        occupied_range(NAIVE, rules(30))


# --------------------------------------------------------------------------- properties
#
# Random hosts around the 2026 DST changes of every zone below. Working-hour boundaries sit
# on a quarter-hour grid outside 01:00-03:00 local, where wall-clock times can be ambiguous
# or missing (those are pinned down by the examples above), so that "inside working hours"
# can be checked independently by reading each slot back on the host's wall clock.

ZONES = ["UTC", "Asia/Kolkata", "America/New_York", "Europe/Berlin", "Australia/Adelaide"]
AROUND = [date(2026, m, d) for m, d in [(3, 8), (3, 29), (4, 5), (6, 15), (10, 4), (10, 25), (11, 1)]]
# Listed from 08:00 on: hypothesis shrinks towards the first choice, and an ordinary day should be the simple case.
BOUNDARY_MINUTES = [m for m in [*range(480, 24 * 60, 15), *range(0, 480, 15)] if not 60 <= m < 180]
STEP = timedelta(minutes=5)  # every boundary and every generated instant is a multiple of this
PROPERTY = settings(max_examples=100, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])


def as_time(minutes: int) -> time:
    return time(minutes // 60 % 24, minutes % 60)


@st.composite
def wall_spans(draw) -> tuple[time, time]:
    start = draw(st.sampled_from(BOUNDARY_MINUTES))
    end = min(start + draw(st.sampled_from([480, 240, 720, 24 * 60, 120, 60, 45, 15])), 24 * 60)
    if 60 <= end < 180:
        end = 180
    return as_time(start), as_time(end)  # 24:00 becomes time(0), midnight at the end of the day


@st.composite
def scenarios(draw, max_hosts: int = 3):
    """(rules, hosts, start, end, now) for a 1-2 day range near a DST change."""
    anchor = datetime.combine(draw(st.sampled_from(AROUND)), time(0), UTC)
    start = anchor + draw(st.integers(-24, 24)) * timedelta(hours=1)
    end = start + draw(st.integers(6, 48)) * timedelta(hours=1)
    now = start - draw(st.integers(-6, 48)) * timedelta(hours=1)
    # Team-wide zone and hours (when drawn) let collective grids meet often enough to be tested.
    shared_zone = draw(st.sampled_from([*ZONES, None]))
    shared_spans = draw(st.one_of(st.lists(wall_spans(), min_size=1, max_size=2), st.none()))

    def instant() -> datetime:
        return start + draw(st.integers(-12 * 12, (end - start) // STEP + 12 * 12)) * STEP

    hosts = []
    for host_id in draw(st.sets(st.integers(1, 9), min_size=1, max_size=max_hosts)):
        working_days = set(range(7)) - draw(st.sets(st.integers(0, 6), max_size=4))
        spans = shared_spans or draw(st.lists(wall_spans(), min_size=1, max_size=3))
        weekly = tuple(WorkingInterval(weekday, *one) for weekday in sorted(working_days) for one in spans)
        override_days = draw(st.sets(st.integers(-1, 2), max_size=2))
        overrides = tuple(
            DateOverride(start.date() + timedelta(days=n), tuple(draw(st.lists(wall_spans(), max_size=2))))
            for n in override_days
        )
        busy = []
        for _ in range(draw(st.integers(0, 12))):
            begin = instant()
            busy.append((begin, begin + draw(st.integers(1, 48)) * STEP))
        booked = tuple(instant() for _ in range(draw(st.integers(0, 4))))
        zone = shared_zone or draw(st.sampled_from(ZONES))
        hosts.append(HostAvailability(host_id, zone, weekly, overrides, tuple(busy), booked))

    def minutes(*choices: int) -> timedelta:
        return timedelta(minutes=draw(st.sampled_from(choices)))

    slot_rules = SlotRules(
        duration=minutes(30, 60, 15, 45, 20, 90, 120, 5),
        interval=minutes(15, 30, 60, 10, 20, 45),
        buffer_before=minutes(0, 0, 5, 10, 15, 30),
        buffer_after=minutes(0, 0, 5, 10, 15, 30),
        minimum_notice=minutes(0, 0, 0, 30, 240),
        booking_window=draw(st.sampled_from([None, None, timedelta(days=2), timedelta(days=2, hours=18)])),
        daily_limit=draw(st.sampled_from([None, None, 1, 2])),
        collective=draw(st.booleans()),
    )
    return slot_rules, hosts, start, end, now


def by_id(hosts: Sequence[HostAvailability]) -> dict[int, HostAvailability]:
    return {one.host_id: one for one in hosts}


def spans_on(one: HostAvailability, local_date: date) -> list[tuple[time, time]]:
    for override in one.overrides:
        if override.date == local_date:
            return list(override.intervals)
    return [(w.start, w.end) for w in one.weekly if w.weekday == local_date.weekday()]


def within_working_hours(one: HostAvailability, start: datetime, duration: timedelta) -> bool:
    """Every 5-minute step of [start, start + duration), read on the host's wall clock, falls in
    that local date's hours; boundaries being multiples of 5 minutes, that covers every instant."""
    zone = ZoneInfo(one.time_zone)
    local_date = start.astimezone(zone).date()
    steps = duration // STEP
    for n in range(steps):
        local = (start + n * STEP).astimezone(zone)
        if local.date() != local_date:
            return False
        wall = local.time().replace(tzinfo=None)
        if not any(begin <= wall and (end == time(0) or wall < end) for begin, end in spans_on(one, local_date)):
            return False
    return True


def overlaps(first: tuple[datetime, datetime], second: tuple[datetime, datetime]) -> bool:
    return first[0] < second[1] and second[0] < first[1]


def reference_slots(
    slot_rules: SlotRules, hosts: Sequence[HostAvailability], start: datetime, end: datetime, now: datetime
) -> list[Slot]:
    """The rules restated as naively as possible: every grid step of every working interval,
    converted with aware datetimes (fold=0), checked one by one against everything."""
    free = {one.host_id: set(reference_starts(slot_rules, one, start, end, now)) for one in hosts}
    if slot_rules.collective:
        common = set.intersection(*free.values()) if free else set()
        return [Slot(moment, tuple(sorted(free))) for moment in sorted(common)]
    union = set().union(*free.values())
    return [Slot(moment, tuple(sorted(h for h in free if moment in free[h]))) for moment in sorted(union)]


def reference_starts(slot_rules: SlotRules, one: HostAvailability, start: datetime, end: datetime, now: datetime):
    zone = ZoneInfo(one.time_zone)
    first_date = start.astimezone(zone).date() - timedelta(days=2)
    for local_date in (first_date + timedelta(days=n) for n in range((end - start).days + 5)):
        intervals = []
        for begin, finish in spans_on(one, local_date):
            finish_date = local_date + timedelta(days=1) if finish == time(0) else local_date
            intervals.append(
                (
                    datetime.combine(local_date, begin, zone).astimezone(UTC),
                    datetime.combine(finish_date, finish, zone).astimezone(UTC),
                )
            )
        for begin, finish in merged(intervals):
            moment = begin
            while moment + slot_rules.duration <= finish:
                if reference_allows(slot_rules, one, moment, start, end, now):
                    yield moment
                moment += slot_rules.interval


def merged(intervals: list[tuple[datetime, datetime]]) -> list[tuple[datetime, datetime]]:
    result: list[tuple[datetime, datetime]] = []
    for begin, finish in sorted(interval for interval in intervals if interval[0] < interval[1]):
        if result and begin <= result[-1][1]:
            result[-1] = (result[-1][0], max(result[-1][1], finish))
        else:
            result.append((begin, finish))
    return result


def reference_allows(
    slot_rules: SlotRules, one: HostAvailability, moment: datetime, start: datetime, end: datetime, now: datetime
) -> bool:
    occupied = (moment - slot_rules.buffer_before, moment + slot_rules.duration + slot_rules.buffer_after)
    return (
        start <= moment < end
        and moment >= now + slot_rules.minimum_notice
        and (slot_rules.booking_window is None or moment <= now + slot_rules.booking_window)
        and not any(overlaps(occupied, busy) for busy in one.busy)
        and (slot_rules.daily_limit is None or bookings_on_same_local_date(one, moment) < slot_rules.daily_limit)
    )


def bookings_on_same_local_date(one: HostAvailability, moment: datetime) -> int:
    zone = ZoneInfo(one.time_zone)
    return sum(booked.astimezone(zone).date() == moment.astimezone(zone).date() for booked in one.booked_starts)


@PROPERTY
@given(scenarios())
def test_property_no_offered_slot_runs_into_its_hosts_busy_time(scenario):
    slot_rules, hosts, start, end, now = scenario
    hosts_by_id = by_id(hosts)
    for slot in available_slots(slot_rules, hosts, start=start, end=end, now=now):
        occupied = occupied_range(slot.start, slot_rules)
        for host_id in slot.host_ids:
            assert not any(overlaps(occupied, busy) for busy in hosts_by_id[host_id].busy), (slot, host_id)


@PROPERTY
@given(scenarios())
def test_property_every_offered_slot_lies_in_its_hosts_wall_clock_hours_and_limits(scenario):
    slot_rules, hosts, start, end, now = scenario
    hosts_by_id = by_id(hosts)
    for slot in available_slots(slot_rules, hosts, start=start, end=end, now=now):
        assert start <= slot.start < end
        assert slot.start >= now + slot_rules.minimum_notice
        assert slot_rules.booking_window is None or slot.start <= now + slot_rules.booking_window
        for host_id in slot.host_ids:
            one = hosts_by_id[host_id]
            assert within_working_hours(one, slot.start, slot_rules.duration), (slot, host_id)
            if slot_rules.daily_limit is not None:
                assert bookings_on_same_local_date(one, slot.start) < slot_rules.daily_limit


@PROPERTY
@given(scenarios(), st.lists(st.integers(0, 48 * 12), max_size=20))
def test_property_is_bookable_agrees_with_the_offered_slots(scenario, probe_steps):
    slot_rules, hosts, start, end, now = scenario
    offered = {slot.start: slot.host_ids for slot in available_slots(slot_rules, hosts, start=start, end=end, now=now)}
    probes = [start + n * STEP for n in probe_steps if start + n * STEP < end]
    for moment in [*offered, *probes]:
        assert is_bookable(slot_rules, hosts, slot_start=moment, now=now) == offered.get(moment, ()), moment


@PROPERTY
@given(scenarios())
def test_property_slots_are_sorted_unique_utc_with_sorted_host_ids(scenario):
    slot_rules, hosts, start, end, now = scenario
    offered = available_slots(slot_rules, hosts, start=start, end=end, now=now)
    assert all(earlier.start < later.start for earlier, later in zip(offered, offered[1:], strict=False))
    for slot in offered:
        assert slot.start.utcoffset() == timedelta(0)
        assert slot.host_ids and list(slot.host_ids) == sorted(set(slot.host_ids))
        if slot_rules.collective:
            assert slot.host_ids == tuple(sorted(one.host_id for one in hosts))


@PROPERTY
@given(scenarios())
def test_property_team_slots_combine_the_single_host_slots(scenario):
    slot_rules, hosts, start, end, now = scenario
    alone = replace(slot_rules, collective=False)
    single = {
        one.host_id: {slot.start for slot in available_slots(alone, [one], start=start, end=end, now=now)}
        for one in hosts
    }
    together = available_slots(slot_rules, hosts, start=start, end=end, now=now)
    if slot_rules.collective:
        assert [slot.start for slot in together] == sorted(set.intersection(*single.values()))
    else:
        expected = {moment for starts_of_one in single.values() for moment in starts_of_one}
        assert [slot.start for slot in together] == sorted(expected)
        for slot in together:
            assert slot.host_ids == tuple(sorted(h for h, mine in single.items() if slot.start in mine))


@PROPERTY
@given(scenarios())
def test_property_slots_match_a_brute_force_restatement_of_the_rules(scenario):
    slot_rules, hosts, start, end, now = scenario
    assert available_slots(slot_rules, hosts, start=start, end=end, now=now) == reference_slots(
        slot_rules, hosts, start, end, now
    )


@PROPERTY
@given(scenarios(), st.integers(0, 48), st.integers(0, 48))
def test_property_a_narrower_range_returns_exactly_the_slots_inside_it(scenario, trim_start, trim_end):
    slot_rules, hosts, start, end, now = scenario
    everything = available_slots(slot_rules, hosts, start=start, end=end, now=now)
    inner_start, inner_end = start + trim_start * timedelta(minutes=25), end - trim_end * timedelta(minutes=25)
    inner = available_slots(slot_rules, hosts, start=inner_start, end=inner_end, now=now)
    assert inner == [slot for slot in everything if inner_start <= slot.start < inner_end]


@PROPERTY
@given(scenarios())
def test_property_the_calendar_page_offers_exactly_the_starts_of_the_bookable_slots(scenario):
    slot_rules, hosts, start, end, now = scenario
    slots = available_slots(slot_rules, hosts, start=start, end=end, now=now)
    assert available_starts(slot_rules, hosts, start=start, end=end, now=now) == [slot.start for slot in slots]


@PROPERTY
@given(scenarios())
def test_property_busy_time_read_as_epoch_microseconds_gives_the_same_slots(scenario):
    """The database hands busy time over as integers; the answer must not depend on the form."""
    slot_rules, hosts, start, end, now = scenario
    as_integers = [
        replace(
            one,
            busy=tuple((epoch_microseconds(begin), epoch_microseconds(finish)) for begin, finish in one.busy),
            booked_starts=tuple(epoch_microseconds(moment) for moment in one.booked_starts),
        )
        for one in hosts
    ]
    assert available_slots(slot_rules, as_integers, start=start, end=end, now=now) == available_slots(
        slot_rules, hosts, start=start, end=end, now=now
    )


@PROPERTY
@given(scenarios())
def test_property_busy_time_read_as_two_columns_gives_the_same_slots(scenario):
    """The database read hands each host's busy time over as a column of starts and one of ends."""
    slot_rules, hosts, start, end, now = scenario
    as_columns = [
        replace(
            one,
            busy=BusyColumns(
                [epoch_microseconds(begin) for begin, _ in one.busy],
                [epoch_microseconds(finish) for _, finish in one.busy],
            ),
        )
        for one in hosts
    ]
    assert available_slots(slot_rules, as_columns, start=start, end=end, now=now) == available_slots(
        slot_rules, hosts, start=start, end=end, now=now
    )


@PROPERTY
@given(scenarios())
def test_property_the_calendar_page_read_as_numpy_columns_matches_the_brute_force_restatement(scenario):
    """The month page's path: busy time as numpy integer columns (the database read), starts as
    epoch microseconds, hosts sharing one array of candidate starts: the same starts as the rules
    restated naively."""
    slot_rules, hosts, start, end, now = scenario
    as_arrays = [
        replace(
            one,
            busy=BusyColumns(
                np.array([epoch_microseconds(begin) for begin, _ in one.busy], dtype=np.int64),
                np.array([epoch_microseconds(finish) for _, finish in one.busy], dtype=np.int64),
            ),
        )
        for one in hosts
    ]
    expected = [epoch_microseconds(slot.start) for slot in reference_slots(slot_rules, hosts, start, end, now)]
    assert available_start_instants(slot_rules, as_arrays, start=start, end=end, now=now) == expected


@PROPERTY
@given(scenarios(max_hosts=4))
def test_property_hosts_with_the_same_hours_combine_like_the_brute_force_restatement(scenario):
    """A team whose members share one zone and one set of hours (the usual case) shares one
    array of candidate starts in the engine: their busy times must still count host by host."""
    slot_rules, hosts, start, end, now = scenario
    first = hosts[0]
    team = [replace(one, time_zone=first.time_zone, weekly=first.weekly, overrides=first.overrides) for one in hosts]
    expected = [epoch_microseconds(slot.start) for slot in reference_slots(slot_rules, team, start, end, now)]
    assert available_start_instants(slot_rules, team, start=start, end=end, now=now) == expected
    assert available_slots(slot_rules, team, start=start, end=end, now=now) == reference_slots(
        slot_rules, team, start, end, now
    )


def test_busy_columns_of_fractional_numbers_are_refused():
    with pytest.raises(ValueError, match="must be timezone-aware datetimes or epoch microseconds"):
        HostAvailability(1, "UTC", (), busy=BusyColumns(np.array([1.5]), np.array([2.5])))


def test_busy_columns_of_different_lengths_are_refused():
    with pytest.raises(ValueError, match="busy columns differ in length"):
        BusyColumns([1, 2], [3])


def test_busy_columns_backwards_are_refused():
    with pytest.raises(ValueError, match="ends before it starts"):
        HostAvailability(1, "UTC", (), busy=BusyColumns([2_000_000], [1_000_000]))


def test_busy_time_in_neither_form_is_refused():
    with pytest.raises(ValueError, match="timezone-aware datetimes or epoch microseconds"):
        HostAvailability(1, "UTC", (), busy=((1.5, 2.5),))
    with pytest.raises(ValueError, match="timezone-aware datetimes or epoch microseconds"):
        HostAvailability(1, "UTC", (), booked_starts=(True,))
