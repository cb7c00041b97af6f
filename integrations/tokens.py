"""Access tokens that are always fresh, even with many workers and rotating refresh tokens.

Zoom's and Microsoft's refresh tokens rotate: each refresh spends the old one. Two workers refreshing at once
would leave one of them holding a spent token and the connection broken. So a refresh happens
only under a row lock on the connection, after re-reading it, and the new pair is stored in the
same transaction: the second worker waits, re-reads, and finds a fresh access token.
"""

import logging
from collections.abc import Callable
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from . import http, registry
from .models import Connection

logger = logging.getLogger(__name__)

REFRESH_MARGIN = timedelta(minutes=5)


class ConnectionBroken(Exception):
    """The provider refused our refresh token: the member must connect again."""


def access_token(connection_id: int, *, stale_token: str | None = None) -> str:
    """A usable access token. With `stale_token` (one the provider just refused), refresh now
    unless another worker already replaced it."""
    broken_reason = None
    with transaction.atomic():
        connection = Connection.objects.select_for_update().get(pk=connection_id)
        if not connection.is_active:
            raise ConnectionBroken(connection.last_error or "connection needs reconnecting")
        current = connection.access_token
        if stale_token is not None and current != stale_token:
            return current
        fresh = connection.expires_at and connection.expires_at - timezone.now() > REFRESH_MARGIN
        if stale_token is None and fresh:
            return current
        try:
            provider = registry.get(connection.provider)
            tokens = provider.refresh(connection.refresh_token)
        except http.PermanentHTTPError as error:
            if provider.is_broken_grant(error):
                broken_reason = "The provider no longer accepts this connection (it was revoked or expired)."
            else:
                raise
        else:
            connection.access_token = tokens.access_token
            if tokens.refresh_token:  # Google keeps the old refresh token
                connection.refresh_token = tokens.refresh_token
            connection.expires_at = timezone.now() + timedelta(seconds=tokens.expires_in)
            connection.save(
                update_fields=["access_token_encrypted", "refresh_token_encrypted", "expires_at", "updated_at"]
            )
            return tokens.access_token
    # Outside the atomic block, so that marking it broken is not rolled back with the error.
    from .services import mark_broken

    mark_broken(connection_id, broken_reason)
    raise ConnectionBroken(broken_reason)


def call_with_token(connection_id: int, call: Callable[[str], object]):
    """Run `call(access_token)`; on a 401 refresh once and try once more."""
    token = access_token(connection_id)
    try:
        return call(token)
    except http.PermanentHTTPError as error:
        if error.status != 401:
            raise
        logger.info("connection %s: access token refused, refreshing once", connection_id)
    return call(access_token(connection_id, stale_token=token))
