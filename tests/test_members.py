"""Admins manage members; members manage only themselves; deactivation ends access at once."""

import pytest
from django.test import Client
from django.urls import reverse

from members.models import TeamMember

from .conftest import PASSWORD

pytestmark = pytest.mark.django_db


def test_admin_edits_a_members_name_role_and_time_zone(client, login, admin, member):
    login(admin)
    response = client.post(
        reverse("members:edit", args=[member.pk]),
        {"display_name": "Maya P.", "role": "admin", "time_zone": "Europe/Paris"},
    )
    assert response.status_code == 302
    member.refresh_from_db()
    assert (member.display_name, member.role, member.time_zone) == ("Maya P.", "admin", "Europe/Paris")


def test_the_last_admin_cannot_step_down_or_be_deactivated(client, login, admin):
    login(admin)
    response = client.post(
        reverse("members:edit", args=[admin.pk]),
        {"display_name": admin.display_name, "role": "member", "time_zone": admin.time_zone},
    )
    assert response.status_code == 200
    assert "at least one admin" in response.content.decode()
    client.post(reverse("members:deactivate", args=[admin.pk]))
    admin.refresh_from_db()
    assert admin.role == TeamMember.Role.ADMIN and admin.is_active


def test_a_deactivated_members_session_ends_and_they_cannot_log_in_again(client, login, admin, member):
    member_browser = Client()
    assert (
        member_browser.post(reverse("account_login"), {"login": member.user.email, "password": PASSWORD}).status_code
        == 302
    )
    assert member_browser.get(reverse("members:list")).status_code == 200

    login(admin)
    assert client.post(reverse("members:deactivate", args=[member.pk])).status_code == 302
    member.refresh_from_db()
    assert not member.is_active

    # The session they still hold no longer works...
    response = member_browser.get(reverse("members:list"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_login"))
    # ...and logging in again is refused.
    fresh = Client()
    fresh.post(reverse("account_login"), {"login": member.user.email, "password": PASSWORD})
    assert fresh.get(reverse("members:list")).status_code == 302

    # Other members no longer see their card; admins see it marked as deactivated.
    page = client.get(reverse("members:list")).content.decode()
    assert "Deactivated" in page and member.display_name in page


def test_a_reactivated_member_can_log_in_again(client, login, admin, member):
    login(admin)
    client.post(reverse("members:deactivate", args=[member.pk]))
    client.post(reverse("members:reactivate", args=[member.pk]))
    fresh = Client()
    assert fresh.post(reverse("account_login"), {"login": member.user.email, "password": PASSWORD}).status_code == 302
    assert fresh.get(reverse("members:list")).status_code == 200


def test_members_do_not_see_deactivated_colleagues(client, login, admin, member, other_member):
    login(admin)
    client.post(reverse("members:deactivate", args=[other_member.pk]))
    colleague = Client()
    colleague.force_login(member.user)
    page = colleague.get(reverse("members:list")).content.decode()
    assert member.display_name in page
    assert other_member.display_name not in page


def test_a_member_edits_their_own_name_and_time_zone(client, login, member):
    login(member)
    response = client.post(reverse("members:profile"), {"display_name": "Maya Patel", "time_zone": "Europe/Rome"})
    assert response.status_code == 302
    member.refresh_from_db()
    assert (member.display_name, member.time_zone, member.role) == ("Maya Patel", "Europe/Rome", "member")


def test_a_member_cannot_promote_themselves_through_the_profile(client, login, member):
    login(member)
    client.post(reverse("members:profile"), {"display_name": "Maya", "time_zone": "UTC", "role": "admin"})
    member.refresh_from_db()
    assert member.role == TeamMember.Role.MEMBER


def test_the_team_page_lists_only_the_viewers_organization(client, login, member, other_member, outsider):
    login(member)
    page = client.get(reverse("members:list")).content.decode()
    assert other_member.display_name in page
    assert outsider.display_name not in page
    assert outsider.user.email not in page


def test_the_team_page_is_a_constant_number_of_queries(client, login, admin, make_member, django_assert_num_queries):
    login(admin)
    client.get(reverse("members:list"))  # warm up (session, content types)
    # session, user, membership, the members themselves, their Zoom connections
    with django_assert_num_queries(5) as few:
        client.get(reverse("members:list"))
    for _ in range(12):
        make_member(admin.organization)
    with django_assert_num_queries(len(few.captured_queries)):
        response = client.get(reverse("members:list"))
    assert response.content.decode().count('class="card member-card') == 13
