"""Connecting, disconnecting and losing video accounts."""

import logging
from datetime import timedelta

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from members.models import TeamMember
from tsp.tasks import enqueue_after_commit

from . import registry
from .base import Account, TokenSet
from .models import Connection, PendingRevocation

logger = logging.getLogger(__name__)


@transaction.atomic
def save_connection(*, member: TeamMember, provider: str, tokens: TokenSet, account: Account) -> Connection:
    """Store a new connection, replacing any earlier one of that member and provider (never two)."""
    replaced = Connection.objects.select_for_update().filter(member=member, provider=provider)
    for old in replaced.exclude(external_user_id=account.user_id):
        # Another provider account than before: nothing of ours should stay authorized on it.
        # (A new authorization by the same account already ended its older tokens.)
        _revoke_later(provider, old)
    replaced.delete()
    # Within an organization one provider account belongs to one member: connecting it here
    # disconnects it from a colleague. Other organizations are not ours to change.
    Connection.objects.filter(
        provider=provider, external_user_id=account.user_id, member__organization_id=member.organization_id
    ).delete()
    connection = Connection(
        member=member,
        provider=provider,
        external_user_id=account.user_id,
        external_account_id=account.account_id,
        email=account.email,
        can_host_meetings=account.can_host_meetings,
        scopes=tokens.scope,
        expires_at=timezone.now() + timedelta(seconds=tokens.expires_in),
    )
    connection.access_token = tokens.access_token
    connection.refresh_token = tokens.refresh_token
    connection.save()
    return connection


@transaction.atomic
def disconnect(*, member: TeamMember, provider: str) -> bool:
    """Delete the stored tokens now; revoke them at the provider in the background."""
    connection = Connection.objects.select_for_update().filter(member=member, provider=provider).first()
    if connection is None:
        return False
    _revoke_later(provider, connection)
    connection.delete()
    return True


def revoke_unsaved(*, provider: str, tokens: TokenSet) -> None:
    """Tokens we were given but will not keep (the connect could not finish): revoke them."""
    if not registry.get(provider).can_revoke:
        return
    pending = PendingRevocation(provider=provider)
    pending.access_token = tokens.access_token
    pending.refresh_token = tokens.refresh_token
    with transaction.atomic():
        _queue_revocation(pending)


def _revoke_later(provider: str, connection: Connection) -> None:
    if not registry.get(provider).can_revoke:
        return  # nothing to call (Microsoft): deleting our tokens is all there is; the card says the rest
    pending = PendingRevocation(provider=provider)
    pending.access_token_encrypted = connection.access_token_encrypted
    pending.refresh_token_encrypted = connection.refresh_token_encrypted
    _queue_revocation(pending)


def _queue_revocation(pending: PendingRevocation) -> None:
    from .tasks import revoke_tokens

    pending.save()
    enqueue_after_commit(revoke_tokens, pending.pk)


@transaction.atomic
def forget_account(*, provider: str, external_user_id: str) -> int:
    """The provider told us the user removed the app: delete everything we hold of that account."""
    deleted, _ = Connection.objects.filter(provider=provider, external_user_id=external_user_id).delete()
    return deleted


def mark_broken(connection_id: int, reason: str) -> None:
    updated = Connection.objects.filter(pk=connection_id, status=Connection.Status.ACTIVE).update(
        status=Connection.Status.BROKEN, last_error=reason[:500], updated_at=timezone.now()
    )
    if updated:
        connection = Connection.objects.select_related("member__user").get(pk=connection_id)
        logger.warning("connection %s (%s) is broken", connection_id, connection.provider)
        _tell_member_to_reconnect(connection)


def _tell_member_to_reconnect(connection: Connection) -> None:
    context = {
        "connection": connection,
        "member": connection.member,
        "link": settings.SITE_URL + reverse("members:list") + f"#member-{connection.member_id}",
    }
    subject = render_to_string("integrations/email/reconnect_subject.txt", context).strip()
    body = render_to_string("integrations/email/reconnect.txt", context)
    send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, [connection.member.user.email])
