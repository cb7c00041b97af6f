"""A member sets their own weekly hours and date overrides; clients see the result in the calendar.

The clock stands at Monday 2026-12-07 06:00 UTC (11:30 in Kolkata, where Maya Member lives).
"""

from datetime import date, time

import pytest
from django.urls import reverse

from meetingtypes.models import MeetingType
from members.models import DateOverride, WorkingHours

from .booking_helpers import (
    frozen_now,  # noqa: F401  (fixture)
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
    """The weekly hours form as posted: day_0 (Monday) … day_6 (Sunday), empty unless given."""
    data = {f"day_{weekday}": "" for weekday in range(7)}
    data.update(days)
    return data


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


# ---------------------------------------------------------------- weekly hours


def test_a_member_sets_several_ranges_a_day_and_days_off(client, login, member, consultation):
    login(member)
    response = client.post(
        reverse("members:weekly_hours"),
        _week(day_0="09:00-12:00, 13:00-17:00", day_2="9-11", day_4="20:00-24:00", day_5=" 10:00 – 11:00 "),
    )
    assert response.status_code == 302 and response["Location"] == reverse("members:profile")
    assert _stored_hours(member) == [
        (0, time(9), time(12)),
        (0, time(13), time(17)),
        (2, time(9), time(11)),
        (4, time(20), time(0)),  # 24:00 is stored as midnight at the end of the day
        (5, time(10), time(11)),
    ]

    page = client.get(reverse("members:profile")).content.decode()
    assert "Your working hours were saved." in page
    assert 'value="09:00-12:00, 13:00-17:00"' in page
    assert 'value="20:00-24:00"' in page

    december = _december(client, consultation)
    assert december[NEXT_MONDAY] == ["09:00", "09:30", "10:00", "10:30", "11:00", "11:30"] + FULL_DAY[8:]
    assert NEXT_TUESDAY not in december  # an empty day means not available
    assert december["2026-12-16"] == ["09:00", "09:30", "10:00", "10:30"]
    assert december[NEXT_FRIDAY] == ["20:00", "20:30", "21:00", "21:30", "22:00", "22:30", "23:00", "23:30"]
    assert december["2026-12-19"] == ["10:00", "10:30"]  # Saturday
    assert "2026-12-20" not in december  # Sunday


def test_an_empty_week_means_no_times_at_all(client, login, member, consultation):
    login(member)
    assert client.post(reverse("members:weekly_hours"), _week()).status_code == 302
    assert _stored_hours(member) == []
    body = client.get(
        reverse("bookings:slots", args=[member.organization.slug, consultation.slug]), {"tz": KOLKATA}
    ).json()
    assert body["days"] == {}


def test_a_whole_day_from_midnight_to_midnight(client, login, member, consultation):
    login(member)
    client.post(reverse("members:weekly_hours"), _week(day_1="00:00-24:00"))
    assert _stored_hours(member) == [(1, time(0), time(0))]
    tuesday = _december(client, consultation)[NEXT_TUESDAY]
    assert tuesday[0] == "00:00" and tuesday[-1] == "23:30" and len(tuesday) == 48


@pytest.mark.parametrize(
    ("day", "message"),
    [
        ("09:00-12:00, 11:00-13:00", "Time ranges on the same day must not overlap."),
        ("13:00-17:00, 09:00-13:30", "Time ranges on the same day must not overlap."),
        ("20:00-24:00, 21:00-22:00", "Time ranges on the same day must not overlap."),
        ("17:00-09:00", "In “17:00-09:00” the end must be after the start."),
        ("09:00-09:00", "In “09:00-09:00” the end must be after the start."),
        ("09:00-25:00", "“09:00-25:00” has a time that doesn&#x27;t exist."),
        ("09:60-12:00", "“09:60-12:00” has a time that doesn&#x27;t exist."),
        ("24:00-24:00", "“24:00-24:00” has a time that doesn&#x27;t exist."),
        ("nine to five", "“nine to five” is not a time range like 09:00-17:00."),
        ("09:00", "“09:00” is not a time range like 09:00-17:00."),
        ("09:00-12:00; 13:00-17:00", "is not a time range like 09:00-17:00."),
    ],
)
def test_bad_weekly_hours_are_refused_and_nothing_changes(client, login, member, consultation, day, message):
    before = _stored_hours(member)
    offered = _december(client, consultation)
    login(member)
    # A good Monday next to a bad Wednesday: nothing at all is saved.
    response = client.post(reverse("members:weekly_hours"), _week(day_0="10:00-11:00", day_2=day))
    assert response.status_code == 200
    page = response.content.decode()
    assert message in page
    assert 'class="errorlist' in page
    assert "Your working hours were saved." not in page
    assert _stored_hours(member) == before
    assert _december(client, consultation) == offered


def test_a_member_changes_only_their_own_hours(client, login, member, other_member):
    theirs = _stored_hours(other_member)
    login(member)
    client.post(reverse("members:weekly_hours"), _week(day_6="10:00-12:00"))
    assert _stored_hours(member) == [(6, time(10), time(12))]
    assert _stored_hours(other_member) == theirs


# ---------------------------------------------------------------- date overrides


def test_a_day_off_removes_that_dates_times(client, login, member, consultation):
    assert _december(client, consultation)[NEXT_TUESDAY] == FULL_DAY
    login(member)
    response = client.post(reverse("members:date_override_add"), {"date": NEXT_TUESDAY, "hours": ""})
    assert response.status_code == 302
    assert _stored_overrides(member) == [(date(2026, 12, 15), None, None)]

    december = _december(client, consultation)
    assert NEXT_TUESDAY not in december
    assert december[NEXT_MONDAY] == FULL_DAY and december["2026-12-16"] == FULL_DAY

    page = client.get(reverse("members:profile")).content.decode()
    assert "Your hours for" in page
    assert "Tuesday, 15 December 2026" in page and "Day off" in page


def test_other_hours_on_one_date_replace_the_weekly_hours(client, login, member, consultation):
    login(member)
    client.post(reverse("members:date_override_add"), {"date": NEXT_TUESDAY, "hours": "07:00-08:00, 18:00-19:00"})
    # A Saturday can be opened as well.
    client.post(reverse("members:date_override_add"), {"date": "2026-12-19", "hours": "10:00-11:00"})
    assert _stored_overrides(member) == [
        (date(2026, 12, 15), time(7), time(8)),
        (date(2026, 12, 15), time(18), time(19)),
        (date(2026, 12, 19), time(10), time(11)),
    ]
    december = _december(client, consultation)
    assert december[NEXT_TUESDAY] == ["07:00", "07:30", "18:00", "18:30"]
    assert december["2026-12-19"] == ["10:00", "10:30"]
    assert december[NEXT_MONDAY] == FULL_DAY

    page = client.get(reverse("members:profile")).content.decode()
    assert "07:00-08:00, 18:00-19:00" in page

    # Saving the date again replaces what was there.
    client.post(reverse("members:date_override_add"), {"date": NEXT_TUESDAY, "hours": ""})
    assert _stored_overrides(member)[0] == (date(2026, 12, 15), None, None)
    assert DateOverride.objects.filter(member=member, date=date(2026, 12, 15)).count() == 1
    assert NEXT_TUESDAY not in _december(client, consultation)


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
        ({"date": NEXT_TUESDAY, "hours": "10:00-25:00"}, "hours", "has a time that doesn&#x27;t exist"),
        ({"date": NEXT_TUESDAY, "hours": "12:00-10:00"}, "hours", "the end must be after the start"),
        ({"date": NEXT_TUESDAY, "hours": "10:00-12:00, 11:00-13:00"}, "hours", "must not overlap"),
        ({"date": NEXT_TUESDAY, "hours": "all day"}, "hours", "is not a time range like 09:00-17:00"),
        ({"date": "2026-13-01", "hours": ""}, "date", "Enter a valid date."),
        ({"date": "", "hours": "10:00-11:00"}, "date", "This field is required."),
    ],
)
def test_bad_overrides_are_refused_and_nothing_changes(client, login, member, consultation, data, field, message):
    offered = _december(client, consultation)
    login(member)
    response = client.post(reverse("members:date_override_add"), data)
    assert response.status_code == 200
    assert field in response.context["override_form"].errors
    assert message in response.content.decode()
    assert _stored_overrides(member) == []
    assert _december(client, consultation) == offered


def test_past_overrides_are_not_listed(client, login, member):
    DateOverride.objects.create(member=member, date=date(2026, 12, 1))
    DateOverride.objects.create(member=member, date=date(2026, 12, 24))
    login(member)
    page = client.get(reverse("members:profile")).content.decode()
    assert "Thursday, 24 December 2026" in page
    assert "1 December 2026" not in page
