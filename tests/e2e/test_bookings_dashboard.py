"""In Chromium, at the desktop width and on a 390 px phone: the team's Bookings page (tabs, cards on
a phone, adding a video link) and the client's booking page (Add to calendar, the time zone on one
line). Every page is also checked by the `journey` harness: no horizontal overflow at 390 px and no
serious or critical axe-core violation.
"""

from datetime import timedelta

import pytest
from django.conf import settings as django_settings
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from icalendar import Calendar
from playwright.sync_api import expect

from bookings import services
from bookings.models import Booking
from integrations.models import VideoMeeting
from meetingtypes.models import MeetingType
from tests.booking_helpers import make_booking, make_meeting_type

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PHONE = {"width": 390, "height": 844}
JOIN_URL = "https://meet.example.com/abc-defg-hij"


def _next_weekday_at(hour: int, days_ahead: int = 2):
    day = (timezone.now() + timedelta(days=days_ahead)).replace(hour=hour, minute=0, second=0, microsecond=0)
    while day.weekday() >= 5:
        day += timedelta(days=1)
    return day


@pytest.fixture
def bookings(admin, member, organization):
    """Upcoming (one without its video link), past and cancelled bookings, with long names and addresses."""
    zoom = make_meeting_type(
        organization,
        [member],
        name="Quarterly strategy review with the whole account team",
        location=MeetingType.Location.ZOOM,
        location_detail="",
    )
    linkless = make_booking(
        zoom,
        [member],
        _next_weekday_at(10),
        client_name="Maximiliane Featherstonehaugh-Cholmondeley",
        client_email="maximiliane.featherstonehaugh-cholmondeley@very-long-company-domain.example",
        client_time_zone="America/Chicago",
        client_notes="Please bring the figures for the last two quarters and the hiring plan.",
    )
    VideoMeeting.objects.create(booking=linkless, state=VideoMeeting.State.FAILED, last_error="No Zoom connected.")
    make_booking(zoom, [member], timezone.now() - timedelta(days=3), client_name="Paula Past")
    cancelled = make_booking(zoom, [member], _next_weekday_at(12, days_ahead=3), client_name="Carl Cancelled")
    services.cancel(booking=cancelled)
    return {"linkless": linkless, "cancelled": cancelled}


def _signed_in(journey, live_server, member, *, locale: str = "en-US"):
    page = journey.open(time_zone="America/New_York", locale=locale)
    client = Client()
    client.force_login(member.user)
    session = client.cookies[django_settings.SESSION_COOKIE_NAME].value
    page.context.add_cookies([{"name": django_settings.SESSION_COOKIE_NAME, "value": session, "url": live_server.url}])
    return page


def test_the_bookings_page_has_tabs_cards_on_a_phone_and_a_host_adds_the_missing_link(
    journey, live_server, member, bookings
):
    linkless = bookings["linkless"]
    page = _signed_in(journey, live_server, member)
    page.goto(live_server.url + reverse("bookings:list"))
    tabs = page.get_by_role("navigation", name="Which bookings")
    assert tabs.get_by_role("link", name="Upcoming 1").get_attribute("aria-current") == "page"
    assert page.get_by_text("Carl Cancelled").count() == 0
    journey.check(page)

    page.set_viewport_size(PHONE)
    row = page.locator(f"#booking-{linkless.pk}")
    assert row.evaluate("el => getComputedStyle(el).display") == "block"  # a card, not a table row
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    card = row.bounding_box()
    assert card["x"] >= 0 and card["x"] + card["width"] <= PHONE["width"]

    tabs.get_by_role("link", name="Cancelled 1").click()
    expect(page.get_by_text("Carl Cancelled")).to_be_visible()
    journey.check(page)
    tabs.get_by_role("link", name="Upcoming 1").click()
    page.wait_for_url("**when=upcoming")

    page.get_by_role("link", name="Add video link").click()
    journey.check(page)
    page.get_by_label("Video link").fill("http://meet.example.com/insecure")
    page.get_by_role("button", name="Save and send").click()
    expect(page.get_by_text("Enter an https:// link.")).to_be_visible()
    journey.check(page)

    page.get_by_label("Video link").fill(JOIN_URL)
    page.get_by_label("Passcode (optional)").fill("4711")
    page.get_by_role("button", name="Save and send").click()
    page.wait_for_url(f"**{reverse('bookings:list')}*")
    expect(page.get_by_text("The video link was saved.")).to_be_visible()
    expect(page.locator(f'#booking-{linkless.pk} a[href="{JOIN_URL}"]')).to_be_visible()
    journey.check(page)
    assert Booking.objects.get(pk=linkless.pk).sequence == 1


def test_the_confirmation_offers_add_to_calendar_and_keeps_the_zone_on_one_line(journey, live_server, bookings):
    booking = bookings["linkless"]
    services.set_video_link(booking=booking, by=booking.host_rows.get().member, join_url=JOIN_URL, passcode="")
    booking.refresh_from_db()
    page = journey.open(live_server.url + booking.manage_url(), time_zone="America/Chicago", locale="en-US")
    journey.check(page)

    for width in (PHONE["width"], 1280):
        page.set_viewport_size({"width": width, "height": 844})
        zone = page.locator(".booking-facts .zone-name")
        assert "Chicago" in zone.inner_text()
        one_line = zone.evaluate(
            "el => el.getBoundingClientRect().height < 1.5 * parseFloat(getComputedStyle(el).lineHeight)"
        )
        assert one_line, f"the zone name wraps at {width} px"
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")

    calendar = page.get_by_role("region", name="Add to your calendar")
    for name in ("Google Calendar", "Outlook.com", "Outlook (work or school)"):
        href = calendar.get_by_role("link", name=name).get_attribute("href")
        assert href.startswith("https://") and booking.manage_token not in href
        assert "noreferrer" in calendar.get_by_role("link", name=name).get_attribute("rel")

    with page.expect_download() as download:
        calendar.get_by_role("link", name="Download .ics").click()
    (event,) = Calendar.from_ical(open(download.value.path(), "rb").read()).walk("VEVENT")
    assert str(event["UID"]) == f"{booking.uid}@teamschedulerpro" and event["SEQUENCE"] == booking.sequence
    assert str(event["LOCATION"]) == JOIN_URL
