"""The admin of the user guide, in a real browser: from signing up to a booking link on the clipboard."""

import re

import pytest
from django.urls import reverse

from accounts.models import Organization
from meetingtypes.models import MeetingType
from members.models import TeamMember

from . import steps

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_an_admin_signs_up_confirms_the_email_adds_two_members_creates_three_meeting_types_and_copies_a_link(
    site, journey
):
    page = journey.open(site.at(reverse("account_signup")), time_zone="Europe/Berlin")
    journey.check(page)
    steps.sign_up(page, name="Alice Admin", organization="Acme Plumbing & Co", email="alice@acme.example")
    # Nothing works before the address is confirmed: the page says to look in the mailbox.
    assert re.search(r"verif|confirm", page.content(), re.I)
    journey.check(page)

    text = steps.open_mail(page, site, journey, subject=re.compile("confirm", re.I), to="alice@acme.example")
    page.goto(site.at(steps.link_in(text, "/confirm-email/")))
    journey.check(page)
    steps.confirm_email(page)

    page.goto(site.at(reverse("members:list")))
    page.wait_for_url(re.compile(re.escape(reverse("members:list")) + r"$"))
    assert steps.own_card(page).filter(has_text="Alice Admin").count() == 1
    organization = Organization.objects.get()
    assert organization.name == "Acme Plumbing & Co"
    journey.check(page)

    page.get_by_role("link", name="Add member").click()
    journey.check(page)
    page.go_back()
    steps.add_member(page, name="Bea Berg", email="bea@acme.example")
    steps.add_member(page, name="Carl Chen", email="carl@acme.example")
    for name in ("Bea Berg", "Carl Chen"):
        card = page.locator("li.card").filter(has_text=name)
        assert card.get_by_text("Invitation sent").count() == 1
    assert set(TeamMember.objects.values_list("display_name", flat=True)) == {"Alice Admin", "Bea Berg", "Carl Chen"}
    journey.check(page)

    page.get_by_role("link", name="Meeting Types").first.click()
    journey.check(page)
    page.get_by_role("link", name="New meeting type").click()
    journey.check(page)
    page.go_back()
    steps.create_meeting_type(page, name="Intro call", assignment="Round-robin", hosts=["Bea Berg", "Carl Chen"])
    steps.create_meeting_type(page, name="Team workshop", assignment="Collective", hosts=["Bea Berg", "Carl Chen"])
    steps.create_meeting_type(page, name="Ask Alice", assignment="One specific person", hosts=["Alice Admin"])
    created = {mt.name: mt for mt in MeetingType.objects.filter(organization=organization)}
    assert {name: mt.assignment for name, mt in created.items()} == {
        "Intro call": MeetingType.Assignment.ROUND_ROBIN,
        "Team workshop": MeetingType.Assignment.COLLECTIVE,
        "Ask Alice": MeetingType.Assignment.ONE_PERSON,
    }
    assert all(mt.location == MeetingType.Location.ZOOM for mt in created.values())
    journey.check(page)

    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=site.url)
    card = steps.meeting_type_card(page, "Intro call")
    card.get_by_role("button", name="Copy", exact=True).click()
    copied = page.evaluate("() => navigator.clipboard.readText()")
    assert copied == card.get_by_label("Booking link").input_value()
    assert copied.endswith(f"/{organization.slug}/{created['Intro call'].slug}/")

    # The copied link is the client's booking page.
    page.goto(site.at(copied))
    page.get_by_role("heading", name="Intro call").first.wait_for()
    journey.check(page)
