"""Tokens are unreadable at rest and survive key rotation; webhook signatures are checked strictly."""

import time
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.db import connection as db

from integrations import crypto, http
from integrations.base import Account, TokenSet
from integrations.models import Connection, Provider
from integrations.services import save_connection
from integrations.zoom import webhook

pytestmark = pytest.mark.django_db

ACCESS = "access-token-abcdefghijklmnop"
REFRESH = "refresh-token-qrstuvwxyz012345"


def _connect(member) -> Connection:
    return save_connection(
        member=member,
        provider=Provider.ZOOM,
        tokens=TokenSet(access_token=ACCESS, refresh_token=REFRESH, expires_in=3599, scope="meeting:write user:read"),
        account=Account(user_id="zoom-user-1", account_id="acct-1", email="maya@zoom.example"),
    )


def _raw_row(pk: int) -> str:
    with db.cursor() as cursor:
        cursor.execute("SELECT * FROM integrations_connection WHERE id = %s", [pk])
        return " ".join(str(value) for value in cursor.fetchone())


@pytest.fixture
def keys(settings):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.TOKEN_ENCRYPTION_KEYS = [old]
    return old, new


def test_tokens_are_stored_encrypted_and_read_back(member, keys):
    connection = _connect(member)
    raw = _raw_row(connection.pk)
    assert ACCESS not in raw and REFRESH not in raw
    stored = Connection.objects.get(pk=connection.pk)
    assert (stored.access_token, stored.refresh_token) == (ACCESS, REFRESH)


def test_rotating_keys_re_encrypts_every_token_under_the_new_key(member, keys, settings):
    old, new = keys
    connection = _connect(member)
    settings.TOKEN_ENCRYPTION_KEYS = [new, old]  # new key first, old one still accepted
    call_command("rotate_token_keys", stdout=open("/dev/null", "w"))
    settings.TOKEN_ENCRYPTION_KEYS = [new]  # old key removed
    stored = Connection.objects.get(pk=connection.pk)
    assert (stored.access_token, stored.refresh_token) == (ACCESS, REFRESH)
    settings.TOKEN_ENCRYPTION_KEYS = [old]
    with pytest.raises(crypto.TokenDecryptionError):
        _ = Connection.objects.get(pk=connection.pk).access_token


def test_production_refuses_to_store_tokens_without_keys(settings):
    settings.TOKEN_ENCRYPTION_KEYS = []
    settings.DEBUG = False
    from django.core.exceptions import ImproperlyConfigured

    with pytest.raises(ImproperlyConfigured):
        crypto.encrypt("anything")


def test_reconnecting_replaces_the_connection_never_two(member, keys):
    _connect(member)
    _connect(member)
    assert Connection.objects.filter(member=member, provider=Provider.ZOOM).count() == 1


# ---------------------------------------------------------------- webhook signatures

SECRET = "webhook-secret"
BODY = b'{"event":"app_deauthorized","payload":{"user_id":"u1"}}'


def _signed(body=BODY, at=None):
    timestamp = str(int(at if at is not None else time.time()))
    return timestamp, webhook.signature(SECRET, timestamp, body)


def test_a_correct_recent_signature_is_accepted():
    timestamp, signature = _signed()
    assert webhook.is_authentic(secret=SECRET, timestamp=timestamp, given=signature, raw_body=BODY)


@pytest.mark.parametrize(
    "case",
    ["other secret", "changed body", "stale", "future", "garbage timestamp", "missing", "no secret configured"],
)
def test_a_forged_stale_or_missing_signature_is_refused(case):
    timestamp, signature = _signed()
    secret, body = SECRET, BODY
    if case == "other secret":
        signature = webhook.signature("guess", timestamp, BODY)
    elif case == "changed body":
        body = BODY.replace(b"u1", b"u2")
    elif case == "stale":
        timestamp, signature = _signed(at=time.time() - 301)
    elif case == "future":
        timestamp, signature = _signed(at=time.time() + 301)
    elif case == "garbage timestamp":
        timestamp = "yesterday"
    elif case == "missing":
        signature = None
    elif case == "no secret configured":
        secret = ""
    assert not webhook.is_authentic(secret=secret, timestamp=timestamp, given=signature, raw_body=body)


def test_url_validation_answer_is_the_hmac_of_the_plain_token():
    answer = webhook.url_validation_answer(SECRET, "qgg8vlvZRS6UYooatFL8Aw")
    import hashlib
    import hmac

    expected = hmac.new(SECRET.encode(), b"qgg8vlvZRS6UYooatFL8Aw", hashlib.sha256).hexdigest()
    assert answer == {"plainToken": "qgg8vlvZRS6UYooatFL8Aw", "encryptedToken": expected}


# ---------------------------------------------------------------- Retry-After


@pytest.mark.parametrize(
    "value, expected",
    [
        ("7", 7.0),
        ("0", 0.0),
        ("Wed, 25 Nov 2026 12:00:30 GMT", 30.0),
        ("2026-11-25T12:01:00Z", 60.0),
        ("Wed, 25 Nov 2026 11:00:00 GMT", 0.0),  # in the past: retry now
        ("soon", None),
        ("", None),
        (None, None),
    ],
)
def test_retry_after_is_read_as_seconds_or_as_a_date(value, expected):
    now = datetime(2026, 11, 25, 12, 0, 0, tzinfo=UTC)
    assert http.parse_retry_after(value, now=now) == expected


def test_backoff_grows_and_never_undercuts_retry_after():
    from integrations.tasks import backoff_seconds

    assert all(0 <= backoff_seconds(0) <= 10 for _ in range(50))
    assert max(backoff_seconds(5) for _ in range(200)) > 10
    assert all(backoff_seconds(0, retry_after=42) >= 42 for _ in range(50))
    assert all(backoff_seconds(30) <= timedelta(hours=1).total_seconds() for _ in range(50))
