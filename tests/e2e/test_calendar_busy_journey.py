"""A member's own calendar blocks their booking page, in a real browser: she connects Google on her
card, sees her calendars with the primary one counting as busy; a meeting is added to that
calendar on the Google sandbox's control page; the client's booking page no longer offers that
time, and still offers the others of the day."""

import re
from datetime import datetime, timedelta

import pytest
from django.urls import reverse

from integrations.models import Calendar
from integrations.sandbox import google

from . import steps

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

GOOGLE_EMAIL = "maya@gmail.example"


@pytest.fixture(autouse=True)
def _push_reaches_the_live_server(settings):
    # The sandbox can post to our http:// live server: the change comes as a push notification,
    # as it would from Google to a public site.
    settings.CALENDAR_PUSH = "on"


def offered_starts(page, day: str) -> list[str]:
    """On a booking page: the offered times of `day` (its button in the month grid), as the UTC
    instants the page books."""
    page.locator(f'button[data-date="{day}"]').click()
    page.wait_for_selector("#booking-slot-list button.slot")
    return page.locator("#booking-slot-list button.slot").evaluate_all("buttons => buttons.map(b => b.dataset.start)")


def add_meeting_on_the_sandbox_page(page, *, account_email: str, start: datetime, end: datetime) -> None:
    """On the Google sandbox's control page: a busy event in the account's primary calendar (whose
    zone is UTC), as the member would add it in Google Calendar."""
    section = page.get_by_role("region", name=account_email)
    form = section.locator("form").filter(has=page.get_by_role("button", name=re.compile("^Add event"))).first
    form.get_by_label("Title").fill("Dentist")
    form.get_by_label("Date").fill(start.strftime("%Y-%m-%d"))
    form.get_by_label(re.compile(r"^Start")).fill(start.strftime("%H:%M"))
    form.get_by_label(re.compile(r"^End")).fill(end.strftime("%H:%M"))
    form.get_by_role("button", name=re.compile("^Add event")).click()
    page.wait_for_load_state()


def test_a_meeting_in_the_members_google_calendar_takes_its_time_off_her_booking_page(
    site, journey, member, consultation
):
    page = journey.open(time_zone="Asia/Kolkata")
    page.goto(site.at(reverse("account_login")))
    journey.check(page)
    steps.log_in(page, email=member.user.email)
    page.goto(site.at(reverse("members:list")))
    google_row = steps.own_card(page).locator(".integration[data-provider=google]")
    google_row.get_by_role("button", name="Connect Google").click()
    page.wait_for_url(re.compile(r"/sandbox/google/o/oauth2/v2/auth"))
    steps.allow_on_provider(page, account_email=GOOGLE_EMAIL)
    page.wait_for_url(re.compile(re.escape(reverse("members:list"))))

    # Her calendars on her card: the primary one (named after the account, as Google does) counts as busy.
    calendars = steps.own_card(page).locator("section.calendars")
    primary = calendars.get_by_role("checkbox", name=f"Count as busy ({GOOGLE_EMAIL})")
    assert primary.is_checked()
    assert calendars.get_by_role("radio", name=f"Add bookings to this calendar ({GOOGLE_EMAIL})").is_checked()
    assert calendars.get_by_text(re.compile(r"Busy times updated")).count() == 1
    assert Calendar.objects.get(member=member, is_primary=True).channel_id  # Google will tell us of changes
    journey.check(page)

    client = journey.open(site.at(reverse("bookings:public_page", args=[member.organization.slug, consultation.slug])))
    steps.first_free_time(client)
    day = client.locator("#booking-days button[aria-pressed=true]").get_attribute("data-date")
    before = offered_starts(client, day)
    taken = before[len(before) // 2]
    journey.check(client)

    control = journey.open(site.at("/sandbox/google/control/"))
    start = datetime.fromisoformat(taken.replace("Z", "+00:00"))
    add_meeting_on_the_sandbox_page(control, account_email=GOOGLE_EMAIL, start=start, end=start + timedelta(minutes=30))
    assert google.wait_for_deliveries(10), "the sandbox's notification did not reach the site"

    client.reload()
    steps.first_free_time(client)
    after = offered_starts(client, day)
    assert taken not in after
    assert before[-1] in after  # the day's other times stay
    journey.check(client)

    page.reload()
    assert steps.own_card(page).locator("section.calendars").get_by_text(re.compile(r"Busy times updated")).count() == 1
    journey.check(page)
