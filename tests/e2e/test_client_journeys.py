"""The client of the user guide, in a real browser: booking from another time zone and following the
email's links, booking by keyboard alone, and booking inside the widget on another site."""

import re
import threading
from datetime import datetime
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from zoneinfo import ZoneInfo

import pytest
from django.urls import reverse

from bookings.forms import parse_start
from bookings.models import Booking
from integrations.models import VideoMeeting
from meetingtypes.models import MeetingType
from tests.booking_helpers import make_meeting_type, work_every_day
from tests.zoom_helpers import connected_in_sandbox

from . import steps

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CLIENT_ZONE = "America/Chicago"  # the host works in Asia/Kolkata
CLIENT_EMAIL = "carla@example.com"


@pytest.fixture
def video_call(site, member):
    """A one-person Zoom meeting type whose host (Kolkata) has Zoom connected and works around the clock."""
    connected_in_sandbox(member, "maya@zoom.example")
    work_every_day(member)
    return make_meeting_type(
        member.organization,
        [member],
        name="Video consultation",
        slug="video",
        minimum_notice_minutes=60,
        location=MeetingType.Location.ZOOM,
        location_detail="",
        assignment=MeetingType.Assignment.ONE_PERSON,
    )


def booking_page(site, meeting_type) -> str:
    return site.at(reverse("bookings:public_page", args=[meeting_type.organization.slug, meeting_type.slug]))


def shows_local_time(label: str, moment: datetime) -> bool:
    """The slot's label is its start on the client's wall clock, in 24 h or 12 h form."""
    twelve = f"{(moment.hour % 12) or 12}:{moment.minute:02d}"
    return bool(
        re.search(rf"\b0?{moment.hour}:{moment.minute:02d}\b(?!\s*[AP]M)", label, re.I)
        or re.search(rf"\b{twelve}\s*{'PM' if moment.hour >= 12 else 'AM'}", label, re.I)
    )


def another_time(page, current: datetime):
    """On the reschedule calendar: a time other than the booking's own, on another day if need be."""
    page.wait_for_selector("#booking-slot-list button.slot")
    for _ in range(2):
        for slot in page.locator("#booking-slot-list button.slot").all():
            if parse_start(slot.get_attribute("data-start")) != current:
                return slot
        later_day = page.evaluate(
            """() => {
              const selected = document.querySelector('#booking-days button[aria-pressed="true"]').dataset.date;
              const later = [...document.querySelectorAll('#booking-days button.is-available')]
                .map(b => b.dataset.date).filter(d => d > selected);
              return later[0] || null;
            }"""
        )
        assert later_day, "no later day with free times this month"
        page.locator(f'#booking-days button[data-date="{later_day}"]').click()
        page.wait_for_selector(f'#booking-days button[data-date="{later_day}"][aria-pressed="true"]')
        page.wait_for_selector("#booking-slot-list button.slot")
    raise AssertionError("the reschedule calendar offers no other time")


def confirm_booking(page) -> None:
    page.get_by_role("button", name="Confirm booking").click()
    page.get_by_text("You are booked").wait_for()


def test_a_client_in_another_time_zone_books_gets_the_join_link_and_reschedules_and_cancels_from_the_email(
    site, journey, video_call
):
    page = journey.open(booking_page(site, video_call), time_zone=CLIENT_ZONE, locale="en-US")
    slot = steps.first_free_time(page)
    start = parse_start(slot.get_attribute("data-start"))
    assert shows_local_time(slot.inner_text(), start.astimezone(ZoneInfo(CLIENT_ZONE))), slot.inner_text()
    journey.check(page)

    slot.click()
    steps.fill_booking_form(page, name="Carla Client", email=CLIENT_EMAIL)
    journey.check(page)
    confirm_booking(page)
    booking = Booking.objects.get()
    assert (booking.start, booking.client_time_zone) == (start, CLIENT_ZONE)
    join_url = VideoMeeting.objects.get(booking=booking).join_url
    assert join_url.startswith("https://zoom.sandbox.invalid/j/")
    assert page.locator(f'a[href="{join_url}"]').count() == 1
    journey.check(page)

    text = steps.open_mail(page, site, journey, subject="Confirmed: Video consultation", to=CLIENT_EMAIL)
    assert join_url in text
    reschedule_link = steps.link_in(text, "/reschedule/")
    cancel_link = steps.link_in(text, "/cancel/")

    page.goto(site.at(reschedule_link))
    journey.check(page)
    later = another_time(page, booking.start)
    new_start = parse_start(later.get_attribute("data-start"))
    later.click()
    page.get_by_role("heading", name="Move your booking?").wait_for()
    journey.check(page)
    page.get_by_role("button", name="Move it").click()
    page.get_by_text("Your booking was moved").wait_for()
    booking.refresh_from_db()
    assert (booking.start, booking.sequence) == (new_start, 1)
    assert VideoMeeting.objects.get(booking=booking).join_url == join_url  # the same Zoom meeting, moved
    journey.check(page)

    page.goto(site.at(cancel_link))
    page.get_by_role("heading", name="Cancel this booking?").wait_for()
    journey.check(page)
    page.get_by_role("button", name="Yes, cancel it").click()
    page.get_by_text("This booking was cancelled").wait_for()
    booking.refresh_from_db()
    assert booking.is_cancelled
    journey.check(page)


# --- By keyboard alone --------------------------------------------------------------------------


def tab_until(page, selector: str, *, most: int = 60) -> None:
    """Press Tab until the focused element matches `selector` (a keyboard user reading the page)."""
    for _ in range(most):
        if page.evaluate("s => !!document.activeElement && document.activeElement.matches(s)", selector):
            return
        page.keyboard.press("Tab")
    raise AssertionError(f"{most} presses of Tab never reached {selector}")


def test_a_client_books_with_the_keyboard_alone(site, journey, video_call):
    page = journey.open(booking_page(site, video_call), time_zone="Asia/Tokyo")
    page.wait_for_selector("#booking-slot-list button.slot")
    journey.check(page)

    tab_until(page, "#booking-days button[data-date]")
    today = page.evaluate("() => document.activeElement.dataset.date")
    page.keyboard.press("ArrowRight")
    next_day = page.evaluate("() => document.activeElement.dataset.date")
    assert next_day > today
    page.keyboard.press("Enter")
    page.wait_for_function(
        "d => document.querySelector(`#booking-days button[data-date='${d}']`).getAttribute('aria-pressed') === 'true'",
        arg=next_day,
    )
    tab_until(page, "#booking-slot-list button.slot")
    start = parse_start(page.evaluate("() => document.activeElement.dataset.start"))
    page.keyboard.press("Enter")

    page.wait_for_url(re.compile(r"/book/"))
    journey.check(page)
    tab_until(page, "input[name=name]")
    page.keyboard.type("Kenji Keyboard")
    tab_until(page, "input[name=email]")
    page.keyboard.type("kenji@example.com")
    page.keyboard.press("Enter")
    page.get_by_text("You are booked").wait_for()
    journey.check(page)

    booking = Booking.objects.get()
    assert booking.start == start
    assert booking.start.astimezone(ZoneInfo("Asia/Tokyo")).date().isoformat() == next_day
    assert booking.client_email == "kenji@example.com"


# --- Embedded on another site -----------------------------------------------------------------


@pytest.fixture
def another_site(tmp_path):
    """A web server of its own (another origin than the app's) serving the files put in its folder."""
    handler = partial(SimpleHTTPRequestHandler, directory=str(tmp_path))
    handler.log_message = lambda *args: None
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield tmp_path, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_a_client_books_inside_the_widget_embedded_on_another_origin(site, journey, video_call, another_site):
    folder, origin = another_site
    assert origin != site.url
    snippet = (
        f'<script src="{site.at("/static/js/embed.js")}" data-tsp-url="{booking_page(site, video_call)}" async>'
        "</script>"
    )
    (folder / "index.html").write_text(
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1"><title>Acme — book a call</title>'
        "</head><body><main><h1>Book a call with Acme</h1>"
        f"{snippet}"
        "</main><script>window.scheduled = []; window.heard = [];"
        "window.addEventListener('tsp:event_scheduled', e => window.scheduled.push(e.detail));"
        # Everything the widget tells this page, as the embedding site would see it.
        "window.addEventListener('message', e => window.heard.push(JSON.stringify(e.data)));</script>"
        "</body></html>"
    )
    page = journey.open(origin + "/index.html", time_zone="Europe/Lisbon")
    widget = page.frame_locator("iframe")
    widget.locator("#booking-slot-list button.slot").first.wait_for()
    journey.check(page, frame_selector="iframe")

    widget.locator("#booking-slot-list button.slot").first.click()
    steps.fill_booking_form(widget, name="Ines Iframe", email="ines@example.com")
    widget.get_by_role("button", name="Confirm booking").click()
    widget.get_by_text("You are booked").wait_for()
    journey.check(page, frame_selector="iframe")

    booking = Booking.objects.get()
    assert (booking.client_email, booking.client_time_zone) == ("ines@example.com", "Europe/Lisbon")
    page.wait_for_function("() => window.scheduled.length === 1")
    assert page.evaluate("() => window.scheduled[0].meeting_type") == "video"

    # The embedding site learns that a booking was made, never the client's manage link (which
    # would let it read and cancel the booking) nor who booked.
    heard = page.evaluate("() => window.heard")
    assert any('"page_viewed"' in message for message in heard)
    for message in heard:
        assert booking.manage_token not in message and str(booking.uid) not in message, message
        assert "ines@example.com" not in message and "Ines" not in message, message
