"""A name is one line of text: a newline, tab or other control character in any name field is
refused with a clear message and nothing is saved.

Names go into email headers (a line break there ends the header: Django then refuses to send the
email at all), into calendar invitations and onto pages.
"""

import pytest
from django.urls import reverse
from django.utils.html import escape

from accounts.models import Organization, User
from bookings.models import Booking
from meetingtypes.models import MeetingType
from members.models import TeamMember

from .booking_helpers import TUESDAY, at, book_via_page, iso, make_meeting_type
from .conftest import PASSWORD

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("frozen_now")]

MESSAGE = "A name can't contain line breaks, tabs or other control characters."


def says_one_line(response) -> bool:
    return escape(MESSAGE) in response.content.decode()


NOT_ONE_LINE = [
    "Casey\nClient",
    "Casey\r\nBcc: everyone@example.com",
    "Casey\tClient",
    "Casey\x1bClient",
    "Casey\x85Client",  # NEL, a line break to some mail software
    "Casey\u2028Client",  # Unicode's line separator
]


@pytest.fixture
def consultation(member):
    return make_meeting_type(member.organization, [member], assignment=MeetingType.Assignment.ONE_PERSON)


@pytest.mark.parametrize("name", NOT_ONE_LINE)
def test_a_client_name_on_two_lines_is_refused_and_nothing_is_booked(client, consultation, name):
    response = book_via_page(client, consultation, iso(at(TUESDAY, "10:00")), name=name)

    assert response.status_code == 400
    assert says_one_line(response)
    assert not Booking.objects.exists()


def test_names_with_accents_apostrophes_and_other_scripts_are_welcome(client, consultation):
    name = "Zoë O'Brien-Nakamura 中村 (ゾーイ)"

    response = book_via_page(client, consultation, iso(at(TUESDAY, "10:00")), name=name)

    assert response.status_code == 302
    assert Booking.objects.get().client_name == name


def test_signing_up_with_a_name_on_two_lines_is_refused(client):
    for field in ("display_name", "organization_name"):
        data = {
            "display_name": "Ada Lovelace",
            "organization_name": "Analytical Engines",
            "email": "ada@example.com",
            "password1": PASSWORD,
            "password2": PASSWORD,
            "time_zone": "UTC",
        }
        data[field] = "Analytical\nEngines"

        response = client.post(reverse("account_signup"), data)

        assert response.status_code == 200
        assert says_one_line(response)
    assert not User.objects.filter(email="ada@example.com").exists()
    assert not Organization.objects.filter(name__startswith="Analytical").exists()


def test_an_admin_cannot_add_or_rename_a_member_with_a_name_on_two_lines(client, login, admin, member):
    login(admin)

    added = client.post(
        reverse("members:create"),
        {"display_name": "New\nPerson", "email": "new@example.com", "role": "member", "time_zone": "UTC"},
    )
    renamed = client.post(
        reverse("members:edit", args=[member.pk]),
        {"display_name": "Maya\r\nMember", "role": "member", "time_zone": "UTC"},
    )

    assert says_one_line(added) and says_one_line(renamed)
    assert not TeamMember.objects.filter(user__email="new@example.com").exists()
    member.refresh_from_db()
    assert member.display_name == "Maya Member"


def test_a_member_cannot_give_themselves_a_name_on_two_lines(client, login, member):
    login(member)

    response = client.post(reverse("members:profile"), {"display_name": "Maya\tMember", "time_zone": "UTC"})

    assert says_one_line(response)
    member.refresh_from_db()
    assert member.display_name == "Maya Member"


def test_an_organization_name_on_two_lines_is_refused(client, login, admin, organization):
    login(admin)

    response = client.post(reverse("organization:settings"), {"name": "Acme\nConsulting", "accent_color": ""})

    assert says_one_line(response)
    organization.refresh_from_db()
    assert organization.name == "Acme Consulting"


def test_a_meeting_type_name_on_two_lines_is_refused(client, login, admin, member):
    login(admin)

    response = client.post(
        reverse("meetingtypes:create"),
        {
            "name": "Discovery\ncall",
            "slug": "discovery",
            "description": "Two lines\nare fine in a description.",
            "duration_minutes": "30",
            "location": "phone",
            "location_detail": "+1 555 0100",
            "assignment": "round_robin",
            "hosts": [member.pk],
            "buffer_before_minutes": "0",
            "buffer_after_minutes": "0",
            "minimum_notice_minutes": "0",
            "booking_window_days": "30",
            "is_active": "on",
        },
    )

    assert response.status_code == 200
    assert response.context["form"].errors == {"name": [MESSAGE]}
    assert not MeetingType.objects.exists()
