"""Who can reach which URL: every URL of the app, for every kind of visitor.

Roles:
- anonymous: not logged in
- outsider: an admin of ANOTHER organization (must get 404 for anything of ours)
- owner: the member the URL is about (for member URLs), or any member for pages about oneself
- other: another (non-admin) member of the same organization
- admin: an admin of the same organization

Every named URL must appear in MATRIX or in PUBLIC (checked by test_every_url_is_in_the_matrix),
so a new view without a permission decision fails the suite.
"""

from dataclasses import dataclass, field, replace
from datetime import date, timedelta

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils import timezone

from accounts.models import Organization
from bookings.models import Booking, BookingHost
from integrations import registry
from integrations.models import VideoMeeting
from meetingtypes.models import MeetingType, MeetingTypeHost
from members.models import DateOverride, WorkingHours

ROLES = ("anonymous", "outsider", "owner", "other", "admin")
LOGIN = "login"  # expected: redirect to the login page


@dataclass
class Row:
    name: str
    method: str
    expected: dict[str, int | str]
    args: tuple = ()
    data: dict = field(default_factory=dict)

    def __or__(self, changes: dict) -> "Row":
        return replace(self, **changes)


def _about_target(name: str, method: str, admin_status: int, *, owner_status: int = 403, args=("target",), data=None):
    """A URL naming an object of our organization: outsiders get 404 whatever their role there."""
    return Row(
        name,
        method,
        {"anonymous": LOGIN, "outsider": 404, "owner": owner_status, "other": 403, "admin": admin_status},
        args=args,
        data=data or {},
    )


def _everyone_signed_in(name: str, method: str, status: int, data=None) -> Row:
    """Pages about the viewer themself (or their own organization's lists)."""
    return Row(
        name,
        method,
        {"anonymous": LOGIN, "outsider": status, "owner": status, "other": status, "admin": status},
        data=data or {},
    )


MEETING_TYPE_DATA = {
    "name": "Changed",
    "slug": "changed",
    "duration_minutes": 30,
    "location": "phone",
    "location_detail": "+1 555 0100",
    "assignment": "round_robin",
    "buffer_before_minutes": 0,
    "buffer_after_minutes": 0,
    "minimum_notice_minutes": 0,
    "booking_window_days": 30,
}


def provider_rows(provider) -> list[Row]:
    """The URLs every video provider gets. Connect and disconnect act on the viewer's own card
    only: no URL names another member."""
    key = (provider.key,)
    return [
        _everyone_signed_in("integrations:connect", "post", 302) | {"args": key},
        _everyone_signed_in("integrations:disconnect", "post", 302) | {"args": key},
        # The confirmation before disconnecting; with nothing connected it sends the viewer back to their card.
        _everyone_signed_in("integrations:disconnect_confirm", "get", 302) | {"args": key},
        # Without a state from a flow this session started, the callback refuses and stores nothing.
        _everyone_signed_in("integrations:callback", "get", 403) | {"args": key},
    ]


MATRIX: list[Row] = [
    _everyone_signed_in("members:list", "get", 200),
    Row("members:create", "get", {"anonymous": LOGIN, "outsider": 200, "owner": 403, "other": 403, "admin": 200}),
    _everyone_signed_in("members:profile", "get", 200),
    _everyone_signed_in(
        "members:weekly_hours", "post", 302, data={"day_0_available": "on", "day_0_start": "9:00", "day_0_end": "12:00"}
    ),
    _everyone_signed_in("members:date_override_add", "post", 302, data={"date": "2031-01-02", "hours_kind": "off"}),
    # Only the owner has an override on that date: nobody can remove another member's.
    Row(
        "members:date_override_remove",
        "post",
        {"anonymous": LOGIN, "outsider": 404, "owner": 302, "other": 404, "admin": 404},
        args=("2031-01-01",),
    ),
    _about_target("members:edit", "get", 200),
    _about_target("members:edit", "post", 302, data={"display_name": "X", "role": "member", "time_zone": "UTC"}),
    _about_target("members:deactivate", "post", 302),
    _about_target("members:reactivate", "post", 302),
    _about_target("members:resend_invitation", "post", 302),
    _everyone_signed_in("meetingtypes:list", "get", 200),
    Row("meetingtypes:create", "get", {"anonymous": LOGIN, "outsider": 200, "owner": 403, "other": 403, "admin": 200}),
    _about_target("meetingtypes:edit", "get", 200, args=("meeting_type",)),
    _about_target("meetingtypes:edit", "post", 200, args=("meeting_type",), data=MEETING_TYPE_DATA),
    _about_target("meetingtypes:toggle", "post", 302, args=("meeting_type",)),
    _about_target("meetingtypes:host_up", "post", 302, args=("meeting_type", "target")),
    _everyone_signed_in("bookings:list", "get", 200),
    # An outsider is an admin too: of their own organization, which is the only one the page shows.
    Row(
        "organization:settings",
        "get",
        {"anonymous": LOGIN, "outsider": 200, "owner": 403, "other": 403, "admin": 200},
    ),
    Row(
        "organization:settings",
        "post",
        {"anonymous": LOGIN, "outsider": 302, "owner": 403, "other": 403, "admin": 302},
        data={"name": "Renamed", "accent_color": "#1d4ed8"},
    ),
    Row(
        "bookings:staff_cancel",
        "post",
        {"anonymous": LOGIN, "outsider": 404, "owner": 302, "other": 404, "admin": 302},
        args=("booking",),
    ),
    # Sending again what failed for a booking: admins only (members see no failures to act on).
    Row(
        "bookings:resend",
        "post",
        {"anonymous": LOGIN, "outsider": 404, "owner": 403, "other": 403, "admin": 302},
        args=("booking",),
    ),
    # The video link of a booking: its hosts and the admins; other members don't see the booking.
    Row(
        "bookings:video_link",
        "get",
        {"anonymous": LOGIN, "outsider": 404, "owner": 200, "other": 404, "admin": 200},
        args=("video_booking",),
    ),
    Row(
        "bookings:video_link",
        "post",
        {"anonymous": LOGIN, "outsider": 404, "owner": 302, "other": 404, "admin": 302},
        args=("video_booking",),
        data={"join_url": "https://meet.example.com/new-room", "passcode": ""},
    ),
]

MATRIX += [row for provider in registry.all_providers() for row in provider_rows(provider)]
# The viewer's own calendar choices, like Connect: no URL names another member or their calendars
# (naming a colleague's calendar in the form is refused: tests/test_calendar_card.py).
MATRIX += [
    _everyone_signed_in("integrations:calendar_choices", "post", 302),
    *[
        _everyone_signed_in("integrations:refresh_calendars", "post", 302) | {"args": (provider.key,)}
        for provider in registry.all_providers()
    ],
]

# Reachable by everyone, by design: health, redirects, and the client's pages, which are guarded
# by unguessable links (tested in test_invitations and test_booking_flow).
PUBLIC = {
    "healthz",
    "home",
    "dashboard",
    "members:accept_invitation",
    "bookings:organization",
    "bookings:public_page",
    "bookings:slots",
    "bookings:book",
    "bookings:manage",
    "bookings:cancel",
    "bookings:reschedule",
    "bookings:reschedule_slots",
    "bookings:reschedule_confirm",
    "bookings:calendar_file",
    "integrations:zoom_webhook",  # signed by Zoom (tests/test_zoom_integration.py)
    "integrations:google_calendar_push",  # checked by the channel's token (tests/test_calendar_push.py)
    "integrations:microsoft_calendar_push",  # checked by the clientState (tests/test_calendar_push.py)
    "help:zoom",
    "help:google",
    "help:microsoft",
    "help:support",
    "favicon",
    "organization:logo",  # a current logo by its random name, shown on public booking pages (test_branding)
}


def _all_url_names() -> set[str]:
    names: set[str] = set()

    def walk(patterns, namespace=""):
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                if pattern.app_name and pattern.app_name.startswith(("account", "allauth")):
                    continue  # django-allauth's own views: login, logout, reset, confirmation
                if pattern.app_name in ("zoom_sandbox", "google_sandbox", "microsoft_sandbox", "outbox"):
                    continue  # development only: the fake Zoom and the email outbox (tested on their own)
                ns = f"{namespace}{pattern.namespace}:" if pattern.namespace else namespace
                walk(pattern.url_patterns, ns)
            elif isinstance(pattern, URLPattern) and pattern.name and not pattern.name.startswith("account_"):
                names.add(namespace + pattern.name)

    walk(get_resolver().url_patterns)
    return names


def test_every_url_is_in_the_matrix():
    covered = {row.name for row in MATRIX} | PUBLIC
    assert _all_url_names() - covered == set()


@pytest.fixture
def people(admin, member, other_member, outsider):
    return {"anonymous": None, "outsider": outsider, "owner": member, "other": other_member, "admin": admin}


@pytest.fixture
def objects(people):
    """Objects of our organization that the URLs name; `owner` hosts them."""
    owner, other = people["owner"], people["other"]
    meeting_type = MeetingType.objects.create(
        organization=owner.organization, name="Intro", slug="intro", location="phone", location_detail="+1 555"
    )
    MeetingTypeHost.objects.create(meeting_type=meeting_type, member=other, position=0)
    MeetingTypeHost.objects.create(meeting_type=meeting_type, member=owner, position=1)
    start = timezone.now() + timedelta(days=7)
    booking = Booking.objects.create(
        organization=owner.organization,
        meeting_type=meeting_type,
        start=start,
        end=start + timedelta(minutes=30),
        client_name="Client",
        client_email="client@example.com",
        client_time_zone="UTC",
    )
    BookingHost.objects.create(booking=booking, member=owner, occupied_start=booking.start, occupied_end=booking.end)
    DateOverride.objects.create(member=owner, date=date(2031, 1, 1))
    video_type = MeetingType.objects.create(
        organization=owner.organization, name="Video", slug="video", location=MeetingType.Location.ZOOM
    )
    video_booking = Booking.objects.create(
        organization=owner.organization,
        meeting_type=video_type,
        start=start + timedelta(hours=1),
        end=start + timedelta(hours=1, minutes=30),
        client_name="Client",
        client_email="client@example.com",
        client_time_zone="UTC",
    )
    BookingHost.objects.create(
        booking=video_booking, member=owner, occupied_start=video_booking.start, occupied_end=video_booking.end
    )
    return {"target": owner, "meeting_type": meeting_type, "booking": booking, "video_booking": video_booking}


def _snapshot(objects) -> tuple:
    member, meeting_type, booking = objects["target"], objects["meeting_type"], objects["booking"]
    member.refresh_from_db()
    meeting_type.refresh_from_db()
    booking.refresh_from_db()
    return (
        member.is_active,
        member.display_name,
        meeting_type.name,
        meeting_type.is_active,
        list(meeting_type.host_links.values_list("member_id", flat=True)),
        booking.status,
        DateOverride.objects.filter(member=member).count(),
        list(WorkingHours.objects.filter(member=member).values_list("weekday", "start", "end")),
        Organization.objects.values_list("name", "accent_color").get(pk=member.organization_id),
        list(Booking.objects.order_by("pk").values_list("pk", "sequence")),
        list(VideoMeeting.objects.order_by("pk").values_list("booking_id", "join_url")),
    )


@pytest.mark.django_db
@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("row", MATRIX, ids=lambda row: f"{row.method}-{row.name}-{'-'.join(map(str, row.args))}")
def test_permission_matrix(row: Row, role: str, people, objects):
    check_row(row, role, people, objects)


def check_row(row: Row, role: str, people, objects):
    client = Client()
    if people[role] is not None:
        client.force_login(people[role].user)
    args = [objects[arg].pk if arg in objects else arg for arg in row.args]
    url = reverse(row.name, args=args)
    before = _snapshot(objects)
    response = getattr(client, row.method)(url, row.data)
    expected = row.expected[role]
    # `no-referrer` makes Chromium post forms with `Origin: null`, which the CSRF check refuses.
    assert response.get("Referrer-Policy") != "no-referrer", url
    if expected == LOGIN:
        assert response.status_code == 302, (role, url)
        assert response["Location"].startswith(reverse("account_login")), response["Location"]
    else:
        assert response.status_code == expected, (role, url, response.status_code)
    if row.method == "post" and expected in (404, 403, LOGIN):
        assert _snapshot(objects) == before, "a refused request changed nothing"
