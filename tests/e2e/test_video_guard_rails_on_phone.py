"""The video warnings of meeting types and every provider's state on the member cards, read on a
390 px phone with long names and account addresses: nothing pushes the page sideways, and axe
finds nothing serious."""

import pytest
from django.urls import reverse

from integrations.models import Connection, Provider
from meetingtypes.models import MeetingType
from tests.booking_helpers import make_meeting_type
from tests.e2e import steps

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

LONG_ACCOUNT = "bartholomew.featherstonehaugh-cholmondeley@very-long-company-domain.example"


@pytest.fixture
def team(make_member, organization, admin, member):
    bartholomew = make_member(organization, name="Bartholomew Featherstonehaugh-Cholmondeley", email=LONG_ACCOUNT)
    ivy = make_member(organization, name="Ivy Wolfeschlegelsteinhausenbergerdorff")
    for provider, fields in [
        (Provider.ZOOM, {}),
        (Provider.GOOGLE, {"status": Connection.Status.BROKEN}),
        (Provider.MICROSOFT, {"can_host_meetings": False}),
    ]:
        Connection.objects.create(
            member=bartholomew, provider=provider, external_user_id=f"{provider}-b", email=LONG_ACCOUNT, **fields
        )
    Connection.objects.create(member=member, provider=Provider.MICROSOFT, external_user_id="ms-maya")
    video = {"location_detail": "", "name": "Quarterly business review with the whole account team"}
    partly = make_meeting_type(organization, [admin, member, ivy, bartholomew], location="zoom", **video)
    nobody = make_meeting_type(
        organization,
        [ivy],
        location=MeetingType.Location.GOOGLE_MEET,
        location_detail="",
        name="Onboarding",
        assignment=MeetingType.Assignment.ONE_PERSON,
    )
    return {"partly": partly, "nobody": nobody, "bartholomew": bartholomew}


def test_video_warnings_and_provider_states_fit_a_phone(site, journey, admin, team):
    page = journey.open(site.at(reverse("account_login")))
    journey.check(page)
    steps.log_in(page, email=admin.user.email)

    page.goto(site.at(reverse("meetingtypes:list")))
    journey.check(page)
    partly = page.locator(f"#meeting-type-{team['partly'].pk}")
    assert "2 of 4 hosts have no video account connected" in partly.inner_text()
    assert "bookings will get no video link" in page.locator(f"#meeting-type-{team['nobody'].pk}").inner_text()

    page.goto(site.at(reverse("meetingtypes:edit", args=[team["partly"].pk])))
    journey.check(page)
    assert page.locator("[data-video-coverage]").is_visible()

    page.goto(site.at(reverse("members:list")))
    journey.check(page)
    accounts = page.locator(f"#member-{team['bartholomew'].pk} .integrations").inner_text()
    assert "Needs reconnecting" in accounts and "This account can't host Microsoft Teams meetings" in accounts
    assert "@" not in accounts  # the addresses of someone's video accounts are theirs alone

    # Bartholomew's own card shows his account addresses, which must wrap too.
    steps.log_out(page)
    journey.check(page)
    steps.log_in(page, email=LONG_ACCOUNT)
    page.goto(site.at(reverse("members:list")))
    journey.check(page)
    assert f"Zoom connected · {LONG_ACCOUNT}" in steps.own_card(page).inner_text()
