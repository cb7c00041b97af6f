"""A video provider is one folder plus one registry line: everything else reads the registry.

A dummy provider registered here (nothing of it outside this file) appears on its member's card,
gets the connect / callback / disconnect URLs with their permission decisions, and takes its place
in the fallback chain.
"""

from urllib.parse import parse_qs, urlsplit

import pytest
from django.test import Client
from django.urls import reverse

from integrations import registry, video
from integrations.base import TokenSet, VideoProvider
from meetingtypes.models import MeetingType

from .test_permissions import ROLES, check_row, objects, people, provider_rows  # noqa: F401  (fixtures)


class DummyVideo(VideoProvider):
    key = "dummyvideo"
    name = "Dummy"
    meeting_name = "Dummy Video"
    location = ""  # no meeting type asks for it by name: it can only be a fallback
    settings_prefix = "DUMMYVIDEO"
    guide_url_name = "help:support"

    def authorize_url(self, redirect_uri):
        return "https://dummy-video.example/authorize", {"client_id": "dummy", "redirect_uri": redirect_uri}


@pytest.fixture
def dummy(settings):
    settings.DUMMYVIDEO_CLIENT_ID = "dummy-client"
    provider = DummyVideo()
    registry.register(provider)
    yield provider
    registry.unregister(provider.key)


def own_card(member) -> str:
    client = Client()
    client.force_login(member.user)
    page = client.get(reverse("members:list")).content.decode()
    start = page.index(f'id="member-{member.pk}"')
    return page[start : page.index("</li>", start)]


@pytest.mark.django_db
def test_a_registered_provider_is_on_the_members_own_card_with_its_connect_button(dummy, member):
    card = own_card(member)

    assert 'data-provider="dummyvideo"' in card
    assert "Connect Dummy" in card
    assert reverse("integrations:connect", kwargs={"provider": "dummyvideo"}) in card


@pytest.mark.django_db
def test_a_provider_without_an_app_on_this_site_is_not_offered(dummy, member, settings):
    settings.DUMMYVIDEO_CLIENT_ID = ""

    assert 'data-provider="dummyvideo"' not in own_card(member)
    client = Client()
    client.force_login(member.user)
    assert client.post(reverse("integrations:connect", kwargs={"provider": "dummyvideo"})).status_code == 404


@pytest.mark.django_db
def test_connect_sends_the_member_to_the_providers_consent_page_with_state_and_pkce(dummy, member, settings):
    client = Client()
    client.force_login(member.user)

    response = client.post(reverse("integrations:connect", kwargs={"provider": "dummyvideo"}))

    assert response.status_code == 302
    target = urlsplit(response["Location"])
    query = parse_qs(target.query)
    assert f"{target.scheme}://{target.netloc}{target.path}" == "https://dummy-video.example/authorize"
    assert query["redirect_uri"] == [settings.SITE_URL + "/integrations/dummyvideo/callback/"]
    assert query["code_challenge_method"] == ["S256"] and len(query["state"][0]) >= 32


@pytest.mark.django_db
def test_an_unknown_provider_in_the_url_is_not_found(member):
    client = Client()
    client.force_login(member.user)

    assert client.post(reverse("integrations:connect", kwargs={"provider": "myspace"})).status_code == 404
    assert client.get(reverse("integrations:callback", kwargs={"provider": "myspace"})).status_code == 404


@pytest.mark.django_db
@pytest.mark.parametrize("role", ROLES)
def test_the_permission_matrix_covers_a_registered_provider(dummy, role, people, objects):  # noqa: F811
    rows = provider_rows(dummy)

    assert {row.args for row in rows} == {("dummyvideo",)}
    for row in rows:
        check_row(row, role, people, objects)


def test_the_chain_tries_a_registered_provider_after_the_ones_a_location_names(dummy):
    order = [provider.key for provider in video.providers_for(MeetingType.Location.GOOGLE_MEET)]

    built_in = [key for key in ("zoom", "google", "microsoft") if key in order]
    assert order == ["google"] + [key for key in built_in if key != "google"] + ["dummyvideo"]


def test_tokens_never_show_in_a_log_line_or_a_traceback():
    tokens = TokenSet("access-secret-1", "refresh-secret-2", 3599, "meeting:write", id_token="id-secret-3")

    shown = f"{tokens!r} {tokens}"

    assert "secret" not in shown and "meeting:write" in shown
