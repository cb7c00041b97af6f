from datetime import UTC, datetime

from django import forms
from django.core.exceptions import NON_FIELD_ERRORS
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from members.timezones import canonical_name


def parse_start(value: str) -> datetime | None:
    """An ISO 8601 instant with an offset ('2026-12-03T08:00:00Z'); None for anything else."""
    try:
        parsed = datetime.fromisoformat(value.strip())
    except (ValueError, AttributeError):
        return None
    if parsed.tzinfo is None:
        return None
    return parsed.astimezone(UTC)


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
    name = forms.CharField(label=_("Your name"), max_length=120, widget=forms.TextInput(attrs={"autocomplete": "name"}))
    email = forms.EmailField(label=_("Email"), max_length=254, widget=forms.EmailInput(attrs={"autocomplete": "email"}))
    notes = forms.CharField(
        label=_("Anything to share before the meeting?"),
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 4}),
    )
    start = SlotField()
    time_zone = TimeZoneField(max_length=64)

    def clean_name(self):
        value = self.cleaned_data["name"].strip()
        if not value:
            raise forms.ValidationError(_("Please enter your name."))
        return value

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
