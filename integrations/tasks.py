import logging
from datetime import timedelta

from celery import shared_task
from django.utils import timezone

from tsp.tasks import backoff_seconds

from . import http, registry
from .calendars import tasks as calendar_tasks  # noqa: F401  (Celery finds tasks only in apps' tasks modules)
from .models import PendingRevocation

logger = logging.getLogger(__name__)

REVOKE_MAX_ATTEMPTS = 8


@shared_task(bind=True, acks_late=True, max_retries=REVOKE_MAX_ATTEMPTS)
def revoke_tokens(self, pending_id: int) -> None:
    """Stop a disconnected account's push channels and revoke its token at the provider, retrying
    while it is down; then the tokens are deleted."""
    pending = PendingRevocation.objects.filter(pk=pending_id).first()
    if pending is None:
        return
    provider = registry.get(pending.provider)
    try:
        if pending.channels:
            _stop_channels(pending)
        if pending.revoke and provider.can_revoke:
            provider.revoke(access_token=pending.access_token, refresh_token=pending.refresh_token)
    except http.TransientHTTPError as error:
        pending.attempts += 1
        pending.last_error = str(error)[:500]
        pending.save(update_fields=["attempts", "last_error"])
        if self.request.retries < REVOKE_MAX_ATTEMPTS:
            raise self.retry(countdown=backoff_seconds(self.request.retries, retry_after=error.retry_after)) from error
        logger.warning("revocation %s: provider unreachable, giving up; tokens deleted anyway", pending_id)
    except http.PermanentHTTPError as error:
        logger.info("revocation %s: provider refused the access token (HTTP %s)", pending_id, error.status)
        if pending.revoke and provider.can_revoke:
            _revoke_through_refresh(provider, pending)
    pending.delete()


def _stop_channels(pending: PendingRevocation) -> None:
    """Stop the account's push channels while its tokens still work; those the provider could not
    take now stay on the row for the retry."""
    from .calendars.push import stop_channels_with_tokens

    left = stop_channels_with_tokens(pending.provider, pending)
    pending.channels = left
    # The tokens too: a refused access token may have been traded for a fresh pair on the way.
    pending.save(update_fields=["channels", "access_token_encrypted", "refresh_token_encrypted"])
    if left:
        raise http.TransientHTTPError(f"{len(left)} push channel(s) not stopped yet")


def _revoke_through_refresh(provider, pending: PendingRevocation) -> None:
    """The access token expired while the provider was down; the refresh token may still be
    good, and with it the authorization: trade it for a fresh access token and revoke that."""
    if not pending.refresh_token:
        return
    try:
        fresh = provider.refresh(pending.refresh_token)
        provider.revoke(access_token=fresh.access_token, refresh_token=fresh.refresh_token or pending.refresh_token)
    except http.HTTPError as error:
        logger.info(
            "revocation %s: refresh token refused too (HTTP %s): nothing left to revoke", pending.pk, error.status
        )


@shared_task(acks_late=True)
def resend_missed_revocations() -> int:
    """Run by celery beat: revocations that were never queued (the broker was down when the member
    disconnected) are queued now. A revocation that ran has either finished (row deleted) or
    counted an attempt."""
    missed = list(
        PendingRevocation.objects.filter(attempts=0, created_at__lte=timezone.now() - timedelta(minutes=30))
        .order_by("pk")
        .values_list("pk", flat=True)[:500]
    )
    for pending_id in missed:
        revoke_tokens.delay(pending_id)
    return len(missed)
