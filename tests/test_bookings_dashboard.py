"""The team's Bookings page (Upcoming / Past / Cancelled) and a host giving a booking its video link.

The clock stands at NOW, Monday 2026-12-07 06:00 UTC. What follows a booking change (video step,
emails) runs in-process once the transaction commits; emails land in mail.outbox.
"""

from datetime import date, timedelta

import pytest
from django.core import mail
from django.urls import reverse
from icalendar import Calendar

from bookings import services
from bookings.models import Booking, EmailDelivery
from integrations.models import VideoMeeting
from meetingtypes.models import MeetingType

from .booking_helpers import (
    TUESDAY,
    WEDNESDAY,
    at,
    book_through_service,
    make_booking,
    make_meeting_type,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("frozen_now")]

JOIN_URL = "https://meet.example.com/abc-defg-hij"


def _page(client, viewer, **params) -> str:
    client.force_login(viewer.user)
    response = client.get(reverse("bookings:list"), params)
    assert response.status_code == 200
    return response.content.decode()


def _rows(page: str) -> int:
    return page.count('<tr id="booking-')


# ---------------------------------------------------------------- tabs


@pytest.fixture
def three_kinds(admin, member):
    """An upcoming, a past and a cancelled upcoming booking hosted by `member`."""
    meeting_type = make_meeting_type(admin.organization, [member], name="Consultation")
    upcoming = make_booking(meeting_type, [member], at(TUESDAY, "10:00"), client_name="Uma Upcoming")
    past = make_booking(meeting_type, [member], at(date(2026, 12, 1), "10:00"), client_name="Paula Past")
    cancelled = make_booking(meeting_type, [member], at(WEDNESDAY, "10:00"), client_name="Carl Cancelled")
    services.cancel(booking=cancelled)
    return {"upcoming": upcoming, "past": past, "cancelled": cancelled}


def test_cancelled_bookings_have_their_own_tab_and_are_no_longer_under_upcoming(client, admin, three_kinds):
    upcoming = _page(client, admin)
    assert "Uma Upcoming" in upcoming
    assert "Carl Cancelled" not in upcoming and "Paula Past" not in upcoming

    past = _page(client, admin, when="past")
    assert "Paula Past" in past and "Carl Cancelled" not in past and "Uma Upcoming" not in past

    assert "{#" not in upcoming and "{% comment" not in upcoming
    cancelled = _page(client, admin, when="cancelled")
    assert "Carl Cancelled" in cancelled and "Uma Upcoming" not in cancelled and "Paula Past" not in cancelled
    assert 'aria-current="page">Cancelled' in cancelled
    assert "/cancel/" not in cancelled  # nothing left to cancel


def test_each_tab_shows_how_many_bookings_it_holds(client, admin, member, three_kinds):
    page = _page(client, admin)
    assert 'href="?when=upcoming" aria-current="page">Upcoming <span class="tab-count">1</span>' in page
    assert 'href="?when=past" >Past <span class="tab-count">1</span>' in page
    assert 'href="?when=cancelled" >Cancelled <span class="tab-count">1</span>' in page


def test_a_member_counts_and_sees_only_the_bookings_they_host(client, admin, member, other_member, three_kinds):
    other_type = make_meeting_type(admin.organization, [other_member], name="Other")
    make_booking(other_type, [other_member], at(TUESDAY, "12:00"), client_name="Olga Other")
    page = _page(client, other_member)
    assert "Olga Other" in page and "Uma Upcoming" not in page
    assert '<span class="tab-count">1</span>' in page and page.count('<span class="tab-count">0</span>') == 2
    assert "Olga Other" in _page(client, admin)


def test_an_unknown_tab_shows_upcoming(client, admin, three_kinds):
    page = _page(client, admin, when="everything")
    assert "Uma Upcoming" in page and "Carl Cancelled" not in page


def test_an_empty_tab_says_so(client, admin, member):
    assert "No cancelled bookings." in _page(client, admin, when="cancelled")


def test_the_cancelled_tab_pages_latest_first(client, admin, member):
    meeting_type = make_meeting_type(admin.organization, [member])
    for n in range(30):
        start = at(TUESDAY, "09:00") + timedelta(hours=n)
        booking = make_booking(meeting_type, [member], start, client_name=f"C{n:02d}")
        services.cancel(booking=booking)
    first = _page(client, admin, when="cancelled")
    assert _rows(first) == 25
    assert first.index("C29") < first.index("C05") and "C04" not in first
    assert "?when=cancelled&amp;page=2" in first
    assert _rows(_page(client, admin, when="cancelled", page=2)) == 5


def test_cancelling_from_the_cancelled_or_past_tab_comes_back_to_it(client, admin, member, three_kinds):
    client.force_login(admin.user)
    url = reverse("bookings:staff_cancel", args=[three_kinds["upcoming"].pk])
    assert client.post(url, {"when": "cancelled"})["Location"] == reverse("bookings:list") + "?when=cancelled"
    assert client.post(url, {"when": "nonsense"})["Location"] == reverse("bookings:list")


@pytest.mark.parametrize("tab", ["upcoming", "past", "cancelled"])
def test_every_tab_is_a_bounded_number_of_queries(
    client, admin, member, other_member, tab, django_assert_max_num_queries
):
    zoom = make_meeting_type(admin.organization, [member, other_member], location=MeetingType.Location.ZOOM)
    for n in range(40):
        start = at(TUESDAY if n % 2 else date(2026, 12, 1), "09:00") + timedelta(hours=n)
        booking = make_booking(zoom, [member, other_member][: 1 + n % 2], start, client_name=f"Client {n}")
        VideoMeeting.objects.create(booking=booking, provider="zoom", host=member, state="ready", join_url=JOIN_URL)
        EmailDelivery.objects.create(
            booking=booking, kind="created", sequence=0, recipient="x@example.com", state="failed"
        )
        if n % 3 == 0:
            Booking.objects.filter(pk=booking.pk).update(status=Booking.Status.CANCELLED)
    client.force_login(admin.user)
    # Session, user, member; the tab counts; the page count and the page with its hosts and
    # failed emails: the same whatever the number of bookings on the page.
    with django_assert_max_num_queries(8):
        response = client.get(reverse("bookings:list"), {"when": tab})
    assert response.status_code == 200
    assert _rows(response.content.decode()) > 5


# ---------------------------------------------------------------- the video link


def zoom_type(organization, hosts, **overrides) -> MeetingType:
    fields = {"name": "Strategy session", "location": MeetingType.Location.ZOOM, "location_detail": ""}
    return make_meeting_type(organization, hosts, **{**fields, **overrides})


@pytest.fixture
def linkless(committed, member):
    """A Zoom booking whose meeting could not be made (the host has no Zoom connected)."""
    meeting_type = zoom_type(member.organization, [member])
    booking = committed(
        book_through_service, meeting_type=meeting_type, start=at(TUESDAY, "10:00"), email="casey@example.com"
    )
    assert booking.video_meeting.state == VideoMeeting.State.FAILED
    mail.outbox.clear()
    return booking


def _set_link(client, viewer, booking, captured, **data):
    client.force_login(viewer.user)
    with captured(execute=True):
        return client.post(reverse("bookings:video_link", args=[booking.pk]), {"passcode": "", **data})


def _event(message):
    (ics,) = [content for name, content, _mimetype in message.attachments if name == "invite.ics"]
    calendar = Calendar.from_ical(ics)
    (event,) = calendar.walk("VEVENT")
    return str(calendar["METHOD"]), event


def test_a_host_adds_the_missing_video_link_and_everyone_gets_an_updated_invitation(
    client, member, linkless, django_capture_on_commit_callbacks
):
    page = _page(client, member)
    assert "No video link — please send one" in page and "Add video link" in page

    response = _set_link(
        client, member, linkless, django_capture_on_commit_callbacks, join_url=JOIN_URL, passcode="4711"
    )
    assert response.status_code == 302 and response["Location"].startswith(reverse("bookings:list"))

    linkless.refresh_from_db()
    meeting = linkless.video_meeting
    assert (meeting.provider, meeting.state) == ("manual", "ready")
    assert (meeting.join_url, meeting.passcode) == (JOIN_URL, "4711")
    assert meeting.host == member and linkless.sequence == 1
    # Once each: the client and the host.
    assert sorted(message.to[0] for message in mail.outbox) == sorted(["casey@example.com", member.user.email])
    for message in mail.outbox:
        assert message.subject.startswith("New video link: Strategy session on ")
        assert "This meeting has a new video link." in message.body
        assert JOIN_URL in message.body and "4711" in message.body
        method, event = _event(message)
        assert method == "REQUEST"
        assert str(event["UID"]) == f"{linkless.uid}@teamschedulerpro" and event["SEQUENCE"] == 1
        assert str(event["LOCATION"]) == JOIN_URL and str(event["URL"]) == JOIN_URL
        assert event.decoded("DTSTART") == at(TUESDAY, "10:00")
    assert f"Link added by {member.display_name}." in [m for m in mail.outbox if m.to == [member.user.email]][0].body
    assert set(EmailDelivery.objects.filter(kind="link_changed").values_list("recipient", "sequence", "state")) == {
        ("casey@example.com", 1, "sent"),
        (member.user.email, 1, "sent"),
    }

    # The dashboard and the client's page show it.
    page = _page(client, member)
    assert f'href="{JOIN_URL}"' in page and "Change video link" in page and f"added by {member.display_name}" in page
    client.logout()
    manage = client.get(linkless.manage_url()).content.decode()
    assert f'href="{JOIN_URL}"' in manage and "Your host will send you the link" not in manage


def test_the_follow_up_of_a_link_change_run_twice_sends_nothing_twice(
    client, member, linkless, django_capture_on_commit_callbacks
):
    from bookings.tasks import booking_changed

    _set_link(client, member, linkless, django_capture_on_commit_callbacks, join_url=JOIN_URL)
    assert len(mail.outbox) == 2
    booking_changed.delay(linkless.pk, "link_changed", 1, None, [])
    assert len(mail.outbox) == 2


def test_an_admin_replaces_a_working_link(client, admin, member, linkless, django_capture_on_commit_callbacks):
    _set_link(client, member, linkless, django_capture_on_commit_callbacks, join_url=JOIN_URL)
    mail.outbox.clear()
    other = "https://meet.example.com/second-room"
    _set_link(client, admin, linkless, django_capture_on_commit_callbacks, join_url=other)
    linkless.refresh_from_db()
    assert linkless.video_meeting.join_url == other and linkless.video_meeting.host == admin
    assert linkless.sequence == 2
    assert len(mail.outbox) == 2 and all(_event(message)[1]["SEQUENCE"] == 2 for message in mail.outbox)


def test_a_typed_link_stays_with_the_booking_when_it_is_moved_and_is_let_go_on_cancel(
    client, committed, member, linkless, django_capture_on_commit_callbacks
):
    _set_link(client, member, linkless, django_capture_on_commit_callbacks, join_url=JOIN_URL)
    mail.outbox.clear()
    moved = committed(services.reschedule, booking=linkless, start=at(WEDNESDAY, "11:00"))
    assert moved.video_meeting.join_url == JOIN_URL and moved.video_meeting.state == VideoMeeting.State.READY
    assert all(JOIN_URL in message.body for message in mail.outbox)
    assert not [message for message in mail.outbox if message.subject.startswith("Action needed")]
    cancelled = committed(services.cancel, booking=moved)
    assert cancelled.video_meeting.state == VideoMeeting.State.DELETED


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"join_url": ""}, "This field is required."),
        ({"join_url": "http://meet.example.com/abc"}, "Enter an https:// link."),
        ({"join_url": "javascript:alert(1)"}, "Enter a valid https:// link."),
        ({"join_url": "ftp://meet.example.com/abc"}, "Enter an https:// link."),
        ({"join_url": "https://user:secret@meet.example.com/abc"}, "must not contain a user name or password"),
        ({"join_url": "https://meet.example.com/" + "a" * 500}, "at most 500 characters"),
        ({"join_url": JOIN_URL, "passcode": "x" * 65}, "at most 64 characters"),
        ({"join_url": JOIN_URL, "passcode": "12\n34"}, "printable characters"),
    ],
    ids=["empty", "http", "javascript", "ftp", "credentials", "too-long", "long-passcode", "control-characters"],
)
def test_a_bad_link_is_refused_with_a_clear_error_and_changes_nothing(
    client, member, linkless, data, message, django_capture_on_commit_callbacks
):
    response = _set_link(client, member, linkless, django_capture_on_commit_callbacks, **data)
    assert response.status_code == 400
    assert message in response.content.decode()
    linkless.refresh_from_db()
    assert linkless.sequence == 0 and linkless.video_meeting.state == VideoMeeting.State.FAILED
    assert mail.outbox == []


def test_a_link_is_refused_for_a_cancelled_booking_or_a_meeting_not_on_video(
    client, admin, member, linkless, django_capture_on_commit_callbacks
):
    services.cancel(booking=linkless)
    mail.outbox.clear()
    response = _set_link(client, member, linkless, django_capture_on_commit_callbacks, join_url=JOIN_URL)
    assert response.status_code == 400 and "This booking was cancelled." in response.content.decode()

    phone = make_meeting_type(admin.organization, [member], name="Phone", location=MeetingType.Location.PHONE)
    call = make_booking(phone, [member], at(TUESDAY, "14:00"))
    response = _set_link(client, member, call, django_capture_on_commit_callbacks, join_url=JOIN_URL)
    assert response.status_code == 400 and "not a video meeting" in response.content.decode()
    assert not VideoMeeting.objects.filter(booking=call).exists()
    assert mail.outbox == []


def test_a_link_is_not_typed_over_a_meeting_being_created_right_now(
    client, member, linkless, django_capture_on_commit_callbacks
):
    from django.utils import timezone

    VideoMeeting.objects.filter(booking=linkless).update(state="creating", claimed_at=timezone.now())
    response = _set_link(client, member, linkless, django_capture_on_commit_callbacks, join_url=JOIN_URL)
    assert response.status_code == 400 and "being created right now" in response.content.decode()
    assert Booking.objects.get(pk=linkless.pk).sequence == 0


def test_another_member_cannot_see_or_change_the_link(
    client, other_member, linkless, django_capture_on_commit_callbacks
):
    client.force_login(other_member.user)
    assert client.get(reverse("bookings:video_link", args=[linkless.pk])).status_code == 404
    response = _set_link(client, other_member, linkless, django_capture_on_commit_callbacks, join_url=JOIN_URL)
    assert response.status_code == 404
    assert VideoMeeting.objects.get(booking=linkless).join_url == ""
