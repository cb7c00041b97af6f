"""Reminders: a meeting type can email the client and the hosts some time before each meeting.

Celery beat runs bookings.tasks.send_due_reminders every few minutes; here it is called directly
while the clock is moved. The clock starts at NOW, Monday 2026-12-07 06:00 UTC; the host works
Mon-Fri 09:00-17:00 UTC.
"""

import smtplib
from datetime import timedelta

import pytest
from django.conf import settings
from django.core import mail
from django.core.mail.backends.locmem import EmailBackend as LocmemBackend
from icalendar import Calendar

from bookings import services, tasks
from bookings.models import EmailDelivery
from meetingtypes.models import MeetingType

from .booking_helpers import (
    NOW,
    WEDNESDAY,
    at,
    make_meeting_type,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("frozen_now")]

THURSDAY = WEDNESDAY + timedelta(days=1)
CLIENT_EMAIL = "casey@example.com"
HOST_EMAIL = "hana@acme.example"
MEETING = at(WEDNESDAY, "10:00")  # Wednesday 9 December, 10:00 UTC
DAY_BEFORE = MEETING - timedelta(minutes=1440)  # Tuesday 10:00 UTC: when the reminder is due
MINUTE = timedelta(minutes=1)


@pytest.fixture
def host(make_member, organization):
    return make_member(organization, name="Hana Host", email=HOST_EMAIL, time_zone="UTC")


@pytest.fixture
def clock(request):
    """The frozen clock of booking_helpers.frozen_now, to move about."""
    return request.getfixturevalue("frozen_now")


@pytest.fixture
def booked(committed, host):
    """A booking for MEETING of a meeting type with a reminder a day before; the booking emails
    are out of the way, so mail.outbox holds only what the reminder run sends."""

    def make(reminder_minutes_before: int | None = 1440, start=MEETING, name="Intro call"):
        meeting_type = make_meeting_type(
            host.organization, [host], name=name, reminder_minutes_before=reminder_minutes_before
        )
        mail.outbox.clear()
        booking = committed(
            services.book,
            meeting_type=meeting_type,
            start=start,
            client_name="Casey Client",
            client_email=CLIENT_EMAIL,
            client_notes="",
            client_time_zone="America/New_York",
        )
        assert len(mail.outbox) == 2  # the confirmations
        mail.outbox.clear()
        return booking

    return make


def run_reminders_at(clock, moment) -> list:
    """Beat's run at `moment`: the emails it sent."""
    clock.move_to(moment)
    before = len(mail.outbox)
    tasks.send_due_reminders()
    return mail.outbox[before:]


def recipients(messages) -> list[str]:
    return sorted(message.to[0] for message in messages)


def event_in(message):
    (attachment,) = message.attachments
    assert attachment.filename == "invite.ics" and "method=REQUEST" in attachment.mimetype
    calendar = Calendar.from_ical(attachment.content)
    assert str(calendar["METHOD"]) == "REQUEST"
    (event,) = calendar.walk("VEVENT")
    return event


def test_beat_runs_the_reminders_every_few_minutes():
    schedules = [entry for entry in settings.CELERY_BEAT_SCHEDULE.values()]
    reminders = [entry for entry in schedules if entry["task"] == "bookings.tasks.send_due_reminders"]
    assert len(reminders) == 1
    assert reminders[0]["schedule"] <= 15 * 60  # often enough that a reminder is never much late
    assert tasks.send_due_reminders.name == "bookings.tasks.send_due_reminders"


def test_a_reminder_goes_to_the_client_and_the_host_once_when_it_is_due(clock, booked):
    booking = booked(reminder_minutes_before=1440)

    assert run_reminders_at(clock, NOW) == []
    assert run_reminders_at(clock, DAY_BEFORE - MINUTE) == []

    sent = run_reminders_at(clock, DAY_BEFORE)

    assert recipients(sent) == sorted([CLIENT_EMAIL, HOST_EMAIL])
    to_client = next(message for message in sent if message.to == [CLIENT_EMAIL])
    to_host = next(message for message in sent if message.to == [HOST_EMAIL])
    assert to_client.subject == "Reminder: Intro call on Wed, Dec 9, 2026, 5:00 AM GMT-5"  # the client's zone
    assert "A reminder of your upcoming meeting." in to_client.body
    assert "Wednesday, December 9, 2026, 5:00 AM – 5:30 AM" in to_client.body
    assert "Wednesday, December 9, 2026, 10:00 AM – 10:30 AM" in to_host.body
    assert "/booking/" in to_client.body and "/booking/" not in to_host.body
    for message in sent:
        event = event_in(message)
        assert str(booking.uid) in str(event["UID"])
        assert event["SEQUENCE"] == booking.sequence
        assert event.decoded("DTSTART") == MEETING

    # Beat keeps running: never a second reminder.
    assert run_reminders_at(clock, DAY_BEFORE) == []
    assert run_reminders_at(clock, DAY_BEFORE + timedelta(hours=6)) == []
    assert run_reminders_at(clock, MEETING - MINUTE) == []
    rows = EmailDelivery.objects.filter(booking=booking, kind=EmailDelivery.Kind.REMINDER)
    assert sorted(rows.values_list("recipient", "state")) == [(CLIENT_EMAIL, "sent"), (HOST_EMAIL, "sent")]


def test_beat_running_late_still_sends_the_reminder_before_the_meeting_but_not_after(clock, booked):
    booked(reminder_minutes_before=60)
    assert run_reminders_at(clock, MEETING - timedelta(minutes=61)) == []
    assert recipients(run_reminders_at(clock, MEETING - timedelta(minutes=20))) == [CLIENT_EMAIL, HOST_EMAIL]

    other = booked(reminder_minutes_before=60, start=at(THURSDAY, "10:00"), name="Follow-up")
    # Beat was down for the whole hour before Thursday's meeting: no reminder after it started.
    assert run_reminders_at(clock, other.start + MINUTE) == []


def test_a_cancelled_booking_gets_no_reminder(clock, committed, booked):
    booking = booked(reminder_minutes_before=1440)
    committed(services.cancel, booking=booking, reason="No longer needed")
    mail.outbox.clear()

    assert run_reminders_at(clock, DAY_BEFORE) == []
    assert run_reminders_at(clock, MEETING - MINUTE) == []
    assert not EmailDelivery.objects.filter(kind=EmailDelivery.Kind.REMINDER).exists()


def test_a_booking_moved_later_is_reminded_of_its_new_time_only(clock, committed, booked):
    booking = booked(reminder_minutes_before=1440)
    new_start = at(THURSDAY, "15:00")
    booking = committed(services.reschedule, booking=booking, start=new_start)
    mail.outbox.clear()

    # Tuesday 10:00 was the old meeting's reminder time: nothing then, nor before the new one is due.
    assert run_reminders_at(clock, DAY_BEFORE) == []
    assert run_reminders_at(clock, MEETING) == []  # the old meeting time itself
    assert run_reminders_at(clock, new_start - timedelta(minutes=1440) - MINUTE) == []

    sent = run_reminders_at(clock, new_start - timedelta(minutes=1440))

    assert recipients(sent) == [CLIENT_EMAIL, HOST_EMAIL]
    for message in sent:
        event = event_in(message)
        assert event.decoded("DTSTART") == new_start
        assert event["SEQUENCE"] == booking.sequence == 1
        assert "Thursday, December 10, 2026" in message.body and "Wednesday" not in message.body
    assert run_reminders_at(clock, new_start - timedelta(hours=2)) == []


def test_a_booking_moved_after_its_reminder_went_out_is_reminded_again_for_the_new_time(clock, committed, booked):
    booking = booked(reminder_minutes_before=1440)
    assert len(run_reminders_at(clock, DAY_BEFORE)) == 2  # reminded of Wednesday

    new_start = at(THURSDAY, "15:00")
    booking = committed(services.reschedule, booking=booking, start=new_start)
    mail.outbox.clear()

    assert run_reminders_at(clock, new_start - timedelta(minutes=1440) - MINUTE) == []
    sent = run_reminders_at(clock, new_start - timedelta(minutes=1440))
    assert recipients(sent) == [CLIENT_EMAIL, HOST_EMAIL]
    assert all(event_in(message).decoded("DTSTART") == new_start for message in sent)
    assert run_reminders_at(clock, new_start - timedelta(hours=1)) == []


def run_sweep_at(clock, moment) -> list:
    """The follow-up sweep's run at `moment`: the emails it sent."""
    clock.move_to(moment)
    before = len(mail.outbox)
    tasks.sweep_follow_ups()
    return mail.outbox[before:]


def test_a_reminder_the_mail_server_could_not_take_is_sent_by_the_next_sweep(clock, monkeypatch, booked):
    booking = booked(reminder_minutes_before=1440)
    original = LocmemBackend.send_messages
    down = {"client": True}

    def send_messages(self, messages):
        if down["client"] and messages[0].to == [CLIENT_EMAIL]:
            raise smtplib.SMTPResponseException(451, b"4.3.0 try again later")
        return original(self, messages)

    monkeypatch.setattr(LocmemBackend, "send_messages", send_messages)

    assert recipients(run_reminders_at(clock, DAY_BEFORE)) == [HOST_EMAIL]
    down["client"] = False
    assert recipients(run_sweep_at(clock, DAY_BEFORE + timedelta(minutes=1))) == [CLIENT_EMAIL]
    assert run_reminders_at(clock, DAY_BEFORE + timedelta(minutes=10)) == []
    assert run_sweep_at(clock, DAY_BEFORE + timedelta(minutes=11)) == []
    rows = EmailDelivery.objects.filter(booking=booking, kind=EmailDelivery.Kind.REMINDER)
    assert sorted(rows.values_list("recipient", "state")) == [(CLIENT_EMAIL, "sent"), (HOST_EMAIL, "sent")]


def test_a_meeting_type_without_a_reminder_never_sends_one(clock, booked):
    booking = booked(reminder_minutes_before=None)
    assert booking.meeting_type.reminder_minutes_before is None

    for moment in (NOW, DAY_BEFORE, MEETING - timedelta(hours=1), MEETING - MINUTE):
        assert run_reminders_at(clock, moment) == []
    assert not EmailDelivery.objects.filter(kind=EmailDelivery.Kind.REMINDER).exists()


def test_each_meeting_type_uses_its_own_reminder_time(clock, committed, host):
    hour_before = make_meeting_type(host.organization, [host], name="Quick chat", reminder_minutes_before=60)
    committed(
        services.book,
        meeting_type=hour_before,
        start=MEETING,
        client_name="Casey Client",
        client_email=CLIENT_EMAIL,
        client_notes="",
        client_time_zone="UTC",
    )
    mail.outbox.clear()
    assert hour_before.location == MeetingType.Location.IN_PERSON

    assert run_reminders_at(clock, DAY_BEFORE) == []
    assert run_reminders_at(clock, MEETING - timedelta(minutes=61)) == []
    sent = run_reminders_at(clock, MEETING - timedelta(minutes=60))
    assert recipients(sent) == [CLIENT_EMAIL, HOST_EMAIL]
    assert all(message.subject.startswith("Reminder: Quick chat") for message in sent)
