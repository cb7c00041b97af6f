"""A client's journey through the public booking pages, and the scheduling rules behind them.

Everything goes through the real URLs. The clock stands at NOW, Monday 2026-12-07 06:00 UTC;
hosts made here work Mon-Fri 09:00-17:00 in their own time zone (UTC unless said otherwise).
"""

import json
from datetime import UTC, date, datetime, time, timedelta
from urllib.parse import parse_qs, urlparse
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.core import mail
from django.db import connection, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from bookings import services
from bookings.models import Booking, BookingHost
from meetingtypes.models import MeetingType
from members.models import DateOverride, WorkingHours

from .booking_helpers import (
    MONDAY,
    NOW,
    TUESDAY,
    WEDNESDAY,
    at,
    book_through_service,
    book_via_page,
    get_slots,
    iso,
    make_booking,
    make_meeting_type,
    public_url,
    slots,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("frozen_now")]

COLLECTIVE = MeetingType.Assignment.COLLECTIVE
ONE_PERSON = MeetingType.Assignment.ONE_PERSON
AUCKLAND = ZoneInfo("Pacific/Auckland")
DAY_OF_SLOTS = [f"{h:02d}:{m:02d}" for h in range(9, 17) for m in (0, 30)]  # 09:00 … 16:30


@pytest.fixture
def host(make_member, organization):
    return make_member(organization, name="Hana Host", time_zone="UTC")


@pytest.fixture
def hosts(make_member, organization):
    """Three hosts with identical hours (UTC), created in this order (ascending ids)."""
    return [make_member(organization, name=f"Host {n}", time_zone="UTC") for n in (1, 2, 3)]


def _set_hours(member, weekly: dict[int, list[tuple[str, str]]]) -> None:
    WorkingHours.objects.filter(member=member).delete()
    for weekday, intervals in weekly.items():
        for start, end in intervals:
            WorkingHours.objects.create(
                member=member, weekday=weekday, start=time.fromisoformat(start), end=time.fromisoformat(end)
            )


def _hosts_of(booking) -> list[int]:
    return list(BookingHost.objects.filter(booking=booking, is_active=True).values_list("member_id", flat=True))


# ---------------------------------------------------------------- the public page


def test_the_public_page_of_an_active_meeting_type_opens(client, host):
    meeting_type = make_meeting_type(host.organization, [host], assignment=ONE_PERSON)
    response = client.get(public_url(meeting_type))
    assert response.status_code == 200
    page = response.content.decode()
    assert "Intro call" in page and "Hana Host" in page
    assert public_url(meeting_type, "slots") in page


def test_an_inactive_unknown_or_foreign_meeting_type_is_not_found(client, host, outsider):
    meeting_type = make_meeting_type(host.organization, [host])
    retired = make_meeting_type(host.organization, [host], name="Old offer", is_active=False)
    org_slug = host.organization.slug
    assert client.get(reverse("bookings:public_page", args=[org_slug, retired.slug])).status_code == 404
    assert client.get(reverse("bookings:slots", args=[org_slug, retired.slug])).status_code == 404
    assert client.get(reverse("bookings:public_page", args=[org_slug, "no-such-type"])).status_code == 404
    # Our meeting type's slug under another organization's address is not ours to show.
    foreign = reverse("bookings:public_page", args=[outsider.organization.slug, meeting_type.slug])
    assert client.get(foreign).status_code == 404
    assert (
        client.get(reverse("bookings:slots", args=[outsider.organization.slug, meeting_type.slug])).status_code == 404
    )


def test_the_booking_form_shows_the_chosen_time_in_the_clients_zone(client, host):
    meeting_type = make_meeting_type(host.organization, [host], assignment=ONE_PERSON)
    chosen = {"start": iso(at(TUESDAY, "10:00")), "tz": "America/New_York"}
    response = client.get(public_url(meeting_type, "book"), chosen, HTTP_ACCEPT_LANGUAGE="en-GB,en;q=0.8")
    assert response.status_code == 200
    assert "You picked Tuesday, 8 December 2026 at 05:00 (Eastern Time — New York)." in response.content.decode()
    # A browser in the US reads the same time in its own format.
    response = client.get(public_url(meeting_type, "book"), chosen, HTTP_ACCEPT_LANGUAGE="en-US,en;q=0.8")
    assert "You picked Tuesday, December 8, 2026 at 5:00 AM (Eastern Time — New York)." in response.content.decode()
    # Without a valid time the form sends the client back to the calendar.
    response = client.get(public_url(meeting_type, "book"), {"start": "soon", "tz": "UTC"})
    assert response.status_code == 302 and response["Location"] == public_url(meeting_type)


# ---------------------------------------------------------------- the slots JSON


def test_the_slots_json_describes_one_month_in_the_requested_zone(client, host):
    meeting_type = make_meeting_type(host.organization, [host], assignment=ONE_PERSON)
    response = get_slots(client, meeting_type, tz="UTC", month="2026-12")
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert list(body) == ["time_zone", "month", "today", "days", "previous_month", "next_month"]
    assert response.content.decode() == json.dumps(body)  # as json.dumps writes it
    assert body["time_zone"] == "UTC"
    assert body["month"] == "2026-12"
    assert body["today"] == "2026-12-07"
    assert body["previous_month"] is None  # nothing bookable before this month
    assert body["next_month"] == "2027-01"
    # Today's hours are still ahead; weekends are free of slots; each slot names its UTC instant.
    assert body["days"]["2026-12-07"][0] == {"start": "2026-12-07T09:00:00Z", "time": "09:00"}
    assert [slot["time"] for slot in body["days"]["2026-12-07"]] == DAY_OF_SLOTS
    assert "2026-12-12" not in body["days"] and "2026-12-13" not in body["days"]


def test_without_a_month_the_calendar_opens_on_the_first_month_with_a_free_day(client, host):
    meeting_type = make_meeting_type(host.organization, [host], assignment=ONE_PERSON)
    # No weekly hours at all, and the only free date is in January.
    WorkingHours.objects.filter(member=host).delete()
    DateOverride.objects.create(member=host, date=date(2027, 1, 12), start=time(10), end=time(11))
    body = get_slots(client, meeting_type, tz="UTC").json()
    assert body["month"] == "2027-01"
    assert list(body["days"]) == ["2027-01-12"]
    assert [slot["time"] for slot in body["days"]["2027-01-12"]] == ["10:00", "10:30"]
    assert body["previous_month"] == "2026-12"
    assert body["next_month"] == "2027-02"


def test_the_calendar_skips_a_month_that_bookings_have_filled(client, host):
    meeting_type = make_meeting_type(host.organization, [host], assignment=ONE_PERSON, duration_minutes=60)
    WorkingHours.objects.filter(member=host).delete()
    # December's only free hour is already booked; January has one.
    DateOverride.objects.create(member=host, date=date(2026, 12, 15), start=time(10), end=time(11))
    DateOverride.objects.create(member=host, date=date(2027, 1, 5), start=time(10), end=time(11))
    make_booking(meeting_type, [host], at(date(2026, 12, 15), "10:00"))
    body = get_slots(client, meeting_type, tz="UTC").json()
    assert (body["month"], list(body["days"])) == ("2027-01", ["2027-01-05"])


def test_times_are_shown_in_the_clients_zone(client, make_member, organization):
    berlin = make_member(organization, name="Bea Berlin", time_zone="Europe/Berlin")
    meeting_type = make_meeting_type(organization, [berlin], assignment=ONE_PERSON)
    # 09:00 in Berlin is 08:00 UTC, 03:00 in New York (winter time).
    new_york = slots(client, meeting_type, tz="America/New_York", month="2026-12")
    assert new_york["2026-12-08"][0] == "03:00"
    assert new_york["2026-12-08"][-1] == "10:30"
    payload = get_slots(client, meeting_type, tz="America/New_York", month="2026-12").json()
    assert payload["time_zone"] == "America/New_York"
    assert payload["days"]["2026-12-08"][0]["start"] == "2026-12-08T08:00:00Z"


def test_dates_move_with_the_clients_zone(client, host):
    # The host works late on Mondays: 23:30-24:00 UTC is 05:00 on Tuesday in Kolkata.
    _set_hours(host, {0: [("23:30", "00:00")]})
    meeting_type = make_meeting_type(host.organization, [host], assignment=ONE_PERSON)
    utc = get_slots(client, meeting_type, tz="UTC", month="2026-12").json()["days"]
    kolkata = get_slots(client, meeting_type, tz="Asia/Kolkata", month="2026-12").json()["days"]
    assert utc["2026-12-07"] == [{"start": "2026-12-07T23:30:00Z", "time": "23:30"}]
    assert "2026-12-07" not in kolkata
    assert kolkata["2026-12-08"] == [{"start": "2026-12-07T23:30:00Z", "time": "05:00"}]


def test_minimum_notice_hides_times_too_soon(client, host):
    # Now is 06:00 UTC: with four hours' notice the first time today is 10:00.
    meeting_type = make_meeting_type(host.organization, [host], assignment=ONE_PERSON, minimum_notice_minutes=240)
    today = slots(client, meeting_type, month="2026-12")["2026-12-07"]
    assert today[0] == "10:00"
    assert "09:30" not in today
    response = book_via_page(client, meeting_type, iso(at(MONDAY, "09:30")))
    assert response.status_code == 302 and "not_offered=1" in response["Location"]
    assert not Booking.objects.exists()


def test_the_booking_window_ends_the_calendar(client, host):
    # Three days ahead: the last bookable instant is Thursday 06:00 UTC, before Thursday's hours.
    meeting_type = make_meeting_type(host.organization, [host], assignment=ONE_PERSON, booking_window_days=3)
    body = get_slots(client, meeting_type, month="2026-12").json()
    assert sorted(body["days"]) == ["2026-12-07", "2026-12-08", "2026-12-09"]
    assert body["next_month"] is None
    assert get_slots(client, meeting_type, month="2027-01").json()["days"] == {}
    response = book_via_page(client, meeting_type, iso(at(date(2026, 12, 10), "10:00")))
    assert "not_offered=1" in response["Location"]
    assert not Booking.objects.exists()


@pytest.mark.parametrize(
    "params",
    [{"tz": "Mars/Olympus_Mons"}, {"tz": "UTC", "month": "2026-13"}, {"tz": "UTC", "month": "december"}],
    ids=["unknown-zone", "month-13", "garbage-month"],
)
def test_bad_slots_requests_get_a_json_400(client, host, params):
    meeting_type = make_meeting_type(host.organization, [host])
    response = client.get(public_url(meeting_type, "slots"), params)
    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    assert response.json()["error"]


def _queries_for_one_month(client, meeting_type) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = get_slots(client, meeting_type, tz="Europe/Paris", month="2026-12")
    assert response.status_code == 200 and response.json()["days"]
    return len(queries.captured_queries)


def test_a_month_of_slots_takes_the_same_few_queries_for_1_or_12_hosts(client, make_member, organization):
    few_hosts = [make_member(organization, time_zone="UTC")]
    many_hosts = [make_member(organization, time_zone=tz) for tz in ["UTC", "Asia/Tokyo", "America/Chicago"] * 4]
    # Daily limits on: the engine then also needs each host's bookings of this type.
    solo = make_meeting_type(organization, few_hosts, name="Solo", daily_limit_per_host=8)
    team = make_meeting_type(organization, many_hosts, name="Team", daily_limit_per_host=8)
    for n, member in enumerate([*few_hosts, *many_hosts]):
        DateOverride.objects.create(member=member, date=date(2026, 12, 21 + n % 3))
        make_booking(solo if member in few_hosts else team, [member], at(TUESDAY, "15:00") + timedelta(hours=n))
    one = _queries_for_one_month(client, solo)
    twelve = _queries_for_one_month(client, team)
    assert one == twelve
    assert twelve <= 6


# ---------------------------------------------------------------- booking a time


def test_a_client_books_a_free_time(client, host, django_capture_on_commit_callbacks):
    meeting_type = make_meeting_type(
        host.organization, [host], assignment=ONE_PERSON, buffer_before_minutes=10, buffer_after_minutes=15
    )
    # The client, in Berlin, picks 11:00 on Tuesday from the calendar.
    tuesday = get_slots(client, meeting_type, tz="Europe/Berlin", month="2026-12").json()["days"]["2026-12-08"]
    chosen = next(slot for slot in tuesday if slot["time"] == "11:00")
    assert chosen["start"] == "2026-12-08T10:00:00Z"

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = book_via_page(
            client,
            meeting_type,
            chosen["start"],
            "Europe/Berlin",
            name="  Casey Client ",
            email="casey@example.com",
            notes="Please call me first.",
        )
        # Nothing is sent while the booking's transaction is still open.
        assert mail.outbox == []

    booking = Booking.objects.get()
    assert response.status_code == 302
    assert response["Location"] == booking.manage_url() + "?booked=1"
    assert booking.start == datetime(2026, 12, 8, 10, 0, tzinfo=UTC)
    assert booking.end == datetime(2026, 12, 8, 10, 30, tzinfo=UTC)
    assert (booking.client_name, booking.client_email, booking.client_notes, booking.client_time_zone) == (
        "Casey Client",
        "casey@example.com",
        "Please call me first.",
        "Europe/Berlin",
    )
    assert booking.status == Booking.Status.CONFIRMED and booking.sequence == 0
    row = BookingHost.objects.get()
    assert (row.booking_id, row.member_id, row.is_active) == (booking.pk, host.pk, True)
    assert row.occupied_start == datetime(2026, 12, 8, 9, 50, tzinfo=UTC)
    assert row.occupied_end == datetime(2026, 12, 8, 10, 45, tzinfo=UTC)

    # After the commit: the cached booking pages are forgotten again and the follow-up work is
    # queued; one notice to the client, one to the host, each in their own zone.
    assert len(callbacks) == 2
    assert sorted(message.to[0] for message in mail.outbox) == sorted(["casey@example.com", host.user.email])
    to_client = next(m for m in mail.outbox if m.to == ["casey@example.com"])
    to_host = next(m for m in mail.outbox if m.to == [host.user.email])
    assert to_client.subject == "Confirmed: Intro call on Tue, Dec 8, 2026, 11:00 AM GMT+1"
    assert booking.manage_url() in to_client.body and "Hana Host" in to_client.body
    assert to_host.subject == "New booking: Intro call with Casey Client on Tue, Dec 8, 2026, 10:00 AM GMT+0"
    assert "Casey Client <casey@example.com>" in to_host.body and "Please call me first." in to_host.body

    # The confirmation page greets the client; the time is gone from the calendar.
    page = client.get(response["Location"]).content.decode()
    assert "You are booked" in page and "casey@example.com" in page
    assert "11:00" not in slots(client, meeting_type, tz="Europe/Berlin", month="2026-12")["2026-12-08"]


def test_a_booking_whose_transaction_rolls_back_queues_nothing(host, django_capture_on_commit_callbacks):
    meeting_type = make_meeting_type(host.organization, [host], assignment=ONE_PERSON)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        with pytest.raises(RuntimeError), transaction.atomic():
            book_through_service(meeting_type, at(TUESDAY, "10:00"))
            assert Booking.objects.count() == 1
            raise RuntimeError("something later in the same request failed")
    assert callbacks == []
    assert mail.outbox == []
    assert not Booking.objects.exists() and not BookingHost.objects.exists()


# ---------------------------------------------------------------- busy time across meeting types


def test_a_booking_of_one_type_blocks_the_host_in_another_with_both_buffers(client, host):
    consult = make_meeting_type(
        host.organization, [host], name="Consultation", buffer_before_minutes=10, buffer_after_minutes=15
    )
    review = make_meeting_type(
        host.organization,
        [host],
        name="Review",
        buffer_before_minutes=10,
        buffer_after_minutes=10,
        slot_interval_minutes=15,
    )
    before = slots(client, review, month="2026-12")["2026-12-08"]
    assert {"11:00", "11:15", "12:45", "13:00"} <= set(before)

    assert book_via_page(client, consult, iso(at(TUESDAY, "12:00"))).status_code == 302
    # Consultation occupies 11:50-12:45. A review at s occupies s-10 .. s+40, so 11:15 (ends with its
    # buffer at 11:55) and 12:45 (starts with its buffer at 12:35) are gone as well.
    after = slots(client, review, month="2026-12")["2026-12-08"]
    gone = [t for t in before if t not in after]
    assert gone == ["11:15", "11:30", "11:45", "12:00", "12:15", "12:30", "12:45"]
    assert "11:00" in after and "13:00" in after

    response = book_via_page(client, review, iso(at(TUESDAY, "12:45")), "UTC", email="late@example.com")
    assert response.status_code == 302
    assert "taken=1" in response["Location"]
    assert not Booking.objects.filter(meeting_type=review).exists()
    assert book_via_page(client, review, iso(at(TUESDAY, "13:00"))).status_code == 302
    assert Booking.objects.filter(meeting_type=review).count() == 1


# ---------------------------------------------------------------- round robin


def _book_and_get_host(client, meeting_type, start: datetime) -> int:
    response = book_via_page(client, meeting_type, iso(start))
    assert response.status_code == 302 and "booked=1" in response["Location"], response.get("Location")
    booking = Booking.objects.filter(meeting_type=meeting_type, start=start).get()
    hosts = _hosts_of(booking)
    assert len(hosts) == 1
    return hosts[0]


def test_round_robin_starts_with_never_booked_hosts_in_host_order(client, hosts):
    first, second, third = hosts
    # The admin's order is not the order the members were created in.
    meeting_type = make_meeting_type(first.organization, [second, third, first])
    assert _book_and_get_host(client, meeting_type, at(TUESDAY, "10:00")) == second.pk
    assert _book_and_get_host(client, meeting_type, at(TUESDAY, "11:00")) == third.pk
    assert _book_and_get_host(client, meeting_type, at(TUESDAY, "12:00")) == first.pk


def test_round_robin_gives_the_booking_to_the_least_recently_booked_host(client, hosts):
    first, second, third = hosts
    meeting_type = make_meeting_type(first.organization, hosts)
    # First was booked most recently (once); third longest ago (though twice).
    make_booking(meeting_type, [third], at(date(2026, 11, 30), "10:00"), created_at=datetime(2026, 11, 20, tzinfo=UTC))
    make_booking(meeting_type, [third], at(date(2026, 12, 1), "10:00"), created_at=datetime(2026, 11, 21, tzinfo=UTC))
    make_booking(meeting_type, [second], at(date(2026, 12, 2), "10:00"), created_at=datetime(2026, 11, 25, tzinfo=UTC))
    make_booking(meeting_type, [first], at(date(2026, 12, 3), "10:00"), created_at=datetime(2026, 12, 1, tzinfo=UTC))
    assert _book_and_get_host(client, meeting_type, at(TUESDAY, "10:00")) == third.pk
    # Now third is the most recent: next comes second, then first.
    with time_machine.travel(NOW + timedelta(minutes=1), tick=False):
        assert _book_and_get_host(client, meeting_type, at(TUESDAY, "11:00")) == second.pk
    with time_machine.travel(NOW + timedelta(minutes=2), tick=False):
        assert _book_and_get_host(client, meeting_type, at(TUESDAY, "12:00")) == first.pk
    with time_machine.travel(NOW + timedelta(minutes=3), tick=False):
        assert _book_and_get_host(client, meeting_type, at(TUESDAY, "13:00")) == third.pk


def test_round_robin_ties_go_to_the_host_higher_in_the_list(client, hosts):
    first, second, third = hosts
    meeting_type = make_meeting_type(first.organization, [third, second, first])
    same_moment = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    for host in hosts:
        make_booking(meeting_type, [host], at(date(2026, 12, 2), "10:00"), created_at=same_moment)
    # All booked at the same moment: the order decides, every time.
    for n, clock in enumerate(["10:00", "10:30", "11:00"]):
        for booking in Booking.objects.filter(start__gte=NOW, status=Booking.Status.CONFIRMED):
            services.cancel(booking=booking)
        assert _book_and_get_host(client, meeting_type, at(TUESDAY, clock)) == third.pk, n


def test_round_robin_skips_a_host_who_is_busy_at_that_time(client, hosts):
    first, second, third = hosts
    meeting_type = make_meeting_type(first.organization, hosts)
    other_type = make_meeting_type(first.organization, [first], name="Workshop", assignment=ONE_PERSON)
    make_booking(other_type, [first], at(TUESDAY, "10:00"))
    assert _book_and_get_host(client, meeting_type, at(TUESDAY, "10:00")) == second.pk
    # At 11:00 everyone is free again and first was never booked for this type.
    assert _book_and_get_host(client, meeting_type, at(TUESDAY, "11:00")) == first.pk


def test_bookings_of_other_meeting_types_do_not_count_for_fairness(client, hosts):
    first, second, _third = hosts
    meeting_type = make_meeting_type(first.organization, [first, second])
    workshop = make_meeting_type(first.organization, [first], name="Workshop", assignment=ONE_PERSON)
    # Second had this type a while ago; first has been busy with workshops only, very recently.
    make_booking(meeting_type, [second], at(date(2026, 12, 1), "10:00"), created_at=datetime(2026, 11, 1, tzinfo=UTC))
    for day in (2, 3, 4):
        make_booking(workshop, [first], at(date(2026, 12, day), "10:00"), created_at=datetime(2026, 12, 6, tzinfo=UTC))
    assert _book_and_get_host(client, meeting_type, at(TUESDAY, "10:00")) == first.pk


def test_a_cancelled_booking_does_not_count_for_fairness(client, hosts):
    first, second, _third = hosts
    meeting_type = make_meeting_type(first.organization, [first, second])
    cancelled = make_booking(meeting_type, [second], at(date(2026, 12, 1), "10:00"), status=Booking.Status.CANCELLED)
    BookingHost.objects.filter(booking=cancelled).update(is_active=False)
    make_booking(meeting_type, [first], at(date(2026, 12, 2), "10:00"), created_at=datetime(2026, 11, 1, tzinfo=UTC))
    assert _book_and_get_host(client, meeting_type, at(TUESDAY, "10:00")) == second.pk


def test_round_robin_offers_a_time_while_any_host_is_free(client, hosts):
    first, second, third = hosts
    meeting_type = make_meeting_type(first.organization, [first, second])
    _set_hours(second, {1: [("13:00", "19:00")]})
    tuesday = slots(client, meeting_type, month="2026-12")["2026-12-08"]
    assert tuesday[0] == "09:00" and tuesday[-1] == "18:30"  # first's morning, second's evening
    assert _book_and_get_host(client, meeting_type, at(TUESDAY, "18:00")) == second.pk


# ---------------------------------------------------------------- collective and one-person


def test_collective_meetings_are_offered_only_when_every_host_is_free(
    client, hosts, django_capture_on_commit_callbacks
):
    first, second, third = hosts
    meeting_type = make_meeting_type(first.organization, [first, second], assignment=COLLECTIVE)
    _set_hours(second, {1: [("13:00", "19:00")]})
    workshop = make_meeting_type(first.organization, [first], name="Workshop", assignment=ONE_PERSON)
    make_booking(workshop, [first], at(TUESDAY, "14:00"))
    tuesday = slots(client, meeting_type, month="2026-12")["2026-12-08"]
    assert tuesday == ["13:00", "13:30", "14:30", "15:00", "15:30", "16:00", "16:30"]
    assert "2026-12-09" not in slots(client, meeting_type, month="2026-12")  # second is off on Wednesdays

    with django_capture_on_commit_callbacks(execute=True):
        response = book_via_page(client, meeting_type, iso(at(TUESDAY, "15:00")))
    assert "booked=1" in response["Location"]
    booking = Booking.objects.get(meeting_type=meeting_type)
    assert sorted(_hosts_of(booking)) == sorted([first.pk, second.pk])
    # The client and both hosts are told.
    assert sorted(m.to[0] for m in mail.outbox) == sorted(["casey@example.com", first.user.email, second.user.email])
    response = book_via_page(client, meeting_type, iso(at(TUESDAY, "14:00")))
    assert "taken=1" in response["Location"]


def test_a_one_person_meeting_follows_only_that_hosts_hours(client, hosts):
    first, second, _third = hosts
    _set_hours(first, {1: [("09:00", "11:00")]})
    meeting_type = make_meeting_type(first.organization, [first], assignment=ONE_PERSON)
    assert slots(client, meeting_type, month="2026-12") == {
        day: ["09:00", "09:30", "10:00", "10:30"] for day in ["2026-12-08", "2026-12-15", "2026-12-22", "2026-12-29"]
    }
    # A colleague who is free all day makes no difference.
    response = book_via_page(client, meeting_type, iso(at(TUESDAY, "14:00")))
    assert response.status_code == 302 and "not_offered=1" in response["Location"]
    assert not Booking.objects.exists()
    assert _book_and_get_host(client, meeting_type, at(TUESDAY, "09:00")) == first.pk


def test_a_host_with_a_daily_limit_has_no_more_times_that_local_date(client, make_member, organization):
    # Auckland (UTC+13 in December): 09:00-17:00 there spans two UTC dates.
    kiwi = make_member(organization, name="Kiri", time_zone="Pacific/Auckland")
    meeting_type = make_meeting_type(organization, [kiwi], assignment=ONE_PERSON, daily_limit_per_host=2)
    before = slots(client, meeting_type, tz="Pacific/Auckland", month="2026-12")
    assert before["2026-12-09"] == DAY_OF_SLOTS
    auckland = AUCKLAND.key
    wednesday_morning = at(WEDNESDAY, "09:00", tz=AUCKLAND)  # Tuesday 20:00 UTC
    wednesday_afternoon = at(WEDNESDAY, "16:00", tz=AUCKLAND)  # Wednesday 03:00 UTC
    assert wednesday_morning.date() != wednesday_afternoon.date()
    assert _book_and_get_host(client, meeting_type, wednesday_morning) == kiwi.pk
    assert "2026-12-09" in slots(client, meeting_type, tz=auckland, month="2026-12")
    assert _book_and_get_host(client, meeting_type, wednesday_afternoon) == kiwi.pk

    after = slots(client, meeting_type, tz=auckland, month="2026-12")
    assert "2026-12-09" not in after
    assert after["2026-12-08"] == before["2026-12-08"] and after["2026-12-10"] == before["2026-12-10"]
    response = book_via_page(client, meeting_type, iso(at(WEDNESDAY, "12:00", tz=AUCKLAND)))
    assert "taken=1" in response["Location"]
    assert Booking.objects.count() == 2


# ---------------------------------------------------------------- the time was just taken


def test_the_second_client_for_the_same_time_is_sent_back_to_the_calendar(client, host):
    meeting_type = make_meeting_type(host.organization, [host], assignment=ONE_PERSON)
    start = iso(at(TUESDAY, "15:00"))
    first = book_via_page(Client(REMOTE_ADDR="10.0.0.1"), meeting_type, start, "America/New_York")
    assert "booked=1" in first["Location"]

    second = book_via_page(
        Client(REMOTE_ADDR="10.0.0.2"), meeting_type, start, "America/New_York", email="second@example.com"
    )
    assert second.status_code == 302
    location = urlparse(second["Location"])
    assert location.path == public_url(meeting_type)
    assert parse_qs(location.query) == {"taken": ["1"], "tz": ["America/New_York"], "month": ["2026-12"]}
    assert Booking.objects.count() == 1
    assert not Booking.objects.filter(client_email="second@example.com").exists()

    page = client.get(second["Location"])
    assert page.status_code == 200
    content = page.content.decode()
    assert "That time was just taken. Please choose another time." in content
    assert 'data-initial-time-zone="America/New_York"' in content and 'data-initial-month="2026-12"' in content


def test_a_tampered_start_that_was_never_offered_is_not_called_taken(client, host):
    meeting_type = make_meeting_type(host.organization, [host], assignment=ONE_PERSON)
    # Ten past ten is between two offered times (10:00 and 10:30): only an edited form sends it.
    response = book_via_page(client, meeting_type, iso(at(TUESDAY, "10:10")), "America/New_York")
    location = urlparse(response["Location"])
    assert location.path == public_url(meeting_type)
    assert parse_qs(location.query) == {"not_offered": ["1"], "tz": ["America/New_York"], "month": ["2026-12"]}
    assert not Booking.objects.exists()

    content = client.get(response["Location"]).content.decode()
    assert "That time isn't offered; please pick one of the times shown." in content
    assert "just taken" not in content
    # The calendar asks for fresh slots of that month, in the client's zone.
    assert 'data-initial-time-zone="America/New_York"' in content and 'data-initial-month="2026-12"' in content


def test_the_month_kept_on_the_taken_redirect_is_the_clients_month(client, host):
    # 31 Dec 23:30 in New York is already January in UTC; the client was looking at December.
    _set_hours(host, {4: [("04:00", "05:00")]})  # Fridays, early (UTC)
    meeting_type = make_meeting_type(host.organization, [host], assignment=ONE_PERSON)
    make_booking(meeting_type, [host], at(date(2027, 1, 1), "04:30"))
    response = book_via_page(client, meeting_type, iso(at(date(2027, 1, 1), "04:30")), "America/New_York")
    assert parse_qs(urlparse(response["Location"]).query)["month"] == ["2026-12"]


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"email": "casey-at-example"}, "Enter a valid email address."),
        ({"time_zone": "Mars/Olympus_Mons"}, "is not a known time zone"),
        ({"name": "x" * 121}, "Ensure this value has at most 120 characters"),
        ({"name": "   "}, "This field is required."),
        ({"notes": "x" * 2001}, "Ensure this value has at most 2000 characters"),
        ({"start": "next tuesday at ten"}, "The chosen time is not valid"),
        ({"start": "2026-12-08T10:00:00"}, "The chosen time is not valid"),  # no offset: which 10:00?
        ({"start": "2026-12-07T05:00:00Z"}, "already passed"),
    ],
    ids=["email", "time-zone", "long-name", "blank-name", "long-notes", "not-iso", "naive", "past"],
)
def test_bad_booking_input_is_refused_with_a_visible_error(client, host, fields, message):
    meeting_type = make_meeting_type(host.organization, [host], assignment=ONE_PERSON)
    response = book_via_page(client, meeting_type, iso(at(TUESDAY, "10:00")), "UTC", **fields)
    assert response.status_code == 400
    page = response.content.decode()
    assert message in page
    assert 'class="errorlist' in page
    assert not Booking.objects.exists() and not BookingHost.objects.exists()


def test_a_time_outside_the_hosts_hours_is_not_booked(client, host):
    meeting_type = make_meeting_type(host.organization, [host], assignment=ONE_PERSON)
    # After hours, on a Saturday, and between two offered times.
    for start in [at(TUESDAY, "20:00"), at(date(2026, 12, 12), "10:00"), at(TUESDAY, "10:10")]:
        response = book_via_page(client, meeting_type, iso(start))
        assert response.status_code == 302
        assert parse_qs(urlparse(response["Location"]).query)["not_offered"] == ["1"]
    assert not Booking.objects.exists() and not BookingHost.objects.exists()


def test_an_inactive_meeting_type_takes_no_booking(client, host):
    meeting_type = make_meeting_type(host.organization, [host], assignment=ONE_PERSON, is_active=False)
    response = book_via_page(client, meeting_type, iso(at(TUESDAY, "10:00")))
    assert response.status_code == 400
    assert "This meeting type no longer takes bookings." in response.content.decode()
    assert not Booking.objects.exists()


def test_the_public_booking_form_is_rate_limited_per_address(host, settings):
    settings.BOOKING_RATE_LIMIT = 3
    meeting_type = make_meeting_type(host.organization, [host], assignment=ONE_PERSON)
    noisy = Client(REMOTE_ADDR="203.0.113.7")
    for clock in ["09:00", "09:30", "10:00"]:
        assert "booked=1" in book_via_page(noisy, meeting_type, iso(at(TUESDAY, clock)))["Location"]
    response = book_via_page(noisy, meeting_type, iso(at(TUESDAY, "10:30")))
    assert response.status_code == 429
    assert "Too many attempts" in response.content.decode()
    assert 1 <= int(response["Retry-After"]) <= settings.BOOKING_RATE_WINDOW_SECONDS
    assert Booking.objects.count() == 3
    assert not Booking.objects.filter(start=at(TUESDAY, "10:30")).exists()

    neighbour = Client(REMOTE_ADDR="203.0.113.8")
    assert "booked=1" in book_via_page(neighbour, meeting_type, iso(at(TUESDAY, "10:30")))["Location"]
    assert Booking.objects.count() == 4


# ---------------------------------------------------------------- embedding


def test_the_booking_pages_can_be_framed_only_when_embedded(client, host, admin):
    meeting_type = make_meeting_type(host.organization, [host], assignment=ONE_PERSON)
    embedded = client.get(public_url(meeting_type), {"embed": "1"})
    assert embedded.status_code == 200
    assert not embedded.has_header("X-Frame-Options")
    assert "frame-ancestors *" in embedded["Content-Security-Policy"]
    assert "script-src 'self'" in embedded["Content-Security-Policy"]  # framed, still strict

    plain = client.get(public_url(meeting_type))
    assert plain["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in plain["Content-Security-Policy"]

    # Inside the frame, the booking goes on embedded.
    response = client.post(
        public_url(meeting_type, "book"),
        {
            "name": "Casey",
            "email": "casey@example.com",
            "start": iso(at(TUESDAY, "10:00")),
            "time_zone": "UTC",
            "embed": "1",
        },
    )
    assert response["Location"].endswith("?booked=1&embed=1")
    assert "frame-ancestors *" in client.get(response["Location"])["Content-Security-Policy"]

    staff = Client()
    staff.force_login(admin.user)
    for name in ("bookings:list", "meetingtypes:list", "members:profile"):
        response = staff.get(reverse(name), {"embed": "1"})
        assert response.status_code == 200
        assert response["X-Frame-Options"] == "DENY", name
        assert "frame-ancestors *" not in response.get("Content-Security-Policy", "")


# ---------------------------------------------------------------- the manage link


def _booked(client, meeting_type, start: datetime, tz: str = "UTC", **fields) -> Booking:
    response = book_via_page(client, meeting_type, iso(start), tz, **fields)
    assert "booked=1" in response["Location"], response
    return Booking.objects.get(meeting_type=meeting_type, start=start)


def test_the_manage_page_opens_only_with_its_own_token(client, host):
    meeting_type = make_meeting_type(host.organization, [host], assignment=ONE_PERSON)
    booking = _booked(client, meeting_type, at(TUESDAY, "10:00"), "Asia/Kolkata")
    other = _booked(client, meeting_type, at(TUESDAY, "11:00"), email="other@example.com")

    response = client.get(booking.manage_url())
    assert response.status_code == 200
    assert response["Referrer-Policy"] == "same-origin"
    page = response.content.decode()
    assert "Tuesday, December 8, 2026" in page and "3:30 PM – 4:00 PM" in page  # in the client's zone
    assert booking.cancel_url() in page and booking.reschedule_url() in page

    token = booking.manage_token
    altered = token[:-1] + ("A" if token[-1] != "A" else "B")
    for bad in ["not-a-token", altered, other.manage_token, ""]:
        url = f"/booking/{booking.uid}/{bad}/"
        assert client.get(url).status_code == 404, bad
        assert client.post(url + "cancel/").status_code == 404, bad
    booking.refresh_from_db()
    assert booking.status == Booking.Status.CONFIRMED


def test_a_client_cancels_through_the_link(client, host, django_capture_on_commit_callbacks):
    meeting_type = make_meeting_type(host.organization, [host], assignment=ONE_PERSON)
    booking = _booked(client, meeting_type, at(TUESDAY, "10:00"))
    assert "10:00" not in slots(client, meeting_type, month="2026-12")["2026-12-08"]

    confirm = client.get(booking.cancel_url())
    assert confirm.status_code == 200
    assert "Cancel this booking?" in confirm.content.decode()
    assert Booking.objects.get().status == Booking.Status.CONFIRMED  # a GET changes nothing

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(booking.cancel_url(), {"reason": "  Something came up.  "})
    assert response.status_code == 302 and response["Location"] == booking.manage_url()
    booking.refresh_from_db()
    assert booking.status == Booking.Status.CANCELLED
    assert booking.cancelled_at == NOW and booking.cancel_reason == "Something came up."
    assert booking.sequence == 1
    assert not BookingHost.objects.filter(booking=booking, is_active=True).exists()
    assert "10:00" in slots(client, meeting_type, month="2026-12")["2026-12-08"]
    assert sorted(m.to[0] for m in mail.outbox) == sorted(["casey@example.com", host.user.email])
    assert all(m.subject.startswith("Cancelled: Intro call") for m in mail.outbox)
    assert "This booking was cancelled" in client.get(booking.manage_url()).content.decode()


def test_a_cancelled_or_past_booking_cannot_be_cancelled_again(client, host):
    meeting_type = make_meeting_type(host.organization, [host], assignment=ONE_PERSON)
    booking = _booked(client, meeting_type, at(TUESDAY, "10:00"))
    # The reason is optional: a POST without it cancels too.
    assert client.post(booking.cancel_url()).status_code == 302
    booking.refresh_from_db()
    cancelled_at, sequence = booking.cancelled_at, booking.sequence

    with time_machine.travel(NOW + timedelta(hours=1), tick=False):
        again = client.post(booking.cancel_url(), {"reason": "twice"})
    assert again.status_code == 400
    assert "This booking can no longer be cancelled." in again.content.decode()
    booking.refresh_from_db()
    assert (booking.cancelled_at, booking.sequence, booking.cancel_reason) == (cancelled_at, sequence, "")

    held = _booked(client, meeting_type, at(TUESDAY, "11:00"), email="held@example.com")
    with time_machine.travel(at(TUESDAY, "11:05"), tick=False):
        late = client.post(held.cancel_url())
        assert late.status_code == 400
        assert "This booking can no longer be cancelled." in late.content.decode()
        assert "Reschedule" not in client.get(held.manage_url()).content.decode()
    held.refresh_from_db()
    assert held.status == Booking.Status.CONFIRMED
    assert BookingHost.objects.get(booking=held).is_active


def _reschedule(client, booking, start: datetime, tz: str = "UTC"):
    url = reverse("bookings:reschedule_confirm", args=[booking.uid, booking.manage_token])
    return client.post(url, {"start": iso(start), "time_zone": tz})


def test_a_client_moves_the_booking_and_keeps_the_host(client, hosts, django_capture_on_commit_callbacks):
    first, second, third = hosts
    meeting_type = make_meeting_type(first.organization, [second, first])
    workshop = make_meeting_type(first.organization, [second], name="Workshop", assignment=ONE_PERSON)
    make_booking(workshop, [second], at(TUESDAY, "10:00"))
    booking = _booked(client, meeting_type, at(TUESDAY, "10:00"))
    assert _hosts_of(booking) == [first.pk]  # second was busy
    uid, pk = booking.uid, booking.pk

    page = client.get(booking.reschedule_url())
    assert page.status_code == 200 and "Pick a new time" in page.content.decode()
    confirm = client.get(
        reverse("bookings:reschedule_confirm", args=[booking.uid, booking.manage_token]),
        {"start": iso(at(TUESDAY, "14:00")), "tz": "UTC"},
    )
    assert confirm.status_code == 200
    booking.refresh_from_db()
    assert booking.start == at(TUESDAY, "10:00")  # a GET only asks

    # At 14:00 both are free; second is higher in the list but the client keeps their host.
    with django_capture_on_commit_callbacks(execute=True):
        response = _reschedule(client, booking, at(TUESDAY, "14:00"))
    assert response.status_code == 302 and response["Location"] == booking.manage_url() + "?moved=1"
    booking.refresh_from_db()
    assert (booking.pk, booking.uid, booking.sequence) == (pk, uid, 1)
    assert (booking.start, booking.end) == (at(TUESDAY, "14:00"), at(TUESDAY, "14:30"))
    assert Booking.objects.filter(meeting_type=meeting_type).count() == 1
    assert _hosts_of(booking) == [first.pk]
    row = BookingHost.objects.get(booking=booking)
    assert (row.occupied_start, row.occupied_end) == (at(TUESDAY, "14:00"), at(TUESDAY, "14:30"))
    assert "10:00" in slots(client, meeting_type, month="2026-12")["2026-12-08"]
    assert sorted(m.to[0] for m in mail.outbox) == sorted(["casey@example.com", first.user.email])
    assert all(m.subject.startswith("New time: Intro call") for m in mail.outbox)
    assert "Your booking was moved" in client.get(response["Location"]).content.decode()


def test_a_moved_booking_goes_to_another_host_when_its_host_is_busy(client, hosts):
    first, second, _third = hosts
    meeting_type = make_meeting_type(first.organization, [first, second])
    booking = _booked(client, meeting_type, at(TUESDAY, "10:00"))
    assert _hosts_of(booking) == [first.pk]
    workshop = make_meeting_type(first.organization, [first], name="Workshop", assignment=ONE_PERSON)
    make_booking(workshop, [first], at(TUESDAY, "15:00"))

    assert _reschedule(client, booking, at(TUESDAY, "15:00"))["Location"].endswith("?moved=1")
    booking.refresh_from_db()
    assert booking.start == at(TUESDAY, "15:00") and booking.sequence == 1
    assert _hosts_of(booking) == [second.pk]
    assert BookingHost.objects.filter(booking=booking).count() == 1


def test_a_booking_can_move_into_time_that_overlaps_its_own(client, host):
    meeting_type = make_meeting_type(
        host.organization, [host], assignment=ONE_PERSON, duration_minutes=60, slot_interval_minutes=30
    )
    booking = _booked(client, meeting_type, at(TUESDAY, "10:00"))
    public = slots(client, meeting_type, month="2026-12")["2026-12-08"]
    assert "09:30" not in public and "10:30" not in public
    reschedule_slots = reverse("bookings:reschedule_slots", args=[booking.uid, booking.manage_token])
    own = slots(client, meeting_type, month="2026-12", url=reschedule_slots)["2026-12-08"]
    assert {"09:30", "10:00", "10:30"} <= set(own)

    response = _reschedule(client, booking, at(TUESDAY, "10:30"))
    assert response["Location"].endswith("?moved=1")
    booking.refresh_from_db()
    assert (booking.start, booking.end, booking.sequence) == (at(TUESDAY, "10:30"), at(TUESDAY, "11:30"), 1)
    assert _hosts_of(booking) == [host.pk]


def test_moving_to_a_taken_time_sends_the_client_back_to_pick_again(client, host):
    meeting_type = make_meeting_type(host.organization, [host], assignment=ONE_PERSON)
    booking = _booked(client, meeting_type, at(TUESDAY, "10:00"))
    _booked(client, meeting_type, at(TUESDAY, "11:00"), email="other@example.com")
    response = _reschedule(client, booking, at(TUESDAY, "11:00"), tz="Europe/Berlin")
    location = urlparse(response["Location"])
    assert location.path == booking.reschedule_url()
    assert parse_qs(location.query) == {"taken": ["1"], "tz": ["Europe/Berlin"], "month": ["2026-12"]}
    booking.refresh_from_db()
    assert (booking.start, booking.sequence) == (at(TUESDAY, "10:00"), 0)
    assert BookingHost.objects.get(booking=booking).occupied_start == at(TUESDAY, "10:00")


def test_moving_to_a_time_that_is_not_offered_says_so(client, host):
    meeting_type = make_meeting_type(host.organization, [host], assignment=ONE_PERSON)
    booking = _booked(client, meeting_type, at(TUESDAY, "10:00"))
    response = _reschedule(client, booking, at(TUESDAY, "03:00"), tz="Europe/Berlin")  # before the host's hours
    location = urlparse(response["Location"])
    assert location.path == booking.reschedule_url()
    assert parse_qs(location.query) == {"not_offered": ["1"], "tz": ["Europe/Berlin"], "month": ["2026-12"]}
    assert "That time isn't offered" in client.get(response["Location"]).content.decode()
    booking.refresh_from_db()
    assert (booking.start, booking.sequence) == (at(TUESDAY, "10:00"), 0)


def test_a_cancelled_booking_cannot_be_moved(client, host):
    meeting_type = make_meeting_type(host.organization, [host], assignment=ONE_PERSON)
    booking = _booked(client, meeting_type, at(TUESDAY, "10:00"))
    client.post(booking.cancel_url())
    assert client.get(booking.reschedule_url())["Location"] == booking.manage_url()
    reschedule_slots = reverse("bookings:reschedule_slots", args=[booking.uid, booking.manage_token])
    assert client.get(reschedule_slots).status_code == 400
    assert _reschedule(client, booking, at(TUESDAY, "12:00"))["Location"] == booking.manage_url()
    booking.refresh_from_db()
    assert (booking.start, booking.status) == (at(TUESDAY, "10:00"), Booking.Status.CANCELLED)


# ---------------------------------------------------------------- the team's dashboard


@pytest.fixture
def team_bookings(admin, member, other_member, outsider):
    """One upcoming booking hosted by each of member and other_member, and one of another organization."""
    ours = make_meeting_type(admin.organization, [member, other_member], name="Consultation")
    theirs = make_meeting_type(outsider.organization, [outsider], name="Rival pitch")
    return {
        "member": make_booking(ours, [member], at(TUESDAY, "13:00"), client_name="Mia Client"),
        "other": make_booking(ours, [other_member], at(WEDNESDAY, "15:00"), client_name="Otto Client"),
        "outsider": make_booking(theirs, [outsider], at(TUESDAY, "13:00"), client_name="Rex Client"),
    }


def _dashboard(client, viewer, **params):
    client.force_login(viewer.user)
    response = client.get(reverse("bookings:list"), params)
    assert response.status_code == 200
    return response.content.decode()


def test_admins_see_every_booking_of_their_organization_and_members_their_own(
    client, admin, member, other_member, outsider, team_bookings
):
    page = _dashboard(client, admin)
    assert "Mia Client" in page and "Otto Client" in page and "Rex Client" not in page

    page = _dashboard(client, member)
    assert "Mia Client" in page and "Otto Client" not in page and "Rex Client" not in page

    page = _dashboard(client, outsider)
    assert "Rex Client" in page and "Mia Client" not in page and "Otto Client" not in page


def test_the_dashboard_splits_upcoming_and_past_bookings(client, admin, member):
    meeting_type = make_meeting_type(admin.organization, [member])
    make_booking(meeting_type, [member], at(date(2026, 12, 1), "10:00"), client_name="Paula Past")
    make_booking(meeting_type, [member], at(TUESDAY, "10:00"), client_name="Uma Upcoming")
    upcoming = _dashboard(client, admin)
    assert "Uma Upcoming" in upcoming and "Paula Past" not in upcoming
    past = _dashboard(client, admin, when="past")
    assert "Paula Past" in past and "Uma Upcoming" not in past
    # Only an upcoming booking has a cancel button.
    assert "/cancel/" in upcoming and "/cancel/" not in past


def test_the_dashboard_pages_through_many_bookings(client, admin, member):
    meeting_type = make_meeting_type(admin.organization, [member])
    for n in range(30):
        make_booking(meeting_type, [member], at(TUESDAY, "09:00") + timedelta(hours=n), client_name=f"Client {n:02d}")
    first = _dashboard(client, admin)
    assert first.count('<tr id="booking-') == 25
    assert "Client 00" in first and "Client 24" in first and "Client 25" not in first
    assert "Page 1 of 2" in first and "?when=upcoming&amp;page=2" in first
    second = _dashboard(client, admin, page=2)
    assert second.count('<tr id="booking-') == 5
    assert "Client 25" in second and "Client 29" in second and "Client 24" not in second


def test_dashboard_times_are_in_the_viewers_time_zone(client, admin, member, other_member):
    meeting_type = make_meeting_type(admin.organization, [member])
    booking = make_booking(meeting_type, [member], at(TUESDAY, "13:00"))
    row = _dashboard(client, admin).split(f'id="booking-{booking.pk}"')[1].split("</tr>")[0]
    assert "2:00 PM – 2:30 PM" in row and "GMT+1" in row  # admin: Europe/Berlin
    row = _dashboard(client, member).split(f'id="booking-{booking.pk}"')[1].split("</tr>")[0]
    assert "6:30 PM – 7:00 PM" in row and "GMT+5:30" in row  # the host: Asia/Kolkata


def _dashboard_queries(client) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(reverse("bookings:list"))
    assert response.status_code == 200
    return len(queries.captured_queries)


def test_the_dashboard_is_a_constant_number_of_queries(client, admin, member, other_member):
    meeting_type = make_meeting_type(admin.organization, [member, other_member])
    make_booking(meeting_type, [member], at(TUESDAY, "09:00"))
    client.force_login(admin.user)
    client.get(reverse("bookings:list"))  # warm up
    one = _dashboard_queries(client)
    for n in range(1, 30):
        other_type = make_meeting_type(admin.organization, [member], name=f"Type {n}")
        make_booking(other_type, [member, other_member][: 1 + n % 2], at(TUESDAY, "10:00") + timedelta(hours=n))
    assert _dashboard_queries(client) == one


def test_a_host_cancels_their_booking_from_the_dashboard(
    client, member, team_bookings, django_capture_on_commit_callbacks
):
    booking = team_bookings["member"]
    client.force_login(member.user)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("bookings:staff_cancel", args=[booking.pk]), {"reason": "Ill"})
    assert response.status_code == 302 and response["Location"] == reverse("bookings:list")
    booking.refresh_from_db()
    assert booking.status == Booking.Status.CANCELLED and booking.cancel_reason == "Ill"
    assert not BookingHost.objects.filter(booking=booking, is_active=True).exists()
    assert sorted(m.to[0] for m in mail.outbox) == sorted([booking.client_email, member.user.email])
    assert "was cancelled" in client.get(response["Location"]).content.decode()


def test_an_admin_cancels_any_booking_of_the_organization(client, admin, team_bookings):
    booking = team_bookings["other"]
    client.force_login(admin.user)
    client.post(reverse("bookings:staff_cancel", args=[booking.pk]))
    booking.refresh_from_db()
    assert booking.status == Booking.Status.CANCELLED


def test_other_members_and_outsiders_cannot_cancel_a_booking(client, member, outsider, team_bookings):
    booking = team_bookings["other"]
    for viewer in (member, outsider):
        client.force_login(viewer.user)
        assert client.post(reverse("bookings:staff_cancel", args=[booking.pk])).status_code == 404
    booking.refresh_from_db()
    assert booking.status == Booking.Status.CONFIRMED
    assert BookingHost.objects.get(booking=booking).is_active


def test_a_past_booking_cannot_be_cancelled_from_the_dashboard(client, admin, member):
    meeting_type = make_meeting_type(admin.organization, [member])
    booking = make_booking(meeting_type, [member], at(date(2026, 12, 1), "10:00"))
    client.force_login(admin.user)
    response = client.post(reverse("bookings:staff_cancel", args=[booking.pk]), {"when": "past"})
    assert response["Location"] == reverse("bookings:list") + "?when=past"
    assert "This booking can no longer be cancelled." in client.get(response["Location"]).content.decode()
    booking.refresh_from_db()
    assert booking.status == Booking.Status.CONFIRMED
