"""Nothing a booking's follow-up owes is lost, and nothing is sent twice, whatever fails on the way:
the database connection cut in the middle of the emails, a mail server away for hours or answering
451, a message that can't be built. Every step is a row written with the booking; the periodic
sweep (celery beat, every minute) does what is due.

The clock stands at NOW (Monday 2026-12-07 06:00 UTC) and is moved with `sweep_at`.
"""

import smtplib
from datetime import timedelta

import pytest
import time_machine
from django.conf import settings
from django.core import mail
from django.core.mail import BadHeaderError
from django.core.mail.backends.locmem import EmailBackend as LocmemBackend
from django.db import OperationalError, connection, connections
from django.urls import reverse

from bookings import emails, followup, services, tasks
from bookings.models import Booking, BookingChange, EmailDelivery

from .booking_helpers import NOW, TUESDAY, at, make_booking, make_meeting_type

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("frozen_now")]

CLIENT_EMAIL = "casey@example.com"
HOST_EMAIL = "hana@acme.example"
State = EmailDelivery.State


@pytest.fixture
def hana(make_member, organization):
    return make_member(organization, name="Hana Host", email=HOST_EMAIL, time_zone="UTC")


@pytest.fixture
def book(committed, hana):
    def make(**client) -> Booking:
        return committed(
            services.book,
            meeting_type=make_meeting_type(hana.organization, [hana]),
            start=at(TUESDAY, "10:00"),
            client_name=client.get("name", "Casey Client"),
            client_email=CLIENT_EMAIL,
            client_notes="",
            client_time_zone="UTC",
        )

    return make


def sweep_at(moment) -> None:
    with time_machine.travel(moment, tick=False):
        tasks.sweep_follow_ups()


def received() -> list[str]:
    return sorted(message.to[0] for message in mail.outbox)


def states(booking) -> dict[str, str]:
    return dict(EmailDelivery.objects.filter(booking=booking).values_list("recipient", "state"))


def server(monkeypatch, answer):
    """The mail server: answer(message) returns an exception to raise, or None to take the message."""
    original = LocmemBackend.send_messages
    tries = []

    def send_messages(self, messages):
        for message in messages:
            tries.append(message.to[0])
            error = answer(message)
            if error is not None:
                raise error
        return original(self, messages)

    monkeypatch.setattr(LocmemBackend, "send_messages", send_messages)
    return tries


# ---------------------------------------------------------------- the database fails mid-way


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="terminates a PostgreSQL backend")
def test_the_database_connection_cut_after_the_clients_email_loses_nothing_and_doubles_nothing(
    monkeypatch, book
):
    def cut_the_connection_after_the_clients_email(message):
        if message.to == [CLIENT_EMAIL]:
            # As an operator (or a failover) would: the app's connection dies while the email is on its way.
            killer = connections.create_connection("default")
            try:
                with killer.cursor() as cursor:
                    cursor.execute("SELECT pg_terminate_backend(%s)", [connection.connection.info.backend_pid])
            finally:
                killer.close()

    tries = server(monkeypatch, cut_the_connection_after_the_clients_email)
    monkeypatch.setattr(emails, "RECORD_RETRY_SECONDS", 5)

    booking = book()
    sweep_at(NOW + timedelta(minutes=2))

    assert received() == [CLIENT_EMAIL, HOST_EMAIL]  # the host's email went out too…
    assert sorted(tries) == [CLIENT_EMAIL, HOST_EMAIL]  # …and the client's was not sent again
    assert states(booking) == {CLIENT_EMAIL: State.SENT, HOST_EMAIL: State.SENT}


def test_a_database_error_while_writing_the_hosts_email_is_recorded_and_the_sweep_sends_it(monkeypatch, book):
    original = Booking.hosts_in_order
    failures = [OperationalError("server closed the connection unexpectedly")]

    def hosts_in_order(self):
        if failures and len(mail.outbox) == 1:  # the client's email is out; the host's is being written
            raise failures.pop()
        return original(self)

    monkeypatch.setattr(Booking, "hosts_in_order", hosts_in_order)

    booking = book()
    assert received() == [CLIENT_EMAIL]
    host_row = EmailDelivery.objects.get(recipient=HOST_EMAIL)
    assert host_row.state == State.PENDING and "OperationalError" in host_row.last_error  # not stuck in sending

    sweep_at(NOW + timedelta(minutes=1))

    assert received() == [CLIENT_EMAIL, HOST_EMAIL]
    assert states(booking) == {CLIENT_EMAIL: State.SENT, HOST_EMAIL: State.SENT}


def test_a_crash_before_the_emails_loses_none_of_them(django_capture_on_commit_callbacks, hana):
    meeting_type = make_meeting_type(hana.organization, [hana])
    with django_capture_on_commit_callbacks(execute=False):  # the worker died before it began
        booking = services.book(
            meeting_type=meeting_type,
            start=at(TUESDAY, "10:00"),
            client_name="Casey Client",
            client_email=CLIENT_EMAIL,
            client_notes="",
            client_time_zone="UTC",
        )
    # Every recipient's email was written with the booking, in its transaction.
    assert states(booking) == {CLIENT_EMAIL: State.PENDING, HOST_EMAIL: State.PENDING}

    sweep_at(NOW + timedelta(seconds=settings.FOLLOW_UP_SWEEP_SECONDS))

    assert received() == [CLIENT_EMAIL, HOST_EMAIL]


# ---------------------------------------------------------------- the mail server is away


@pytest.mark.parametrize(
    "trouble",
    [
        pytest.param(lambda: ConnectionRefusedError(111, "Connection refused"), id="refusing-connections"),
        pytest.param(lambda: smtplib.SMTPDataError(451, b"4.3.0 Try again later"), id="answering-451"),
        pytest.param(lambda: smtplib.SMTPAuthenticationError(535, b"5.7.8 Bad credentials"), id="refusing-our-login"),
    ],
)
def test_a_mail_server_away_for_hours_gets_every_email_once_when_it_is_back(monkeypatch, book, trouble):
    down = [True]
    tries = server(monkeypatch, lambda message: trouble() if down[0] else None)

    booking = book()
    for minutes in (1, 2, 30, 60, 6 * 60):
        sweep_at(NOW + timedelta(minutes=minutes))
    assert mail.outbox == []
    assert set(states(booking).values()) == {State.PENDING}  # still trying after six hours
    assert len(tries) <= 2 * 6  # but not hammering: a few tries a round at most

    down[0] = False
    sweep_at(NOW + timedelta(hours=6, minutes=2))  # within two sweeps of the server's return
    sweep_at(NOW + timedelta(hours=6, minutes=3))

    assert received() == [CLIENT_EMAIL, HOST_EMAIL]
    assert states(booking) == {CLIENT_EMAIL: State.SENT, HOST_EMAIL: State.SENT}
    sweep_at(NOW + timedelta(hours=8))
    assert received() == [CLIENT_EMAIL, HOST_EMAIL]  # nothing twice


def test_an_email_fails_only_after_a_day_of_trying_and_an_admin_can_send_it_again(
    monkeypatch, client, book, admin
):
    down = [True]
    server(monkeypatch, lambda message: smtplib.SMTPServerDisconnected("gone") if down[0] else None)
    booking = book()

    sweep_at(NOW + timedelta(hours=23, minutes=59))
    assert set(states(booking).values()) == {State.PENDING}
    sweep_at(NOW + timedelta(hours=24, minutes=1))
    assert set(states(booking).values()) == {State.FAILED}

    down[0] = False
    sweep_at(NOW + timedelta(hours=30))
    assert mail.outbox == []  # failed is final…

    client.force_login(admin.user)
    page = client.get(reverse("bookings:list")).content.decode()
    assert f"Confirmation email to {CLIENT_EMAIL} failed" in page and "Send again" in page
    with time_machine.travel(NOW + timedelta(hours=30), tick=False):
        response = client.post(reverse("bookings:resend", args=[booking.pk]), {"when": "upcoming"})
    assert response.status_code == 302

    sweep_at(NOW + timedelta(hours=30, minutes=1))  # …until an admin sends it again
    assert received() == [CLIENT_EMAIL, HOST_EMAIL]
    assert states(booking) == {CLIENT_EMAIL: State.SENT, HOST_EMAIL: State.SENT}


# ---------------------------------------------------------------- a message that can't be built


def test_a_newline_in_a_clients_name_cannot_break_the_hosts_email(django_capture_on_commit_callbacks, hana):
    # Written straight to the database: the booking form refuses such names (tested with the forms).
    booking = make_booking(
        make_meeting_type(hana.organization, [hana]), [hana], at(TUESDAY, "10:00"),
        client_name="Eve\nBcc: everyone@example.com", client_email=CLIENT_EMAIL,
    )  # fmt: skip
    with django_capture_on_commit_callbacks(execute=True):
        followup.record_change(booking, BookingChange.CREATED)
    tasks.booking_changed.apply(args=[booking.pk])

    assert received() == [CLIENT_EMAIL, HOST_EMAIL]
    to_host = next(message for message in mail.outbox if message.to == [HOST_EMAIL])
    assert "\n" not in to_host.subject and "Eve Bcc: everyone@example.com" in to_host.subject
    assert to_host.message()["Bcc"] is None
    assert states(booking) == {CLIENT_EMAIL: State.SENT, HOST_EMAIL: State.SENT}


def test_any_error_while_sending_ends_in_a_recorded_failure_never_in_sending(monkeypatch, book):
    def refuse_the_hosts_email(message):
        return BadHeaderError("Header values can't contain newlines") if message.to == [HOST_EMAIL] else None

    server(monkeypatch, refuse_the_hosts_email)

    booking = book()

    assert received() == [CLIENT_EMAIL]
    host_row = EmailDelivery.objects.get(booking=booking, recipient=HOST_EMAIL)
    assert host_row.state == State.FAILED and "BadHeaderError" in host_row.last_error
    assert host_row.next_attempt_at is None
    assert not EmailDelivery.objects.filter(state=State.SENDING).exists()
