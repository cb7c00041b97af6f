"""Push: when the member's calendar changes, Google or Microsoft tells us, and the booking page
shows it within that notification's request. Only notifications that name a channel we made and
carry its token count; channels are renewed before they expire and made again when they are gone.
All over real HTTP: the fakes post to our webhooks on the live server.
"""

import json
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from integrations.calendars import push, sweep
from integrations.models import Calendar

from .calendar_helpers import WHOLE_DAY, a_day_ahead, checked_calendar, local, offered

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _push_on(settings):
    # The live server is plain http://; the fakes accept it, as "on" tells the product.
    settings.CALENDAR_PUSH = "on"


def without(*times: str) -> list[str]:
    return [slot for slot in WHOLE_DAY if slot not in times]


def google_push(client, *, channel_id: str, token: str | None, state: str = "exists"):
    headers = {"HTTP_X_GOOG_CHANNEL_ID": channel_id, "HTTP_X_GOOG_RESOURCE_STATE": state}
    if token is not None:
        headers["HTTP_X_GOOG_CHANNEL_TOKEN"] = token
    return client.post(reverse("integrations:google_calendar_push"), **headers)


def graph_notification(client, *items: dict, raw: str | None = None):
    body = raw if raw is not None else json.dumps({"value": list(items)})
    return client.post(reverse("integrations:microsoft_calendar_push"), body, content_type="application/json")


def graph_item(subscription_id: str, client_state: str) -> dict:
    return {
        "subscriptionId": subscription_id,
        "clientState": client_state,
        "changeType": "updated",
        "resource": "Users/x/Events/y",
        "resourceData": {"id": "y"},
    }


def untouched(calendar: Calendar) -> bool:
    """Nothing a notification would change happened to the calendar."""
    fresh = Calendar.objects.get(pk=calendar.pk)
    return (fresh.next_sync_at, fresh.synced_at, fresh.sync_cursor) == (
        calendar.next_sync_at,
        calendar.synced_at,
        calendar.sync_cursor,
    )


# ---------------------------------------------------------------- the change reaches the page


def test_a_new_meeting_blocks_its_slots_as_soon_as_the_provider_tells_us(account, hana, client, intro_call):
    account.connect(hana)
    calendar = checked_calendar(hana)
    [channel] = account.channels()
    assert calendar.channel_id and calendar.channel_expires_at > timezone.now() + timedelta(days=2)
    address = channel.get("address") or channel.get("notificationUrl")
    assert address == push.address(account.key)
    day = a_day_ahead()

    account.add_meeting(local(day, "10:00"), local(day, "10:30"))
    account.wait_for_notifications()

    # No poll, no sweep: the notification's own request synced the calendar.
    assert offered(client, intro_call, day) == without("10:00")
    statuses = {delivery["status"] for delivery in account.fake.deliveries()}
    assert statuses <= {200, 202} and statuses
    calendar.refresh_from_db()
    assert calendar.next_sync_at > timezone.now() + timedelta(hours=1)  # with push, only a safety resync


def test_a_moved_and_a_deleted_meeting_free_their_slots_through_notifications(account, hana, client, intro_call):
    account.connect(hana)
    day = a_day_ahead()
    first = account.add_meeting(local(day, "09:00"), local(day, "10:00"))
    second = account.add_meeting(local(day, "13:00"), local(day, "14:00"))
    account.wait_for_notifications()
    assert offered(client, intro_call, day) == without("09:00", "09:30", "13:00", "13:30")

    account.move(first, local(day, "16:00"), local(day, "16:30"))
    account.delete(second)
    account.wait_for_notifications()

    assert offered(client, intro_call, day) == without("16:00")


# ---------------------------------------------------------------- Google's notifications


def test_a_google_notification_with_a_wrong_token_is_refused_and_changes_nothing(google_sandbox, hana, client):
    from .calendar_helpers import FakeAccount

    FakeAccount("google", "hana@push.example.com").connect(hana)
    calendar = checked_calendar(hana)

    assert google_push(client, channel_id=calendar.channel_id, token="not-the-token").status_code == 403
    assert google_push(client, channel_id=calendar.channel_id, token=None).status_code == 403
    other_calendars_token = push.channel_token(f"calendar:{calendar.pk + 1}")
    assert google_push(client, channel_id=calendar.channel_id, token=other_calendars_token).status_code == 403
    assert untouched(calendar)


def test_a_google_notification_for_an_unknown_channel_is_not_found(google_sandbox, hana, client):
    from .calendar_helpers import FakeAccount

    FakeAccount("google", "hana@push.example.com").connect(hana)
    calendar = checked_calendar(hana)

    assert google_push(client, channel_id="a-channel-we-never-made", token=push.token_for(calendar)).status_code == 404
    assert google_push(client, channel_id="", token=push.token_for(calendar)).status_code == 404
    assert untouched(calendar)


def test_googles_first_sync_message_is_acknowledged_and_only_changes_make_a_sync(google_sandbox, hana, client):
    from .calendar_helpers import FakeAccount

    FakeAccount("google", "hana@push.example.com").connect(hana)
    calendar = checked_calendar(hana)
    token = push.token_for(calendar)

    # It may come before our record of the new channel exists: acknowledged whatever it names.
    assert google_push(client, channel_id=calendar.channel_id, token=token, state="sync").status_code == 200
    assert google_push(client, channel_id="a-channel-being-made", token=None, state="sync").status_code == 200
    assert untouched(calendar)
    assert google_push(client, channel_id=calendar.channel_id, token=token, state="exists").status_code == 200
    assert Calendar.objects.get(pk=calendar.pk).synced_at > calendar.synced_at
    assert client.get(reverse("integrations:google_calendar_push")).status_code == 405


# ---------------------------------------------------------------- Microsoft's notifications


def test_the_graph_validation_handshake_echoes_the_token_as_plain_text(client):
    url = reverse("integrations:microsoft_calendar_push")
    token = "Validation: Testing client application reachability for subscription Request-Id: 7f1c"

    answer = client.post(f"{url}?validationToken={token.replace(' ', '+')}")

    assert answer.status_code == 200
    assert answer["Content-Type"].startswith("text/plain")
    assert answer.content.decode() == token
    assert client.post(f"{url}?validationToken=").status_code == 400
    assert client.post(f"{url}?validationToken={'x' * 1025}").status_code == 400


def test_graph_notifications_are_checked_by_their_client_state(microsoft_sandbox, hana, client):
    from .calendar_helpers import FakeAccount

    FakeAccount("microsoft", "hana@push.example.com").connect(hana)
    calendar = checked_calendar(hana)
    good = graph_item(calendar.channel_id, push.token_for(calendar))
    forged = graph_item(calendar.channel_id, "guessed-client-state")

    assert graph_notification(client, forged).status_code == 403
    assert graph_notification(client, {**forged, "clientState": None}).status_code == 403
    assert graph_notification(client, raw="{not json").status_code == 400
    assert graph_notification(client, raw=json.dumps({"value": "nope"})).status_code == 400
    assert graph_notification(client, {"clientState": "x"}).status_code == 400  # no subscriptionId
    assert untouched(calendar)

    # A subscription we no longer keep is acknowledged (Graph stops at its expiry), and changes nothing.
    assert graph_notification(client, graph_item("a-lapsed-subscription", "whatever")).status_code == 202
    assert untouched(calendar)

    # In a batch, the good one counts and the forged one is ignored.
    assert graph_notification(client, forged, good).status_code == 202
    assert Calendar.objects.get(pk=calendar.pk).synced_at > calendar.synced_at


# ---------------------------------------------------------------- renewal and repair


def test_a_google_channel_is_replaced_by_a_new_one_a_day_before_it_expires(google_sandbox, hana, client, intro_call):
    from .calendar_helpers import FakeAccount

    account = FakeAccount("google", "hana@push.example.com")
    account.connect(hana)
    calendar = checked_calendar(hana)
    [old] = account.channels()

    sweep.run(now=calendar.channel_expires_at - timedelta(hours=36))  # not yet
    assert Calendar.objects.get(pk=calendar.pk).channel_id == calendar.channel_id

    sweep.run(now=calendar.channel_expires_at - timedelta(hours=12))

    renewed = Calendar.objects.get(pk=calendar.pk)
    assert renewed.channel_id != calendar.channel_id
    assert renewed.channel_expires_at > calendar.channel_expires_at
    assert [channel["id"] for channel in account.channels()] == [renewed.channel_id]  # the old one was stopped
    assert old["id"] == calendar.channel_id
    day = a_day_ahead()
    account.add_meeting(local(day, "11:00"), local(day, "11:30"))
    account.wait_for_notifications()
    assert offered(client, intro_call, day) == without("11:00")


def test_a_graph_subscription_is_extended_a_day_before_it_expires(microsoft_sandbox, hana):
    from .calendar_helpers import FakeAccount

    account = FakeAccount("microsoft", "hana@push.example.com")
    account.connect(hana)
    calendar = checked_calendar(hana)
    [before] = account.channels()

    sweep.run(now=calendar.channel_expires_at - timedelta(hours=12))

    renewed = Calendar.objects.get(pk=calendar.pk)
    [after] = account.channels()
    assert renewed.channel_id == calendar.channel_id == after["id"] == before["id"]
    assert renewed.channel_expires_at > calendar.channel_expires_at
    assert after["expirationDateTime"] != before["expirationDateTime"]


def test_a_channel_the_provider_dropped_is_made_again_by_the_sweep(account, hana, client, intro_call):
    account.connect(hana)
    calendar = checked_calendar(hana)
    account.fake.expire_channels() if account.key == "google" else account.fake.expire_subscriptions()
    assert account.channels() == []
    day = a_day_ahead()
    account.add_meeting(local(day, "15:00"), local(day, "15:30"))  # nobody is told

    # Our record says the channel lives until its expiry; the sweep then forgets it, syncs at once
    # (changes since were not announced), and asks for a new channel.
    sweep.run(now=calendar.channel_expires_at + timedelta(minutes=1))

    assert offered(client, intro_call, day) == without("15:00")
    fresh = Calendar.objects.get(pk=calendar.pk)
    [channel] = account.channels()
    assert fresh.channel_id == channel["id"] and fresh.channel_id != calendar.channel_id
    account.add_meeting(local(day, "16:00"), local(day, "16:30"))
    account.wait_for_notifications()
    assert offered(client, intro_call, day) == without("15:00", "16:00")


def test_a_graph_subscription_that_lapsed_is_made_anew_when_renewal_finds_it_gone(microsoft_sandbox, hana):
    from .calendar_helpers import FakeAccount

    account = FakeAccount("microsoft", "hana@push.example.com")
    account.connect(hana)
    calendar = checked_calendar(hana)
    account.fake.expire_subscriptions()

    sweep.run(now=calendar.channel_expires_at - timedelta(hours=12))

    fresh = Calendar.objects.get(pk=calendar.pk)
    [live] = account.channels()
    assert fresh.channel_id == live["id"] != calendar.channel_id


def test_without_a_reachable_site_no_channel_is_asked_for(account, hana, settings):
    settings.CALENDAR_PUSH = "auto"  # SITE_URL is http://: providers can't reach it
    account.connect(hana)

    sweep.run(now=timezone.now() + timedelta(hours=1))

    assert account.channels() == []
    assert checked_calendar(hana).channel_id == ""
