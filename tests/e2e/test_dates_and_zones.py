"""In a real browser: the calendar (Intl in the browser) and the pages after it (Babel on the server)
show a time the same way, in the browser's locale; the time zone picker finds zones by name and
knows the browser's zone, even under an older name."""

import re

import pytest
from django.urls import reverse

from members.timezones import zone_label

from . import steps

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.mark.parametrize(
    "locale, clock",
    [("en-US", r"\d{1,2}:\d{2} [AP]M"), ("en-GB", r"\d{2}:\d{2}")],
    ids=["12-hour", "24-hour"],
)
def test_the_calendar_the_form_and_the_confirmation_show_a_time_alike(
    live_server, new_context, consultation, locale, clock
):
    page = new_context(time_zone="America/New_York", locale=locale).new_page()
    page.goto(live_server.url + reverse("bookings:public_page", args=[consultation.organization.slug, "consultation"]))
    page.wait_for_selector("#booking-slot-list button.slot")
    day = page.locator("#booking-slots-heading").inner_text().strip()
    slot = page.locator("#booking-slot-list button.slot").first
    shown = slot.inner_text().strip()
    assert re.fullmatch(clock, shown), shown

    slot.click()
    page.wait_for_selector("#id_name")
    assert f"You picked {day} at {shown} (Eastern Time — New York)." in page.locator("#chosen").inner_text()

    page.fill("#id_name", "Carla Client")
    page.fill("#id_email", "carla@example.com")
    page.click("button[type=submit]")
    page.wait_for_selector("text=You are booked")
    when = page.locator(".booking-facts time").first.inner_text()
    assert day in when and f"{shown} – " in when, when


def test_the_picker_knows_the_browsers_zone_by_its_older_name_and_finds_zones_by_name(live_server, new_context):
    # Chromium reports Kolkata under ICU's name, "Asia/Calcutta"; the list only has "Asia/Kolkata".
    page = new_context(time_zone="Asia/Calcutta", locale="en-IN").new_page()
    page.goto(live_server.url + reverse("account_signup"))
    select = page.locator("select[name=time_zone]")
    assert select.input_value() == "Asia/Kolkata"

    search = page.get_by_label("Search time zones")
    search.fill("los angeles")
    assert select.locator("option").all_inner_texts() == [
        zone_label("Asia/Kolkata"),  # the chosen zone stays while it doesn't match: filtering never changes it
        zone_label("America/Los_Angeles"),  # "Pacific Time — Los Angeles (GMT−8)" in winter
    ]
    search.press("Enter")
    assert select.input_value() == "America/Los_Angeles"
    assert page.url.endswith(reverse("account_signup"))  # Enter chose a zone, it didn't submit the form

    search.fill("calcutta")  # older names find their zone too
    assert select.locator("option").all_inner_texts() == [zone_label("America/Los_Angeles"), zone_label("Asia/Kolkata")]
    search.press("Escape")
    assert select.locator("option").count() > 300


def test_the_profile_offers_the_browsers_zone_and_saving_stays_the_members_choice(
    live_server, new_context, member, journey
):
    page = journey.open(live_server.url + reverse("account_login"), time_zone="America/Chicago", locale="en-US")
    journey.check(page)
    steps.log_in(page, email=member.email)
    journey.check(page)  # Team Members, where a login lands
    page.goto(live_server.url + reverse("members:profile"))
    select = page.locator("select[name=time_zone]")
    assert select.input_value() == "Asia/Kolkata"  # saved; the browser is elsewhere
    offer = page.locator(".tz-suggest")
    assert offer.inner_text().startswith(f"Your browser is in {zone_label('America/Chicago')}.")
    journey.check(page)

    offer.get_by_role("button", name="Use it").click()
    assert select.input_value() == "America/Chicago" and offer.is_hidden()
    member.refresh_from_db()
    assert member.time_zone == "Asia/Kolkata"  # nothing saved until the member saves
    page.get_by_role("button", name="Save profile").click()
    page.wait_for_load_state("load")
    member.refresh_from_db()
    assert (member.time_zone, member.locale) == ("America/Chicago", "en-US")
