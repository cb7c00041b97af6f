"""Connecting, disconnecting and losing video accounts."""

import logging
from datetime import timedelta

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from bookings.cache import hosts_changed
from members.models import TeamMember
from tsp.tasks import enqueue_after_commit

from . import registry
from .base import Account, TokenSet
from .models import Calendar, Connection, PendingRevocation

logger = logging.getLogger(__name__)


@transaction.atomic
def save_connection(*, member: TeamMember, provider: str, tokens: TokenSet, account: Account) -> Connection:
    """Store a new connection, replacing any earlier one of that member and provider (never two).

    Connecting the same account again (to repair it, or to allow calendar access) updates its row,
    so the member's calendars and their choices survive."""
    earlier = Connection.objects.select_for_update().filter(member=member, provider=provider)
    kept = earlier.filter(external_user_id=account.user_id).first()
    replaced = list(earlier.exclude(external_user_id=account.user_id))
    for old in replaced:
        # Another provider account than before: nothing of ours should stay authorized on it.
        # (A new authorization by the same account already ended its older tokens.)
        _revoke_later(provider, old)
    # Within an organization one provider account belongs to one member: connecting it here
    # disconnects it from a colleague (whose push channels stop; the grant is the one we keep).
    # Other organizations are not ours to change.
    colleagues = list(
        Connection.objects.select_for_update()
        .filter(provider=provider, external_user_id=account.user_id, member__organization_id=member.organization_id)
        .exclude(member=member)
    )
    for old in colleagues:
        _revoke_later(provider, old, revoke=False)
    _delete_connections(replaced + colleagues)
    connection = kept or Connection(member=member, provider=provider, external_user_id=account.user_id)
    connection.external_account_id = account.account_id
    connection.email = account.email
    connection.can_host_meetings = account.can_host_meetings
    connection.scopes = tokens.scope
    connection.expires_at = timezone.now() + timedelta(seconds=tokens.expires_in)
    connection.status = Connection.Status.ACTIVE
    connection.last_error = ""
    connection.access_token = tokens.access_token
    connection.refresh_token = tokens.refresh_token
    connection.save()
    if kept and not connection.grants_calendars:
        # The new grant leaves the calendars out (unticked on the consent page): their busy time
        # could no longer be kept fresh, and stale busy time would block slots for nothing.
        from .calendars import sync

        for calendar in connection.calendars.filter(checks_busy=True):
            sync.stop_checking(calendar)
        connection.calendars.all().delete()
    return connection


@transaction.atomic
def disconnect(*, member: TeamMember, provider: str) -> bool:
    """Delete the stored tokens now, and with them the account's calendars and their busy time;
    stop the calendars' push channels and revoke the tokens at the provider in the background."""
    connection = Connection.objects.select_for_update().filter(member=member, provider=provider).first()
    if connection is None:
        return False
    _revoke_later(provider, connection)
    _delete_connections([connection])
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


def _revoke_later(provider: str, connection: Connection, *, revoke: bool = True) -> None:
    """Before its tokens go: stop the connection's push channels (else the provider keeps sending
    until they expire) and revoke the tokens, in the background. A provider that can't revoke
    (Microsoft) has only the channels to stop; without any, deleting our tokens is all there is
    and the card says the rest. `revoke` False: the account's grant must stay (connected to
    another member now)."""
    from .calendars.push import channel_as_dict, channel_of

    channels = [channel_as_dict(channel_of(calendar)) for calendar in connection.calendars.exclude(channel_id="")]
    revoke = revoke and registry.get(provider).can_revoke
    if not revoke and not channels:
        return
    pending = PendingRevocation(provider=provider, channels=channels, revoke=revoke)
    pending.access_token_encrypted = connection.access_token_encrypted
    pending.refresh_token_encrypted = connection.refresh_token_encrypted
    _queue_revocation(pending)


def _delete_connections(connections: list[Connection]) -> int:
    """Delete connections, and their calendars and busy time with them (CASCADE): the booking pages
    of the meeting types whose hosts lose busy time offer those times again at once."""
    members = set(
        Calendar.objects.filter(connection__in=connections, checks_busy=True).values_list("member_id", flat=True)
    )
    deleted = Connection.objects.filter(pk__in=[connection.pk for connection in connections]).delete()[1]
    hosts_changed(members)
    return deleted.get(Connection._meta.label, 0)


def _queue_revocation(pending: PendingRevocation) -> None:
    from .tasks import revoke_tokens

    pending.save()
    enqueue_after_commit(revoke_tokens, pending.pk)


@transaction.atomic
def forget_account(*, provider: str, external_user_id: str) -> int:
    """The provider told us the user removed the app: delete everything we hold of that account.
    Its grant is gone, so there is nothing to revoke; its push channels are stopped if the
    provider still lets us."""
    connections = list(
        Connection.objects.select_for_update().filter(provider=provider, external_user_id=external_user_id)
    )
    for connection in connections:
        _revoke_later(provider, connection, revoke=False)
    return _delete_connections(connections)


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
