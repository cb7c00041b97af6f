"""Disconnecting an account takes its calendars with it: the cached busy time goes at once (the
booking page offers those times again), and the push channels are stopped at the provider with
the account's tokens before they are revoked or discarded. Unchecking one calendar does the same
for that calendar. Over real HTTP against the Google and Microsoft fakes.
"""

from datetime import timedelta

import pytest
from django.urls import reverse

from integrations import services
from integrations.calendars import sync
from integrations.models import BusyInterval, Calendar, Connection, PendingRevocation

from .calendar_helpers import WHOLE_DAY, FakeAccount, a_day_ahead, checked_calendar, local, offered
from .google_helpers import grant_of
from .zoom_helpers import browser_for

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _push_on(settings):
    settings.CALENDAR_PUSH = "on"


def with_a_meeting(account: FakeAccount, member, client, meeting_type):
    """The member's account connected, with a meeting that blocks 10:00 and 10:30 on the page."""
    account.connect(member)
    day = a_day_ahead()
    account.add_meeting(local(day, "10:00"), local(day, "11:00"))
    account.wait_for_notifications()
    assert offered(client, meeting_type, day) == [slot for slot in WHOLE_DAY if slot not in ("10:00", "10:30")]
    assert len(account.channels()) == 1
    return day


def press_disconnect(member, provider: str):
    response = browser_for(member).post(reverse("integrations:disconnect", kwargs={"provider": provider}))
    assert response.status_code == 302, response.content[:300]


def test_disconnecting_removes_the_calendars_their_busy_time_and_their_channels(account, hana, client, intro_call):
    day = with_a_meeting(account, hana, client, intro_call)

    press_disconnect(hana, account.key)

    assert not Connection.objects.filter(member=hana).exists()
    assert not Calendar.objects.filter(member=hana).exists()
    assert not BusyInterval.objects.filter(member=hana).exists()
    assert offered(client, intro_call, day) == WHOLE_DAY
    assert account.channels() == []  # stopped at the provider, not left to run out
    assert not PendingRevocation.objects.exists()  # the tokens are gone too
    if account.key == "google":
        assert grant_of(account.email) is None  # and revoked


def test_channels_are_stopped_with_a_fresh_token_when_the_stored_one_has_expired(account, hana, client, intro_call):
    with_a_meeting(account, hana, client, intro_call)
    account.fake.SANDBOX.expire_access_tokens(account.email)

    press_disconnect(hana, account.key)

    assert account.channels() == []
    assert not PendingRevocation.objects.exists()


def test_a_provider_that_is_down_while_disconnecting_gets_the_stop_later(
    microsoft_sandbox, hana, client, intro_call, eager_retries
):
    account = FakeAccount("microsoft", "hana@disconnect.example.com")
    with_a_meeting(account, hana, client, intro_call)
    account.fake.inject_failure("/subscriptions/", method="DELETE", status=503, times=2)

    press_disconnect(hana, "microsoft")

    assert not Calendar.objects.filter(member=hana).exists()  # gone at once, whatever the provider does
    assert account.channels() == []  # stopped on the third try
    assert not PendingRevocation.objects.exists()  # and only then the tokens discarded


def test_unchecking_a_calendar_stops_its_channel_and_frees_its_slots(account, hana, client, intro_call):
    day = with_a_meeting(account, hana, client, intro_call)

    sync.stop_checking(checked_calendar(hana))

    assert offered(client, intro_call, day) == WHOLE_DAY
    assert account.channels() == []
    calendar = Calendar.objects.get(member=hana, is_primary=True)
    assert (calendar.channel_id, calendar.channel_expires_at) == ("", None)
    assert Connection.objects.filter(member=hana).exists()  # the account stays connected


def test_an_account_whose_app_was_removed_is_forgotten_with_its_calendars(google_sandbox, hana, client, intro_call):
    account = FakeAccount("google", "hana@removed-app.example.com")
    day = with_a_meeting(account, hana, client, intro_call)
    connection = Connection.objects.get(member=hana)
    account.fake.revoke_grant(account.email)  # removed in the Google account: the tokens are dead

    assert services.forget_account(provider="google", external_user_id=connection.external_user_id) == 1

    assert not Calendar.objects.filter(member=hana).exists()
    assert offered(client, intro_call, day) == WHOLE_DAY
    assert not PendingRevocation.objects.exists()  # nothing we could still stop or revoke is kept


def test_a_later_booking_page_never_shows_a_disconnected_accounts_busy_time(account, hana, client, intro_call):
    day = with_a_meeting(account, hana, client, intro_call)
    press_disconnect(hana, account.key)

    # Another meeting in the disconnected account: nobody listens any more.
    account.add_meeting(local(day, "14:00"), local(day, "15:00"))
    account.wait_for_notifications()

    assert offered(client, intro_call, day) == WHOLE_DAY
    assert offered(client, intro_call, day + timedelta(days=1)) == WHOLE_DAY
