"""All outbound HTTP of the product goes through here: timeouts always, tokens never logged.

Errors come out as two kinds, so callers can decide what to do without reading status codes:
- TransientHTTPError: worth retrying later (network trouble, 5xx, 429); carries Retry-After.
- PermanentHTTPError: retrying won't help (4xx); carries the provider's error code and message.
Both carry `sent`: False when the request certainly never reached the provider (a connection
error), True or None when it may have been processed (a read timeout), which matters for calls
that must not run twice.
"""

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

import requests

logger = logging.getLogger(__name__)

CONNECT_TIMEOUT = 3.05
READ_TIMEOUT = 15
USER_AGENT = "TeamSchedulerPro/1.0"

_session = requests.Session()
_session.headers["User-Agent"] = USER_AGENT


class HTTPError(Exception):
    def __init__(self, message: str, *, status: int | None = None, body=None, sent: bool | None = True):
        super().__init__(message)
        self.status = status
        self.body = body
        self.sent = sent

    @property
    def provider_code(self):
        """Zoom's numeric `code`, OAuth's `error` string, or the `code` inside an `error` object
        (Microsoft Graph's {"error": {"code": "Forbidden", …}}), whichever the body has."""
        if not isinstance(self.body, dict):
            return None
        code = self.body.get("code", self.body.get("error"))
        if isinstance(code, dict):
            return code.get("code")
        return code


class TransientHTTPError(HTTPError):
    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs):
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class PermanentHTTPError(HTTPError):
    pass


@dataclass
class Response:
    status: int
    body: object  # parsed JSON, or None for an empty or non-JSON body
    headers: dict


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Retry-After is either seconds or an HTTP date; providers use both. None if unusable."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        try:
            when = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def _parse_body(response: requests.Response):
    if not response.content:
        return None
    try:
        return response.json()
    except ValueError:
        return None  # some provider errors are HTML pages: never crash on them


def _where(url: str) -> str:
    # Log host and path only: query strings may carry codes or tokens.
    parts = urlsplit(url)
    return f"{parts.netloc}{parts.path}"


def request(method: str, url: str, *, timeout: float | None = None, **kwargs) -> Response:
    """Send one request. 2xx → Response; anything else raises Transient- or PermanentHTTPError."""
    try:
        response = _session.request(method, url, timeout=(CONNECT_TIMEOUT, timeout or READ_TIMEOUT), **kwargs)
    except requests.exceptions.ConnectionError as error:
        # ConnectTimeout is a ConnectionError too; ReadTimeout is not.
        logger.warning("%s %s: connection failed (%s)", method, _where(url), error.__class__.__name__)
        raise TransientHTTPError(f"could not connect to {_where(url)}", sent=False) from error
    except requests.exceptions.Timeout as error:
        logger.warning("%s %s: no answer in time", method, _where(url))
        raise TransientHTTPError(f"{_where(url)} did not answer in time", sent=None) from error
    except requests.exceptions.RequestException as error:
        logger.warning("%s %s: request failed (%s)", method, _where(url), error.__class__.__name__)
        raise TransientHTTPError(f"request to {_where(url)} failed", sent=None) from error

    body = _parse_body(response)
    if response.status_code < 400:
        return Response(response.status_code, body, dict(response.headers))
    logger.info("%s %s: HTTP %s", method, _where(url), response.status_code)
    message = f"{_where(url)} answered HTTP {response.status_code}"
    if response.status_code == 429 or response.status_code >= 500:
        raise TransientHTTPError(
            message,
            status=response.status_code,
            body=body,
            retry_after=parse_retry_after(response.headers.get("Retry-After")),
        )
    raise PermanentHTTPError(message, status=response.status_code, body=body)
