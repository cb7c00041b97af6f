"""A member's calendars on their card: which count as busy, which one receives their bookings,
how fresh the busy time is, and "Allow calendar access" for accounts connected before calendars.

The first part stores calendars directly and reads the card; the second connects accounts over
real HTTP against the Google and Microsoft fakes, whose calendars the product lists itself.
"""

import re
from datetime import timedelta

import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from integrations.base import Account, TokenSet
from integrations.calendars import choices
from integrations.models import BusyInterval, Calendar, Connection
from integrations.services import save_connection

from . import google_helpers, microsoft_helpers
from .calendar_helpers import FakeAccount, a_day_ahead, busy_rows, calendars_of, checked_calendar, local, offered
from .zoom_helpers import browser_for, card_as_seen_by, consent, follow, query_of

GOOGLE_MEETING_SCOPES = "openid email https://www.googleapis.com/auth/calendar.events"


def full_google_scopes() -> str:
    return f"{settings.GOOGLE_SCOPES} {settings.GOOGLE_CALENDAR_SCOPES}"


def stored_connection(member, provider="google", *, scopes=None, email=None, **fields) -> Connection:
    """A connection as stored after a connect (no provider is asked while only reading the card)."""
    if scopes is None:
        scopes = full_google_scopes() if provider == "google" else settings.MICROSOFT_CALENDAR_SCOPES
    return Connection.objects.create(
        member=member,
        provider=provider,
        external_user_id=f"{provider}-{member.pk}",
        email=email or f"{member.user.email.split('@')[0]}@{provider}.example",
        scopes=scopes,
        **fields,
    )


def stored_calendar(connection, name, **fields) -> Calendar:
    return Calendar.objects.create(
        connection=connection, member=connection.member, external_id=f"{name}-{connection.pk}", name=name, **fields
    )


CALENDAR_ROW = (
    r'(<div class="calendar" .*?<span class="calendar-name">(.*?)</span>.*?)(?=<div class="calendar" |</fieldset>)'
)


def calendar_rows(html: str) -> dict[str, str]:
    """Each calendar on a card, by its name: the HTML of its row."""
    return {
        re.sub(r"<[^>]+>|\s+", " ", name).split(" Primary")[0].strip(): row
        for row, name in re.findall(CALENDAR_ROW, html, re.S)
    }


def text_of(html: str) -> str:
    """What a reader sees of some HTML: its text, on one line."""
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


def press_save(browser, *, busy=(), booking_calendar=""):
    data = {"busy": [str(pk) for pk in busy], "booking_calendar": str(booking_calendar)}
    return browser.post(reverse("integrations:calendar_choices"), data)


def flags(*calendars) -> list[tuple[bool, bool]]:
    return [
        (calendar.checks_busy, calendar.receives_bookings)
        for calendar in Calendar.objects.filter(pk__in=[c.pk for c in calendars]).order_by("pk")
    ]


# --- What the card shows ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_member_sees_each_calendar_with_count_as_busy_and_add_bookings_to_this_calendar(member):
    google = stored_connection(member)
    primary = stored_calendar(google, "Maya Member", is_primary=True, checks_busy=True, receives_bookings=True)
    stored_calendar(google, "Holidays in India", can_write=False)
    team = stored_calendar(google, "Team")

    card = card_as_seen_by(member, member)

    rows = calendar_rows(card)
    assert list(rows) == ["Maya Member", "Holidays in India", "Team"]  # the primary first
    assert "Primary" in rows["Maya Member"]
    assert f'name="busy" value="{primary.pk}" checked' in rows["Maya Member"]
    assert f'name="booking_calendar" value="{primary.pk}" checked' in rows["Maya Member"]
    assert f'name="busy" value="{team.pk}">' in rows["Team"]  # offered, not chosen
    # A calendar shared read-only can count as busy but can't receive bookings.
    assert 'name="busy"' in rows["Holidays in India"] and 'name="booking_calendar"' not in rows["Holidays in India"]
    assert "Read-only: bookings can't be added to it" in rows["Holidays in India"]
    assert "Count as busy" in card and "Add bookings to this calendar" in card
    assert "Save calendar choices" in card and "Refresh list" in card
    assert reverse("integrations:refresh_calendars", kwargs={"provider": "google"}) in card


@pytest.mark.django_db
def test_the_sync_state_says_how_fresh_the_busy_times_are(member):
    google = stored_connection(member)
    stored_calendar(google, "Fresh", checks_busy=True, synced_at=timezone.now() - timedelta(minutes=2))
    stored_calendar(google, "New", checks_busy=True)
    stored_calendar(google, "Failing", checks_busy=True, sync_error="HTTP 503", sync_failures=3)
    an_hour_ago = timezone.now() - timedelta(hours=1)
    stored_calendar(google, "Failing lately", checks_busy=True, sync_error="HTTP 503", synced_at=an_hour_ago)
    stored_calendar(google, "Ignored", synced_at=timezone.now())

    rows = calendar_rows(card_as_seen_by(member, member))

    assert "Busy times updated 2\xa0minutes ago" in rows["Fresh"]
    assert "Checking…" in rows["New"]
    assert "Busy times could not be read yet; trying again." in rows["Failing"]
    assert "could not be updated just now; trying again (last updated 1\xa0hour ago)" in rows["Failing lately"]
    assert "HTTP 503" not in rows["Failing"]  # a diagnostic for the log, not for the member
    assert "Busy times" not in rows["Ignored"] and "Checking" not in rows["Ignored"]  # not counted as busy


@pytest.mark.django_db
def test_admins_and_colleagues_see_how_many_calendars_count_and_their_state_but_no_names_or_emails(
    member, admin, other_member
):
    google = stored_connection(member, email="maya.private@gmail.com")
    # Google names the primary calendar after the account's email: not for colleagues' eyes.
    stored_calendar(google, "maya.private@gmail.com", is_primary=True, checks_busy=True, synced_at=timezone.now())
    stored_calendar(google, "Therapy", checks_busy=True, synced_at=timezone.now() - timedelta(hours=1))

    for viewer in (admin, other_member):
        card = card_as_seen_by(viewer, member)

        assert "Google: 2 calendars count as busy · Busy times updated 1 hour ago" in text_of(card)
        assert "maya.private@gmail.com" not in card and "Therapy" not in card
        calendars = re.search(r'<section class="calendars".*?</section>', card, re.S).group(0)
        assert "<form" not in calendars and "<input" not in calendars  # nothing to change on a colleague's card


@pytest.mark.django_db
def test_an_account_connected_before_calendars_offers_allow_calendar_access_not_a_broken_state(member, admin):
    stored_connection(member, scopes=GOOGLE_MEETING_SCOPES)

    card = card_as_seen_by(member, member)

    assert "Google connected" in card and "Needs reconnecting" not in card
    assert "Allow calendar access" in card
    assert "meeting links keep working meanwhile" in card
    # The button is the same consent flow as Connect, now asking for the calendar scopes too.
    form = re.search(r'<div class="calendar-consent">.*?</div>', card, re.S).group(0)
    assert f'action="{reverse("integrations:connect", kwargs={"provider": "google"})}"' in form
    assert 'method="post"' in form
    assert "Count as busy" not in card
    assert "Allow calendar access" not in card_as_seen_by(admin, member)  # only the member can allow it


@pytest.mark.django_db
def test_a_broken_connection_shows_reconnect_and_not_its_calendars(member):
    google = stored_connection(member, status=Connection.Status.BROKEN)
    stored_calendar(google, "Work", is_primary=True, checks_busy=True)

    card = card_as_seen_by(member, member)

    assert "Reconnect Google" in card
    assert "Count as busy" not in card and "Allow calendar access" not in card


@pytest.mark.django_db
def test_zoom_has_no_calendars_on_the_card(member):
    stored_connection(member, "zoom", scopes=settings.ZOOM_SCOPES)

    card = card_as_seen_by(member, member)

    assert "Zoom connected" in card
    assert "Allow calendar access" not in card and 'class="calendars"' not in card


@pytest.mark.django_db
def test_the_team_page_reads_every_cards_calendars_in_a_constant_number_of_queries(
    client, login, admin, make_member, django_assert_max_num_queries
):
    def member_with_calendars():
        someone = make_member(admin.organization)
        google = stored_connection(someone)
        stored_calendar(google, "Primary", is_primary=True, checks_busy=True, receives_bookings=True)
        stored_calendar(google, "Team", checks_busy=True, synced_at=timezone.now())
        microsoft = stored_connection(someone, "microsoft")
        stored_calendar(microsoft, "Calendar", is_primary=True)
        return someone

    login(admin)
    member_with_calendars()
    client.get(reverse("members:list"))  # warm up (session, content types)
    # session, user, membership, the members, their connections, the connections' calendars
    with django_assert_max_num_queries(6) as few:
        client.get(reverse("members:list"))
    for _ in range(10):
        member_with_calendars()
    with django_assert_max_num_queries(len(few.captured_queries)):
        page = client.get(reverse("members:list")).content.decode()
    assert page.count("Google: 2 calendars count as busy") == 11


# --- Saving the choices -------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_member_moves_their_bookings_to_their_other_accounts_calendar(member):
    google = stored_connection(member)
    primary = stored_calendar(google, "Work", is_primary=True, checks_busy=True, receives_bookings=True)
    microsoft = stored_connection(member, "microsoft")
    outlook = stored_calendar(microsoft, "Calendar", is_primary=True)
    browser = browser_for(member)

    response = press_save(browser, busy=[primary.pk], booking_calendar=outlook.pk)

    assert "Your calendar choices were saved." in follow(browser, response)
    assert flags(primary, outlook) == [(True, False), (False, True)]  # one booking calendar across accounts


@pytest.mark.django_db
def test_a_member_may_add_bookings_to_no_calendar(member):
    google = stored_connection(member)
    primary = stored_calendar(google, "Work", is_primary=True, checks_busy=True, receives_bookings=True)

    press_save(browser_for(member), busy=[primary.pk], booking_calendar="")

    assert flags(primary) == [(True, False)]
    assert re.search(r'name="booking_calendar" value="" checked', card_as_seen_by(member, member))


@pytest.mark.django_db
def test_a_calendar_no_longer_counted_as_busy_loses_its_busy_times_at_once(member):
    google = stored_connection(member)
    work = stored_calendar(google, "Work", is_primary=True, checks_busy=True, synced_at=timezone.now())
    start = timezone.now() + timedelta(days=1)
    BusyInterval.objects.create(
        calendar=work, member=member, event_id="e1", start=start, end=start + timedelta(hours=1)
    )

    press_save(browser_for(member), busy=[])

    assert flags(work) == [(False, False)]
    assert not BusyInterval.objects.filter(member=member).exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "whose, busy, booking, message",
    [
        ("colleague", ["colleague"], "", "That is not one of your calendars. Nothing was changed."),
        ("colleague", [], "colleague", "That is not one of your calendars. Nothing was changed."),
        ("own", ["own", "not-a-number"], "", "That calendar choice is not valid. Nothing was changed."),
        ("own", ["own"], "read-only", "Bookings can't be added to a read-only calendar. Nothing was changed."),
        ("own", ["own"], "broken", "That is not one of your calendars. Nothing was changed."),
    ],
)
def test_a_choice_naming_someone_elses_or_an_unusable_calendar_is_refused_and_changes_nothing(
    member, other_member, whose, busy, booking, message
):
    own = stored_calendar(stored_connection(member), "Work", is_primary=True, checks_busy=True, receives_bookings=True)
    read_only = stored_calendar(own.connection, "Holidays", can_write=False)
    broken = stored_calendar(stored_connection(member, "microsoft", status=Connection.Status.BROKEN), "Outlook")
    colleague = stored_calendar(stored_connection(other_member), "Oscar's", is_primary=True)
    ids = {"own": own.pk, "colleague": colleague.pk, "read-only": read_only.pk, "broken": broken.pk}
    before = flags(own, read_only, broken, colleague)
    browser = browser_for(member)

    response = press_save(
        browser, busy=[ids.get(name, name) for name in busy], booking_calendar=ids.get(booking, booking)
    )

    assert message.replace("'", "&#x27;") in follow(browser, response)
    assert flags(own, read_only, broken, colleague) == before


@pytest.mark.django_db
def test_the_service_refuses_what_the_form_would(member, other_member):
    colleague = stored_calendar(stored_connection(other_member), "Oscar's", is_primary=True)

    with pytest.raises(choices.ValidationError):
        choices.save_calendar_choices(member=member, busy_ids=[colleague.pk], booking_calendar_id=None)


@pytest.mark.django_db
def test_choices_and_refresh_are_post_only(member):
    browser = browser_for(member)
    assert browser.get(reverse("integrations:calendar_choices")).status_code == 405
    assert browser.get(reverse("integrations:refresh_calendars", kwargs={"provider": "google"})).status_code == 405


@pytest.mark.django_db
def test_refresh_without_a_calendar_account_says_there_is_nothing_to_read(member):
    browser = browser_for(member)

    response = browser.post(reverse("integrations:refresh_calendars", kwargs={"provider": "google"}))

    assert "Google has no calendars to read here." in follow(browser, response)


@pytest.mark.django_db
@pytest.mark.parametrize("key", ["google", "microsoft"])
def test_the_guide_names_every_calendar_scope_and_says_what_is_read_and_written(client, key):
    page = text_of(client.get(reverse(f"help:{key}")).content.decode())

    scopes = settings.GOOGLE_CALENDAR_SCOPES if key == "google" else settings.MICROSOFT_CALENDAR_SCOPES
    for scope in scopes.split():
        assert scope in page
    assert "What is read: busy times, not titles." in page
    assert "What is written: one event per booking" in page
    assert "untick “Count as busy” on your card and save: its busy times are deleted at once" in page
    assert "your calendars and their busy times are deleted at once" in page


# --- Over HTTP against the Google and Microsoft fakes ------------------------------------------------


def connect_through_consent(browser, key: str, email: str):
    """Press Connect (or "Allow calendar access": the same button's URL) on one's card, allow on the
    provider's consent page, come back through our callback; the consent page's URL and our answer."""
    if key == "google":
        authorize_url = google_helpers.start_connect(browser)
        return authorize_url, google_helpers.return_from_google(browser, consent(authorize_url, email=email))
    authorize_url = microsoft_helpers.start_connect(browser)
    callback = microsoft_helpers.consent(authorize_url, email=email)
    return authorize_url, microsoft_helpers.return_from_microsoft(browser, callback)


def meeting_scopes_only(key: str) -> str:
    return settings.GOOGLE_SCOPES if key == "google" else settings.MICROSOFT_SCOPES


def connected_before_calendars(member, account: FakeAccount) -> Connection:
    """An account connected before calendars came: its grant has the meeting scopes only."""
    tokens = account.fake.issue_tokens(account.email, scope=meeting_scopes_only(account.key))
    user = account.fake.get_or_create_user(account.email)
    who = Account(user["sub"], "", user["email"]) if account.key == "google" else Account(user["id"], "", user["mail"])
    return save_connection(
        member=member,
        provider=account.key,
        tokens=TokenSet(tokens["access_token"], tokens["refresh_token"], tokens["expires_in"], tokens["scope"]),
        account=who,
    )


@pytest.mark.django_db(transaction=True)
def test_connecting_lists_the_accounts_calendars_and_the_primary_one_counts_as_busy_and_gets_the_bookings(
    hana, account
):
    account.add_calendar("Team holidays")
    browser = browser_for(hana)

    _, response = connect_through_consent(browser, account.key, account.email)

    card = follow(browser, response)
    rows = calendar_rows(card)
    assert len(rows) == 2 and "Team holidays" in rows
    primary = Calendar.objects.get(member=hana, is_primary=True)
    assert (primary.checks_busy, primary.receives_bookings) == (True, True)
    assert Calendar.objects.get(member=hana, name="Team holidays").checks_busy is False
    assert primary.synced_at is not None  # its busy time was read at once
    assert "Busy times updated" in text_of(card)


@pytest.mark.django_db(transaction=True)
def test_allow_calendar_access_asks_again_for_the_calendar_scopes_and_keeps_the_same_connection(hana, account):
    before = connected_before_calendars(hana, account)
    browser = browser_for(hana)
    assert "Allow calendar access" in card_as_seen_by(hana, hana)

    authorize_url, response = connect_through_consent(browser, account.key, account.email)

    asked = query_of(authorize_url)["scope"].split()
    calendar_scopes = settings.GOOGLE_CALENDAR_SCOPES if account.key == "google" else settings.MICROSOFT_CALENDAR_SCOPES
    assert set(calendar_scopes.split()) <= set(asked)
    if account.key == "google":  # Google adds the new scopes to what was granted before
        assert query_of(authorize_url)["include_granted_scopes"] == "true"
    after = Connection.objects.get(member=hana, provider=account.key)
    assert after.pk == before.pk and after.grants_calendars
    card = follow(browser, response)
    assert "Allow calendar access" not in card and "Count as busy" in card
    assert checked_calendar(hana).is_primary


@pytest.mark.django_db(transaction=True)
def test_reconnecting_the_same_account_keeps_the_members_calendar_choices(hana, account):
    account.add_calendar("Side project")
    browser = browser_for(hana)
    connect_through_consent(browser, account.key, account.email)
    side = Calendar.objects.get(member=hana, name="Side project")
    primary = Calendar.objects.get(member=hana, is_primary=True)
    press_save(browser, busy=[side.pk], booking_calendar=side.pk)

    connect_through_consent(browser, account.key, account.email)

    assert flags(primary, side) == [(False, False), (True, True)]
    assert Connection.objects.filter(member=hana).count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_reconnect_that_leaves_the_calendars_out_forgets_them_and_their_busy_time(hana, intro_call, account):
    day = a_day_ahead()
    account.add_meeting(local(day, "10:00"), local(day, "11:00"))
    account.connect(hana)
    assert busy_rows(hana)

    connected_before_calendars(hana, account)  # consent given again, calendar boxes unticked

    assert not Calendar.objects.filter(member=hana).exists() and not busy_rows(hana)
    assert "10:00" in offered(Client(), intro_call, day)
    assert "Allow calendar access" in card_as_seen_by(hana, hana)


@pytest.mark.django_db(transaction=True)
def test_counting_another_calendar_as_busy_blocks_its_meetings_on_the_booking_page_and_unchecking_frees_them(
    hana, intro_call, account
):
    day = a_day_ahead()
    side = account.add_calendar("Side project")
    account.add_meeting(local(day, "14:00"), local(day, "15:00"), calendar_id=side)
    account.connect(hana)
    client = Client()
    primary = Calendar.objects.get(member=hana, is_primary=True)
    side_calendar = Calendar.objects.get(member=hana, name="Side project")
    assert {"14:00", "14:30"} <= set(offered(client, intro_call, day))
    browser = browser_for(hana)

    press_save(browser, busy=[primary.pk, side_calendar.pk], booking_calendar=primary.pk)

    assert {"14:00", "14:30"}.isdisjoint(offered(client, intro_call, day))
    assert "Busy times updated" in calendar_rows(card_as_seen_by(hana, hana))["Side project"]

    press_save(browser, busy=[primary.pk], booking_calendar=primary.pk)

    assert {"14:00", "14:30"} <= set(offered(client, intro_call, day))


@pytest.mark.django_db(transaction=True)
def test_refresh_list_shows_a_calendar_added_since_and_changes_no_choice(hana, account):
    account.connect(hana)
    before = {calendar.pk: (calendar.checks_busy, calendar.receives_bookings) for calendar in calendars_of(hana)}
    account.add_calendar("Book club")
    browser = browser_for(hana)

    response = browser.post(reverse("integrations:refresh_calendars", kwargs={"provider": account.key}))

    card = follow(browser, response)
    assert f"The list of your {account.fake.SANDBOX.title} calendars is being read again." in card
    assert "Book club" in calendar_rows(card)
    after = {calendar.pk: (calendar.checks_busy, calendar.receives_bookings) for calendar in calendars_of(hana)}
    assert {pk: after[pk] for pk in before} == before
    assert after[Calendar.objects.get(member=hana, name="Book club").pk] == (False, False)
