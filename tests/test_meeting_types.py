"""Admins set up what clients can book: meeting types, their hosts and their booking links."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from meetingtypes.models import MeetingType, MeetingTypeHost

from .booking_helpers import make_meeting_type

pytestmark = pytest.mark.django_db


def _form(hosts, **overrides) -> dict:
    """The meeting type form as the browser posts it."""
    data = {
        "name": "Discovery call",
        "slug": "",
        "description": "A first talk about your project.",
        "duration_minutes": "45",
        "location": "zoom",
        "location_detail": "",
        "assignment": "round_robin",
        "hosts": [host.pk for host in hosts],
        "buffer_before_minutes": "5",
        "buffer_after_minutes": "10",
        "minimum_notice_minutes": "120",
        "booking_window_days": "30",
        "slot_interval_minutes": "15",
        "daily_limit_per_host": "4",
        "is_active": "on",
    }
    data.update(overrides)
    return data


def _host_order(meeting_type) -> list[int]:
    return list(meeting_type.host_links.order_by("position", "id").values_list("member_id", flat=True))


def _create(client, hosts, **overrides):
    return client.post(reverse("meetingtypes:create"), _form(hosts, **overrides))


def _errors(response) -> dict:
    assert response.status_code == 200
    return response.context["form"].errors


# ---------------------------------------------------------------- create, edit, deactivate


def test_an_admin_creates_a_meeting_type(client, login, admin, member, other_member):
    login(admin)
    assert client.get(reverse("meetingtypes:create")).status_code == 200
    response = _create(client, [member, other_member])
    assert response.status_code == 302 and response["Location"] == reverse("meetingtypes:list")

    meeting_type = MeetingType.objects.get()
    assert meeting_type.organization == admin.organization
    assert meeting_type.name == "Discovery call"
    assert meeting_type.slug == "discovery-call"  # made from the name
    assert meeting_type.duration_minutes == 45
    assert (meeting_type.location, meeting_type.location_detail) == ("zoom", "")
    assert meeting_type.assignment == MeetingType.Assignment.ROUND_ROBIN
    assert (meeting_type.buffer_before_minutes, meeting_type.buffer_after_minutes) == (5, 10)
    assert (meeting_type.minimum_notice_minutes, meeting_type.booking_window_days) == (120, 30)
    assert (meeting_type.slot_interval_minutes, meeting_type.daily_limit_per_host) == (15, 4)
    assert meeting_type.is_active
    assert sorted(_host_order(meeting_type)) == sorted([member.pk, other_member.pk])
    assert sorted(meeting_type.host_links.values_list("position", flat=True)) == [0, 1]

    page = client.get(response["Location"]).content.decode()
    assert "“Discovery call” was created." in page
    # The new type is bookable at once.
    assert (
        client.get(reverse("bookings:public_page", args=[admin.organization.slug, "discovery-call"])).status_code == 200
    )


def test_an_admin_edits_a_meeting_type_and_its_hosts(client, login, admin, member, other_member):
    meeting_type = make_meeting_type(admin.organization, [other_member, admin], name="Intro", slug="intro")
    login(admin)
    assert client.get(reverse("meetingtypes:edit", args=[meeting_type.pk])).status_code == 200
    response = client.post(
        reverse("meetingtypes:edit", args=[meeting_type.pk]),
        _form(
            [member, other_member],
            name="Intro (long)",
            slug="intro",
            duration_minutes="60",
            location="phone",
            location_detail="  +1 555 0100  ",
            slot_interval_minutes="",
            daily_limit_per_host="",
        ),
    )
    assert response.status_code == 302
    meeting_type.refresh_from_db()
    assert (meeting_type.name, meeting_type.slug, meeting_type.duration_minutes) == ("Intro (long)", "intro", 60)
    assert (meeting_type.location, meeting_type.location_detail) == ("phone", "+1 555 0100")
    assert meeting_type.slot_interval_minutes is None and meeting_type.daily_limit_per_host is None
    # The host kept keeps their place; the new one joins at the end; the removed one is gone.
    assert _host_order(meeting_type) == [other_member.pk, member.pk]
    assert MeetingTypeHost.objects.filter(member=admin).count() == 0


def test_an_admin_deactivates_and_reactivates_a_meeting_type(client, login, admin, member):
    meeting_type = make_meeting_type(admin.organization, [member], name="Intro", slug="intro")
    public_page = reverse("bookings:public_page", args=[admin.organization.slug, "intro"])
    login(admin)

    response = client.post(reverse("meetingtypes:toggle", args=[meeting_type.pk]))
    assert response.status_code == 302
    meeting_type.refresh_from_db()
    assert not meeting_type.is_active
    assert client.get(public_page).status_code == 404
    page = client.get(reverse("meetingtypes:list")).content.decode()
    assert "is deactivated: its link no longer takes bookings." in page
    assert "Inactive" in page and ">Activate<" in page

    client.post(reverse("meetingtypes:toggle", args=[meeting_type.pk]))
    meeting_type.refresh_from_db()
    assert meeting_type.is_active
    assert client.get(public_page).status_code == 200


def test_a_deactivated_type_can_be_edited_and_stays_deactivated_unless_ticked(client, login, admin, member):
    meeting_type = make_meeting_type(admin.organization, [member], name="Intro", slug="intro", is_active=False)
    login(admin)
    data = _form([member], name="Intro", slug="intro")
    del data["is_active"]  # an unticked checkbox is not sent
    assert client.post(reverse("meetingtypes:edit", args=[meeting_type.pk]), data).status_code == 302
    meeting_type.refresh_from_db()
    assert not meeting_type.is_active and meeting_type.duration_minutes == 45


# ---------------------------------------------------------------- form rules


def test_a_one_person_meeting_type_needs_exactly_one_host(client, login, admin, member, other_member):
    login(admin)
    for hosts in ([member, other_member], []):
        errors = _errors(_create(client, hosts, assignment="one_person"))
        assert "hosts" in errors
    assert (
        "Choose exactly one host for a one-person meeting type."
        in _errors(_create(client, [member, other_member], assignment="one_person"))["hosts"]
    )
    assert not MeetingType.objects.exists()
    assert _create(client, [other_member], assignment="one_person").status_code == 302
    assert _host_order(MeetingType.objects.get()) == [other_member.pk]


def test_the_url_name_is_made_from_the_name_and_cleaned(client, login, admin, member):
    login(admin)
    _create(client, [member], name="Café & Strategy Session!")
    _create(client, [member], name="Second", slug="Quick-Chat")
    assert sorted(MeetingType.objects.values_list("slug", flat=True)) == ["cafe-strategy-session", "quick-chat"]


def test_the_url_name_is_unique_within_an_organization_only(client, login, admin, member, outsider):
    make_meeting_type(admin.organization, [member], name="Intro", slug="intro")
    login(admin)
    for overrides in ({"slug": "intro"}, {"slug": "INTRO"}):
        errors = _errors(_create(client, [member], **overrides))
        assert errors["slug"] == ["Another meeting type already uses this URL name."], overrides
    assert MeetingType.objects.filter(organization=admin.organization).count() == 1
    # Left empty, the URL name is made from the name, and made unique without bothering the admin.
    assert _create(client, [member], name="Intro", slug="").status_code == 302
    assert MeetingType.objects.filter(organization=admin.organization, slug="intro-2").exists()
    for reserved in ("book", "slots.json"):
        assert "slug" in _errors(_create(client, [member], slug=reserved))

    # Another organization may use the same URL name; each link shows its own meeting type.
    login(outsider)
    assert _create(client, [outsider], name="Rival intro", slug="intro").status_code == 302
    assert MeetingType.objects.filter(slug="intro").count() == 2
    ours = client.get(reverse("bookings:public_page", args=[admin.organization.slug, "intro"])).content.decode()
    theirs = client.get(reverse("bookings:public_page", args=[outsider.organization.slug, "intro"])).content.decode()
    assert "<h1>Intro</h1>" in ours and "<h1>Rival intro</h1>" in theirs


def test_editing_keeps_the_url_name_free_for_itself(client, login, admin, member):
    meeting_type = make_meeting_type(admin.organization, [member], name="Intro", slug="intro")
    login(admin)
    response = client.post(reverse("meetingtypes:edit", args=[meeting_type.pk]), _form([member], slug="intro"))
    assert response.status_code == 302
    meeting_type.refresh_from_db()
    assert meeting_type.slug == "intro"


@pytest.mark.parametrize(
    ("location", "detail", "message"),
    [
        ("custom_link", "meet-me-somewhere", "Please enter a full link starting with https://."),
        ("custom_link", "ftp://files.example.com/room", "Please enter a full link starting with https://."),
        ("custom_link", "", "Please enter the phone number, address or link."),
        ("phone", "", "Please enter the phone number, address or link."),
        ("phone", "   ", "Please enter the phone number, address or link."),
        ("in_person", "", "Please enter the phone number, address or link."),
    ],
)
def test_locations_that_need_details_require_them(client, login, admin, member, location, detail, message):
    login(admin)
    errors = _errors(_create(client, [member], location=location, location_detail=detail))
    assert errors["location_detail"] == [message]
    assert not MeetingType.objects.exists()


@pytest.mark.parametrize(
    ("location", "detail"),
    [
        ("custom_link", "https://meet.example.com/room/42"),
        ("phone", "+1 555 0100"),
        ("in_person", "1 Harbour Street, Springfield"),
        ("google_meet", ""),
    ],
)
def test_locations_with_their_details_are_accepted(client, login, admin, member, location, detail):
    login(admin)
    assert _create(client, [member], location=location, location_detail=detail).status_code == 302
    assert MeetingType.objects.get().location_detail == detail


def test_hosts_must_be_active_members_of_the_organization(client, login, admin, member, other_member, outsider):
    login(admin)
    errors = _errors(_create(client, [member, outsider]))
    assert "Select a valid choice" in errors["hosts"][0]
    other_member.is_active = False
    other_member.save()
    errors = _errors(_create(client, [member, other_member]))
    assert "Select a valid choice" in errors["hosts"][0]
    assert not MeetingType.objects.exists()
    assert not MeetingTypeHost.objects.exists()

    # Editing cannot sneak a foreign host in either.
    meeting_type = make_meeting_type(admin.organization, [member], name="Intro", slug="intro")
    response = client.post(reverse("meetingtypes:edit", args=[meeting_type.pk]), _form([outsider], slug="intro"))
    assert "hosts" in _errors(response)
    assert _host_order(meeting_type) == [member.pk]


# ---------------------------------------------------------------- host order


def test_an_admin_moves_a_host_up(client, login, admin, member, other_member):
    meeting_type = make_meeting_type(admin.organization, [member, other_member, admin], name="Intro", slug="intro")
    login(admin)
    page = client.get(reverse("meetingtypes:edit", args=[meeting_type.pk])).content.decode()
    order = page[page.index("Host order") :]
    assert order.index("Maya Member") < order.index("Oscar Other") < order.index("Alice Admin")
    assert order.count("Move up") == 2  # not for the first

    response = client.post(reverse("meetingtypes:host_up", args=[meeting_type.pk, admin.pk]))
    assert response.status_code == 302
    assert response["Location"] == reverse("meetingtypes:edit", args=[meeting_type.pk])
    assert _host_order(meeting_type) == [member.pk, admin.pk, other_member.pk]
    client.post(reverse("meetingtypes:host_up", args=[meeting_type.pk, admin.pk]))
    assert _host_order(meeting_type) == [admin.pk, member.pk, other_member.pk]
    client.post(reverse("meetingtypes:host_up", args=[meeting_type.pk, admin.pk]))  # already first
    assert _host_order(meeting_type) == [admin.pk, member.pk, other_member.pk]
    assert sorted(meeting_type.host_links.values_list("position", flat=True)) == [0, 1, 2]

    page = client.get(reverse("meetingtypes:edit", args=[meeting_type.pk])).content.decode()
    order = page[page.index("Host order") :]
    assert order.index("Alice Admin") < order.index("Maya Member") < order.index("Oscar Other")

    client.post(reverse("meetingtypes:host_up", args=[meeting_type.pk, other_member.pk]))
    client.post(reverse("meetingtypes:host_up", args=[meeting_type.pk, other_member.pk]))
    assert _host_order(meeting_type) == [other_member.pk, admin.pk, member.pk]
    # Saving the form again keeps the order the admin chose.
    client.post(
        reverse("meetingtypes:edit", args=[meeting_type.pk]), _form([member, other_member, admin], slug="intro")
    )
    assert _host_order(meeting_type) == [other_member.pk, admin.pk, member.pk]


def test_moving_someone_who_is_not_a_host_is_not_found(client, login, admin, member, other_member, outsider):
    meeting_type = make_meeting_type(admin.organization, [member], name="Intro", slug="intro")
    login(admin)
    assert client.post(reverse("meetingtypes:host_up", args=[meeting_type.pk, other_member.pk])).status_code == 404
    assert client.post(reverse("meetingtypes:host_up", args=[meeting_type.pk, outsider.pk])).status_code == 404
    assert _host_order(meeting_type) == [member.pk]


# ---------------------------------------------------------------- the list page


def test_the_list_shows_each_booking_link_a_copy_button_and_the_embed_code(client, login, admin, member):
    intro = make_meeting_type(admin.organization, [member], name="Intro", slug="intro")
    review = make_meeting_type(admin.organization, [member, admin], name="Review", slug="review")
    login(admin)
    page = client.get(reverse("meetingtypes:list")).content.decode()
    for meeting_type in (intro, review):
        link = f"http://testserver/acme-consulting/{meeting_type.slug}/"
        assert f'id="link-{meeting_type.pk}" type="text" readonly value="{link}"' in page
        assert f'data-copy="#link-{meeting_type.pk}"' in page
        assert (
            f'&lt;script src="http://testserver/static/js/embed.js" data-tsp-url="{link}" async&gt;&lt;/script&gt;'
            in page
        )
        assert f'data-copy="#embed-{meeting_type.pk}"' in page
    assert "Maya Member, Alice Admin" in page  # hosts in their order
    # The link really is the public booking page.
    assert client.get("/acme-consulting/review/").status_code == 200


def _list_queries(client) -> tuple[int, str]:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(reverse("meetingtypes:list"))
    assert response.status_code == 200
    return len(queries.captured_queries), response.content.decode()


def test_the_list_is_a_constant_number_of_queries(client, login, admin, member, other_member):
    make_meeting_type(admin.organization, [member, other_member], name="Type 0")
    login(admin)
    client.get(reverse("meetingtypes:list"))  # warm up (session, content types)
    one, page = _list_queries(client)
    assert page.count('<li class="card') == 1
    for n in range(1, 10):
        make_meeting_type(admin.organization, [member, other_member, admin][: 1 + n % 3], name=f"Type {n}")
    ten, page = _list_queries(client)
    assert page.count('<li class="card') == 10
    assert ten == one


def test_a_member_sees_the_list_but_cannot_change_meeting_types(client, login, admin, member):
    meeting_type = make_meeting_type(admin.organization, [member], name="Intro", slug="intro")
    login(member)
    response = client.get(reverse("meetingtypes:list"))
    assert response.status_code == 200
    page = response.content.decode()
    assert "Intro" in page and "http://testserver/acme-consulting/intro/" in page
    assert reverse("meetingtypes:create") not in page
    assert reverse("meetingtypes:edit", args=[meeting_type.pk]) not in page
    assert "Deactivate" not in page

    assert client.get(reverse("meetingtypes:create")).status_code == 403
    assert _create(client, [member]).status_code == 403
    assert client.post(reverse("meetingtypes:edit", args=[meeting_type.pk]), _form([member])).status_code == 403
    assert client.post(reverse("meetingtypes:toggle", args=[meeting_type.pk])).status_code == 403
    assert MeetingType.objects.count() == 1
    meeting_type.refresh_from_db()
    assert (meeting_type.name, meeting_type.is_active) == ("Intro", True)


def test_an_admin_of_another_organization_cannot_reach_our_meeting_types(client, login, admin, member, outsider):
    meeting_type = make_meeting_type(admin.organization, [member], name="Intro", slug="intro")
    login(outsider)
    assert "Intro" not in client.get(reverse("meetingtypes:list")).content.decode()
    assert client.get(reverse("meetingtypes:edit", args=[meeting_type.pk])).status_code == 404
    assert client.post(reverse("meetingtypes:toggle", args=[meeting_type.pk])).status_code == 404
    meeting_type.refresh_from_db()
    assert meeting_type.is_active
