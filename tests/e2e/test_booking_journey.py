"""A client books through the real page in a real browser."""

import re
from datetime import time
from zoneinfo import ZoneInfo

import pytest
from django.urls import reverse

from bookings import services
from bookings.forms import parse_start
from bookings.models import Booking
from tests.booking_helpers import work_every_day

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _page_url(live_server, meeting_type) -> str:
    return live_server.url + reverse("bookings:public_page", args=[meeting_type.organization.slug, meeting_type.slug])


def _pick_first_slot(page) -> str:
    page.wait_for_selector("#booking-slot-list button.slot")
    selected_day = page.locator('#booking-days button[aria-pressed="true"]')
    assert re.search(r"\d{4}", selected_day.get_attribute("aria-label")), "day buttons carry a full-date label"
    slot = page.locator("#booking-slot-list button.slot").first
    start = slot.get_attribute("data-start")
    slot.click()
    page.wait_for_selector("#id_name")
    return start


def _shown_times(page) -> list[str]:
    labels = page.locator("#booking-slot-list button.slot").all_inner_texts()
    return [re.sub(r"^0(\d)", r"\1", label.strip()) for label in labels]  # "09:00" and "9:00" alike


def _expected_times(page, zone: str) -> list[str]:
    starts = page.locator("#booking-slot-list button.slot").evaluate_all("els => els.map(e => e.dataset.start)")
    local = [parse_start(start).astimezone(ZoneInfo(zone)) for start in starts]
    return [f"{moment.hour}:{moment.minute:02d}" for moment in local]


def test_a_client_picks_a_day_and_a_time_fills_the_form_and_sees_the_confirmation(live_server, open_page, consultation):
    page = open_page(_page_url(live_server, consultation))
    # The calendar opens on a month with free days and greys out the others.
    page.wait_for_selector("#booking-days button.is-available")
    assert page.locator('#booking-days button[aria-disabled="true"]').count() >= 0
    start = _pick_first_slot(page)

    page.fill("#id_name", "Carla Client")
    page.fill("#id_email", "carla@example.com")
    page.fill("#id_notes", "Looking forward to it.")
    page.click("button[type=submit]")

    page.wait_for_selector("text=You are booked")
    booking = Booking.objects.get()
    assert booking.client_email == "carla@example.com"
    assert booking.start == parse_start(start)
    assert booking.client_time_zone == "Europe/London"
    assert "Consultation" in page.content()
    assert page.locator("a", has_text="Cancel booking").count() == 1


def test_a_client_who_loses_the_race_is_told_the_time_was_just_taken_and_sees_fresh_times(
    live_server, open_page, consultation
):
    page = open_page(_page_url(live_server, consultation))
    start = _pick_first_slot(page)
    # Someone else books that very time while our client is typing.
    services.book(
        meeting_type=consultation,
        start=parse_start(start),
        client_name="Quick Quentin",
        client_email="quentin@example.com",
        client_notes="",
        client_time_zone="UTC",
    )
    page.fill("#id_name", "Slow Sally")
    page.fill("#id_email", "sally@example.com")
    page.click("button[type=submit]")

    page.wait_for_selector("#booking-taken")
    assert "just taken" in page.locator("#booking-taken").inner_text()
    page.wait_for_selector("#booking-slot-list button.slot")
    offered = page.locator("#booking-slot-list button.slot").evaluate_all("els => els.map(e => e.dataset.start)")
    assert start not in offered
    assert Booking.objects.count() == 1


def test_a_client_in_another_time_zone_sees_times_in_their_own_zone_and_can_change_it(
    live_server, open_page, member, consultation
):
    member.time_zone = "America/New_York"
    member.save()
    # 09:00-09:30 New York time, every day: one time a day, so whatever the hour the test runs at
    # (the minimum notice may leave out today's), the first day shown has exactly that one.
    work_every_day(member, start=time(9), end=time(9, 30))
    page = open_page(_page_url(live_server, consultation), time_zone="Australia/Adelaide")

    page.wait_for_selector("#booking-slot-list button.slot")
    assert page.locator("#booking-tz").input_value() == "Australia/Adelaide"
    assert _shown_times(page) == _expected_times(page, "Australia/Adelaide")
    # Adelaide is a half-hour zone: 09:00 in New York is always at half past there.
    assert _shown_times(page)[0].endswith(":30")

    page.select_option("#booking-tz", "America/New_York")
    page.wait_for_function(
        "() => [...document.querySelectorAll('#booking-slot-list button.slot')]"
        ".some(b => /^0?9:00/.test(b.innerText.trim()))"
    )
    assert _shown_times(page) == ["9:00"]
    assert _shown_times(page) == _expected_times(page, "America/New_York")

    _pick_first_slot(page)
    page.fill("#id_name", "Ravi")
    page.fill("#id_email", "ravi@example.com")
    page.click("button[type=submit]")
    page.wait_for_selector("text=You are booked")
    booking = Booking.objects.get()
    assert booking.client_time_zone == "America/New_York"
    assert booking.start.astimezone(ZoneInfo("America/New_York")).hour == 9
