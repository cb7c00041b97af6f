"""Every admin and member page fits a 390 px phone: no sideways scrolling, the navigation folds
under a Menu button, and the pages of the entrance (login, sign-up, invitation) fit too."""

import pytest
from django.conf import settings as django_settings
from django.test import Client
from django.urls import reverse

from integrations.models import Connection, Provider
from meetingtypes.models import MeetingType, MeetingTypeHost
from members.models import MemberInvitation, TeamMember
from tests.e2e.conftest import AXE_SCRIPT, BLOCKING_IMPACTS, ROOT

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PHONE = {"width": 390, "height": 844}
FITS = "document.documentElement.scrollWidth <= window.innerWidth"
ARTIFACTS = ROOT / "tests" / "e2e" / "artifacts"
AXE_RUN = """async () => (await axe.run(document, {resultTypes: ['violations']})).violations.map(
  v => ({id: v.id, impact: v.impact, targets: v.nodes.slice(0, 3).map(n => n.target.join(' '))}))"""


@pytest.fixture
def team(make_member, organization, admin, member):
    # Long names and addresses are what push a narrow page sideways.
    make_member(
        organization,
        name="Bartholomew Featherstonehaugh-Cholmondeley",
        email="bartholomew.featherstonehaugh-cholmondeley@very-long-company-domain.example",
        time_zone="America/Indiana/Indianapolis",
    )
    Connection.objects.create(member=member, provider=Provider.ZOOM, external_user_id="zoom-maya", email=member.email)
    meeting_type = MeetingType.objects.create(
        organization=organization,
        name="Quarterly business review with the whole account team",
        slug="quarterly-business-review-with-the-whole-account-team",
        location=MeetingType.Location.PHONE,
        location_detail="+1 555 0100",
    )
    MeetingTypeHost.objects.create(meeting_type=meeting_type, member=member, position=0)
    MeetingTypeHost.objects.create(meeting_type=meeting_type, member=admin, position=1)
    invited = make_member(organization, name="Ivy Invited", password=None)
    _invitation, token = MemberInvitation.issue(invited)
    return {"meeting_type": meeting_type, "invitation_token": token}


def _phone(browser, live_server, member: TeamMember | None = None, *, javascript: bool = True):
    """A browser context 390 px wide, signed in as `member` (through a session made by the test client)."""
    context = browser.new_context(
        viewport=PHONE, locale="en-US", timezone_id="America/New_York", java_script_enabled=javascript
    )
    context.set_default_timeout(15_000)
    if member is not None:
        client = Client()
        client.force_login(member.user)
        session = client.cookies[django_settings.SESSION_COOKIE_NAME].value
        context.add_cookies([{"name": django_settings.SESSION_COOKIE_NAME, "value": session, "url": live_server.url}])
    return context


def _assert_fits(page, url: str):
    """No sideways scrolling at 390 px and no serious or critical axe-core violation on the page."""
    response = page.goto(url)
    assert response is not None and response.status < 500, (url, response and response.status)
    widths = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    if not page.evaluate(FITS):
        page.screenshot(path=str(ARTIFACTS / f"phone-overflow{url.split(':', 2)[-1].replace('/', '_')}.png"))
    assert page.evaluate(FITS), f"{url} is {widths[0]} px wide on a {widths[1]} px phone"
    page.evaluate(AXE_SCRIPT.read_text())  # not a <script> tag: the CSP refuses inline scripts
    violations = page.evaluate(AXE_RUN)
    blocking = [f"{v['id']} ({v['impact']}): {v['targets']}" for v in violations if v["impact"] in BLOCKING_IMPACTS]
    assert not blocking, f"{url}: {blocking}"


def test_admin_pages_fit_a_phone(browser, live_server, admin, member, team):
    context = _phone(browser, live_server, admin)
    page = context.new_page()
    meeting_type = team["meeting_type"]
    urls = [
        reverse("members:list"),
        reverse("members:create"),
        reverse("members:edit", args=[member.pk]),
        reverse("members:profile"),
        reverse("meetingtypes:list"),
        reverse("meetingtypes:create"),
        reverse("meetingtypes:edit", args=[meeting_type.pk]),
        reverse("organization:settings"),
        reverse("help:support"),
        reverse("help:zoom"),
        "/app/no-such-page/",
    ]
    for url in urls:
        _assert_fits(page, live_server.url + url)
    context.close()


def test_member_pages_fit_a_phone(browser, live_server, member, team):
    context = _phone(browser, live_server, member)
    page = context.new_page()
    urls = [
        reverse("members:list"),
        reverse("members:profile"),
        reverse("meetingtypes:list"),
        reverse("integrations:disconnect_confirm", kwargs={"provider": "zoom"}),
        reverse(
            "integrations:callback", kwargs={"provider": "zoom"}
        ),  # refused without a state: the "not completed" page
        reverse("organization:settings"),  # 403 page
    ]
    for url in urls:
        _assert_fits(page, live_server.url + url)
    context.close()


def test_entrance_pages_fit_a_phone(browser, live_server, team):
    context = _phone(browser, live_server)
    page = context.new_page()
    urls = [
        reverse("account_login"),
        reverse("account_signup"),
        reverse("account_reset_password"),
        reverse("members:accept_invitation", args=[team["invitation_token"]]),
        reverse("members:accept_invitation", args=["not-a-real-token"]),
        reverse("help:support"),
        reverse("help:zoom"),
        "/no/such/page/at/all/",
    ]
    if django_settings.EMAIL_OUTBOX:
        urls.append(reverse("outbox:list"))
    for url in urls:
        _assert_fits(page, live_server.url + url)
    context.close()


def test_on_a_phone_the_navigation_folds_under_a_menu_button(browser, live_server, admin, team):
    context = _phone(browser, live_server, admin)
    page = context.new_page()
    page.goto(live_server.url + reverse("meetingtypes:list"))
    menu = page.get_by_role("button", name="Menu")
    navigation = page.get_by_role("navigation", name="Main")

    assert menu.get_attribute("aria-expanded") == "false"
    assert not navigation.get_by_role("link", name="Team Members").is_visible()
    # The top bar keeps the name, Log out and Menu on one line, inside the screen.
    brand, log_out = page.locator(".topbar .brand").bounding_box(), page.locator(".topbar .btn-ghost").bounding_box()
    button = menu.bounding_box()
    assert abs((brand["y"] + brand["height"] / 2) - (button["y"] + button["height"] / 2)) < 4
    assert log_out["x"] + log_out["width"] <= button["x"] and button["x"] + button["width"] <= PHONE["width"] - 4

    menu.click()
    assert menu.get_attribute("aria-expanded") == "true"
    assert navigation.get_by_role("link", name="Support").is_visible()
    page.keyboard.press("Tab")  # the next stop after the button is the first link of the menu
    assert page.evaluate("document.activeElement.textContent.trim()") == "Team Members"
    page.keyboard.press("Escape")
    assert menu.get_attribute("aria-expanded") == "false"
    assert page.evaluate("document.activeElement.classList.contains('nav-toggle')")

    page.set_viewport_size({"width": 1280, "height": 900})
    assert not menu.is_visible()
    assert navigation.get_by_role("link", name="Team Members").is_visible()
    context.close()


def test_without_javascript_the_navigation_stays_open_on_a_phone(browser, live_server, admin, team):
    context = _phone(browser, live_server, admin, javascript=False)
    page = context.new_page()
    page.goto(live_server.url + reverse("members:list"))

    navigation = page.get_by_role("navigation", name="Main")
    assert navigation.get_by_role("link", name="Profile & Availability").is_visible()
    assert not page.get_by_role("button", name="Menu").is_visible()
    context.close()
