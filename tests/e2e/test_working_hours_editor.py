"""A member edits their working hours on a phone, in a real browser: add an interval, copy Monday, save."""

import re
from datetime import time, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.urls import reverse
from django.utils import timezone

from members.models import DateOverride, WorkingHours

from . import steps
from .conftest import PHONE

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _stored_hours(member) -> list[tuple]:
    return list(WorkingHours.objects.filter(member=member).values_list("weekday", "start", "end"))


def test_a_member_adds_an_interval_copies_monday_saves_and_sees_it_after_reload(site, journey, member):
    page = journey.open(site.at(reverse("account_login")), time_zone="Asia/Kolkata")
    script_errors = []
    page.on("pageerror", lambda error: script_errors.append(str(error)))
    page.set_viewport_size(PHONE)
    journey.check(page)
    steps.log_in(page, email=member.email)
    journey.check(page)
    page.goto(site.at(reverse("members:profile")))
    journey.check(page)

    monday = page.get_by_role("group", name="Monday")
    # Monday 09:00–17:00 (the default) becomes 09:00–12:00 and 13:00–17:00.
    page.get_by_label("Monday, interval 1, end").fill("12:00")
    monday.get_by_role("button", name="Add interval to Monday").click()
    assert page.get_by_label("Monday, interval 2, start").evaluate("el => el === document.activeElement")
    page.get_by_label("Monday, interval 2, start").fill("13:00")
    page.get_by_label("Monday, interval 2, end").fill("17:00")
    assert monday.get_by_role("button", name="Remove Monday 13:00–17:00").is_visible()

    page.get_by_role("button", name="Copy Monday to all weekdays").click()
    page.get_by_text("Monday’s hours were copied to Tuesday–Friday. Save to keep them.").wait_for()
    assert page.get_by_label("Thursday, interval 2, start").input_value() == "13:00"
    assert _stored_hours(member) == [(day, time(9), time(17)) for day in range(5)], "copying alone saves nothing"

    # Friday afternoons off; Saturday mornings on (switching a day on offers 09:00–17:00 to edit).
    page.get_by_role("button", name="Remove Friday 13:00–17:00").click()
    saturday = page.get_by_role("group", name="Saturday")
    assert not page.get_by_label("Saturday, interval 1, start").is_visible()  # an unavailable day hides its times
    saturday.get_by_label("Available").check()
    assert page.get_by_label("Saturday, interval 1, start").input_value() == "09:00"
    page.get_by_label("Saturday, interval 1, end").fill("12:00")
    # Sunday: switched on, filled up to the limit of eight intervals, then switched off again.
    sunday = page.get_by_role("group", name="Sunday")
    sunday.get_by_label("Available").check()
    add_to_sunday = sunday.get_by_role("button", name="Add interval to Sunday")
    for _ in range(7):
        add_to_sunday.click()
    assert page.get_by_label("Sunday, interval 8, start").is_visible()
    assert not add_to_sunday.is_visible()
    sunday.get_by_label("Available").uncheck()
    assert not page.get_by_label("Sunday, interval 1, start").is_visible()
    journey.check(page)

    page.get_by_role("button", name="Save working hours").click()
    page.get_by_text("Your working hours were saved.").wait_for()
    split_day = [(time(9), time(12)), (time(13), time(17))]
    assert sorted(_stored_hours(member)) == sorted(
        [(day, start, end) for day in range(4) for start, end in split_day]
        + [(4, time(9), time(12)), (5, time(9), time(12))]
    )

    page.reload()
    for day in ("Monday", "Tuesday", "Wednesday", "Thursday"):
        assert page.get_by_label(f"{day}, interval 1, end").input_value() == "12:00"
        assert page.get_by_label(f"{day}, interval 2, start").input_value() == "13:00"
    assert page.get_by_label(re.compile(r"^Friday, interval 2, start$")).count() == 0
    assert page.get_by_label("Saturday, interval 1, end").input_value() == "12:00"
    assert not page.get_by_role("group", name="Sunday").get_by_label("Available").is_checked()
    journey.check(page)

    # A date override from the date picker: other hours on one day.
    day = timezone.localdate(timezone=ZoneInfo(member.time_zone)) + timedelta(days=10)
    steps.field(page, "Date").fill(day.isoformat())
    page.get_by_role("radio", name="Other hours").check()
    page.get_by_label("Date override, interval 1, start").fill("18:00")
    page.get_by_label("Date override, interval 1, end").fill("20:00")
    page.get_by_role("button", name="Save override").click()
    page.get_by_text("18:00 – 20:00").wait_for()  # en-GB: a 24-hour clock
    assert list(DateOverride.objects.filter(member=member).values_list("date", "start", "end")) == [
        (day, time(18), time(20))
    ]
    journey.check(page)
    assert script_errors == []


def test_without_javascript_a_member_adds_one_interval_per_save_and_copies_monday(site, browser, member):
    context = browser.new_context(java_script_enabled=False, viewport=PHONE, locale="en-GB")
    try:
        page = context.new_page()
        page.goto(site.at(reverse("account_login")))
        steps.log_in(page, email=member.email)
        page.goto(site.at(reverse("members:profile")))
        # The buttons that need the script are not shown; the blank pair after Monday's hours is.
        assert not page.get_by_role("button", name="Add interval to Monday").is_visible()
        assert not page.get_by_role("button", name=re.compile("^Remove Monday")).first.is_visible()
        page.get_by_label("Monday, interval 1, end").fill("12:00")
        page.get_by_label("Monday, interval 2, start").fill("13:00")
        page.get_by_label("Monday, interval 2, end").fill("17:00")
        page.get_by_role("button", name="Copy Monday to all weekdays").click()
        page.get_by_text("Monday’s hours were copied to Tuesday–Friday. Save to keep them.").wait_for()
        assert page.get_by_label("Friday, interval 2, end").input_value() == "17:00"
        assert _stored_hours(member) == [(day, time(9), time(17)) for day in range(5)]
        page.get_by_role("button", name="Save working hours").click()
        page.get_by_text("Your working hours were saved.").wait_for()
        split_day = [(time(9), time(12)), (time(13), time(17))]
        assert sorted(_stored_hours(member)) == [(day, start, end) for day in range(5) for start, end in split_day]
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    finally:
        context.close()
