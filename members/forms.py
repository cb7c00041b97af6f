import re
from datetime import time

from django import forms
from django.contrib.auth.password_validation import password_validators_help_text_html, validate_password
from django.utils.translation import gettext_lazy as _

from .models import TeamMember, WorkingHours
from .timezones import time_zone_choices


class ProfileForm(forms.Form):
    """What every member may change about themselves."""

    display_name = forms.CharField(label=_("Name"), max_length=120)
    time_zone = forms.ChoiceField(label=_("Time zone"), choices=time_zone_choices, initial="UTC")

    def clean_display_name(self):
        value = self.cleaned_data["display_name"].strip()
        if not value:
            raise forms.ValidationError(_("Please enter a name."))
        return value


class MemberForm(ProfileForm):
    """What an admin may change about a member."""

    role = forms.ChoiceField(label=_("Role"), choices=TeamMember.Role.choices, initial=TeamMember.Role.MEMBER)
    field_order = ["display_name", "role", "time_zone"]


class NewMemberForm(MemberForm):
    email = forms.EmailField(
        label=_("Email"), max_length=254, help_text=_("They log in with this address; the invitation goes there.")
    )
    field_order = ["display_name", "email", "role", "time_zone"]


class SetPasswordForm(forms.Form):
    password1 = forms.CharField(
        label=_("Password"),
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text=password_validators_help_text_html(),
    )
    password2 = forms.CharField(
        label=_("Password (again)"), widget=forms.PasswordInput(attrs={"autocomplete": "new-password"})
    )

    def __init__(self, *args, user=None, **kwargs):
        self.user = user
        super().__init__(*args, **kwargs)

    def clean(self):
        cleaned = super().clean()
        first, second = cleaned.get("password1"), cleaned.get("password2")
        if first and second and first != second:
            self.add_error("password2", _("The two passwords don't match."))
        elif first:
            try:
                validate_password(first, user=self.user)
            except forms.ValidationError as error:
                self.add_error("password1", error)
        return cleaned


def parse_intervals(text: str) -> list[tuple[time, time]]:
    """'09:00-12:00, 13:00-17:00' → [(09:00, 12:00), (13:00, 17:00)]. '24:00' (or '00:00' as an end) is midnight."""
    intervals: list[tuple[time, time]] = []
    for part in filter(None, (p.strip() for p in text.replace("–", "-").split(","))):
        match = _INTERVAL.fullmatch(part)
        if not match:
            raise forms.ValidationError(
                _("“%(part)s” is not a time range like 09:00-17:00."), params={"part": part}, code="format"
            )
        start, end = _parse_clock(match["start"], is_end=False), _parse_clock(match["end"], is_end=True)
        if start is None or end is None:
            raise forms.ValidationError(_("“%(part)s” has a time that doesn't exist."), params={"part": part})
        if end != time(0) and end <= start:
            raise forms.ValidationError(_("In “%(part)s” the end must be after the start."), params={"part": part})
        intervals.append((start, end))
    intervals.sort()
    for (_s1, e1), (s2, _e2) in zip(intervals, intervals[1:], strict=False):
        if e1 == time(0) or e1 > s2:
            raise forms.ValidationError(_("Time ranges on the same day must not overlap."), code="overlap")
    return intervals


_INTERVAL = re.compile(r"(?P<start>\d{1,2}(:\d{2})?)\s*-\s*(?P<end>\d{1,2}(:\d{2})?)")


def _parse_clock(value: str, *, is_end: bool) -> time | None:
    hours, _sep, minutes = value.partition(":")
    h, m = int(hours), int(minutes or 0)
    if is_end and (h, m) == (24, 0):
        return time(0)
    if not (0 <= h <= 23 and 0 <= m <= 59):
        return None
    return time(h, m)


def format_intervals(intervals) -> str:
    return ", ".join(
        f"{start:%H:%M}-{'24:00' if end == time(0) else end.strftime('%H:%M')}" for start, end in intervals
    )


class WeeklyHoursForm(forms.Form):
    """One text field per weekday, e.g. '09:00-12:00, 13:00-17:00'; empty means not available."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for weekday, label in WorkingHours.Weekday.choices:
            self.fields[f"day_{weekday}"] = forms.CharField(
                label=label,
                required=False,
                max_length=200,
                widget=forms.TextInput(attrs={"placeholder": _("Not available"), "inputmode": "text"}),
            )

    def clean(self):
        cleaned = super().clean()
        self.weekly: dict[int, list[tuple[time, time]]] = {}
        for weekday, _label in WorkingHours.Weekday.choices:
            try:
                self.weekly[weekday] = parse_intervals(cleaned.get(f"day_{weekday}") or "")
            except forms.ValidationError as error:
                self.add_error(f"day_{weekday}", error)
        return cleaned


class DateOverrideForm(forms.Form):
    date = forms.DateField(label=_("Date"), widget=forms.DateInput(attrs={"type": "date"}))
    hours = forms.CharField(
        label=_("Hours on that date"),
        required=False,
        max_length=200,
        help_text=_("For example 10:00-14:00. Leave empty for a day off."),
    )

    def clean_hours(self):
        return parse_intervals(self.cleaned_data.get("hours") or "")
