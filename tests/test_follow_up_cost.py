"""What a booking's follow-up costs the worker: its emails share one connection to the mail server
(one connect, greeting, TLS and login, not one per email) and it reads the database a bounded number
of times, on a database connection kept from one task to the next (Django's rules, not a new
PostgreSQL connection per task). Sharing the mail connection loses nothing: a connection the server
closed is replaced before the next email, and a server that takes no more messages on it (421 to
MAIL) gets the email on a new one.

The mail server here is a real SMTP server (aiosmtpd) on loopback; each message it receives is noted
with the connection (the client's address and port) it came on.
"""

import asyncio
import socket
import time
from datetime import timedelta

import pytest
import time_machine
from aiosmtpd.controller import Controller
from celery.fixups.django import DjangoWorkerFixup
from celery.signals import task_postrun, task_prerun
from django.core import mail
from django.db import connection

from bookings import followup, services, tasks
from bookings.models import Booking, EmailDelivery
from tsp.celery import app

from .booking_helpers import NOW, TUESDAY, at, make_meeting_type

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("frozen_now")]

CLIENT_EMAIL = "casey@example.com"
HOST_EMAIL = "hana@acme.example"


class MailServer:
    """Takes every message; `hang_up_after_each` closes the connection after each one, and
    `one_message_per_connection` answers 421 to a second MAIL on a connection."""

    def __init__(self, *, hang_up_after_each: bool = False, one_message_per_connection: bool = False):
        self.hang_up_after_each = hang_up_after_each
        self.one_message_per_connection = one_message_per_connection
        self.received: list[tuple[tuple, list[str]]] = []  # (connection, recipients)
        self.refused = 0
        self._mails_on: dict[tuple, int] = {}

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        taken = self._mails_on.get(session.peer, 0)
        if self.one_message_per_connection and taken:
            self.refused += 1
            return "421 4.7.0 Too many messages on this connection"
        self._mails_on[session.peer] = taken + 1
        envelope.mail_from = address
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.received.append((session.peer, list(envelope.rcpt_tos)))
        if self.hang_up_after_each:
            # After the answer below is written: the connection ends as the client waits to send more.
            asyncio.get_running_loop().call_soon(server.transport.close)
        return "250 Message accepted for delivery"

    def connections(self) -> set[tuple]:
        return {peer for peer, _ in self.received}

    def recipients(self) -> list[str]:
        return sorted(address for _, recipients in self.received for address in recipients)


@pytest.fixture
def smtp_server(settings):
    servers = []

    def start(**behaviour) -> MailServer:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        handler = MailServer(**behaviour)
        controller = Controller(handler, hostname="127.0.0.1", port=port)
        controller.start()
        servers.append(controller)
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", port
        settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
        settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
        return handler

    yield start
    for controller in servers:
        controller.stop()


@pytest.fixture
def hana(make_member, organization):
    return make_member(organization, name="Hana Host", email=HOST_EMAIL, time_zone="UTC")


@pytest.fixture
def book(django_capture_on_commit_callbacks, hana):
    """Book; with follow_up=False the task queued at the commit is not run (as with the broker down)."""
    meeting_type = make_meeting_type(hana.organization, [hana])

    def make(*, hour: int = 10, follow_up: bool = True) -> Booking:
        with django_capture_on_commit_callbacks(execute=follow_up):
            booking = services.book(
                meeting_type=meeting_type,
                start=at(TUESDAY, f"{hour:02d}:00"),
                client_name="Casey Client",
                client_email=CLIENT_EMAIL,
                client_notes="",
                client_time_zone="UTC",
            )
        return booking

    return make


def states(booking: Booking) -> list[str]:
    return sorted(EmailDelivery.objects.filter(booking=booking).values_list("state", flat=True))


def test_the_client_and_the_host_are_emailed_over_one_connection(smtp_server, book):
    server = smtp_server()

    booking = book()

    assert server.recipients() == [CLIENT_EMAIL, HOST_EMAIL]
    assert len(server.connections()) == 1
    assert states(booking) == ["sent", "sent"]


def test_a_sweep_sends_the_emails_of_every_booking_it_runs_over_one_connection(smtp_server, book):
    server = smtp_server()
    bookings = [book(hour=10, follow_up=False), book(hour=12, follow_up=False)]
    assert server.received == []

    with time_machine.travel(NOW + timedelta(minutes=2), tick=False):
        assert tasks.sweep_follow_ups() == 2

    assert server.recipients() == [CLIENT_EMAIL, CLIENT_EMAIL, HOST_EMAIL, HOST_EMAIL]
    assert len(server.connections()) == 1
    assert [states(booking) for booking in bookings] == [["sent", "sent"]] * 2


def test_a_connection_the_server_closed_is_replaced_before_the_next_email(smtp_server, book):
    server = smtp_server(hang_up_after_each=True)

    booking = book()

    assert server.recipients() == [CLIENT_EMAIL, HOST_EMAIL]
    assert len(server.connections()) == 2
    assert states(booking) == ["sent", "sent"]  # neither waits for a retry


def test_a_server_taking_one_message_per_connection_gets_the_next_on_a_new_one(smtp_server, book):
    server = smtp_server(one_message_per_connection=True)

    booking = book()

    assert server.refused == 1  # the host's email, refused on the client's connection, then sent on its own
    assert server.recipients() == [CLIENT_EMAIL, HOST_EMAIL]
    assert len(server.connections()) == 2
    assert states(booking) == ["sent", "sent"]


def test_a_bookings_follow_up_reads_and_writes_the_database_a_bounded_number_of_times(
    book, django_assert_max_num_queries
):
    booking = book(follow_up=False)

    # The booking with its hosts (2), its emails (1), then per email a claim and its outcome (2 × 2),
    # and once that the mail server takes messages (1). No calendar step: no query for one.
    with django_assert_max_num_queries(8):
        followup.run(booking.pk, first_run=True)

    assert sorted(message.to[0] for message in mail.outbox) == [CLIENT_EMAIL, HOST_EMAIL]
    assert states(booking) == ["sent", "sent"]


# ---------------------------------------------------------------- the worker's database connection


def between_two_tasks(task=tasks.booking_changed) -> None:
    """What a worker does around its tasks: Celery's Django support, then our handler, at the end of
    one task and the start of the next."""
    fixup = DjangoWorkerFixup(app)
    for signal, celerys_own in ((task_postrun, fixup.on_task_postrun), (task_prerun, fixup.on_task_prerun)):
        celerys_own(sender=task)
        signal.send(sender=task, task_id="a-task", task=task, args=(), kwargs={})


@pytest.mark.django_db(transaction=True)
def test_the_worker_keeps_its_database_connection_from_one_task_to_the_next():
    connection.ensure_connection()
    in_use = connection.connection

    between_two_tasks()

    assert connection.connection is in_use


@pytest.mark.django_db(transaction=True)
def test_a_connection_older_than_its_maximum_age_is_closed_between_tasks():
    connection.ensure_connection()
    connection.close_at = time.monotonic() - 1  # DB_CONN_MAX_AGE has passed

    between_two_tasks()

    assert connection.connection is None


@pytest.mark.django_db(transaction=True)
def test_a_task_run_in_process_leaves_the_callers_connection_alone():
    connection.ensure_connection()
    in_use = connection.connection
    connection.close_at = time.monotonic() - 1
    task = tasks.booking_changed
    task.push_request(is_eager=True)
    try:
        task_postrun.send(sender=task, task_id="a-task", task=task, args=(), kwargs={})
    finally:
        task.pop_request()

    assert connection.connection is in_use
