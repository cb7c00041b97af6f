"""What every page shares: our own 403/404/500 pages (with DEBUG on too), the favicon, page titles,
and a way to Support from the navigation and the footer."""

import re

import pytest
from django.test import Client
from django.urls import reverse

from tsp.error_pages import server_error

pytestmark = pytest.mark.django_db


@pytest.fixture(params=[False, True], ids=["production", "debug"])
def debug(request, settings):
    settings.DEBUG = request.param
    return request.param


def title_of(response) -> str:
    return re.search(r"<title>(.*?)</title>", response.content.decode(), re.S).group(1).strip()


def test_an_unknown_address_gets_our_404_page(client, debug):
    response = client.get("/app/no-such-page/here/and/more/")

    assert response.status_code == 404
    page = response.content.decode()
    assert "We can't find this page" in page
    assert "URLconf" not in page and "DEBUG = True" not in page
    assert title_of(response) == "Page not found · TeamSchedulerPro"


def test_a_404_raised_by_a_view_gets_our_page(client, debug, organization):
    response = client.get(reverse("bookings:public_page", args=[organization.slug, "no-such-meeting"]))

    assert response.status_code == 404
    assert "We can't find this page" in response.content.decode()
    assert "DEBUG = True" not in response.content.decode()


def test_a_member_on_an_admin_page_gets_our_403_page_inside_the_app(login, member, debug):
    response = login(member).get(reverse("members:create"))

    assert response.status_code == 403
    page = response.content.decode()
    assert "You can't open this page" in page
    assert "ask an admin of your organization" in page
    assert 'aria-label="Main"' in page  # the navigation is still there to go elsewhere
    assert title_of(response) == "Not allowed · TeamSchedulerPro"


def test_the_500_page_needs_neither_a_request_nor_the_database(settings, django_assert_num_queries):
    settings.SUPPORT_EMAIL = "help@example.com"
    with django_assert_num_queries(0):
        response = server_error(None)

    assert response.status_code == 500
    page = response.content.decode()
    assert "Something went wrong on our side" in page
    assert "mailto:help@example.com" in page
    assert "Server error · TeamSchedulerPro" in page


def test_favicon_ico_leads_to_the_svg_icon_which_every_page_links(client):
    response = client.get("/favicon.ico")

    assert response.status_code == 302
    assert response["Location"].endswith("img/favicon.svg")
    login_page = client.get(reverse("account_login")).content.decode()
    assert re.search(r'<link rel="icon" href="[^"]*img/favicon\.svg" type="image/svg\+xml">', login_page)


@pytest.mark.parametrize(
    "url_name, title",
    [
        ("members:list", "Team Members · TeamSchedulerPro"),
        ("meetingtypes:list", "Meeting Types · TeamSchedulerPro"),
        ("members:profile", "Profile & Availability · TeamSchedulerPro"),
        ("organization:settings", "Organization · TeamSchedulerPro"),
        ("help:support", "Support · TeamSchedulerPro"),
    ],
)
def test_pages_have_meaningful_titles(login, admin, url_name, title):
    response = login(admin).get(reverse(url_name))
    assert title_of(response).replace("&amp;", "&") == title


def test_support_is_in_the_navigation_and_the_footer_of_app_pages(login, member, settings):
    page = login(member).get(reverse("members:list")).content.decode()
    navigation = re.search(r'<nav class="sidenav".*?</nav>', page, re.S).group(0)
    footer = re.search(r"<footer.*?</footer>", page, re.S).group(0)

    assert reverse("help:support") in navigation
    assert reverse("help:support") in footer
    assert f"mailto:{settings.SUPPORT_EMAIL}" in footer


def test_support_is_in_the_footer_of_the_login_page(client, settings):
    page = client.get(reverse("account_login")).content.decode()
    footer = re.search(r"<footer.*?</footer>", page, re.S).group(0)
    assert reverse("help:support") in footer and settings.SUPPORT_EMAIL in footer


def test_the_support_address_comes_from_the_setting(client, settings):
    settings.SUPPORT_EMAIL = "care@example.org"
    assert "mailto:care@example.org" in client.get(reverse("help:support")).content.decode()


def test_the_menu_button_is_wired_to_the_navigation_it_folds(login, member):
    page = login(member).get(reverse("members:list")).content.decode()
    button = re.search(r'<button type="button" class="btn nav-toggle"[^>]*>', page).group(0)
    assert 'aria-controls="main-nav"' in button and "aria-expanded" in button
    assert '<nav class="sidenav" id="main-nav"' in page


def test_a_message_waiting_for_the_next_page_is_not_spent_on_a_404(login, admin, organization):
    client = login(admin)
    client.post(reverse("organization:settings"), {"name": "Acme Consulting", "accent_color": ""})

    assert client.get("/app/no-such-page/").status_code == 404
    assert "settings were saved." in client.get(reverse("members:list")).content.decode()


def test_a_form_refused_by_the_csrf_check_gets_a_plain_explanation(member):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(member.user)
    response = browser.post(reverse("members:profile"), {"display_name": "Changed", "time_zone": "UTC"})

    assert response.status_code == 403
    page = response.content.decode()
    assert "This form could not be accepted" in page and "Nothing was saved." in page
    assert "CSRF verification failed" in page  # what browser tests look for
    member.refresh_from_db()
    assert member.display_name != "Changed"


def test_help_pages_keep_a_signed_in_member_in_the_app(client, login, member):
    support = reverse("help:support")
    assert 'aria-label="Main"' not in client.get(support).content.decode()  # nobody signed in: entrance page

    page = login(member).get(support).content.decode()
    assert 'aria-label="Main"' in page
    assert f'<a href="{support}" aria-current="page">' in page
    assert 'aria-label="Main"' in client.get(reverse("help:zoom")).content.decode()
