"""Google Meet as the fallback, in a real browser: a member connects Google on her card; a client
books a collective Zoom type none of whose hosts has Zoom, and gets a Meet link on the
confirmation, in both emails and in the invitation."""

import re

import pytest
from django.urls import reverse

from bookings.models import Booking
from integrations.models import Connection, VideoMeeting
from meetingtypes.models import MeetingType
from tests.booking_helpers import make_meeting_type, work_every_day

from . import steps

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

GOOGLE_EMAIL = "maya@gmail.example"
CLIENT_EMAIL = "carla@example.com"
MEET_LINK = re.compile(r"https://meet\.google\.sandbox\.invalid/[a-z]{3}-[a-z]{4}-[a-z]{3}")


@pytest.fixture
def team_call(site, member, other_member):
    """A collective Zoom meeting type: neither host has Zoom connected."""
    for host in (member, other_member):
        work_every_day(host)
    return make_meeting_type(
        member.organization,
        [member, other_member],
        name="Team call",
        slug="team-call",
        minimum_notice_minutes=60,
        location=MeetingType.Location.ZOOM,
        location_detail="",
        assignment=MeetingType.Assignment.COLLECTIVE,
    )


def test_a_member_connects_google_and_a_collective_booking_without_zoom_gets_a_meet_link(
    site, journey, member, other_member, team_call
):
    page = journey.open(time_zone="Asia/Kolkata")
    page.goto(site.at(reverse("account_login")))
    journey.check(page)
    steps.log_in(page, email=member.user.email)
    page.goto(site.at(reverse("members:list")))
    card = steps.own_card(page)
    google_row = card.locator(".integration[data-provider=google]")
    assert google_row.get_by_text("Not connected").count() == 1
    journey.check(page)

    google_row.get_by_role("button", name="Connect Google").click()
    page.wait_for_url(re.compile(r"/sandbox/google/o/oauth2/v2/auth"))
    steps.allow_on_provider(page, account_email=GOOGLE_EMAIL)
    page.wait_for_url(re.compile(re.escape(reverse("members:list"))))
    assert google_row.get_by_text(f"Google connected · {GOOGLE_EMAIL}").count() == 1
    assert Connection.objects.get(member=member, provider="google").email == GOOGLE_EMAIL
    journey.check(page)

    client = journey.open(
        site.at(reverse("bookings:public_page", args=[member.organization.slug, team_call.slug])),
        time_zone="America/Chicago",
        locale="en-US",
    )
    slot = steps.first_free_time(client)
    journey.check(client)
    slot.click()
    steps.fill_booking_form(client, name="Carla Client", email=CLIENT_EMAIL)
    journey.check(client)
    client.get_by_role("button", name="Confirm booking").click()
    client.get_by_text("You are booked").wait_for()
    booking = Booking.objects.get()
    meeting = VideoMeeting.objects.get(booking=booking)
    assert (meeting.provider, meeting.host_id) == ("google", member.pk)
    assert MEET_LINK.fullmatch(meeting.join_url), meeting.join_url
    assert client.locator(f'a[href="{meeting.join_url}"]').count() == 1
    assert client.get_by_text("Google Meet — Zoom was not available").count() >= 1
    journey.check(client)

    invitation = client.request.get(site.at(booking.manage_url() + "invite.ics"))
    assert invitation.ok and meeting.join_url in invitation.text().replace("\r\n ", "")

    for recipient in (CLIENT_EMAIL, member.user.email, other_member.user.email):
        text = steps.open_mail(client, site, journey, subject="Team call", to=recipient)
        assert meeting.join_url in text, recipient
        assert "Google Meet — Zoom was not available" in text
