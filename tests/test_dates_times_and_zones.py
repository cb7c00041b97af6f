"""One date/time format per viewer, locales kept for emails, and the time zone picker.

A page follows the browser's locale (its Accept-Language, whose first tag is `navigator.language`,
the locale booking.js formats the calendar in); an email follows the locale stored with its
recipient and their zone. The picker offers canonical zones only, with friendly names, and still
takes the older names browsers and old rows use. The clock stands at Monday 2026-12-07 06:00 UTC.
"""

from datetime import UTC, date, datetime, time

import pytest
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from accounts.models import User
from bookings.models import Booking
from members.models import TeamMember
from members.services import issue_invitation
from members.timezones import TimeZoneSelect, canonical_name, time_zone_choices, zone_label
from tsp import formatting

from .booking_helpers import (
    TUESDAY,
    WEDNESDAY,
    at,
    book_via_page,
    iso,
    make_booking,
    make_meeting_type,
    public_url,
)
from .conftest import PASSWORD

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("frozen_now")]

MIDNIGHT = datetime(2026, 12, 2, 0, 0, tzinfo=UTC)
US = {"HTTP_ACCEPT_LANGUAGE": "en-US,en;q=0.9"}
UK = {"HTTP_ACCEPT_LANGUAGE": "en-GB,en;q=0.9"}


# ---------------------------------------------------------------- the formatting functions


def test_en_us_reads_12_hour_times_and_month_first_dates():
    with timezone.override("UTC"):
        assert formatting.time_of_day(MIDNIGHT, "en-US") == "12:00 AM"
        assert formatting.long_date(MIDNIGHT, "en-US") == "Wednesday, December 2, 2026"
        assert formatting.short_date(MIDNIGHT, "en-US") == "Wed, Dec 2, 2026"
        assert formatting.date_time(MIDNIGHT, "en-US") == "Wednesday, December 2, 2026, 12:00 AM"


def test_en_gb_reads_24_hour_times_and_day_first_dates():
    with timezone.override("UTC"):
        assert formatting.time_of_day(MIDNIGHT, "en-GB") == "00:00"
        assert formatting.long_date(MIDNIGHT, "en-GB") == "Wednesday, 2 December 2026"
        assert formatting.short_date(MIDNIGHT, "en-GB") == "Wed, 2 Dec 2026"


def test_times_are_shown_in_the_active_time_zone_and_the_active_format_locale():
    # Midnight UTC is 4 PM the day before in Los Angeles.
    with timezone.override("America/Los_Angeles"), formatting.override_format_locale("en-US"):
        assert formatting.date_time_range(MIDNIGHT, MIDNIGHT.replace(minute=30)) == (
            "Tuesday, December 1, 2026, 4:00 PM – 4:30 PM"
        )
        assert formatting.gmt_offset(MIDNIGHT) == "GMT−8"
    with timezone.override("Asia/Kolkata"), formatting.override_format_locale("de-DE"):
        assert formatting.date_time(MIDNIGHT) == "Mittwoch, 2. Dezember 2026, 05:30"
        assert formatting.gmt_offset(MIDNIGHT) == "GMT+5:30"
    # Outside any override: the default, en-US.
    assert formatting.get_format_locale() == "en-US"


def test_a_browsers_first_known_locale_is_taken_and_normalised():
    assert formatting.locale_from_accept_language("en-GB,en;q=0.9") == "en-GB"
    assert formatting.locale_from_accept_language("xx-NOPE, de-de;q=0.8") == "de-DE"
    assert formatting.locale_from_accept_language("zh-hant-tw") == "zh-Hant-TW"
    for useless in ["", "*", "not a locale", "x" * 2000, None]:
        assert formatting.locale_from_accept_language(useless) is None


def test_an_unknown_locale_is_refused_cleanly():
    assert formatting.normalize_locale("en_us") == "en-US"
    for bad in ["klingon-QQ", "en-US-" + "x" * 40, "", "../etc"]:
        assert formatting.normalize_locale(bad) is None
    with pytest.raises(Exception, match="not a known locale"):
        formatting.validate_locale("klingon-QQ")
    formatting.validate_locale("en-GB")  # a normalised tag is fine
    # A formatter handed an unknown locale falls back to the default instead of failing.
    with formatting.override_format_locale("klingon-QQ") as used, timezone.override("UTC"):
        assert used == "en-US" and formatting.time_of_day(MIDNIGHT) == "12:00 AM"


# ---------------------------------------------------------------- pages follow the browser


@pytest.fixture
def host(make_member, organization):
    return make_member(organization, name="Hana Host", email="hana@acme.example", time_zone="America/Los_Angeles")


def test_the_booking_form_and_confirmation_read_12_or_24_hours_as_the_browser_does(client, host):
    meeting_type = make_meeting_type(host.organization, [host], assignment="one_person")
    chosen = {"start": iso(at(TUESDAY, "18:00")), "tz": "Europe/London"}  # 10:00 AM for the host

    us_page = client.get(public_url(meeting_type, "book"), chosen, **US).content.decode()
    uk_page = client.get(public_url(meeting_type, "book"), chosen, **UK).content.decode()
    assert "Tuesday, December 8, 2026" in us_page and "6:00 PM – 6:30 PM" in us_page
    assert "Tuesday, 8 December 2026" in uk_page and "18:00 – 18:30" in uk_page
    assert "18:00 –" not in us_page and "PM" not in uk_page

    book_via_page(client, meeting_type, chosen["start"], "Europe/London")
    booking = Booking.objects.get()
    confirmation = client.get(booking.manage_url(), **UK).content.decode()
    assert "Tuesday, 8 December 2026" in confirmation and "18:00 – 18:30" in confirmation
    assert "British Time — London (GMT+0)" in confirmation


def test_the_dashboard_and_profile_follow_the_viewers_browser(client, admin, member):
    meeting_type = make_meeting_type(admin.organization, [member])
    booking = make_booking(meeting_type, [member], at(TUESDAY, "13:00"))
    client.force_login(admin.user)  # in Europe/Berlin

    def row(headers):
        page = client.get(reverse("bookings:list"), **headers).content.decode()
        return page.split(f'id="booking-{booking.pk}"')[1].split("</tr>")[0]

    assert "Tue, Dec 8, 2026" in row(US) and "2:00 PM – 2:30 PM" in row(US)
    assert "Tue, 8 Dec 2026" in row(UK) and "14:00 – 14:30" in row(UK)

    admin.date_overrides.create(date=date(2026, 12, 24))
    assert "Thursday, 24 December 2026" in client.get(reverse("members:profile"), **UK).content.decode()
    assert "Thursday, December 24, 2026" in client.get(reverse("members:profile"), **US).content.decode()

    # Other hours on a date read as the viewer's clock; an end at midnight is the end of that day.
    admin.date_overrides.create(date=date(2026, 12, 31), start=time(18), end=time(0))
    assert "18:00 – 24:00" in client.get(reverse("members:profile"), **UK).content.decode()
    assert "6:00 PM – 12:00 AM" in client.get(reverse("members:profile"), **US).content.decode()


# ---------------------------------------------------------------- emails follow the recipient


def test_each_email_follows_its_recipients_zone_and_locale(client, host, django_capture_on_commit_callbacks):
    TeamMember.objects.filter(pk=host.pk).update(locale="en-US")
    meeting_type = make_meeting_type(host.organization, [host], assignment="one_person", name="Intro call")
    start = at(TUESDAY, "18:00")  # 10:00 AM in Los Angeles, 18:00 in London

    with django_capture_on_commit_callbacks(execute=True):
        client.post(
            public_url(meeting_type, "book"),
            {"name": "Casey Client", "email": "casey@example.com", "start": iso(start), "time_zone": "Europe/London"},
            **UK,
        )

    booking = Booking.objects.get()
    assert booking.client_locale == "en-GB"
    to_client = next(m for m in mail.outbox if m.to == ["casey@example.com"])
    to_host = next(m for m in mail.outbox if m.to == ["hana@acme.example"])
    assert to_client.subject == "Confirmed: Intro call on Tue, 8 Dec 2026, 18:00 GMT+0"
    assert "Tuesday, 8 December 2026, 18:00 – 18:30" in to_client.body
    assert "British Time — London (GMT+0)" in to_client.body
    assert "PM" not in to_client.body
    assert to_host.subject == "New booking: Intro call with Casey Client on Tue, Dec 8, 2026, 10:00 AM GMT-8"
    assert "Tuesday, December 8, 2026, 10:00 AM – 10:30 AM" in to_host.body
    assert "Pacific Time — Los Angeles (GMT−8)" in to_host.body
    assert "18:00" not in to_host.body


def test_a_client_who_reschedules_gets_the_update_in_the_browser_locale_they_used(
    client, host, django_capture_on_commit_callbacks
):
    meeting_type = make_meeting_type(host.organization, [host], assignment="one_person", name="Intro call")
    book_via_page(client, meeting_type, iso(at(TUESDAY, "18:00")), "Europe/Berlin")
    booking = Booking.objects.get()
    assert booking.client_locale == ""  # the test client sends no Accept-Language
    mail.outbox.clear()

    confirm = reverse("bookings:reschedule_confirm", args=[booking.uid, booking.manage_token])
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            confirm, {"start": iso(at(WEDNESDAY, "18:00")), "time_zone": "Europe/Berlin"}, HTTP_ACCEPT_LANGUAGE="de-DE"
        )
    assert response.status_code == 302
    booking.refresh_from_db()
    assert booking.client_locale == "de-DE"
    to_client = next(m for m in mail.outbox if m.to == ["casey@example.com"])
    assert "Mittwoch, 9. Dezember 2026, 19:00 – 19:30" in to_client.body
    assert "Dienstag, 8. Dezember 2026, 19:00" in to_client.body  # "It was on …"


# ---------------------------------------------------------------- members' stored locale


def test_a_members_locale_is_kept_from_login_and_profile_and_a_useless_header_changes_nothing(client, member):
    client.post(reverse("account_login"), {"login": member.email, "password": PASSWORD}, **UK)
    member.refresh_from_db()
    assert member.locale == "en-GB"

    client.post(reverse("members:profile"), {"display_name": "Maya", "time_zone": "Asia/Kolkata"}, **US)
    member.refresh_from_db()
    assert member.locale == "en-US"

    client.post(reverse("account_logout"))
    client.post(reverse("account_login"), {"login": member.email, "password": PASSWORD}, HTTP_ACCEPT_LANGUAGE="*")
    member.refresh_from_db()
    assert member.locale == "en-US"


def test_sign_up_and_accepting_an_invitation_keep_the_browsers_locale(
    client, member, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        client.post(
            reverse("account_signup"),
            {
                "display_name": "Ada Lovelace",
                "organization_name": "Analytical Engines",
                "email": "ada@example.com",
                "password1": PASSWORD,
                "password2": PASSWORD,
                "time_zone": "US/Pacific",  # an older name, as a browser may still report it
            },
            **US,
        )
    ada = TeamMember.objects.get(user__email="ada@example.com")
    assert (ada.locale, ada.time_zone) == ("en-US", "America/Los_Angeles")

    newcomer = TeamMember.objects.create(
        organization=member.organization,
        user=User.objects.create_user(email="new@example.com", password=None),
        display_name="New Person",
    )
    token = issue_invitation(newcomer)
    url = reverse("members:accept_invitation", args=[token])
    response = client.post(url, {"password1": PASSWORD, "password2": PASSWORD}, HTTP_ACCEPT_LANGUAGE="fr-CA,fr")
    assert response.status_code == 302
    newcomer.refresh_from_db()
    assert newcomer.locale == "fr-CA"


# ---------------------------------------------------------------- the time zone picker


def test_the_picker_offers_canonical_zones_with_friendly_names_ordered_by_offset():
    choices = time_zone_choices()
    names = [name for name, _label in choices]
    for alias in ["Asia/Calcutta", "US/Pacific", "Europe/Kiev", "GMT", "Etc/UTC", "Etc/GMT+5", "EST5EDT"]:
        assert alias not in names
    assert not [name for name in names if name.startswith("Etc/")]
    assert {"UTC", "Asia/Kolkata", "America/Los_Angeles", "Europe/Kyiv"} <= set(names)
    assert len(names) == len(set(names)) and 380 < len(names) < 450
    labels = dict(choices)
    assert labels["America/Los_Angeles"] == "Pacific Time — Los Angeles (GMT−8)"
    assert labels["Asia/Kolkata"] == "India Standard Time — Kolkata (GMT+5:30)"
    assert labels["Europe/Berlin"] == "Central European Time — Berlin (GMT+1)"
    assert names.index("America/Los_Angeles") < names.index("America/New_York") < names.index("UTC")
    assert names.index("UTC") < names.index("Europe/Berlin") < names.index("Asia/Kolkata")
    # In July, Los Angeles is on summer time.
    assert zone_label("America/Los_Angeles", at=datetime(2027, 7, 1, tzinfo=UTC)).endswith("(GMT−7)")


def test_older_zone_names_map_to_canonical_ones_and_unknown_ones_to_nothing():
    assert canonical_name("Asia/Calcutta") == "Asia/Kolkata"
    assert canonical_name("US/Pacific") == "America/Los_Angeles"
    assert canonical_name("Europe/Kiev") == "Europe/Kyiv"
    assert canonical_name("Etc/UTC") == canonical_name("GMT") == "UTC"
    for unknown in ["Mars/Olympus_Mons", "Etc/GMT+5", "", None, "x" * 100]:
        assert canonical_name(unknown) is None


def test_a_profile_saved_with_an_older_zone_name_stores_the_canonical_one(client, member):
    client.force_login(member.user)
    response = client.post(reverse("members:profile"), {"display_name": "Maya", "time_zone": "Asia/Calcutta"})
    assert response.status_code == 302
    member.refresh_from_db()
    assert member.time_zone == "Asia/Kolkata"


@pytest.mark.parametrize("zone", ["Mars/Olympus_Mons", "Etc/GMT+5", ""])
def test_a_zone_not_in_the_list_is_refused_and_changes_nothing(client, member, zone):
    client.force_login(member.user)
    response = client.post(reverse("members:profile"), {"display_name": "Renamed", "time_zone": zone})
    assert response.status_code == 200
    page = response.content.decode()
    assert "not a time zone from the list" in page or "This field is required" in page
    member.refresh_from_db()
    assert (member.display_name, member.time_zone) == ("Maya Member", "Asia/Kolkata")


def test_a_booking_with_an_unknown_zone_is_refused_and_one_with_an_older_name_is_stored_canonical(client, host):
    meeting_type = make_meeting_type(host.organization, [host], assignment="one_person")
    response = book_via_page(client, meeting_type, iso(at(TUESDAY, "18:00")), "Mars/Olympus_Mons")
    assert response.status_code == 400 and "not a known time zone" in response.content.decode()
    assert not Booking.objects.exists()

    book_via_page(client, meeting_type, iso(at(TUESDAY, "18:00")), "Asia/Calcutta")
    assert Booking.objects.get().client_time_zone == "Asia/Kolkata"


def test_a_zone_saved_under_an_older_name_is_shown_selected_under_its_canonical_one(client, member):
    TeamMember.objects.filter(pk=member.pk).update(time_zone="Asia/Calcutta")
    client.force_login(member.user)
    page = client.get(reverse("members:profile")).content.decode()
    assert '<option value="Asia/Kolkata" selected data-aliases="Asia/Calcutta">' in page
    # One with no canonical twin is shown as it is, so saving the name alone can't move the member.
    TeamMember.objects.filter(pk=member.pk).update(time_zone="Etc/GMT+5")
    page = client.get(reverse("members:profile")).content.decode()
    assert '<option value="Etc/GMT+5" selected>Etc/GMT+5</option>' in page


def test_sign_up_preselects_the_browsers_zone_and_the_profile_offers_it(client, admin, member):
    signup = client.get(reverse("account_signup")).content.decode()
    assert "data-tz-picker" in signup and "data-tz-detect" in signup
    client.force_login(member.user)
    profile = client.get(reverse("members:profile")).content.decode()
    assert 'data-tz-suggest="Your browser is in {zone}."' in profile and "data-tz-detect" not in profile
    # An admin editing someone else's zone is not offered their own browser's.
    client.force_login(admin.user)
    edit = client.get(reverse("members:edit", args=[member.pk])).content.decode()
    assert "data-tz-picker" in edit and "data-tz-suggest" not in edit and "data-tz-detect" not in edit


def test_the_booking_calendar_uses_the_same_picker(client, host):
    meeting_type = make_meeting_type(host.organization, [host])
    page = client.get(public_url(meeting_type), {"tz": "Asia/Calcutta"}).content.decode()
    assert '<select name="tz"' in page and 'id="booking-tz"' in page and "data-tz-picker" in page
    assert 'data-initial-time-zone="Asia/Kolkata"' in page
    assert ">India Standard Time — Kolkata (GMT+5:30)</option>" in page


def _picker(page: str) -> str:
    return page.split('<select name="tz"', 1)[1].split("</select>", 1)[0]


def test_the_booking_calendars_picker_selects_each_visitors_own_zone(client, host):
    # The calendar's picker is rendered once and reused: no visitor may get another's choice.
    meeting_type = make_meeting_type(host.organization, [host])
    kolkata = '<option value="Asia/Kolkata" selected data-aliases="Asia/Calcutta">'
    assert kolkata in _picker(client.get(public_url(meeting_type), {"tz": "Asia/Kolkata"}).content.decode())
    assert " selected" not in _picker(client.get(public_url(meeting_type)).content.decode())
    berlin = _picker(client.get(public_url(meeting_type), {"tz": "Europe/Berlin"}).content.decode())
    assert '<option value="Europe/Berlin" selected' in berlin and berlin.count(" selected") == 1


def test_the_booking_calendars_picker_is_the_widgets_own_with_the_offsets_of_the_day(client, host, frozen_now):
    meeting_type = make_meeting_type(host.organization, [host])
    widget = TimeZoneSelect(attrs={"id": "booking-tz", "aria-describedby": "booking-tz-note"})
    winter = client.get(public_url(meeting_type), {"tz": "Europe/Berlin"}).content.decode()
    assert widget.render("tz", "Europe/Berlin") in winter
    assert ">Central European Time — Berlin (GMT+1)</option>" in winter
    frozen_now.move_to(datetime(2027, 7, 1, 6, 0, tzinfo=UTC))
    summer = client.get(public_url(meeting_type), {"tz": "Europe/Berlin"}).content.decode()
    assert widget.render("tz", "Europe/Berlin") in summer
    assert ">Central European Time — Berlin (GMT+2)</option>" in summer


def test_team_members_and_the_hours_help_name_zones_as_people_do(client, member):
    client.force_login(member.user)
    assert "India Standard Time — Kolkata (GMT+5:30)" in client.get(reverse("members:list")).content.decode()
    profile = client.get(reverse("members:profile")).content.decode()
    assert "In your time zone, India Standard Time — Kolkata." in profile
