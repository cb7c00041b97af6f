from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from bookings.models import Booking
from members.models import TeamMember

from . import crypto, registry
from .registry import provider_choices


class Provider(models.TextChoices):
    """The built-in providers' keys, for code that names one (the registry is what lists them)."""

    ZOOM = "zoom", "Zoom"
    GOOGLE = "google", "Google Meet"
    MICROSOFT = "microsoft", "Microsoft Teams"


def meeting_provider_choices() -> list[tuple[str, str]]:
    return [*provider_choices(), (VideoMeeting.MANUAL, _("Link added by hand"))]


class EncryptedTokens(models.Model):
    """Access and refresh tokens, stored only encrypted (integrations/crypto.py)."""

    access_token_encrypted = models.TextField(blank=True)
    refresh_token_encrypted = models.TextField(blank=True)

    class Meta:
        abstract = True

    @property
    def access_token(self) -> str:
        return crypto.decrypt(self.access_token_encrypted) if self.access_token_encrypted else ""

    @access_token.setter
    def access_token(self, value: str) -> None:
        self.access_token_encrypted = crypto.encrypt(value) if value else ""

    @property
    def refresh_token(self) -> str:
        return crypto.decrypt(self.refresh_token_encrypted) if self.refresh_token_encrypted else ""

    @refresh_token.setter
    def refresh_token(self, value: str) -> None:
        self.refresh_token_encrypted = crypto.encrypt(value) if value else ""


class Connection(EncryptedTokens):
    """A member's connected video account. At most one per member and provider."""

    class Status(models.TextChoices):
        ACTIVE = "active", _("Connected")
        BROKEN = "broken", _("Needs reconnecting")

    member = models.ForeignKey(TeamMember, on_delete=models.CASCADE, related_name="connections")
    provider = models.CharField(max_length=16, choices=provider_choices)
    external_user_id = models.CharField(max_length=128)
    external_account_id = models.CharField(max_length=128, blank=True)
    email = models.EmailField(max_length=254, blank=True)
    scopes = models.CharField(max_length=500, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.ACTIVE)
    # False once the provider refused to let this account host meetings (a personal Microsoft
    # account and Teams): still connected, but the fallback chain passes it by.
    can_host_meetings = models.BooleanField(default=True)
    last_error = models.CharField(max_length=500, blank=True)
    connected_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["member", "provider"], name="one_connection_per_provider")]
        indexes = [models.Index(fields=["provider", "external_user_id"])]

    def __str__(self) -> str:
        return f"{self.get_provider_display()} · {self.email}"

    @property
    def is_active(self) -> bool:
        return self.status == self.Status.ACTIVE

    @property
    def can_host(self) -> bool:
        return self.is_active and self.can_host_meetings

    @property
    def provider_info(self):
        return registry.get(self.provider)


class PendingRevocation(EncryptedTokens):
    """Tokens of a disconnected account, kept (encrypted) only until the provider confirms the
    revocation. The connection itself is deleted at once; this row lets a background task retry
    when the provider is down."""

    provider = models.CharField(max_length=16, choices=provider_choices)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"revocation {self.pk} ({self.provider})"


class VideoMeeting(models.Model):
    """The video meeting of a booking, and the state of the work to create, move or delete it.

    `state` is how the work is claimed: a task moves it from PENDING to CREATING with a
    conditional UPDATE, and only the task whose UPDATE changed the row calls the provider.
    `next_attempt_at` is when work on the row is due (the first try, a retry, the end of a
    claim, the look-up of an unknown outcome); empty when nothing is left to do. `needs_sync`:
    the booking moved or was cancelled since the provider's meeting was last written.
    """

    class State(models.TextChoices):
        PENDING = "pending", _("Waiting")
        CREATING = "creating", _("Being created")
        READY = "ready", _("Ready")
        FAILED = "failed", _("Could not be created")
        UNKNOWN = "unknown", _("Outcome unknown")
        DELETED = "deleted", _("Deleted")

    # A link a host or admin typed in, with no provider account behind it: READY at once, nothing
    # to move or delete at a provider; `host` is then the member who added it.
    MANUAL = "manual"

    booking = models.OneToOneField(Booking, on_delete=models.CASCADE, related_name="video_meeting")
    provider = models.CharField(max_length=16, choices=meeting_provider_choices, blank=True)
    host = models.ForeignKey(TeamMember, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    # The provider's id as text: Zoom's are int64, Google's event ids and Graph's meeting ids strings.
    meeting_id = models.CharField(max_length=1024, null=True, blank=True)
    # [provider, member id] pairs that failed for good (refused, broken, could not host, out of
    # retries): the fallback chain goes on after them and never tries them again for this booking.
    passed_over = models.JSONField(default=list, blank=True)
    external_ref = models.CharField(max_length=255, blank=True)
    join_url = models.URLField(max_length=1000, blank=True)
    passcode = models.CharField(max_length=64, blank=True)
    state = models.CharField(max_length=10, choices=State.choices, default=State.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.CharField(max_length=500, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    needs_sync = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [
            models.Index(fields=["next_attempt_at"], name="video_due", condition=Q(next_attempt_at__isnull=False))
        ]

    def __str__(self) -> str:
        return f"{self.provider} meeting for booking {self.booking_id} ({self.state})"

    @property
    def is_ready(self) -> bool:
        return self.state == self.State.READY and bool(self.join_url)

    @property
    def is_manual(self) -> bool:
        return self.provider == self.MANUAL

    @property
    def provider_name(self) -> str:
        """What the call is called ("Google Meet"), for pages and emails."""
        if self.is_manual or not self.provider:
            return ""
        try:
            return registry.get(self.provider).meeting_name
        except LookupError:
            return self.provider

    @property
    def provider_label(self) -> str:
        """The provider that hosts the call, saying so when it is not the one asked for."""
        if self.wanted_provider_name:
            return _("%(used)s — %(wanted)s was not available") % {
                "used": self.provider_name,
                "wanted": self.wanted_provider_name,
            }
        return self.provider_name

    @property
    def wanted_provider_name(self) -> str:
        """The provider the meeting type asked for, when another one hosts the call instead
        ("Google Meet — Zoom was not available"); empty when it is the one asked for."""
        if self.is_manual or not self.provider:
            return ""
        wanted = registry.for_location(self.booking.meeting_type.location)
        if wanted is None or wanted.key == self.provider:
            return ""
        return wanted.meeting_name

    @property
    def is_settled(self) -> bool:
        """No creation under way or to come: emails can say whether there is a link."""
        return self.state not in (self.State.PENDING, self.State.CREATING, self.State.UNKNOWN)
