"""Every page carries a strict Content-Security-Policy and a Permissions-Policy, and no template
needs anything the policy forbids (inline scripts, event handler attributes, style attributes)."""

import re
from pathlib import Path

import pytest
from django.conf import settings
from django.urls import reverse

from .booking_helpers import make_meeting_type

ROOT = Path(__file__).resolve().parent.parent
TEMPLATES = [
    path
    for folder in (ROOT / "templates", ROOT / "integrations" / "sandbox" / "templates")
    for path in folder.rglob("*.html")
    if "/email/" not in path.as_posix()  # mail clients, not browsers under our policy, read those
]


def policy(response) -> dict[str, list[str]]:
    header = response["Content-Security-Policy"]
    return {name: values for name, *values in (part.split() for part in header.split(";") if part.strip())}


@pytest.mark.django_db
def test_pages_get_a_strict_policy_and_no_browser_features(client, admin):
    client.force_login(admin.user)
    for url in [reverse("account_login"), reverse("members:list"), reverse("meetingtypes:list")]:
        response = client.get(url)
        rules = policy(response)
        assert rules["script-src"] == ["'self'"], url
        assert rules["object-src"] == ["'none'"] and rules["base-uri"] == ["'self'"], url
        assert rules["frame-ancestors"] == ["'none'"] and rules["form-action"][0] == "'self'", url
        assert "'unsafe-inline'" not in response["Content-Security-Policy"], url
        for feature in ("camera=()", "microphone=()", "geolocation=()", "payment=()"):
            assert feature in response["Permissions-Policy"], url


@pytest.mark.django_db
def test_connect_may_lead_to_the_providers_consent_pages(client, admin):
    """Connect posts a form to us and we redirect to the provider: browsers hold that redirect to form-action."""
    client.force_login(admin.user)
    allowed = policy(client.get(reverse("members:list")))["form-action"]
    consent_pages = {settings.ZOOM_OAUTH_BASE_URL, settings.GOOGLE_OAUTH_BASE_URL, settings.MICROSOFT_OAUTH_BASE_URL}
    assert {"/".join(url.split("/")[:3]) for url in consent_pages} <= set(allowed)
    assert allowed.index("'self'") == 0 and "*" not in allowed


@pytest.mark.django_db
def test_a_branded_booking_page_sets_its_colour_in_a_nonced_style_not_an_attribute(client, member):
    organization = member.organization
    organization.accent_color = "#0f5132"
    organization.save()
    meeting_type = make_meeting_type(organization, [member], show_branding=True)

    response = client.get(f"/{organization.slug}/{meeting_type.slug}/")

    nonce = re.search(r"'nonce-([^']+)'", " ".join(policy(response)["style-src"])).group(1)
    html = response.content.decode()
    assert f'<style nonce="{nonce}">' in html and "--accent: #0f5132" in html
    assert " style=" not in html


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda path: str(path.relative_to(ROOT)))
def test_no_template_has_inline_scripts_handlers_or_style_attributes(template):
    html = template.read_text()
    tags = re.findall(r"<script\b[^>]*>", html)
    inline_scripts = [tag for tag in tags if "src=" not in tag and 'type="application/json"' not in tag]
    assert inline_scripts == []
    assert not re.search(r"\son[a-z]+\s*=", html), "event handler attribute"
    assert "javascript:" not in html
    assert not re.search(r"\sstyle\s*=", html), "style attribute"
