"""Admins are warned when a video meeting type's hosts can't give its bookings a link, and are only
offered the video locations this site can serve."""

import re

import pytest
from django.db import connection as db_connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from integrations.models import Connection, Provider
from meetingtypes.models import MeetingType
from meetingtypes.video_coverage import HostAccounts, coverage

from .booking_helpers import make_meeting_type

pytestmark = pytest.mark.django_db

Location = MeetingType.Location
ZOOM, GOOGLE, MICROSOFT = Location.ZOOM, Location.GOOGLE_MEET, Location.MICROSOFT_TEAMS
ROUND_ROBIN, COLLECTIVE = MeetingType.Assignment.ROUND_ROBIN, MeetingType.Assignment.COLLECTIVE


def connect(member, provider: str, **fields) -> Connection:
    fields.setdefault("email", member.email)
    external_user_id = f"{provider}-{member.pk}"
    return Connection.objects.create(member=member, provider=provider, external_user_id=external_user_id, **fields)


def video_type(organization, hosts, location=ZOOM, **fields) -> MeetingType:
    fields.setdefault("name", f"Call {MeetingType.objects.count() + 1}")
    return make_meeting_type(organization, hosts, location=location, location_detail="", **fields)


def card(page: str, meeting_type) -> str:
    found = re.search(rf'<li[^>]*\bid="meeting-type-{meeting_type.pk}".*?</li>', page, re.S)
    assert found, f"no card for meeting type {meeting_type.pk}"
    return found.group(0)


def list_page(client) -> str:
    response = client.get(reverse("meetingtypes:list"))
    assert response.status_code == 200
    return response.content.decode()


def edit_page(client, meeting_type) -> str:
    response = client.get(reverse("meetingtypes:edit", args=[meeting_type.pk]))
    assert response.status_code == 200
    return response.content.decode()


def warnings_in(html: str) -> dict[str, str]:
    """{kind: text} of the video warnings in a piece of page, tags and spacing removed."""
    found = re.findall(r'<p class="message [^"]*" data-warning="([^"]+)">(.*?)</p>', html, re.S)
    return {kind: re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", text)).strip() for kind, text in found}


# ---------------------------------------------------------------- the rule, over plain data


def hosts(*usable: str) -> list[HostAccounts]:
    """One host per argument, named A, B, C…; each argument the keys of their usable accounts, "+"-joined."""
    return [HostAccounts(chr(65 + i), frozenset(filter(None, keys.split("+")))) for i, keys in enumerate(usable)]


@pytest.mark.parametrize(
    ("location", "assignment", "usable", "without", "used_instead"),
    [
        # Everyone can host with the provider asked for: nothing to say.
        (ZOOM, ROUND_ROBIN, ["zoom", "zoom+google"], [], []),
        # Some have another provider only: they host with it; the type's own provider is still in use.
        (ZOOM, ROUND_ROBIN, ["zoom", "google"], [], []),
        (ZOOM, ROUND_ROBIN, ["zoom", ""], ["B"], []),
        (ZOOM, COLLECTIVE, ["", "zoom", ""], ["A", "C"], []),
        # Nobody has the provider asked for: a collective call uses the first provider any host has …
        (ZOOM, COLLECTIVE, ["microsoft", "google"], [], ["google"]),
        (GOOGLE, COLLECTIVE, ["microsoft", "zoom"], [], ["zoom"]),
        # … a round-robin booking its own host's first one in the chain.
        (GOOGLE, ROUND_ROBIN, ["microsoft", "zoom", "zoom+microsoft"], [], ["zoom", "microsoft"]),
        (MICROSOFT, ROUND_ROBIN, ["google", ""], ["B"], ["google"]),
        # Nobody can host at all.
        (ZOOM, COLLECTIVE, ["", ""], ["A", "B"], []),
        (ZOOM, ROUND_ROBIN, [""], ["A"], []),
    ],
)
def test_who_can_host_follows_the_fallback_chain(location, assignment, usable, without, used_instead):
    found = coverage(location=location, assignment=assignment, hosts=hosts(*usable))

    assert found.without_account == without
    assert [provider.key for provider in found.used_instead] == used_instead
    assert found.nobody_can_host == (len(without) == len(usable))
    assert found.needs_attention == bool(without or used_instead)


def test_locations_without_a_video_meeting_have_nothing_to_cover():
    for location in (MeetingType.Location.PHONE, MeetingType.Location.IN_PERSON, MeetingType.Location.CUSTOM_LINK):
        assert coverage(location=location, assignment=ROUND_ROBIN, hosts=hosts("")) is None


def test_a_provider_not_set_up_here_is_passed_over(settings):
    settings.ZOOM_CLIENT_ID = ""

    found = coverage(location=ZOOM, assignment=COLLECTIVE, hosts=hosts("zoom", "google"))

    assert not found.wanted_offered
    assert found.without_account == ["A"]  # their Zoom can't be used on this site
    assert [provider.key for provider in found.used_instead] == ["google"]


# ---------------------------------------------------------------- the list page


@pytest.fixture
def team(make_member, organization, admin):
    ana = make_member(organization, name="Ana Alvarez")
    ben = make_member(organization, name="Ben Brown")
    return admin, ana, ben


def test_the_list_names_the_hosts_without_a_video_account(client, login, team):
    admin, ana, ben = team
    connect(admin, Provider.ZOOM)
    zoom_call = video_type(admin.organization, [admin, ana, ben], name="Discovery")
    phone_call = make_meeting_type(
        admin.organization, [ana, ben], name="Phone", location=MeetingType.Location.PHONE, location_detail="+1 555"
    )
    login(admin)

    page = list_page(client)

    warnings = warnings_in(card(page, zoom_call))
    assert warnings == {
        "some-hosts": "2 of 3 hosts have no video account connected: Ana Alvarez, Ben Brown. "
        "Bookings they take will get no video link until they connect one."
    }
    assert f'href="{reverse("members:list")}">Team Members</a>' in card(page, zoom_call)
    assert "data-video-coverage" not in card(page, phone_call)


def test_one_host_without_an_account_reads_in_the_singular(client, login, team):
    admin, ana, ben = team
    connect(admin, Provider.ZOOM)
    connect(ana, Provider.GOOGLE)
    review = video_type(admin.organization, [admin, ana, ben], name="Review", assignment=COLLECTIVE)
    login(admin)

    warnings = warnings_in(card(list_page(client), review))

    assert warnings == {
        "some-hosts": "1 of 3 hosts has no video account connected: Ben Brown. "
        "The call uses the account of the first host who has one."
    }


def test_when_no_host_can_host_the_list_says_bookings_get_no_link(client, login, team):
    admin, ana, ben = team
    connect(ana, Provider.ZOOM, status=Connection.Status.BROKEN)  # needs reconnecting: can't host
    connect(ben, Provider.MICROSOFT, can_host_meetings=False)  # a personal account Teams refuses
    connect(admin, Provider.GOOGLE)
    deactivated = video_type(admin.organization, [ana, ben, admin], name="Team call", assignment=COLLECTIVE)
    admin.is_active = False  # a deactivated host is never booked: their Google doesn't help
    admin.save()
    solo = video_type(admin.organization, [ana], name="Solo", assignment=MeetingType.Assignment.ONE_PERSON)
    login(ben)  # members see the list, and the warnings, too

    page = list_page(client)

    assert warnings_in(card(page, deactivated)) == {
        "no-link": "None of the 2 hosts has a video account connected (Ana Alvarez, Ben Brown): bookings will get "
        "no video link, and the host will be asked to send one."
    }
    assert warnings_in(card(page, solo)) == {
        "no-link": "The host, Ana Alvarez, has no video account connected: bookings will get no video link, "
        "and the host will be asked to send one."
    }


def test_when_no_host_has_the_types_provider_the_list_says_which_one_bookings_use(client, login, team):
    admin, ana, ben = team
    connect(ana, Provider.ZOOM)
    connect(ben, Provider.MICROSOFT)
    collective = video_type(admin.organization, [ben, ana], GOOGLE, name="Meet all", assignment=COLLECTIVE)
    round_robin = video_type(admin.organization, [ben, ana], GOOGLE, name="Meet one")
    login(admin)

    page = list_page(client)

    # The chain tries Zoom on every host before Teams: Ana's Zoom hosts every collective call.
    assert warnings_in(card(page, collective)) == {
        "fallback": "No host has Google Meet connected; bookings will use Zoom."
    }
    assert warnings_in(card(page, round_robin)) == {
        "fallback": "No host has Google Meet connected; bookings will use Zoom or Microsoft Teams."
    }


def test_a_type_whose_hosts_can_all_host_shows_no_warning(client, login, team):
    admin, ana, ben = team
    for member in (admin, ana):
        connect(member, Provider.ZOOM)
    connect(ben, Provider.GOOGLE)
    fine = video_type(admin.organization, [admin, ana, ben], name="Fine")
    login(admin)

    assert "data-video-coverage" not in card(list_page(client), fine)


def _list_queries(client) -> tuple[int, str]:
    with CaptureQueriesContext(db_connection) as queries:
        page = list_page(client)
    return len(queries.captured_queries), page


def test_the_warnings_cost_the_same_queries_for_any_number_of_types_and_hosts(
    client, login, make_member, organization, admin, django_assert_max_num_queries
):
    video_type(organization, [admin], name="Type 0")
    login(admin)
    list_page(client)  # warm up (session, content types)
    one, page = _list_queries(client)
    assert page.count("data-warning=") == 1

    members = [make_member(organization, name=f"Host {n}") for n in range(12)]
    for n, member in enumerate(members):
        provider = (None, Provider.ZOOM, Provider.GOOGLE, Provider.MICROSOFT)[n % 4]
        if provider:
            connect(member, provider)
        if n % 5 == 0 and provider != Provider.MICROSOFT:
            connect(member, Provider.MICROSOFT, can_host_meetings=False)
    for n in range(1, 15):
        hosts_of_type = members[n % 5 : n % 5 + 2 + n % 7]
        location = (ZOOM, GOOGLE, MICROSOFT)[n % 3]
        video_type(organization, hosts_of_type, location, name=f"Type {n}", assignment=(ROUND_ROBIN, COLLECTIVE)[n % 2])

    many, page = _list_queries(client)

    assert page.count('<li class="card') == 15
    assert page.count("data-warning=") > 10
    assert many == one
    with django_assert_max_num_queries(one):
        list_page(client)


# ---------------------------------------------------------------- the editor


def test_the_editor_shows_the_same_warnings(client, login, team):
    admin, ana, ben = team
    connect(ana, Provider.MICROSOFT)
    meeting_type = video_type(admin.organization, [admin, ana, ben], name="Discovery")
    login(admin)

    warnings = warnings_in(edit_page(client, meeting_type))

    assert warnings == {
        "fallback": "No host has Zoom connected; bookings will use Microsoft Teams.",
        "some-hosts": "2 of 3 hosts have no video account connected: Alice Admin, Ben Brown. "
        "Bookings they take will get no video link until they connect one.",
    }


def test_the_editor_warns_about_the_type_as_saved_not_as_just_posted(client, login, team):
    admin, ana, ben = team
    meeting_type = video_type(admin.organization, [ana], name="Discovery")
    login(admin)

    response = client.post(
        reverse("meetingtypes:edit", args=[meeting_type.pk]),
        {"name": "", "location": "phone", "assignment": "round_robin", "hosts": [ana.pk]},
    )

    assert response.status_code == 200 and response.context["form"].errors
    assert set(warnings_in(response.content.decode())) == {"no-link"}


# ---------------------------------------------------------------- locations that can succeed


def _form(hosts, **overrides) -> dict:
    data = {
        "name": "Discovery call",
        "slug": "",
        "duration_minutes": "30",
        "location": "zoom",
        "location_detail": "",
        "assignment": "round_robin",
        "hosts": [host.pk for host in hosts],
        "buffer_before_minutes": "0",
        "buffer_after_minutes": "0",
        "minimum_notice_minutes": "120",
        "booking_window_days": "30",
        "is_active": "on",
    }
    data.update(overrides)
    return data


def _location_options(html: str) -> dict[str, str]:
    select = re.search(r'<select name="location".*?</select>', html, re.S).group(0)
    return dict(re.findall(r'<option value="([^"]+)"[^>]*>([^<]*)</option>', select))


def _selected_location(html: str) -> str:
    select = re.search(r'<select name="location".*?</select>', html, re.S).group(0)
    return re.search(r'<option value="([^"]+)"[^>]*selected', select).group(1)


def test_the_form_offers_only_the_video_providers_set_up_on_this_site(client, login, admin, settings):
    settings.GOOGLE_CLIENT_ID = ""
    login(admin)

    options = _location_options(client.get(reverse("meetingtypes:create")).content.decode())

    assert list(options) == ["zoom", "microsoft_teams", "phone", "in_person", "custom_link"]
    response = client.post(reverse("meetingtypes:create"), _form([admin], location="google_meet"))
    assert response.status_code == 200
    assert "location" in response.context["form"].errors
    assert not MeetingType.objects.exists()
    assert client.post(reverse("meetingtypes:create"), _form([admin], location="microsoft_teams")).status_code == 302
    assert MeetingType.objects.get().location == "microsoft_teams"


def test_without_any_video_provider_the_form_offers_the_other_locations_and_starts_on_one(
    client, login, admin, settings
):
    settings.ZOOM_CLIENT_ID = settings.GOOGLE_CLIENT_ID = settings.MICROSOFT_CLIENT_ID = ""
    login(admin)

    page = client.get(reverse("meetingtypes:create")).content.decode()

    assert list(_location_options(page)) == ["phone", "in_person", "custom_link"]
    assert _selected_location(page) == "phone"


def test_a_saved_location_no_longer_set_up_stays_selected_and_the_editor_says_bookings_fall_back(
    client, login, admin, member, settings
):
    connect(member, Provider.ZOOM)
    meeting_type = video_type(admin.organization, [member], GOOGLE, name="Discovery")
    settings.GOOGLE_CLIENT_ID = ""
    login(admin)

    page = edit_page(client, meeting_type)

    assert _selected_location(page) == "google_meet"
    assert _location_options(page)["google_meet"] == "Google Meet (not set up on this site)"
    assert warnings_in(page) == {
        "not-offered": "Google Meet can't be used: it isn't set up on this site. Bookings fall back to Zoom."
    }
    # Saving other changes keeps it; choosing it anew elsewhere is refused.
    saved = client.post(
        reverse("meetingtypes:edit", args=[meeting_type.pk]), _form([member], name="Renamed", location="google_meet")
    )
    assert saved.status_code == 302
    meeting_type.refresh_from_db()
    assert (meeting_type.name, meeting_type.location) == ("Renamed", "google_meet")
    refused = client.post(reverse("meetingtypes:create"), _form([member], location="google_meet"))
    assert "location" in refused.context["form"].errors


def test_a_saved_location_no_longer_set_up_with_no_other_account_says_no_link(client, login, admin, member, settings):
    connect(member, Provider.ZOOM)
    meeting_type = video_type(admin.organization, [member], ZOOM, name="Discovery")
    settings.ZOOM_CLIENT_ID = ""
    login(admin)

    assert warnings_in(edit_page(client, meeting_type)) == {
        "not-offered": "Zoom can't be used: it isn't set up on this site.",
        "no-link": "The host, Maya Member, has no video account connected: bookings will get no video link, "
        "and the host will be asked to send one.",
    }


# ---------------------------------------------------------------- the Team Members page


def test_an_admin_sees_each_providers_state_on_a_colleagues_card_but_not_their_accounts(client, login, admin, member):
    connect(member, Provider.ZOOM, email="maya.private@zoom-account.example")
    connect(member, Provider.GOOGLE, email="maya.private@gmail.example", status=Connection.Status.BROKEN)
    login(admin)

    page = client.get(reverse("members:list")).content.decode()
    found = re.search(rf'<li[^>]*\bid="member-{member.pk}".*?</li>', page, re.S).group(0)

    states = {
        provider: re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", text)).strip()
        for provider, text in re.findall(r'data-provider="(\w+)">(.*?)</div>', found, re.S)
    }
    assert states == {
        "zoom": "Zoom Zoom connected",
        "google": "Google Meet Needs reconnecting",
        "microsoft": "Microsoft Teams Not connected",
    }
    assert "private@" not in page
    # Only the member connects, reconnects or disconnects their own accounts.
    assert "/integrations/" not in found and "Reconnect" not in found
