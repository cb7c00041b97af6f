"""Zoom webhook signatures (x-zm-signature) and URL validation, per Zoom's documentation."""

import hashlib
import hmac
import time

MAX_AGE_SECONDS = 300


def signature(secret: str, timestamp: str, raw_body: bytes) -> str:
    message = b"v0:" + timestamp.encode() + b":" + raw_body
    return "v0=" + hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def is_authentic(
    *, secret: str, timestamp: str | None, given: str | None, raw_body: bytes, now: float | None = None
) -> bool:
    """Signed with our secret over this exact body, and recent (a replay of an old delivery fails)."""
    if not secret or not timestamp or not given:
        return False
    try:
        age = (now or time.time()) - int(timestamp)
    except ValueError:
        return False
    if abs(age) > MAX_AGE_SECONDS:
        return False
    return hmac.compare_digest(signature(secret, timestamp, raw_body), given)


def url_validation_answer(secret: str, plain_token: str) -> dict:
    encrypted = hmac.new(secret.encode(), plain_token.encode(), hashlib.sha256).hexdigest()
    return {"plainToken": plain_token, "encryptedToken": encrypted}
