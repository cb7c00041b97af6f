"""What the people of the user guide do on one page, one small function per step.

Selectors are what a person sees (roles, labels, visible text), so that a page can change its markup
without breaking the journeys; a page whose flow changes needs only its step changed here.
"""

import re

from django.urls import reverse

from tests.conftest import PASSWORD


def field(page, label: str):
    """The form field labelled `label` (Django's labels may end in a colon)."""
    return page.get_by_label(re.compile(rf"^\s*{re.escape(label)}\s*:?\s*$"))


# --- Admin --------------------------------------------------------------------------------------


def sign_up(page, *, name: str, organization: str, email: str, password: str = PASSWORD) -> None:
    field(page, "Your name").fill(name)
    field(page, "Organization name").fill(organization)
    field(page, "Email").fill(email)
    field(page, "Password").fill(password)
    field(page, "Password (again)").fill(password)
    page.get_by_role("button", name=re.compile(r"^Sign up$", re.I)).click()
    page.wait_for_load_state()


def confirm_email(page) -> None:
    """On allauth's confirmation page (opened from the email's link): press Confirm."""
    page.get_by_role("button", name="Confirm").click()
    page.wait_for_load_state()


def add_member(page, *, name: str, email: str) -> None:
    """From Team Members: "Add member", fill the form, send the invitation; back on Team Members."""
    page.get_by_role("link", name="Add member").click()
    field(page, "Name").fill(name)
    field(page, "Email").fill(email)
    page.get_by_role("button", name="Add and send invitation").click()
    page.wait_for_url(re.compile(re.escape(reverse("members:list")) + r"$"))


def create_meeting_type(page, *, name: str, assignment: str, hosts: list[str]) -> None:
    """From Meeting Types: "New meeting type" with a Zoom location; back on Meeting Types.

    `assignment` is the start of the choice's text ("Round-robin", "Collective", "One specific person").
    """
    page.get_by_role("link", name="New meeting type").click()
    field(page, "Name").fill(name)
    field(page, "Location").select_option(label="Zoom")
    assignment_field = field(page, "Assignment")
    choice = next(
        option
        for option in assignment_field.locator("option").all_inner_texts()
        if option.strip().startswith(assignment)
    )
    assignment_field.select_option(label=choice.strip())
    for host in hosts:
        page.get_by_role("checkbox", name=re.compile(re.escape(host))).check()
    page.get_by_role("button", name="Create meeting type").click()
    page.wait_for_url(re.compile(re.escape(reverse("meetingtypes:list")) + r"$"))


def meeting_type_card(page, name: str):
    return page.locator("li.card").filter(has=page.get_by_role("heading", name=name))


# --- Member ---------------------------------------------------------------------------------------


def choose_password(page, password: str = PASSWORD) -> None:
    field(page, "Password").fill(password)
    field(page, "Password (again)").fill(password)
    page.get_by_role("button", name="Set password and log in").click()
    page.wait_for_load_state()


def log_out(page) -> None:
    page.get_by_role("button", name="Log out").first.click()
    page.wait_for_load_state()


def log_in(page, *, email: str, password: str = PASSWORD) -> None:
    field(page, "Email").fill(email)
    field(page, "Password").fill(password)
    page.get_by_role("button", name=re.compile(r"^(Sign in|Log in)$", re.I)).click()
    page.wait_for_load_state()


def own_card(page):
    """The viewer's own card on Team Members (the one marked "You")."""
    return page.locator("li.card.is-me")


def allow_on_zoom(page, *, zoom_email: str) -> None:
    """On the Zoom sandbox's consent page: the Zoom account, then Allow."""
    page.get_by_label(re.compile("Zoom account")).fill(zoom_email)
    page.get_by_role("button", name="Allow").click()
    page.wait_for_load_state()


def allow_on_provider(page, *, account_email: str) -> None:
    """On a provider sandbox's consent page (Google, Microsoft): the account, then Allow."""
    page.get_by_label(re.compile("account", re.I)).first.fill(account_email)
    page.get_by_role("button", name=re.compile("^(Allow|Accept)$")).click()
    page.wait_for_load_state()


def remove_app_in_zoom(page, *, zoom_email: str) -> str:
    """On the sandbox's control page: "Remove app" for that user, as in Zoom's Marketplace; what it says."""
    row = page.get_by_role("row").filter(has_text=zoom_email)
    row.get_by_role("button", name=re.compile("Remove app")).click()
    page.wait_for_load_state()
    return page.locator(".message, [role=alert], [role=status]").first.inner_text()


# --- The outbox -------------------------------------------------------------------------------


def open_mail(page, site, journey, *, subject: str | re.Pattern, to: str) -> str:
    """In the outbox, open the newest email to `to` whose subject matches; its text part."""
    page.goto(site.at(reverse("outbox:list")))
    journey.check(page)
    pattern = subject if isinstance(subject, re.Pattern) else re.compile(re.escape(subject))
    item = page.locator("ul.outbox-list li").filter(has_text=f"to {to}").filter(has_text=pattern).first
    item.get_by_role("link").click()
    page.wait_for_selector("pre.outbox-text")
    journey.check(page)
    return page.locator("pre.outbox-text").inner_text()


def links_in(text: str) -> list[str]:
    return re.findall(r"https?://[^\s<>\"')]+", text)


def link_in(text: str, path_part: str) -> str:
    found = [link for link in links_in(text) if path_part in link]
    assert found, f"no link with {path_part!r} in:\n{text}"
    return found[0]


# --- Client -------------------------------------------------------------------------------------


def first_free_time(page):
    """On a booking page: the first offered time of the day the calendar selected."""
    page.wait_for_selector("#booking-slot-list button.slot")
    return page.locator("#booking-slot-list button.slot").first


def fill_booking_form(page, *, name: str, email: str) -> None:
    page.get_by_label(re.compile(r"^(Your )?name", re.I)).fill(name)
    page.get_by_label(re.compile(r"^(Your )?email", re.I)).fill(email)
