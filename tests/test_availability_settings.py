"""A member sets their own weekly hours and date overrides; clients see the result in the calendar.

The clock stands at Monday 2026-12-07 06:00 UTC (11:30 in Kolkata, where Maya Member lives).
"""

from datetime import date, time

import pytest
from django.urls import reverse

from meetingtypes.models import MeetingType
from members.models import DateOverride, WorkingHours

from .booking_helpers import (
    make_meeting_type,
    slots,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("frozen_now")]

KOLKATA = "Asia/Kolkata"
FULL_DAY = [f"{h:02d}:{m:02d}" for h in range(9, 17) for m in (0, 30)]  # 09:00 … 16:30
NEXT_MONDAY, NEXT_TUESDAY, NEXT_FRIDAY = "2026-12-14", "2026-12-15", "2026-12-18"


@pytest.fixture
def consultation(member):
    """A one-person meeting type hosted by Maya Member (Asia/Kolkata)."""
    return make_meeting_type(member.organization, [member], assignment=MeetingType.Assignment.ONE_PERSON)


def _week(**days) -> dict:
    """The weekly hours form as the page posts it. monday=[("09:00", "12:00")] ticks Monday's "Available" box
    and fills its time inputs; a day not given is unticked. Each day also sends the blank pair the page offers.
    """
    names = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
    assert set(days) <= set(names), days
    data: dict[str, object] = {}
    for weekday, name in enumerate(names):
        pairs = [*days.get(name, []), ("", "")]
        if name in days:
            data[f"day_{weekday}_available"] = "on"
        data[f"day_{weekday}_start"] = [start for start, _end in pairs]
        data[f"day_{weekday}_end"] = [end for _start, end in pairs]
    return data


def _override(day: str, *intervals, kind: str | None = None) -> dict:
    """The date override form as posted: a day off, or other hours when intervals are given."""
    pairs = [*intervals, ("", "")]
    return {
        "date": day,
        "hours_kind": kind or ("hours" if intervals else "off"),
        "hours_start": [start for start, _end in pairs],
        "hours_end": [end for _start, end in pairs],
    }


def _stored_hours(member) -> list[tuple]:
    return list(
        WorkingHours.objects.filter(member=member).order_by("weekday", "start").values_list("weekday", "start", "end")
    )


def _stored_overrides(member) -> list[tuple]:
    return list(
        DateOverride.objects.filter(member=member).order_by("date", "start").values_list("date", "start", "end")
    )


def _december(client, meeting_type) -> dict:
    return slots(client, meeting_type, tz=KOLKATA, month="2026-12")


def _profile(client) -> str:
    return client.get(reverse("members:profile")).content.decode()


def _time_input(day: int, which: str, number: int, value: str) -> str:
    """The markup of one time input as the page draws it, e.g. Monday's second start."""
    return f'id="id_day_{day}_{which}_{number}" name="day_{day}_{which}" value="{value}"'


WORKDAY = [("09:00", "17:00")]


# ---------------------------------------------------------------- weekly hours


def test_a_member_sets_two_intervals_on_monday_and_clients_see_them(client, login, member, consultation):
    login(member)
    week = _week(
        monday=[("09:00", "12:00"), ("13:00", "17:00")],
        tuesday=WORKDAY,
        wednesday=WORKDAY,
        thursday=WORKDAY,
        friday=WORKDAY,
    )
    response = client.post(reverse("members:weekly_hours"), week)
    assert response.status_code == 302 and response["Location"] == reverse("members:profile")
    assert _stored_hours(member) == [
        (0, time(9), time(12)),
        (0, time(13), time(17)),
        *[(day, time(9), time(17)) for day in range(1, 5)],
    ]

    page = _profile(client)
    assert "Your working hours were saved." in page
    # Monday's two intervals come back in time inputs, each with a name a screen reader can say.
    assert _time_input(0, "start", 1, "09:00") in page and _time_input(0, "end", 1, "12:00") in page
    assert _time_input(0, "start", 2, "13:00") in page and _time_input(0, "end", 2, "17:00") in page
    assert ">Monday, interval 2, start</label>" in page and ">Monday, interval 2, end</label>" in page
    assert 'aria-label="Remove Monday 13:00–17:00"' in page
    assert 'name="day_0_available" value="on" checked' in page
    # Plus one blank pair, so that without JavaScript one more interval can be added per save.
    assert _time_input(0, "start", 3, "") in page

    december = _december(client, consultation)
    assert december[NEXT_MONDAY] == FULL_DAY[:6] + FULL_DAY[8:]  # 12:00–13:00 is free of bookings
    assert december[NEXT_TUESDAY] == FULL_DAY


def test_an_unticked_day_is_unavailable_whatever_times_it_still_carries(client, login, member, consultation):
    login(member)
    week = _week(monday=WORKDAY, wednesday=WORKDAY)
    # Tuesday's box is unticked while its time inputs still hold hours.
    week["day_1_start"], week["day_1_end"] = ["10:00", ""], ["11:00", ""]
    assert client.post(reverse("members:weekly_hours"), week).status_code == 302
    assert _stored_hours(member) == [(0, time(9), time(17)), (2, time(9), time(17))]

    december = _december(client, consultation)
    assert NEXT_TUESDAY not in december
    assert december[NEXT_MONDAY] == FULL_DAY
    assert 'name="day_1_available" value="on" data-available' in _profile(client)  # shown unticked


def test_an_empty_week_means_no_times_at_all(client, login, member, consultation):
    login(member)
    assert client.post(reverse("members:weekly_hours"), _week()).status_code == 302
    assert _stored_hours(member) == []
    assert _december(client, consultation) == {}


def test_an_end_of_midnight_means_the_end_of_the_day(client, login, member, consultation):
    login(member)
    # 00:00 is what a time input sends for midnight; 24:00 is what a member types where it falls back to text.
    week = _week(tuesday=[("00:00", "00:00")], friday=[("20:00", "00:00")], saturday=[("18:00", "24:00")])
    assert client.post(reverse("members:weekly_hours"), week).status_code == 302
    assert _stored_hours(member) == [(1, time(0), time(0)), (4, time(20), time(0)), (5, time(18), time(0))]

    december = _december(client, consultation)
    assert december[NEXT_TUESDAY] == [f"{h:02d}:{m:02d}" for h in range(24) for m in (0, 30)]
    assert december[NEXT_FRIDAY] == ["20:00", "20:30", "21:00", "21:30", "22:00", "22:30", "23:00", "23:30"]
    page = _profile(client)
    assert _time_input(4, "end", 1, "00:00") in page
    assert 'aria-label="Remove Friday 20:00–24:00"' in page


def test_copy_monday_to_all_weekdays_then_save(client, login, member, consultation):
    before = _stored_hours(member)
    login(member)
    week = _week(monday=[("08:00", "12:00"), ("14:00", "18:00")], tuesday=WORKDAY, saturday=[("10:00", "12:00")])
    # Without JavaScript "Copy Monday to all weekdays" posts the form: the page comes back copied, unsaved.
    response = client.post(reverse("members:weekly_hours"), {**week, "copy_monday": "1"})
    assert response.status_code == 200
    page = response.content.decode()
    assert "Monday’s hours were copied to Tuesday–Friday. Save to keep them." in page
    assert _stored_hours(member) == before
    for weekday in (1, 2, 3, 4):
        assert f'name="day_{weekday}_available" value="on" checked' in page
        assert _time_input(weekday, "start", 1, "08:00") in page and _time_input(weekday, "end", 2, "18:00") in page
    # The weekend keeps its own hours.
    assert _time_input(5, "start", 1, "10:00") in page and _time_input(5, "end", 1, "12:00") in page
    assert 'name="day_6_available" value="on" data-available' in page

    # The member presses "Save working hours" on that page.
    shown = response.context["hours_form"].data.copy()
    shown.pop("copy_monday")
    assert client.post(reverse("members:weekly_hours"), dict(shown.lists())).status_code == 302
    monday = [(time(8), time(12)), (time(14), time(18))]
    assert _stored_hours(member) == [
        *[(day, start, end) for day in range(5) for start, end in monday],
        (5, time(10), time(12)),
    ]
    morning = ["08:00", "08:30", "09:00", "09:30", "10:00", "10:30", "11:00", "11:30"]
    afternoon = ["14:00", "14:30", "15:00", "15:30", "16:00", "16:30", "17:00", "17:30"]
    assert _december(client, consultation)[NEXT_FRIDAY] == morning + afternoon


def test_copying_a_monday_with_mistakes_copies_nothing(client, login, member):
    before = _stored_hours(member)
    login(member)
    week = _week(monday=[("12:00", "09:00")], tuesday=[("10:00", "11:00")])
    response = client.post(reverse("members:weekly_hours"), {**week, "copy_monday": "1"})
    assert response.status_code == 200
    page = response.content.decode()
    assert "Interval 1: the end must be after the start" in page
    assert 'role="status" data-hours-status></p>' in page  # no "copied" notice
    assert _time_input(1, "start", 1, "10:00") in page
    assert _stored_hours(member) == before


def _assert_refused(response, member, before, offered, client, consultation, message):
    assert response.status_code == 200
    form = response.context["hours_form"]
    assert list(form.errors) == ["day_2"], form.errors  # only Wednesday is marked, Monday was fine
    assert message in " ".join(form.errors["day_2"])
    page = response.content.decode()
    assert "Nothing was saved. Please correct the days marked below." in page
    assert 'id="day_2-errors"' in page and 'aria-describedby="day_2-errors"' in page
    assert "Your working hours were saved." not in page
    assert _stored_hours(member) == before
    assert _december(client, consultation) == offered


@pytest.mark.parametrize(
    ("wednesday", "message"),
    [
        ([("09:00", "12:00"), ("11:00", "13:00")], "09:00–12:00 and 11:00–13:00 overlap."),
        ([("13:00", "17:00"), ("09:00", "13:30")], "09:00–13:30 and 13:00–17:00 overlap."),
        ([("20:00", "00:00"), ("21:00", "22:00")], "20:00–24:00 and 21:00–22:00 overlap."),
        ([("09:00", "12:00"), ("09:00", "12:00")], "09:00–12:00 and 09:00–12:00 overlap."),
        ([("17:00", "09:00")], "Interval 1: the end must be after the start (an end of 00:00 means midnight)."),
        ([("09:00", "10:00"), ("11:00", "11:00")], "Interval 2: the end must be after the start"),
        ([("09:00", "")], "Interval 1: enter both a start and an end."),
        ([("", "17:00")], "Interval 1: enter both a start and an end."),
        ([], "Add at least one interval, or untick “Available”."),
        ([(f"{h:02d}:00", f"{h:02d}:30") for h in range(8, 17)], "At most 8 intervals a day."),
    ],
)
def test_mistakes_in_a_day_are_shown_on_that_day_and_nothing_is_saved(
    client, login, member, consultation, wednesday, message
):
    before, offered = _stored_hours(member), _december(client, consultation)
    login(member)
    response = client.post(reverse("members:weekly_hours"), _week(monday=[("10:00", "11:00")], wednesday=wednesday))
    _assert_refused(response, member, before, offered, client, consultation, message)


@pytest.mark.parametrize(
    ("starts", "ends", "message"),
    [
        (["nine"], ["17:00"], "Interval 1: the start is not a time like 09:00."),
        (["<script>alert(1)</script>"], ["17:00"], "Interval 1: the start is not a time like 09:00."),
        (["09:00"], ["25:00"], "Interval 1: the end is not a time like 17:00."),
        (["09:60"], ["17:00"], "Interval 1: the start is not a time like 09:00."),
        (["24:00"], ["00:00"], "Interval 1: the start is not a time like 09:00."),  # 24:00 only ends a day
        (["09:00:30"], ["17:00"], "Interval 1: the start is not a time like 09:00."),
        (["09:00", "10:00"], ["17:00"], "These times could not be read. Please enter them again."),
        (["09:00"] * 60, ["17:00"] * 60, "These times could not be read. Please enter them again."),
    ],
)
def test_tampered_times_are_refused_and_nothing_is_saved(client, login, member, consultation, starts, ends, message):
    before, offered = _stored_hours(member), _december(client, consultation)
    login(member)
    week = _week(monday=[("10:00", "11:00")], wednesday=[])
    week["day_2_start"], week["day_2_end"] = starts, ends
    response = client.post(reverse("members:weekly_hours"), week)
    _assert_refused(response, member, before, offered, client, consultation, message)
    assert "<script>alert" not in response.content.decode()


def test_a_member_changes_only_their_own_hours(client, login, member, other_member):
    theirs = _stored_hours(other_member)
    login(member)
    client.post(reverse("members:weekly_hours"), _week(sunday=[("10:00", "12:00")]))
    assert _stored_hours(member) == [(6, time(10), time(12))]
    assert _stored_hours(other_member) == theirs


# ---------------------------------------------------------------- date overrides


def test_a_day_off_removes_that_dates_times(client, login, member, consultation):
    assert _december(client, consultation)[NEXT_TUESDAY] == FULL_DAY
    login(member)
    response = client.post(reverse("members:date_override_add"), _override(NEXT_TUESDAY))
    assert response.status_code == 302
    assert _stored_overrides(member) == [(date(2026, 12, 15), None, None)]

    december = _december(client, consultation)
    assert NEXT_TUESDAY not in december
    assert december[NEXT_MONDAY] == FULL_DAY and december["2026-12-16"] == FULL_DAY

    page = _profile(client)
    assert "Your hours for" in page
    assert "Tuesday, December 15, 2026" in page and "Day off" in page


def test_a_day_off_ignores_times_left_in_its_hidden_inputs(client, login, member):
    login(member)
    data = _override(NEXT_TUESDAY, ("10:00", "nonsense"), kind="off")
    assert client.post(reverse("members:date_override_add"), data).status_code == 302
    assert _stored_overrides(member) == [(date(2026, 12, 15), None, None)]


def test_other_hours_on_one_date_replace_the_weekly_hours(client, login, member, consultation):
    login(member)
    client.post(reverse("members:date_override_add"), _override(NEXT_TUESDAY, ("07:00", "08:00"), ("18:00", "19:00")))
    # A Saturday can be opened as well.
    client.post(reverse("members:date_override_add"), _override("2026-12-19", ("10:00", "11:00")))
    assert _stored_overrides(member) == [
        (date(2026, 12, 15), time(7), time(8)),
        (date(2026, 12, 15), time(18), time(19)),
        (date(2026, 12, 19), time(10), time(11)),
    ]
    december = _december(client, consultation)
    assert december[NEXT_TUESDAY] == ["07:00", "07:30", "18:00", "18:30"]
    assert december["2026-12-19"] == ["10:00", "10:30"]
    assert december[NEXT_MONDAY] == FULL_DAY

    assert "7:00 AM – 8:00 AM, 6:00 PM – 7:00 PM" in _profile(client)  # a browser that names no locale: en-US

    # Saving the date again replaces what was there.
    client.post(reverse("members:date_override_add"), _override(NEXT_TUESDAY))
    assert _stored_overrides(member)[0] == (date(2026, 12, 15), None, None)
    assert DateOverride.objects.filter(member=member, date=date(2026, 12, 15)).count() == 1
    assert NEXT_TUESDAY not in _december(client, consultation)


def test_overrides_start_today_in_the_members_own_time_zone(client, login, member, make_member):
    # 06:00 UTC is already Monday 7 December in Kolkata, still Sunday 6 December in Honolulu.
    login(member)
    assert 'type="date" name="date" min="2026-12-07"' in _profile(client)
    response = client.post(reverse("members:date_override_add"), _override("2026-12-06"))
    assert response.status_code == 200
    assert "That date has passed. Pick today or a later date." in response.content.decode()
    assert _stored_overrides(member) == []
    assert client.post(reverse("members:date_override_add"), _override("2026-12-07")).status_code == 302
    assert _stored_overrides(member) == [(date(2026, 12, 7), None, None)]

    honolulu = make_member(member.organization, name="Hana Honolulu", time_zone="Pacific/Honolulu")
    login(honolulu)
    assert 'min="2026-12-06"' in _profile(client)
    assert client.post(reverse("members:date_override_add"), _override("2026-12-06")).status_code == 302


def test_removing_an_override_brings_the_weekly_hours_back(client, login, member, other_member, consultation):
    DateOverride.objects.create(member=member, date=date(2026, 12, 15))
    DateOverride.objects.create(member=other_member, date=date(2026, 12, 15))
    assert NEXT_TUESDAY not in _december(client, consultation)
    login(member)
    response = client.post(reverse("members:date_override_remove", args=[NEXT_TUESDAY]))
    assert response.status_code == 302
    assert "uses your weekly hours again" in client.get(response["Location"]).content.decode()
    assert _stored_overrides(member) == []
    assert _december(client, consultation)[NEXT_TUESDAY] == FULL_DAY
    # Someone else's override of the same date is not touched; removing again finds nothing.
    assert _stored_overrides(other_member) == [(date(2026, 12, 15), None, None)]
    assert client.post(reverse("members:date_override_remove", args=[NEXT_TUESDAY])).status_code == 404
    assert client.post(reverse("members:date_override_remove", args=["2026-02-30"])).status_code == 404


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        (_override(NEXT_TUESDAY, ("10:00", "25:00")), "hours", "Interval 1: the end is not a time like 17:00."),
        (_override(NEXT_TUESDAY, ("12:00", "10:00")), "hours", "Interval 1: the end must be after the start"),
        (
            _override(NEXT_TUESDAY, ("10:00", "12:00"), ("11:00", "13:00")),
            "hours",
            "10:00–12:00 and 11:00–13:00 overlap.",
        ),
        (_override(NEXT_TUESDAY, kind="hours"), "hours", "Add at least one interval, or choose “Day off”."),
        (_override(NEXT_TUESDAY, kind="holiday"), "hours", "Choose “Day off” or “Other hours”."),
        ({"date": NEXT_TUESDAY}, "hours", "Choose “Day off” or “Other hours”."),
        (_override("2026-13-01"), "date", "Enter a valid date."),
        (_override(""), "date", "This field is required."),
    ],
)
def test_bad_overrides_are_refused_and_nothing_changes(client, login, member, consultation, data, field, message):
    offered = _december(client, consultation)
    login(member)
    response = client.post(reverse("members:date_override_add"), data)
    assert response.status_code == 200
    errors = response.context["override_form"].errors
    assert list(errors) == [field] and message in " ".join(errors[field])
    assert message in response.content.decode()
    assert _stored_overrides(member) == []
    assert _december(client, consultation) == offered


def test_past_overrides_are_not_listed(client, login, member):
    DateOverride.objects.create(member=member, date=date(2026, 12, 1))
    DateOverride.objects.create(member=member, date=date(2026, 12, 24))
    login(member)
    page = _profile(client)
    assert "Thursday, December 24, 2026" in page
    assert "December 1, 2026" not in page


def test_the_profile_page_reads_hours_and_overrides_in_a_few_queries(
    client, login, member, django_assert_max_num_queries
):
    DateOverride.objects.bulk_create(
        DateOverride(member=member, date=date(2027, 1, day), start=time(9), end=time(10)) for day in range(1, 29)
    )
    login(member)
    with django_assert_max_num_queries(6):
        page = _profile(client)
    assert page.count("9:00 AM – 10:00 AM") == 28
