"""Secrets that travel in URLs stay out of the logs.

A client's manage link (/booking/<uid>/<signature>/…), a new member's invitation (/invite/<token>/),
allauth's password-reset and email-confirmation keys and the `code` / `state` of an OAuth return
each let their holder act as someone. Access logs are read by more people, and kept longer, than
the database, so every logged path goes through `redact()` first: runserver's and Django's loggers
through `RedactSecretUrlsFilter` (tsp/settings.py LOGGING), gunicorn's access log through
gunicorn.conf.py.
"""

import logging
import re
from urllib.parse import parse_qsl, urlencode

REDACTED = "[redacted]"

_SECRET_SEGMENTS = [
    re.compile(r"(/booking/[0-9a-fA-F-]{32,36}/)[^/?#\s\"]+"),
    re.compile(r"(/invite/)[^/?#\s\"]+"),
    re.compile(r"(/accounts/password/reset/key/[0-9A-Za-z]+-)[^/?#\s\"]+"),
    re.compile(r"(/accounts/confirm-email/)[^/?#\s\"]+"),
]
# Query parameters whose value is a credential (OAuth returns; anything named like a token).
SECRET_PARAMETERS = frozenset(
    {
        "code",
        "state",
        "token",
        "key",
        "access_token",
        "refresh_token",
        "id_token",
        "client_secret",
        "password",
        "code_verifier",
        "code_challenge",
        "signature",
    }
)
_QUERY = re.compile(r"\?([^\s\"#]*)")


def _redact_query(match: re.Match) -> str:
    pairs = parse_qsl(match.group(1), keep_blank_values=True)
    if not any(name.lower() in SECRET_PARAMETERS for name, _ in pairs):
        return match.group(0)
    cleaned = [(name, REDACTED if name.lower() in SECRET_PARAMETERS else value) for name, value in pairs]
    return "?" + urlencode(cleaned, safe="[]")


def redact(text: str) -> str:
    """`text` (a path, a request line or a whole log message) with the secrets in its URLs replaced."""
    if not text:
        return text
    for pattern in _SECRET_SEGMENTS:
        text = pattern.sub(rf"\g<1>{REDACTED}", text)
    return _QUERY.sub(_redact_query, text)


class RedactSecretUrlsFilter(logging.Filter):
    """Rewrites each record's message with `redact()`; never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, ()
        return True
