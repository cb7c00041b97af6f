import uuid
from datetime import timedelta

from django.core import signing
from django.core.exceptions import ObjectDoesNotExist
from django.db import models
from django.db.models import Q
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from accounts.models import Organization
from meetingtypes.models import MeetingType
from members.models import TeamMember
from tsp.formatting import LOCALE_MAX_LENGTH, validate_locale

_MANAGE_SALT = "bookings.manage-link"


class Booking(models.Model):
    """A client's booking. Rescheduling moves this same row: its calendar UID stays, SEQUENCE goes up."""

    class Status(models.TextChoices):
        CONFIRMED = "confirmed", _("Confirmed")
        CANCELLED = "cancelled", _("Cancelled")

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="bookings")
    meeting_type = models.ForeignKey(MeetingType, on_delete=models.PROTECT, related_name="bookings")
    hosts = models.ManyToManyField(TeamMember, through="BookingHost", related_name="bookings")
    uid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    sequence = models.PositiveIntegerField(default=0)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.CONFIRMED)
    start = models.DateTimeField(_("start"))
    end = models.DateTimeField(_("end"))
    client_name = models.CharField(_("name"), max_length=120)
    client_email = models.EmailField(_("email"), max_length=254)
    client_notes = models.TextField(_("notes"), blank=True, max_length=2000)
    client_time_zone = models.CharField(_("time zone"), max_length=64)
    # The client's browser locale when booking (or last rescheduling): their emails use it.
    client_locale = models.CharField(
        _("date and time format"), max_length=LOCALE_MAX_LENGTH, blank=True, validators=[validate_locale]
    )
    cancelled_at = models.DateTimeField(null=True, blank=True)
    cancel_reason = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["start", "id"]
        indexes = [
            models.Index(fields=["organization", "start"]),
            models.Index(fields=["meeting_type", "created_at"]),
        ]
        verbose_name = _("booking")
        verbose_name_plural = _("bookings")

    def __str__(self) -> str:
        return f"{self.meeting_type_id} {self.start:%Y-%m-%d %H:%M} {self.client_email}"

    @property
    def is_cancelled(self) -> bool:
        return self.status == self.Status.CANCELLED

    @property
    def video_meeting_or_none(self):
        """The booking's video meeting (integrations.VideoMeeting), or None before there is one."""
        try:
            return self.video_meeting
        except ObjectDoesNotExist:
            return None

    # The manage link is signed, not stored: unguessable without SECRET_KEY, and nothing in the
    # database lets someone cancel a client's booking.
    @property
    def manage_token(self) -> str:
        return signing.Signer(salt=_MANAGE_SALT).sign(str(self.uid)).split(":", 1)[1]

    @staticmethod
    def uid_from_token(uid: str, token: str) -> str | None:
        try:
            return signing.Signer(salt=_MANAGE_SALT).unsign(f"{uid}:{token}")
        except signing.BadSignature:
            return None

    def manage_url(self) -> str:
        return reverse("bookings:manage", args=[self.uid, self.manage_token])

    def cancel_url(self) -> str:
        return reverse("bookings:cancel", args=[self.uid, self.manage_token])

    def reschedule_url(self) -> str:
        return reverse("bookings:reschedule", args=[self.uid, self.manage_token])

    def hosts_in_order(self) -> list[TeamMember]:
        """The booking's hosts (a cancelled booking's former ones) in the meeting type's host order:
        the first is the invitation's organizer and the first asked for a video meeting.
        Uses the prefetched host_rows (with their members) when there are any."""
        members = [row.member for row in self.host_rows.all() if row.is_active or self.is_cancelled]
        if len(members) > 1:
            order = dict(self.meeting_type.host_links.values_list("member_id", "position"))
            members.sort(key=lambda member: (order.get(member.pk, 1_000), member.pk))
        return members


# No booking holds its host longer than this (the longest meeting, 12 hours, plus the longest
# buffers, 4 hours each side, is 20 hours), and a check constraint makes the database hold
# to it: so the busy time overlapping a month is found by an index range that starts this
# long before the month, not at the first booking the host ever had.
LONGEST_OCCUPIED = timedelta(days=2)


class BookingHost(models.Model):
    """A host's time taken by a booking, buffers included.

    On PostgreSQL an exclusion constraint (migration 0002) forbids two active rows of the same
    member whose occupied ranges overlap: the database itself makes double booking impossible,
    across meeting types and concurrent requests.
    """

    booking = models.ForeignKey(Booking, on_delete=models.CASCADE, related_name="host_rows")
    member = models.ForeignKey(TeamMember, on_delete=models.CASCADE, related_name="booked_rows")
    occupied_start = models.DateTimeField()
    occupied_end = models.DateTimeField()
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["booking", "member"], name="host_once_per_booking"),
            models.CheckConstraint(
                condition=models.Q(occupied_end__lte=models.F("occupied_start") + LONGEST_OCCUPIED),
                name="bookinghost_occupied_at_most_two_days",
            ),
        ]
        # The booking pages' busy read: active rows of some hosts in a time range, answered from
        # the index alone (an index-only scan), in start order per host.
        indexes = [
            models.Index(
                fields=["member", "occupied_start"],
                include=["occupied_end"],
                condition=models.Q(is_active=True),
                name="bookinghost_member_busy",
            )
        ]

    def __str__(self) -> str:
        return f"{self.member_id} {self.occupied_start:%Y-%m-%d %H:%M}"


class BusyDay(models.Model):
    """A member's busy time on one UTC day, as the booking pages read it: every active booking
    (buffers included) and every calendar meeting that overlaps the day, overlapping and touching
    ones merged, their starts and their ends as two columns of timestamptz_send values run
    together, in start order. (A merged span blocks exactly the starts its parts block.)

    Kept by the database itself: triggers on the booking hosts' and the calendars' busy rows
    (migration 0009, PostgreSQL only) work out again every day a statement touched, in the
    statement's own transaction, so it is never behind the rows it sums up. A month page then
    reads about 35 rows per host instead of every interval: at 100,000 bookings a month, the read
    is a few milliseconds instead of tens. An interval longer than a day is on every day it
    overlaps, so a read of several days can hold it more than once (which blocks nothing more).
    """

    member = models.ForeignKey(TeamMember, on_delete=models.CASCADE, related_name="+")
    day = models.DateField()
    starts = models.BinaryField(default=b"")
    ends = models.BinaryField(default=b"")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["member", "day"], name="busy_day_once_per_member")]

    def __str__(self) -> str:
        return f"busy day {self.day} (member {self.member_id})"


class BookingChange(models.TextChoices):
    """What happened to a booking: the event its follow-up (video meeting, emails) is about."""

    CREATED = "created", _("Booked")
    RESCHEDULED = "rescheduled", _("Moved to a new time")
    CANCELLED = "cancelled", _("Cancelled")
    LINK_CHANGED = "link_changed", _("New video link")

    @property
    def email_kind(self) -> "EmailDelivery.Kind":
        """The email the client and the hosts get about it."""
        return EmailDelivery.Kind(self.value)


class EmailDelivery(models.Model):
    """One email to one recipient about one event of a booking: the record that makes it sent once.

    An event is (kind, booking sequence): the confirmation of sequence 0, the update of sequence 2,
    the reminder for the time of sequence 2… The unique constraint stops a second row; the state
    is claimed (PENDING → SENDING) with a conditional UPDATE before the SMTP call, so a retried or
    duplicated task finds the claim and sends nothing.

    Rows are written for every recipient when the change is recorded, in the booking's own
    transaction, so no crash can lose one. `next_attempt_at` is when the row is due: the first
    try, the retry after a temporary failure, or the end of a claim (a worker that died while
    sending); empty once the row is settled. The periodic sweep runs every row that is due.
    """

    class Kind(models.TextChoices):
        # The values of the kinds that announce a change are those of BookingChange.
        CONFIRMATION = "created", _("Confirmation")
        UPDATE = "rescheduled", _("New time")
        CANCELLATION = "cancelled", _("Cancellation")
        REMINDER = "reminder", _("Reminder")
        ACTION_NEEDED = "action_needed", _("Action needed")
        LINK_CHANGED = "link_changed", _("New video link")

    class State(models.TextChoices):
        PENDING = "pending", _("Waiting")
        SENDING = "sending", _("Sending")
        SENT = "sent", _("Sent")
        FAILED = "failed", _("Failed")
        # A later change of the booking sends this recipient a newer email in its place.
        SKIPPED = "skipped", _("Replaced by a later email")

    booking = models.ForeignKey(Booking, on_delete=models.CASCADE, related_name="email_deliveries")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    sequence = models.PositiveIntegerField()
    recipient = models.EmailField(max_length=254)
    # A host's email (empty for the client's): their name, zone and locale are read when it is sent.
    member = models.ForeignKey(TeamMember, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    # What the email says beyond the booking itself: the time before a move, and whether the
    # booking was handed to this host by it.
    previous_start = models.DateTimeField(null=True, blank=True)
    newly_assigned = models.BooleanField(default=False)
    state = models.CharField(max_length=10, choices=State.choices, default=State.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.CharField(max_length=500, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["booking", "kind", "sequence", "recipient"], name="one_email_per_event")
        ]
        indexes = [
            models.Index(fields=["next_attempt_at"], name="email_due", condition=Q(next_attempt_at__isnull=False))
        ]

    def __str__(self) -> str:
        return f"{self.kind} #{self.sequence} to {self.recipient} ({self.state})"
