from datetime import timedelta

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

from accounts.models import Organization
from members.models import TeamMember


class MeetingType(models.Model):
    """Something clients can book: its length, where it happens, who hosts it and the booking rules."""

    class Location(models.TextChoices):
        ZOOM = "zoom", _("Zoom")
        GOOGLE_MEET = "google_meet", _("Google Meet")
        MICROSOFT_TEAMS = "microsoft_teams", _("Microsoft Teams")
        PHONE = "phone", _("Phone call")
        IN_PERSON = "in_person", _("In person")
        CUSTOM_LINK = "custom_link", _("Custom link")

    class Assignment(models.TextChoices):
        ROUND_ROBIN = "round_robin", _("Round-robin: one available host")
        COLLECTIVE = "collective", _("Collective: all hosts together")
        ONE_PERSON = "one_person", _("One specific person")

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="meeting_types")
    name = models.CharField(_("name"), max_length=120)
    slug = models.SlugField(_("URL name"), max_length=60)
    description = models.TextField(_("description"), blank=True, max_length=2000)
    duration_minutes = models.PositiveSmallIntegerField(
        _("duration (minutes)"), default=30, validators=[MinValueValidator(5), MaxValueValidator(720)]
    )
    location = models.CharField(_("location"), max_length=20, choices=Location.choices, default=Location.ZOOM)
    location_detail = models.CharField(
        _("location details"),
        max_length=500,
        blank=True,
        help_text=_("The phone number, address or link, for phone, in-person and custom-link meetings."),
    )
    assignment = models.CharField(
        _("assignment"), max_length=20, choices=Assignment.choices, default=Assignment.ROUND_ROBIN
    )
    hosts = models.ManyToManyField(TeamMember, through="MeetingTypeHost", related_name="meeting_types")
    buffer_before_minutes = models.PositiveSmallIntegerField(
        _("buffer before (minutes)"), default=0, validators=[MaxValueValidator(240)]
    )
    buffer_after_minutes = models.PositiveSmallIntegerField(
        _("buffer after (minutes)"), default=0, validators=[MaxValueValidator(240)]
    )
    minimum_notice_minutes = models.PositiveIntegerField(
        _("minimum notice (minutes)"), default=120, validators=[MaxValueValidator(60 * 24 * 90)]
    )
    booking_window_days = models.PositiveSmallIntegerField(
        _("booking window (days ahead)"), default=60, validators=[MinValueValidator(1), MaxValueValidator(365)]
    )
    slot_interval_minutes = models.PositiveSmallIntegerField(
        _("slot interval (minutes)"),
        null=True,
        blank=True,
        validators=[MinValueValidator(5), MaxValueValidator(720)],
        help_text=_("How often start times are offered. Empty: the meeting's duration."),
    )
    daily_limit_per_host = models.PositiveSmallIntegerField(
        _("daily limit per host"),
        null=True,
        blank=True,
        validators=[MinValueValidator(1)],
        help_text=_("Most bookings of this type one host takes in a day. Empty: no limit."),
    )
    reminder_minutes_before = models.PositiveIntegerField(
        _("reminder (minutes before)"),
        null=True,
        blank=True,
        validators=[MinValueValidator(5), MaxValueValidator(60 * 24 * 14)],
        help_text=_("Email the client and hosts this long before the meeting, e.g. 1440 for 24 hours. Empty: none."),
    )
    show_branding = models.BooleanField(
        _("Show our logo and colour on the booking page"),
        default=False,
        help_text=_("The logo and accent colour set under Organization."),
    )
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "id"]
        constraints = [models.UniqueConstraint(fields=["organization", "slug"], name="meeting_type_slug_per_org")]
        verbose_name = _("meeting type")
        verbose_name_plural = _("meeting types")

    def __str__(self) -> str:
        return self.name

    @property
    def duration(self) -> timedelta:
        return timedelta(minutes=self.duration_minutes)

    @property
    def is_video(self) -> bool:
        return self.location in {self.Location.ZOOM, self.Location.GOOGLE_MEET, self.Location.MICROSOFT_TEAMS}


class MeetingTypeHost(models.Model):
    """A host of a meeting type, in the admin's chosen order (used for tie-breaks and collective video)."""

    meeting_type = models.ForeignKey(MeetingType, on_delete=models.CASCADE, related_name="host_links")
    member = models.ForeignKey(TeamMember, on_delete=models.CASCADE, related_name="host_links")
    position = models.PositiveSmallIntegerField(default=0)
    # When this host's latest still-confirmed booking of this type was made (its created_at);
    # empty when there is none. Round-robin reads it instead of every booking the type ever had.
    # Derived from the bookings and kept in step by the booking services (bookings.last_booked).
    last_booked_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["position", "id"]
        constraints = [models.UniqueConstraint(fields=["meeting_type", "member"], name="host_once_per_meeting_type")]

    def __str__(self) -> str:
        return f"{self.member_id} hosts {self.meeting_type_id}"
