import hashlib
import secrets
from datetime import timedelta

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts.models import Organization
from tsp.formatting import LOCALE_MAX_LENGTH, validate_locale

from .timezones import validate_time_zone


class TeamMember(models.Model):
    """A person's place in one organization: their name, role and time zone there."""

    class Role(models.TextChoices):
        ADMIN = "admin", _("Admin")
        MEMBER = "member", _("Member")

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="members")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    display_name = models.CharField(_("name"), max_length=120)
    role = models.CharField(_("role"), max_length=10, choices=Role.choices, default=Role.MEMBER)
    time_zone = models.CharField(_("time zone"), max_length=64, default="UTC", validators=[validate_time_zone])
    # The browser's locale (BCP 47, e.g. "en-GB"), kept from sign-up, logins and profile saves so
    # emails show dates and times the way this person's browser does. Empty: not known yet.
    locale = models.CharField(
        _("date and time format"), max_length=LOCALE_MAX_LENGTH, blank=True, validators=[validate_locale]
    )
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["display_name", "id"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "user"], name="one_membership_per_user_and_org"),
        ]
        verbose_name = _("team member")
        verbose_name_plural = _("team members")

    def __str__(self) -> str:
        return self.display_name

    @property
    def email(self) -> str:
        return self.user.email

    @property
    def is_admin(self) -> bool:
        return self.role == self.Role.ADMIN

    def connection_for(self, provider: str):
        """The member's connection to `provider`, from the page's prefetch when it made one."""
        if hasattr(self, "connection_list"):
            return next((connection for connection in self.connection_list if connection.provider == provider), None)
        return self.connections.filter(provider=provider).first()

    @property
    def video_accounts(self) -> list:
        """[(provider, connection or None)] for every provider members can connect here, in chain order."""
        from integrations import registry

        return [(provider, self.connection_for(provider.key)) for provider in registry.offered()]


def hash_invitation_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class MemberInvitationQuerySet(models.QuerySet):
    def usable(self):
        return self.filter(used_at__isnull=True, revoked_at__isnull=True, expires_at__gt=timezone.now())


class MemberInvitation(models.Model):
    """A single-use, expiring link that lets a new member choose a password.

    Only a hash of the token is stored: a leaked database dump does not let anyone in.
    """

    member = models.ForeignKey(TeamMember, on_delete=models.CASCADE, related_name="invitations")
    token_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = MemberInvitationQuerySet.as_manager()

    def __str__(self) -> str:
        return f"Invitation for {self.member_id}"

    @classmethod
    def issue(cls, member: TeamMember) -> tuple["MemberInvitation", str]:
        """Create an invitation and return it with its clear-text token (never stored)."""
        token = secrets.token_urlsafe(32)
        invitation = cls.objects.create(
            member=member,
            token_hash=hash_invitation_token(token),
            expires_at=timezone.now() + timedelta(hours=settings.MEMBER_INVITATION_TTL_HOURS),
        )
        return invitation, token


class WorkingHours(models.Model):
    """One interval of a member's weekly hours, wall-clock in the member's own time zone."""

    class Weekday(models.IntegerChoices):
        MONDAY = 0, _("Monday")
        TUESDAY = 1, _("Tuesday")
        WEDNESDAY = 2, _("Wednesday")
        THURSDAY = 3, _("Thursday")
        FRIDAY = 4, _("Friday")
        SATURDAY = 5, _("Saturday")
        SUNDAY = 6, _("Sunday")

    member = models.ForeignKey(TeamMember, on_delete=models.CASCADE, related_name="working_hours")
    weekday = models.PositiveSmallIntegerField(_("weekday"), choices=Weekday.choices)
    start = models.TimeField(_("from"))
    end = models.TimeField(_("until"), help_text=_("00:00 means midnight at the end of the day."))

    class Meta:
        ordering = ["weekday", "start"]
        verbose_name = _("working hours")
        verbose_name_plural = _("working hours")

    def __str__(self) -> str:
        return f"{self.get_weekday_display()} {self.start:%H:%M}–{self.end:%H:%M}"


class DateOverride(models.Model):
    """Different hours on one date. A row without times marks the whole date as a day off."""

    member = models.ForeignKey(TeamMember, on_delete=models.CASCADE, related_name="date_overrides")
    date = models.DateField(_("date"))
    start = models.TimeField(_("from"), null=True, blank=True)
    end = models.TimeField(_("until"), null=True, blank=True)

    class Meta:
        ordering = ["date", "start"]
        indexes = [models.Index(fields=["member", "date"])]
        verbose_name = _("date override")
        verbose_name_plural = _("date overrides")

    def __str__(self) -> str:
        return f"{self.date} {self.start or ''}–{self.end or ''}"

    @property
    def is_day_off(self) -> bool:
        return self.start is None
