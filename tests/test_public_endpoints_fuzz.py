"""Whatever anyone sends to the public booking pages, the answer is never a server error.

Dates at the edges of what `datetime` holds used to end in 500s (an instant in the year 9999 at
-14:00 is past the year 9999 in UTC; the month 0000-01 does not exist): every date a client sends
is now bounded to 2000-2199, and anything else gets a clear 400 or the calendar again.

The fuzz test sends generated query strings and form posts to every public endpoint: 300 in
`make test` (about 4 seconds); `FUZZ_EXAMPLES=5000 pytest tests/test_public_endpoints_fuzz.py`
searches longer (about a minute).
"""

import os
from datetime import datetime, timedelta, timezone

import pytest
from django.db import transaction
from django.urls import reverse
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from meetingtypes.models import MeetingType

from .booking_helpers import (
    TUESDAY,
    at,
    book_through_service,
    book_via_page,
    get_slots,
    make_meeting_type,
    public_url,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("frozen_now")]

EXTREME_STARTS = [
    "9999-12-31T23:59:59-14:00",  # past the year 9999 in UTC
    "0001-01-01T00:00:00+14:00",  # before the year 1 in UTC
    "9999-12-31T23:59:59+00:00",
    "0001-01-01T00:00:00Z",
    "1999-12-31T23:59:59Z",
    "2200-01-01T00:00:00Z",
]
EXTREME_MONTHS = ["0000-01", "0001-01", "9999-12", "1999-12", "2200-01", "٢٠٢٦-12"]


@pytest.fixture
def consultation(member):
    return make_meeting_type(member.organization, [member], assignment=MeetingType.Assignment.ONE_PERSON)


@pytest.fixture
def booking(consultation):
    return book_through_service(consultation, at(TUESDAY, "10:00"))


def link(booking, name: str) -> str:
    return reverse(f"bookings:{name}", args=[booking.uid, booking.manage_token])


# ---------------------------------------------------------------- the dates that gave 500s


@pytest.mark.parametrize("month", EXTREME_MONTHS)
def test_a_month_out_of_range_is_a_clear_400(client, consultation, booking, month):
    for url in (None, link(booking, "reschedule_slots")):
        response = get_slots(client, consultation, month=month, url=url)

        assert response.status_code == 400
        assert response.json()["error"] == (
            "The month must look like 2026-12."
            if month == "٢٠٢٦-12"
            else "No times are offered in that month. Please pick a month on the calendar."
        )


@pytest.mark.parametrize("start", EXTREME_STARTS)
def test_a_booking_at_an_extreme_time_is_a_clear_400(client, consultation, start):
    response = book_via_page(client, consultation, start)

    assert response.status_code == 400
    assert "The chosen time is not valid. Please pick a time again." in response.content.decode()


@pytest.mark.parametrize("start", EXTREME_STARTS)
def test_moving_a_booking_to_an_extreme_time_is_a_clear_400_and_changes_nothing(client, booking, start):
    response = client.post(link(booking, "reschedule_confirm"), {"start": start, "tz": "UTC"})

    assert response.status_code == 400
    assert "The chosen time is not valid. Please pick a time again." in response.content.decode()
    booking.refresh_from_db()
    assert (booking.start, booking.sequence) == (at(TUESDAY, "10:00"), 0)


@pytest.mark.parametrize("start", EXTREME_STARTS)
def test_an_extreme_time_in_a_link_opens_the_calendar_again(client, consultation, booking, start):
    # Links to the form and to the confirmation page carry the time: a mangled one leads back to the calendar.
    form = client.get(public_url(consultation, "book"), {"start": start, "tz": "UTC"})
    confirm = client.get(link(booking, "reschedule_confirm"), {"start": start, "tz": "UTC"})

    assert form.status_code == confirm.status_code == 302
    assert form["Location"] == public_url(consultation)
    assert confirm["Location"] == link(booking, "reschedule")


# ---------------------------------------------------------------- anything at all


def _instants():
    """ISO instants anywhere datetime can write them, at any offset up to ±23:59."""
    offsets = st.integers(-(24 * 60 - 1), 24 * 60 - 1).map(lambda minutes: timezone(timedelta(minutes=minutes)))
    return st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59), timezones=offsets)


def _values(*likely: str, shaped=None):
    """A field's values: what a client usually sends, values of the right shape anywhere in their
    range, and any text at all."""
    choices = [st.sampled_from(likely), st.text(max_size=60)]
    if shaped is not None:
        choices.insert(1, shaped)
    return st.one_of(*choices)


ZONES = ["UTC", "Pacific/Kiritimati", "Asia/Calcutta", "Etc/GMT+12", "../../etc/passwd", "Europe/Berlin\x00", "x" * 300]
FIELDS = {
    "start": _values(*EXTREME_STARTS, "2026-12-08T10:00:00Z", shaped=_instants().map(datetime.isoformat)),
    "month": _values(
        *EXTREME_MONTHS,
        "2026-12",
        "2027-13",
        shaped=st.builds("{:04d}-{:02d}".format, st.integers(0, 9999), st.integers(0, 13)),
    ),
    "tz": _values(*ZONES),
    "time_zone": _values(*ZONES),
    "name": _values("Casey Client", "Casey\nClient"),
    "email": _values("casey@example.com", "casey@example.com\nBcc: x@example.com"),
    "notes": _values(""),
    "reason": _values(""),
    "embed": _values("1", "0"),
    "booked": _values("1"),
    "moved": _values("1"),
}


settings_for_fuzz = hypothesis_settings(
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "300")),
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

ENDPOINTS = [
    ("GET", "organization"),
    ("GET", "public_page"),
    ("GET", "slots"),
    ("GET", "book"),
    ("POST", "book"),
    ("GET", "manage"),
    ("GET", "cancel"),
    ("POST", "cancel"),
    ("GET", "reschedule"),
    ("GET", "reschedule_slots"),
    ("GET", "reschedule_confirm"),
    ("POST", "reschedule_confirm"),
    ("GET", "calendar_file"),
]


def _url(name: str, consultation, booking) -> str:
    if name == "organization":
        return reverse("bookings:organization", args=[consultation.organization.slug])
    if name in ("public_page", "slots", "book"):
        return public_url(consultation, name)
    return link(booking, name)


def test_no_input_to_a_public_page_is_a_server_error(client, consultation, booking, settings):
    settings.BOOKING_RATE_LIMIT = settings.SLOTS_RATE_LIMIT = 1_000_000  # every example must reach the view
    urls = {(method, name): _url(name, consultation, booking) for method, name in ENDPOINTS}

    @settings_for_fuzz
    @given(endpoint=st.sampled_from(ENDPOINTS), data=st.fixed_dictionaries({}, optional=FIELDS))
    def no_server_error(endpoint, data):
        method, name = endpoint
        with transaction.atomic():  # each example starts from the same booking
            if method == "GET":
                response = client.get(urls[endpoint], data)
            else:
                response = client.post(urls[endpoint], data)
            transaction.set_rollback(True)
        assert response.status_code < 500, (endpoint, data)

    no_server_error()
