"""Creating, changing and deactivating team members. Views call these; they hold the rules."""

from datetime import time

from allauth.account.models import EmailAddress
from django.conf import settings
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import Organization, User
from bookings.cache import hosts_changed
from tsp.formatting import normalize_locale
from tsp.ratelimit import hit
from tsp.tasks import enqueue_after_commit

from .models import DateOverride, MemberInvitation, TeamMember, WorkingHours, hash_invitation_token

DEFAULT_WORKING_HOURS = [(weekday, time(9), time(17)) for weekday in range(5)]  # Mon–Fri 09:00–17:00


def _other_active_admins(member: TeamMember):
    return TeamMember.objects.filter(
        organization_id=member.organization_id, role=TeamMember.Role.ADMIN, is_active=True
    ).exclude(pk=member.pk)


class InvitationLimitReached(ValidationError):
    """Too many invitations this hour, to that address or from that admin."""


def _count_invitation(*, email: str, invited_by: TeamMember) -> None:
    """Invitations carry the organization's name, which its admin chooses, to any address: count
    each one per address and per admin, and refuse past the hourly limits (settings)."""
    if not hit("invitation-address", email, limit=settings.INVITATIONS_PER_ADDRESS_PER_HOUR, window_seconds=3600):
        raise InvitationLimitReached(
            _("%(email)s was sent several invitations in the last hour. Please try again later.") % {"email": email}
        )
    if not hit(
        "invitation-admin", str(invited_by.pk), limit=settings.INVITATIONS_PER_ADMIN_PER_HOUR, window_seconds=3600
    ):
        raise InvitationLimitReached(_("You have sent many invitations in the last hour. Please try again later."))


@transaction.atomic
def create_member(
    *,
    organization: Organization,
    email: str,
    display_name: str,
    role: str,
    time_zone: str,
    invited_by: TeamMember,
) -> TeamMember | None:
    """Create a login and a profile, then email the new member a link to choose a password.

    An address that already has an account elsewhere gets the same outcome for the admin (an
    invitation is on its way), so adding members can't be used to find out who has an account;
    its owner is told by email instead, and no member is made (a login belongs to one
    organization). Returns the new member, or None in that case.
    """
    email = User.objects.normalize_email(email).strip().lower()
    if TeamMember.objects.filter(organization=organization, user__email__iexact=email).exists():
        raise ValidationError({"email": _("%(email)s is already on your team.") % {"email": email}})
    _count_invitation(email=email, invited_by=invited_by)
    existing = User.objects.filter(email__iexact=email).first()
    if existing is not None:
        from .tasks import send_existing_account_notice

        enqueue_after_commit(send_existing_account_notice, existing.pk, organization.pk)
        return None
    user = User.objects.create_user(email=email, password=None)
    member = TeamMember.objects.create(
        organization=organization, user=user, display_name=display_name.strip(), role=role, time_zone=time_zone
    )
    add_default_working_hours(member)
    send_invitation(member)
    return member


def add_default_working_hours(member: TeamMember) -> None:
    WorkingHours.objects.bulk_create(
        WorkingHours(member=member, weekday=weekday, start=start, end=end)
        for weekday, start, end in DEFAULT_WORKING_HOURS
    )


def send_invitation(member: TeamMember) -> None:
    from .tasks import send_member_invitation

    enqueue_after_commit(send_member_invitation, member.pk)


def resend_invitation(*, member: TeamMember, invited_by: TeamMember) -> None:
    """A new set-password link for a member who hasn't chosen a password yet (the old one stops working)."""
    if not member.is_active or member.user.has_usable_password():
        raise ValidationError(_("%(name)s has already set a password.") % {"name": member.display_name})
    _count_invitation(email=member.user.email.lower(), invited_by=invited_by)
    send_invitation(member)


@transaction.atomic
def issue_invitation(member: TeamMember) -> str:
    """Replace any earlier invitation with a new one; returns the clear-text token for the email."""
    MemberInvitation.objects.filter(member=member, used_at__isnull=True, revoked_at__isnull=True).update(
        revoked_at=timezone.now()
    )
    _invitation, token = MemberInvitation.issue(member)
    return token


def find_usable_invitation(token: str) -> MemberInvitation | None:
    return (
        MemberInvitation.objects.usable()
        .select_related("member__user", "member__organization")
        .filter(token_hash=hash_invitation_token(token), member__is_active=True)
        .first()
    )


@transaction.atomic
def accept_invitation(*, token: str, password: str) -> TeamMember:
    """Set the member's first password. The link works once, before it expires."""
    invitation = (
        MemberInvitation.objects.usable()
        .select_for_update()
        .filter(token_hash=hash_invitation_token(token), member__is_active=True)
        .first()
    )
    if invitation is None:
        raise ValidationError(_("This invitation link has expired or was already used."))
    member = TeamMember.objects.select_related("user").get(pk=invitation.member_id)
    validate_password(password, user=member.user)
    member.user.set_password(password)
    member.user.is_active = True
    member.user.save(update_fields=["password", "is_active"])
    invitation.used_at = timezone.now()
    invitation.save(update_fields=["used_at"])
    # Opening the emailed link proves the address is theirs.
    EmailAddress.objects.update_or_create(
        user=member.user, email=member.user.email, defaults={"verified": True, "primary": True}
    )
    return member


@transaction.atomic
def update_member(*, member: TeamMember, display_name: str, role: str, time_zone: str) -> TeamMember:
    if member.is_admin and role != TeamMember.Role.ADMIN and not _other_active_admins(member).exists():
        raise ValidationError({"role": _("An organization needs at least one admin.")})
    member.display_name = display_name.strip()
    member.role = role
    member.time_zone = time_zone
    member.save(update_fields=["display_name", "role", "time_zone", "updated_at"])
    hosts_changed([member.pk])  # working hours are read in the member's zone
    return member


@transaction.atomic
def update_own_profile(
    *, member: TeamMember, display_name: str, time_zone: str, locale: str | None = None
) -> TeamMember:
    """`locale` is the browser's, when it tells one: the member's emails follow it."""
    member.display_name = display_name.strip()
    member.time_zone = time_zone
    member.locale = normalize_locale(locale) or member.locale
    member.save(update_fields=["display_name", "time_zone", "locale", "updated_at"])
    hosts_changed([member.pk])
    return member


def remember_locale(*, user, locale: str | None) -> None:
    """Keep the locale of the browser a person last used, for the emails they get (all their memberships)."""
    locale = normalize_locale(locale)
    if locale:
        TeamMember.objects.filter(user=user).exclude(locale=locale).update(locale=locale)


@transaction.atomic
def deactivate_member(*, member: TeamMember) -> None:
    """A deactivated member can't log in; a session they still hold ends on its next request."""
    if member.is_admin and not _other_active_admins(member).exists():
        raise ValidationError(_("The last admin of an organization can't be deactivated."))
    member.is_active = False
    member.save(update_fields=["is_active", "updated_at"])
    hosts_changed([member.pk])  # no longer a host anywhere
    MemberInvitation.objects.filter(member=member, used_at__isnull=True, revoked_at__isnull=True).update(
        revoked_at=timezone.now()
    )
    if not TeamMember.objects.filter(user_id=member.user_id, is_active=True).exists():
        User.objects.filter(pk=member.user_id).update(is_active=False)


@transaction.atomic
def reactivate_member(*, member: TeamMember) -> None:
    member.is_active = True
    member.save(update_fields=["is_active", "updated_at"])
    hosts_changed([member.pk])
    User.objects.filter(pk=member.user_id).update(is_active=True)


@transaction.atomic
def set_weekly_hours(*, member: TeamMember, weekly: dict[int, list[tuple[time, time]]]) -> None:
    WorkingHours.objects.filter(member=member).delete()
    WorkingHours.objects.bulk_create(
        WorkingHours(member=member, weekday=weekday, start=start, end=end)
        for weekday, intervals in sorted(weekly.items())
        for start, end in intervals
    )
    hosts_changed([member.pk])


@transaction.atomic
def set_date_override(*, member: TeamMember, date, intervals: list[tuple[time, time]]) -> None:
    """Replace that date's hours; no intervals means a day off."""
    DateOverride.objects.filter(member=member, date=date).delete()
    if not intervals:
        DateOverride.objects.create(member=member, date=date)
    else:
        DateOverride.objects.bulk_create(
            DateOverride(member=member, date=date, start=start, end=end) for start, end in intervals
        )
    hosts_changed([member.pk])


def remove_date_override(*, member: TeamMember, date) -> int:
    deleted, _ = DateOverride.objects.filter(member=member, date=date).delete()
    hosts_changed([member.pk])
    return deleted
