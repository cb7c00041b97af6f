"""A busy booking page finds its meeting type without asking the database, and never shows one that changed.

Every public page starts by finding the meeting type its address names, and the calendar names its
hosts. Clients open those pages all day while admins change them a few times a year, so both come
from the shared cache; and whatever an admin changes (deactivating, renaming, deleting a meeting
type or an organization, editing the hosts) is seen by the very next request.
"""

import time

import pytest
from django.core.cache import cache
from django.db import transaction

from accounts import services as account_services
from bookings import public_lookups
from meetingtypes import services as meetingtype_services
from meetingtypes.models import MeetingType
from members import services as member_services

from .booking_helpers import TUESDAY, at, get_slots, iso, make_meeting_type, public_url

pytestmark = pytest.mark.django_db

DECEMBER = "2026-12"


@pytest.fixture
def hana(make_member, organization):
    return make_member(organization, name="Hana Host", time_zone="UTC")


@pytest.fixture
def ivan(make_member, organization):
    return make_member(organization, name="Ivan Host", time_zone="UTC")


@pytest.fixture
def consultation(hana, ivan):
    return make_meeting_type(hana.organization, [hana, ivan], name="Consultation")


def page(client, meeting_type):
    return client.get(public_url(meeting_type))


def month(client, meeting_type):
    return get_slots(client, meeting_type, month=DECEMBER)


def form(client, meeting_type):
    return client.get(public_url(meeting_type, "book"), {"start": iso(at(TUESDAY, "10:00")), "tz": "UTC"})


def warm(client, meeting_type) -> None:
    """A first client has opened the page and its month: both are in the cache."""
    assert page(client, meeting_type).status_code == 200
    assert month(client, meeting_type).status_code == 200


def statuses(client, meeting_type) -> tuple[int, int]:
    return page(client, meeting_type).status_code, month(client, meeting_type).status_code


# ---------------------------------------------------------------- no query when warm


@pytest.mark.usefixtures("frozen_now")
def test_the_cached_month_of_times_takes_no_query(client, consultation, django_assert_num_queries):
    first = month(client, consultation)

    with django_assert_num_queries(0):
        again = month(client, consultation)

    assert again.status_code == 200
    assert again.json() == first.json()
    assert "10:00" in [slot["time"] for slot in again.json()["days"][TUESDAY.isoformat()]]


@pytest.mark.usefixtures("frozen_now")
@pytest.mark.parametrize("open_page", [page, form], ids=["booking page", "booking form"])
def test_the_booking_page_and_form_take_no_query_when_warm(client, consultation, open_page, django_assert_num_queries):
    open_page(client, consultation)

    with django_assert_num_queries(0):
        response = open_page(client, consultation)

    assert response.status_code == 200
    text = response.content.decode()
    assert "Consultation" in text and "Acme Consulting" in text
    assert "One of: Hana Host, Ivan Host" in text


def test_an_address_that_names_nothing_is_not_remembered(client, organization, hana):
    missing = client.get(f"/{organization.slug}/consultation/")
    assert missing.status_code == 404

    created = make_meeting_type(organization, [hana], name="Consultation")

    assert page(client, created).status_code == 200


def test_a_slug_longer_than_any_slug_is_not_looked_up(client, organization, django_assert_num_queries):
    with django_assert_num_queries(0):
        response = client.get(f"/{organization.slug}/{'x' * 61}/slots.json", {"tz": "UTC"})

    assert response.status_code == 404


# ---------------------------------------------------------------- changes are seen at once


@pytest.mark.usefixtures("frozen_now")
def test_a_deactivated_meeting_type_is_gone_at_once_and_back_when_reactivated(client, consultation):
    warm(client, consultation)

    meetingtype_services.set_active(meeting_type=consultation, active=False)
    assert statuses(client, consultation) == (404, 404)

    meetingtype_services.set_active(meeting_type=consultation, active=True)
    assert statuses(client, consultation) == (200, 200)


@pytest.mark.usefixtures("frozen_now")
@pytest.mark.parametrize("update_fields", [None, ["slug"]], ids=["whole row", "slug only"])
def test_a_renamed_meeting_type_leaves_its_old_address_at_once(client, consultation, update_fields):
    old_url = public_url(consultation)
    warm(client, consultation)

    consultation.slug = "first-consultation"
    consultation.save(update_fields=update_fields)

    assert client.get(old_url).status_code == 404
    assert statuses(client, consultation) == (200, 200)


@pytest.mark.usefixtures("frozen_now")
def test_an_edited_meeting_type_shows_its_new_name_at_once(client, consultation):
    warm(client, consultation)

    consultation.name = "Strategy session"
    consultation.save()

    assert "Strategy session" in page(client, consultation).content.decode()


@pytest.mark.usefixtures("frozen_now")
def test_a_deleted_meeting_type_is_gone_at_once(client, consultation):
    warm(client, consultation)

    consultation.delete()

    assert statuses(client, consultation) == (404, 404)


@pytest.mark.usefixtures("frozen_now")
def test_a_renamed_organization_leaves_its_old_addresses_at_once(client, consultation, organization):
    old_url = public_url(consultation)
    warm(client, consultation)

    organization.slug = "acme-advisory"
    organization.save()
    consultation.refresh_from_db()

    assert client.get(old_url).status_code == 404
    assert statuses(client, consultation) == (200, 200)


@pytest.mark.usefixtures("frozen_now")
def test_the_organizations_new_name_shows_at_once(client, consultation, organization):
    warm(client, consultation)

    account_services.update_organization(
        organization=organization, name="Acme Advisory", accent_color="", new_logo=None, remove_logo=False
    )

    assert "Acme Advisory" in page(client, consultation).content.decode()


@pytest.mark.usefixtures("frozen_now")
def test_a_deleted_organization_takes_its_pages_along_at_once(client, consultation, organization):
    warm(client, consultation)

    organization.delete()

    assert statuses(client, consultation) == (404, 404)


# ---------------------------------------------------------------- the hosts named on the page


def host_line(client, meeting_type) -> str:
    """The page's list of facts about the meeting: its length, where, and with whom."""
    text = page(client, meeting_type).content.decode()
    return text.split('<ul class="meta">', 1)[1].split("</ul>", 1)[0]


@pytest.mark.usefixtures("frozen_now")
def test_a_host_renamed_or_deactivated_shows_at_once(client, consultation, hana, admin):
    warm(client, consultation)

    member_services.update_member(member=hana, display_name="Hana Ito", role=hana.role, time_zone=hana.time_zone)
    assert "One of: Hana Ito, Ivan Host" in host_line(client, consultation)

    member_services.deactivate_member(member=hana)
    assert "Hana" not in host_line(client, consultation)


@pytest.mark.usefixtures("frozen_now")
def test_hosts_added_removed_and_reordered_show_at_once(client, consultation, hana, ivan, make_member, organization):
    warm(client, consultation)

    meetingtype_services.move_host_up(meeting_type=consultation, member=ivan)
    assert "One of: Ivan Host, Hana Host" in host_line(client, consultation)

    consultation.hosts.remove(ivan)
    assert "Ivan" not in host_line(client, consultation)

    consultation.hosts.add(make_member(organization, name="Zoe Host"), through_defaults={"position": 5})
    assert "One of: Hana Host, Zoe Host" in host_line(client, consultation)

    ivan.meeting_types.add(consultation, through_defaults={"position": 9})
    assert "One of: Hana Host, Zoe Host, Ivan Host" in host_line(client, consultation)

    hana.meeting_types.clear()
    assert "Hana" not in host_line(client, consultation)


@pytest.mark.usefixtures("frozen_now")
def test_a_change_to_another_field_of_a_host_keeps_the_names_cached(client, consultation, hana):
    """A host's own hours, zone or locale say nothing about the names on the page."""
    warm(client, consultation)

    hana.locale = "de-DE"
    hana.save(update_fields=["locale"])

    assert cache.get(public_lookups._host_names_key(consultation.pk)) == ["Hana Host", "Ivan Host"]


# ---------------------------------------------------------------- what signals cannot see


def test_a_write_that_sends_no_signal_is_seen_once_the_entry_expires(client, consultation, settings):
    """QuerySet.update saves no model: the address stays cached for at most its lifetime."""
    settings.SLOTS_CACHE_SECONDS = 1
    assert page(client, consultation).status_code == 200

    MeetingType.objects.filter(pk=consultation.pk).update(is_active=False)
    assert page(client, consultation).status_code == 200  # the cached copy, within its second

    time.sleep(1.2)
    assert page(client, consultation).status_code == 404


def test_a_lifetime_of_zero_keeps_nothing_and_asks_nothing(client, consultation, settings, monkeypatch):
    """SLOTS_CACHE_SECONDS=0 (the load test's cold web node): every request reads the database."""
    settings.SLOTS_CACHE_SECONDS = 0
    asked = []
    monkeypatch.setattr(cache, "get", lambda *args, **kwargs: asked.append(args))

    assert public_lookups.meeting_type_at(consultation.organization.slug, consultation.slug) == consultation
    assert public_lookups.host_names(consultation) == ["Hana Host", "Ivan Host"]
    assert asked == []


@pytest.mark.usefixtures("frozen_now")
def test_an_entry_read_by_another_request_before_the_commit_is_forgotten_after_it(
    client, consultation, django_capture_on_commit_callbacks
):
    """Until the deactivation commits, other requests still read the active meeting type and may
    cache it again: the commit forgets it once more."""
    key = public_lookups._address_key(consultation.organization.slug, consultation.slug)
    with django_capture_on_commit_callbacks(execute=True):
        with transaction.atomic():
            meetingtype_services.set_active(meeting_type=MeetingType.objects.get(pk=consultation.pk), active=False)
            cache.set(key, consultation)  # what a request outside the transaction read meanwhile

    assert cache.get(key) is None
    assert statuses(client, consultation) == (404, 404)


# ---------------------------------------------------------------- the cache down


@pytest.mark.usefixtures("frozen_now")
def test_with_the_cache_down_the_pages_are_served_and_changes_still_saved(client, consultation, monkeypatch):
    def unreachable(*args, **kwargs):
        raise ConnectionError("cache server unreachable")

    for method in ("get", "set", "get_many", "set_many", "delete_many", "add", "incr"):
        monkeypatch.setattr(cache, method, unreachable)
    assert statuses(client, consultation) == (200, 200)
    assert "One of: Hana Host, Ivan Host" in host_line(client, consultation)

    meetingtype_services.set_active(meeting_type=consultation, active=False)

    assert statuses(client, consultation) == (404, 404)


@pytest.mark.usefixtures("frozen_now")
def test_a_booking_is_decided_on_the_meeting_type_in_the_database(client, consultation):
    """Even when a write that sends no signal left an active copy in the cache."""
    assert page(client, consultation).status_code == 200
    MeetingType.objects.filter(pk=consultation.pk).update(is_active=False)

    response = client.post(
        public_url(consultation, "book"),
        {"name": "Casey Client", "email": "casey@example.com", "start": iso(at(TUESDAY, "10:00")), "time_zone": "UTC"},
    )

    assert response.status_code == 400
    assert "no longer takes bookings" in response.content.decode()
