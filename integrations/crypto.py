"""Encryption of provider tokens at rest.

TOKEN_ENCRYPTION_KEYS is a comma-separated list of Fernet keys: the first encrypts, every key
decrypts, so a key can be rotated in without downtime (then `manage.py rotate_token_keys`
re-encrypts everything under the first key and the old one can be removed).
"""

import base64
import hashlib
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


class TokenDecryptionError(Exception):
    """A stored token can't be decrypted with any configured key."""


def _development_key() -> bytes:
    # Only with DEBUG on and no keys configured, so `make run` works out of the box. Derived from
    # SECRET_KEY so restarting the demo keeps its connections.
    digest = hashlib.sha256(b"tsp-token-encryption:" + settings.SECRET_KEY.encode()).digest()
    return base64.urlsafe_b64encode(digest)


@lru_cache(maxsize=4)
def _fernet(keys: tuple[str, ...], debug: bool) -> MultiFernet:
    if not keys:
        if not debug:
            raise ImproperlyConfigured("TOKEN_ENCRYPTION_KEYS must be set to store provider tokens.")
        return MultiFernet([Fernet(_development_key())])
    try:
        return MultiFernet([Fernet(key.encode()) for key in keys])
    except ValueError as error:
        raise ImproperlyConfigured("TOKEN_ENCRYPTION_KEYS holds a key that is not a valid Fernet key.") from error


def fernet() -> MultiFernet:
    return _fernet(tuple(settings.TOKEN_ENCRYPTION_KEYS), settings.DEBUG)


def encrypt(value: str) -> str:
    return fernet().encrypt(value.encode()).decode()


def decrypt(value: str) -> str:
    try:
        return fernet().decrypt(value.encode()).decode()
    except InvalidToken as error:
        raise TokenDecryptionError("stored token can't be decrypted with the configured keys") from error


def rotate(value: str) -> str:
    """Re-encrypt under the first (current) key."""
    try:
        return fernet().rotate(value.encode()).decode()
    except InvalidToken as error:
        raise TokenDecryptionError("stored token can't be decrypted with the configured keys") from error
