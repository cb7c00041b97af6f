"""The team member of the user guide, in a real browser: from the invitation to Zoom connected and
disconnected again, and Zoom's own "Remove app" seen on their card."""

import re

import pytest
from django.urls import reverse

from integrations.models import Connection
from members import services as member_services
from members.models import TeamMember

from . import steps

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ZOOM_EMAIL = "nina.zoom@example.com"


@pytest.fixture
def invited(admin, site) -> TeamMember:
    """Nina, added by the admin: her invitation is in the outbox."""
    return member_services.create_member(
        organization=admin.organization,
        display_name="Nina New",
        email="nina@example.com",
        role=TeamMember.Role.MEMBER,
        time_zone="Europe/Paris",
        invited_by=admin,
    )


def _zoom_badge(card):
    return card.locator(".integration[data-provider=zoom]")


def _connect_zoom(page, journey, site) -> None:
    """On Team Members: Connect Zoom on one's own card, Allow on Zoom's consent page, back on the card."""
    steps.own_card(page).get_by_role("button", name="Connect Zoom").click()
    page.wait_for_url(re.compile(r"/sandbox/zoom/oauth/authorize"))
    steps.allow_on_zoom(page, zoom_email=ZOOM_EMAIL)
    page.wait_for_url(re.compile(re.escape(reverse("members:list"))))
    journey.check(page)


def test_a_new_member_accepts_the_invitation_logs_in_connects_zoom_and_disconnects_it(site, journey, invited):
    page = journey.open(time_zone="Europe/Paris")
    text = steps.open_mail(page, site, journey, subject="You're invited to", to="nina@example.com")
    page.goto(site.at(steps.link_in(text, "/invite/")))
    page.get_by_role("heading", name="Choose your password").wait_for()
    journey.check(page)

    steps.choose_password(page)
    assert "CSRF verification failed" not in page.content()
    page.wait_for_url(re.compile(re.escape(reverse("members:list"))))
    steps.log_out(page)
    page.goto(site.at(reverse("account_login")))
    journey.check(page)
    steps.log_in(page, email="nina@example.com")
    page.goto(site.at(reverse("members:list")))

    card = steps.own_card(page)
    assert card.get_by_role("heading", name=re.compile("Nina New")).count() == 1
    assert _zoom_badge(card).get_by_text("Not connected").count() == 1
    journey.check(page)

    _connect_zoom(page, journey, site)
    assert _zoom_badge(card).get_by_text(f"Zoom connected · {ZOOM_EMAIL}").count() == 1
    assert Connection.objects.get(member=invited).email == ZOOM_EMAIL

    # Disconnecting asks first; only the confirmation deletes anything.
    card.locator("a, button").filter(has_text="Disconnect Zoom").click()
    page.get_by_role("heading", name=re.compile("Disconnect Zoom")).wait_for()
    assert Connection.objects.filter(member=invited).exists()
    journey.check(page)
    page.get_by_role("button", name="Disconnect Zoom").click()
    page.wait_for_url(re.compile(re.escape(reverse("members:list"))))
    assert _zoom_badge(card).get_by_text("Not connected").count() == 1
    assert not Connection.objects.filter(member=invited).exists()
    journey.check(page)


def test_a_member_who_removes_the_app_in_zoom_sees_zoom_not_connected_on_the_card(site, journey, member):
    page = journey.open(site.at(reverse("account_login")))
    journey.check(page)
    steps.log_in(page, email=member.user.email)
    page.goto(site.at(reverse("members:list")))
    _connect_zoom(page, journey, site)
    card = steps.own_card(page)
    assert _zoom_badge(card).get_by_text(f"Zoom connected · {ZOOM_EMAIL}").count() == 1

    # In Zoom's App Marketplace (the sandbox's control page plays it): Remove app.
    zoom = page.context.new_page()
    zoom.goto(site.at(reverse("zoom_sandbox:control")))
    said = steps.remove_app_in_zoom(zoom, zoom_email=ZOOM_EMAIL)
    assert re.search(r"app_deauthorized delivered: HTTP 2\d\d", said), said

    page.reload()
    assert _zoom_badge(card).get_by_text("Not connected").count() == 1
    assert card.get_by_role("button", name="Connect Zoom").count() == 1
    assert not Connection.objects.filter(member=member).exists()
    journey.check(page)
