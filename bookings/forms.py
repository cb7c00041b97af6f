import re
from datetime import UTC, date, datetime
from urllib.parse import urlsplit

from django import forms
from django.core.exceptions import NON_FIELD_ERRORS
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from members.timezones import canonical_name
from tsp.validators import single_line_name

# Any instant or month a client sends must lie in these years. Far wider than any booking window,
# yet far enough inside what `datetime` holds that a day or a zone's offset either side of a
# value can never overflow (9999-12-31T23:59:59-14:00 is past the year 9999 in UTC).
EARLIEST_YEAR, LATEST_YEAR = 2000, 2199
_MONTH = re.compile(r"([0-9]{4})-(0[1-9]|1[0-2])")


def parse_start(value: str) -> datetime | None:
    """An ISO 8601 instant with an offset ('2026-12-03T08:00:00Z'); None for anything else."""
    try:
        parsed = datetime.fromisoformat(value.strip())
        if parsed.tzinfo is None:
            return None
        parsed = parsed.astimezone(UTC)
    except (ValueError, AttributeError, OverflowError):
        return None
    if not EARLIEST_YEAR <= parsed.year <= LATEST_YEAR:
        return None
    return parsed


MONTH_NOT_OFFERED = _("No times are offered in that month. Please pick a month on the calendar.")


def parse_month(value: str) -> date:
    """'2026-12' as the first of that month; ValueError, with a message for the client, otherwise."""
    match = _MONTH.fullmatch(value)
    if match is None:
        raise ValueError(_("The month must look like 2026-12."))
    if not EARLIEST_YEAR <= int(match[1]) <= LATEST_YEAR:
        raise ValueError(MONTH_NOT_OFFERED)
    return date(int(match[1]), int(match[2]), 1)


class SlotField(forms.CharField):
    """A chosen start time: an ISO instant in, an aware UTC datetime out."""

    widget = forms.HiddenInput

    def to_python(self, value):
        value = super().to_python(value)
        if value in self.empty_values:
            return None
        parsed = parse_start(value) if len(value) <= 40 else None
        if parsed is None:
            raise forms.ValidationError(_("The chosen time is not valid. Please pick a time again."), code="invalid")
        return parsed


class TimeZoneField(forms.CharField):
    """The client's zone from the calendar: canonical, or an older name of one (stored canonical)."""

    widget = forms.HiddenInput

    def to_python(self, value):
        value = super().to_python(value)
        canonical = canonical_name(value)
        if value and canonical is None:
            raise forms.ValidationError(
                _("“%(name)s” is not a known time zone."), params={"name": value[:64]}, code="invalid_tz"
            )
        return canonical or value


class BookingForm(forms.Form):
    name = forms.CharField(
        label=_("Your name"),
        max_length=120,
        validators=[single_line_name],
        widget=forms.TextInput(attrs={"autocomplete": "name"}),
    )
    email = forms.EmailField(label=_("Email"), max_length=254, widget=forms.EmailInput(attrs={"autocomplete": "email"}))
    notes = forms.CharField(
        label=_("Anything to share before the meeting?"),
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 4}),
    )
    start = SlotField()
    time_zone = TimeZoneField(max_length=64)

    def full_clean(self):
        super().full_clean()
        # The time and zone are hidden fields: show their errors above the form, not as
        # "(Hidden field start) …".
        for name in ("start", "time_zone"):
            for error in self._errors.pop(name, []) if self.is_bound and self._errors else []:
                self._errors.setdefault(NON_FIELD_ERRORS, self.error_class(error_class="nonfield")).append(error)

    def clean_start(self):
        start = self.cleaned_data["start"]
        if start is not None and start <= timezone.now():
            raise forms.ValidationError(_("That time has already passed. Please pick another time."), code="past")
        return start


class RescheduleForm(forms.Form):
    start = SlotField()
    time_zone = TimeZoneField(max_length=64)


class CancelForm(forms.Form):
    reason = forms.CharField(
        label=_("Reason (optional)"), required=False, max_length=500, widget=forms.Textarea(attrs={"rows": 3})
    )


class VideoLinkForm(forms.Form):
    """A video link typed by a host or admin. It goes into emails and calendar invitations, so
    only an https address of a real host, with no user name or password in it."""

    join_url = forms.URLField(
        label=_("Video link"),
        max_length=500,
        assume_scheme="https",
        error_messages={"invalid": _("Enter a valid https:// link.")},
        widget=forms.URLInput(attrs={"placeholder": "https://", "autocomplete": "off", "inputmode": "url"}),
        help_text=_("The address the client and hosts open to join, e.g. https://zoom.us/j/…"),
    )
    passcode = forms.CharField(label=_("Passcode (optional)"), required=False, max_length=64)

    def clean_join_url(self):
        url = self.cleaned_data["join_url"]
        parts = urlsplit(url)
        if parts.scheme != "https":
            raise forms.ValidationError(_("Enter an https:// link."), code="scheme")
        if parts.username or parts.password:
            raise forms.ValidationError(_("The link must not contain a user name or password."), code="credentials")
        return url

    def clean_passcode(self):
        passcode = self.cleaned_data["passcode"].strip()
        if any(not character.isprintable() for character in passcode):
            raise forms.ValidationError(_("The passcode can only contain printable characters."), code="invalid")
        return passcode
