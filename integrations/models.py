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

    @property
    def grants_calendars(self) -> bool:
        """Whether the member allowed calendar access on this account (older grants lack it)."""
        provider = self.provider_info
        return provider.has_calendars and provider.grants_calendars(self.scopes)


class PendingRevocation(EncryptedTokens):
    """Tokens of a disconnected account, kept (encrypted) only until the provider confirms the
    revocation. The connection itself is deleted at once; this row lets a background task retry
    when the provider is down.

    The push channels of the account's calendars are stopped with these tokens first (a provider
    that can't revoke, Microsoft, keeps the row only for that). `revoke` is False when the same
    account is still connected (to another member): its grant must stay."""

    provider = models.CharField(max_length=16, choices=provider_choices)
    # Push channels still to stop: integrations.calendars.push.channel_as_dict of each.
    channels = models.JSONField(default=list, blank=True)
    revoke = models.BooleanField(default=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"revocation {self.pk} ({self.provider})"


class ProviderStep(models.Model):
    """The work state that every claimed step at a provider shares (a video meeting, a booking's
    calendar event): claimed with a conditional UPDATE before each call, due at `next_attempt_at`,
    `needs_sync` when the booking changed since the provider's copy was last written."""

    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.CharField(max_length=500, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    needs_sync = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True


class VideoMeeting(ProviderStep):
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


class Calendar(models.Model):
    """One calendar of a member's connected Google or Microsoft account.

    The member chooses which calendars count as busy (`checks_busy`) and the one that receives
    their bookings (`receives_bookings`, at most one per member across their accounts). The sync
    state says how fresh the cached busy time (BusyInterval) is and how it is kept fresh: a push
    channel when the provider can reach this site, else polling (`next_sync_at`).
    """

    connection = models.ForeignKey(Connection, on_delete=models.CASCADE, related_name="calendars")
    # The connection's member, kept here too: availability reads busy time by member.
    member = models.ForeignKey(TeamMember, on_delete=models.CASCADE, related_name="calendars")
    external_id = models.CharField(max_length=1024)
    name = models.CharField(max_length=255)
    time_zone = models.CharField(max_length=64, blank=True)
    is_primary = models.BooleanField(default=False)
    can_write = models.BooleanField(default=True)
    checks_busy = models.BooleanField(default=False)
    receives_bookings = models.BooleanField(default=False)
    # Google's nextSyncToken or Graph's deltaLink, encrypted like tokens (a cursor is no credential,
    # but it names the account's data).
    sync_cursor_encrypted = models.TextField(blank=True)
    # The window the cached busy time covers: outside it nothing is known.
    busy_known_from = models.DateTimeField(null=True, blank=True)
    busy_known_until = models.DateTimeField(null=True, blank=True)
    synced_at = models.DateTimeField(null=True, blank=True)
    next_sync_at = models.DateTimeField(null=True, blank=True)
    sync_claimed_at = models.DateTimeField(null=True, blank=True)
    sync_again = models.BooleanField(default=False)  # a change was announced during a sync: run once more
    sync_error = models.CharField(max_length=500, blank=True)
    sync_failures = models.PositiveSmallIntegerField(default=0)
    # The push channel (Google) or subscription (Microsoft); empty when polled.
    channel_id = models.CharField(max_length=255, blank=True)
    channel_resource_id = models.CharField(max_length=255, blank=True)
    channel_expires_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-is_primary", "name", "id"]
        constraints = [
            models.UniqueConstraint(fields=["connection", "external_id"], name="calendar_once_per_connection"),
            models.UniqueConstraint(
                fields=["member"], condition=Q(receives_bookings=True), name="one_booking_calendar_per_member"
            ),
        ]
        indexes = [
            models.Index(fields=["next_sync_at"], name="calendar_sync_due", condition=Q(next_sync_at__isnull=False)),
            models.Index(fields=["channel_id"], name="calendar_channel"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.connection.provider})"

    @property
    def sync_cursor(self) -> str:
        return crypto.decrypt(self.sync_cursor_encrypted) if self.sync_cursor_encrypted else ""

    @sync_cursor.setter
    def sync_cursor(self, value: str) -> None:
        self.sync_cursor_encrypted = crypto.encrypt(value) if value else ""


class BusyInterval(models.Model):
    """A busy event of a member's calendar, as the provider last told us: what the availability
    engine reads next to bookings. Never a title or any other detail, only the time."""

    calendar = models.ForeignKey(Calendar, on_delete=models.CASCADE, related_name="busy_intervals")
    member = models.ForeignKey(TeamMember, on_delete=models.CASCADE, related_name="+")
    event_id = models.CharField(max_length=1024)
    start = models.DateTimeField()
    end = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["calendar", "event_id"], name="busy_event_once_per_calendar")]
        # The booking pages' busy read, answered from the index alone (an index-only scan).
        indexes = [models.Index(fields=["member", "start"], include=["end"], name="busy_member_span")]

    def __str__(self) -> str:
        return f"busy {self.start:%Y-%m-%d %H:%M}–{self.end:%H:%M} (member {self.member_id})"


class BookingCalendarEvent(ProviderStep):
    """A booking written as an event on one host's chosen calendar, and the state of that work:
    the same claim-before-call steps as VideoMeeting (PENDING → CREATING by a conditional UPDATE;
    only the worker whose UPDATE changed the row calls the provider)."""

    class State(models.TextChoices):
        PENDING = "pending", _("Waiting")
        CREATING = "creating", _("Being created")
        READY = "ready", _("In the calendar")
        FAILED = "failed", _("Could not be written")
        UNKNOWN = "unknown", _("Outcome unknown")
        DELETED = "deleted", _("Deleted")

    booking = models.ForeignKey(Booking, on_delete=models.CASCADE, related_name="calendar_events")
    member = models.ForeignKey(TeamMember, on_delete=models.CASCADE, related_name="+")
    calendar = models.ForeignKey(Calendar, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    provider = models.CharField(max_length=16, choices=provider_choices, blank=True)
    calendar_external_id = models.CharField(max_length=1024, blank=True)
    event_id = models.CharField(max_length=1024, null=True, blank=True)
    # The Google Meet event of the booking is this event: the video step writes, moves and deletes it.
    shares_video_event = models.BooleanField(default=False)
    state = models.CharField(max_length=10, choices=State.choices, default=State.PENDING)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["booking", "member"], name="calendar_event_once_per_host")]
        indexes = [
            models.Index(
                fields=["next_attempt_at"], name="calendar_event_due", condition=Q(next_attempt_at__isnull=False)
            )
        ]

    def __str__(self) -> str:
        return f"calendar event of booking {self.booking_id} for member {self.member_id} ({self.state})"
