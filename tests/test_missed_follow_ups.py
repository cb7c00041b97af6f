"""When the task broker is down at the moment a client books, the client still gets their
confirmation page, and the follow-up (video meeting, emails), recorded with the booking, is done by
the periodic sweep within two minutes of the broker being back."""

from datetime import timedelta

import pytest
import time_machine
from django.core import mail
from kombu.exceptions import OperationalError

from bookings import services, tasks
from bookings.models import Booking

from .booking_helpers import (
    NOW,
    TUESDAY,
    at,
    book_through_service,
    book_via_page,
    iso,
    make_meeting_type,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("frozen_now")]


@pytest.fixture
def host(make_member, organization):
    return make_member(organization, name="Hana Host", email="hana@acme.example", time_zone="UTC")


@pytest.fixture
def broker_down(monkeypatch):
    def unreachable(*args, **kwargs):
        raise OperationalError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    monkeypatch.setattr(tasks.booking_changed, "delay", unreachable)
    return monkeypatch


def later(minutes: int):
    return time_machine.travel(NOW + timedelta(minutes=minutes), tick=False)


def test_a_client_booking_while_the_broker_is_down_gets_the_confirmation_and_later_the_emails(
    client, host, broker_down, django_capture_on_commit_callbacks
):
    meeting_type = make_meeting_type(host.organization, [host])
    with django_capture_on_commit_callbacks(execute=True):
        response = book_via_page(client, meeting_type, iso(at(TUESDAY, "10:00")))

    booking = Booking.objects.get()
    assert response.status_code == 302 and response["Location"] == booking.manage_url() + "?booked=1"
    assert mail.outbox == []  # nothing could be queued

    broker_down.undo()  # the broker is back, and with it celery beat's sweep
    with later(2):
        assert tasks.sweep_follow_ups() == 1

    assert sorted(message.to[0] for message in mail.outbox) == ["casey@example.com", "hana@acme.example"]
    assert all(message.subject.startswith(("Confirmed:", "New booking:")) for message in mail.outbox)
    with later(45):
        assert tasks.sweep_follow_ups() == 0  # done: never sent twice
    assert len(mail.outbox) == 2


def test_a_missed_cancellation_is_sent_as_a_cancellation(host, committed, broker_down):
    meeting_type = make_meeting_type(host.organization, [host])
    broker_down.undo()
    booking = committed(book_through_service, meeting_type=meeting_type, start=at(TUESDAY, "10:00"))
    mail.outbox.clear()
    broker_down.setattr(tasks.booking_changed, "delay", _unreachable)
    committed(services.cancel, booking=booking)
    assert mail.outbox == []

    broker_down.undo()
    with later(2):
        assert tasks.sweep_follow_ups() == 1

    assert sorted(message.subject.split(":")[0] for message in mail.outbox) == ["Cancelled", "Cancelled"]


def test_follow_ups_that_ran_are_left_alone(host, committed):
    meeting_type = make_meeting_type(host.organization, [host])
    committed(book_through_service, meeting_type=meeting_type, start=at(TUESDAY, "10:00"))

    with later(31):
        assert tasks.sweep_follow_ups() == 0
    assert len(mail.outbox) == 2


def _unreachable(*args, **kwargs):
    raise OperationalError("Connection refused.")
