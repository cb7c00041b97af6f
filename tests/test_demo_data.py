from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse

from accounts.management.commands.seed_demo import DEMO_PASSWORD, DEMO_PEOPLE
from integrations import registry
from integrations.calendars import sync
from integrations.models import BusyInterval, Calendar, Connection, VideoMeeting
from integrations.sandbox import google, microsoft, zoom
from meetingtypes.models import MeetingType
from members.models import TeamMember

from .booking_helpers import slots
from .zoom_helpers import book_zoom_meeting, weekday_at

pytestmark = pytest.mark.django_db

ALL_SANDBOXED = ["zoom", "google", "microsoft"]
DEMO_ACCOUNTS = {
    "maya@demo.teamschedulerpro.local": "zoom",
    "leo@demo.teamschedulerpro.local": "google",
    "sam@demo.teamschedulerpro.local": "microsoft",
}


@pytest.fixture(autouse=True)
def _development(settings):
    settings.DEBUG = True  # as under `make run`; pytest-django turns it off
    settings.SANDBOXED_PROVIDERS = []  # as with a real app at every provider, unless a test says otherwise


def _demo_connections() -> dict[str, str]:
    return dict(
        Connection.objects.filter(member__organization__slug="demo").values_list("member__user__email", "provider")
    )


def test_outside_development_seeding_is_refused_and_creates_no_login(settings):
    settings.DEBUG = False

    with pytest.raises(CommandError, match="--force"):
        call_command("seed_demo")

    assert not TeamMember.objects.filter(organization__slug="demo").exists()


def test_outside_development_force_seeds_anyway(settings, capsys):
    settings.DEBUG = False

    call_command("seed_demo", "--force")

    assert TeamMember.objects.filter(organization__slug="demo").count() == 4


def test_the_demo_organization_has_an_admin_and_three_members_whose_logins_work(capsys):
    call_command("seed_demo")
    call_command("seed_demo")  # running it again (every `make run`) is harmless
    printed = capsys.readouterr().out
    members = TeamMember.objects.filter(organization__slug="demo")
    assert members.count() == 4
    assert members.filter(role=TeamMember.Role.ADMIN).count() == 1
    assert len({m.time_zone for m in members}) == 4
    for email, *_ in DEMO_PEOPLE:
        assert email in printed
        client = Client()
        response = client.post(reverse("account_login"), {"login": email, "password": DEMO_PASSWORD})
        assert response.status_code == 302, email
        assert client.get(reverse("members:list")).status_code == 200


def test_the_demo_printout_says_where_emails_go_when_the_outbox_is_on(capsys, settings):
    settings.EMAIL_OUTBOX = True
    settings.SITE_URL = "http://127.0.0.1:8123"
    call_command("seed_demo")
    assert "http://127.0.0.1:8123/dev/outbox/" in capsys.readouterr().out

    settings.EMAIL_OUTBOX = False
    call_command("seed_demo")
    assert "/dev/outbox/" not in capsys.readouterr().out


# ---------------------------------------------------------------- the video fallback chain


@pytest.mark.django_db(transaction=True)
def test_with_sandboxed_providers_the_demo_shows_the_fallback_chain(provider_sandboxes, settings, capsys):
    settings.SANDBOXED_PROVIDERS = ALL_SANDBOXED
    call_command("seed_demo")
    call_command("seed_demo")  # every `make run` seeds again: still one account each, with fresh tokens

    assert _demo_connections() == DEMO_ACCOUNTS
    connections = Connection.objects.filter(member__organization__slug="demo")
    assert all(connection.can_host for connection in connections)
    for connection in connections:  # the stored tokens are the ones the sandbox honours now
        assert registry.get(connection.provider).get_account(connection.access_token).email == connection.email
    printed = capsys.readouterr().out
    assert "maya@demo.teamschedulerpro.local" in printed and "Zoom account in the sandbox" in printed
    workshop = MeetingType.objects.get(organization__slug="demo", slug="team-workshop")
    assert (workshop.location, workshop.assignment) == (MeetingType.Location.ZOOM, MeetingType.Assignment.COLLECTIVE)
    hosts = [link.member.user.email for link in workshop.host_links.order_by("position")]
    assert hosts == ["admin@demo.teamschedulerpro.local", "leo@demo.teamschedulerpro.local"]
    assert MeetingType.objects.filter(organization__slug="demo").count() == 4

    # A client books it: no host has Zoom, so the call is on Leo's Google Meet, made in the sandbox
    # with the tokens the demo stored.
    booking = book_zoom_meeting(workshop, weekday_at(14))

    meeting = VideoMeeting.objects.get(booking=booking)
    assert (meeting.state, meeting.provider, meeting.host.user.email) == (
        VideoMeeting.State.READY,
        "google",
        "leo@demo.teamschedulerpro.local",
    )
    assert meeting.join_url.startswith(google.MEET_HOST)
    assert meeting.provider_label == "Google Meet — Zoom was not available"
    assert not zoom.state_summary()["meetings"] and not microsoft.state_summary()["meetings"]
    # The admins' warning says the same before anyone books.
    admin = Client()
    admin.force_login(TeamMember.objects.get(user__email="admin@demo.teamschedulerpro.local").user)
    page = admin.get(reverse("meetingtypes:list")).content.decode()
    assert "No host has Zoom connected; bookings will use Google Meet." in page


@pytest.mark.parametrize("sandboxed", [[], ["zoom"], ["google", "microsoft"]])
def test_providers_with_a_real_app_get_no_demo_account(settings, sandboxed):
    settings.SANDBOXED_PROVIDERS = sandboxed
    for sandbox in (zoom, google, microsoft):
        sandbox.reset()

    call_command("seed_demo")

    assert _demo_connections() == {email: key for email, key in DEMO_ACCOUNTS.items() if key in sandboxed}
    assert MeetingType.objects.filter(organization__slug="demo", slug="team-workshop").exists()


# ---------------------------------------------------------------- members' own calendars


@pytest.mark.django_db(transaction=True)
def test_with_sandboxed_providers_leo_and_sam_have_calendars_with_a_meeting_the_booking_page_leaves_out(
    provider_sandboxes, settings, capsys
):
    settings.SANDBOXED_PROVIDERS = ALL_SANDBOXED
    call_command("seed_demo")
    call_command("seed_demo")  # every `make run` seeds again: the same calendars and one meeting each

    for email, fake in [("leo@demo.teamschedulerpro.local", google), ("sam@demo.teamschedulerpro.local", microsoft)]:
        calendar = Calendar.objects.get(member__user__email=email)
        assert (calendar.is_primary, calendar.checks_busy, calendar.receives_bookings) == (True, True, True)
        assert len(fake.events_of(email)) == 1
        meeting = BusyInterval.objects.get(calendar=calendar)
        assert meeting.event_id == fake.events_of(email)[0]["id"]
        # The first sync, over HTTP once the site runs, finds the same meeting in the sandbox.
        sync.sync_calendar(calendar.pk)
        assert list(BusyInterval.objects.filter(calendar=calendar).values_list("event_id", "start", "end")) == [
            (meeting.event_id, meeting.start, meeting.end)
        ]
    assert "a meeting in its calendar" in capsys.readouterr().out
    assert not Calendar.objects.filter(member__user__email="maya@demo.teamschedulerpro.local").exists()  # Zoom

    # Leo hosts the Team workshop with the admin: the page doesn't offer his meeting's time that day.
    leos = BusyInterval.objects.get(member__user__email="leo@demo.teamschedulerpro.local")
    workshop = MeetingType.objects.get(organization__slug="demo", slug="team-workshop")
    berlin = ZoneInfo("Europe/Berlin")
    day = leos.start.astimezone(berlin).date()

    def overlapping_the_meeting() -> list[str]:
        offered = slots(Client(), workshop, tz="Europe/Berlin", month=day.strftime("%Y-%m")).get(day.isoformat(), [])
        assert offered, "the hosts' working hours overlap that day"
        starts = {clock: datetime.combine(day, time.fromisoformat(clock), tzinfo=berlin) for clock in offered}
        return [
            clock for clock, start in starts.items() if start < leos.end and leos.start < start + timedelta(minutes=30)
        ]

    assert overlapping_the_meeting() == []
    sync.stop_checking(leos.calendar)  # Leo unticks "Count as busy": his meeting's time is offered again
    assert overlapping_the_meeting() != []
