import datetime
import re
from dataclasses import dataclass
from datetime import time

from django import forms
from django.contrib.auth.password_validation import password_validators_help_text_html, validate_password
from django.utils.translation import gettext_lazy as _

from tsp.validators import single_line_name

from .models import TeamMember, WorkingHours
from .timezones import TimeZoneField


class ProfileForm(forms.Form):
    """What every member may change about themselves."""

    display_name = forms.CharField(label=_("Name"), max_length=120, validators=[single_line_name])
    time_zone = TimeZoneField(label=_("Time zone"), browser_zone="suggest")


class MemberForm(ProfileForm):
    """What an admin may change about a member."""

    role = forms.ChoiceField(label=_("Role"), choices=TeamMember.Role.choices, initial=TeamMember.Role.MEMBER)
    time_zone = TimeZoneField(label=_("Time zone"))  # the member's zone, not the admin's browser's
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


MIDNIGHT = time(0)
MAX_INTERVALS_PER_DAY = 8
# More raw values than this can only come from a tampered POST: refuse without parsing them.
_MAX_RAW_VALUES = 50
_CLOCK = re.compile(r"(?P<h>\d{1,2}):(?P<m>\d{2})(?::00(?:\.0{1,3})?)?")


def clock(value: time, *, is_end: bool = False) -> str:
    """09:00; an end at midnight reads 24:00, which is what the member means by it."""
    return "24:00" if is_end and value == MIDNIGHT else f"{value:%H:%M}"


def format_intervals(intervals) -> str:
    return ", ".join(f"{clock(start)}–{clock(end, is_end=True)}" for start, end in intervals)


def _parse_clock(value: str, *, is_end: bool) -> time | None:
    """'09:00' (what <input type=time> sends, possibly with ':00' seconds) → time; '24:00' as an end → midnight."""
    match = _CLOCK.fullmatch(value.strip())
    if not match:
        return None
    h, m = int(match["h"]), int(match["m"])
    if is_end and (h, m) == (24, 0):
        return MIDNIGHT
    if not (0 <= h <= 23 and 0 <= m <= 59):
        return None
    return time(h, m)


def _getlist(data, key: str) -> list[str]:
    if hasattr(data, "getlist"):
        return [str(value) for value in data.getlist(key)]
    value = data.get(key)  # a plain dict, e.g. a form built in a shell
    if value is None:
        return []
    return [str(v) for v in value] if isinstance(value, list | tuple) else [str(value)]


@dataclass(frozen=True)
class RawDay:
    """One day's intervals exactly as posted. `on` is False for "not available" / "day off", None if unreadable."""

    on: bool | None
    starts: list[str]
    ends: list[str]


class IntervalsInput(forms.Widget):
    """Reads `<name>_start` and `<name>_end` (one value per interval, paired by position) and a switch.

    The markup is written out in templates/members/_intervals.html, so this widget only reads.
    """

    def value_from_datadict(self, data, files, name):
        return RawDay(self.is_on(data, name), _getlist(data, f"{name}_start"), _getlist(data, f"{name}_end"))

    def value_omitted_from_data(self, data, files, name):
        return False

    def is_on(self, data, name) -> bool | None:
        raise NotImplementedError


class AvailableDayInput(IntervalsInput):
    """Switch: the `<name>_available` checkbox; unticked means not available that day, whatever the times say."""

    def is_on(self, data, name):
        return str(data.get(f"{name}_available", "")).strip().lower() not in ("", "0", "false", "off")


class OverrideHoursInput(IntervalsInput):
    """Switch: the `<name>_kind` radio, "off" (a day off) or "hours" (the intervals)."""

    def is_on(self, data, name):
        return {"off": False, "hours": True}.get(data.get(f"{name}_kind", ""))


class IntervalsField(forms.Field):
    """A day's working intervals: a sorted list of (start, end), end 00:00 meaning midnight at the end of the day.

    Cleans to None when the switch is off (the times are then ignored), else to a non-empty list.
    Every problem of the day is reported at once, each naming the interval it is about.
    """

    widget = AvailableDayInput
    empty_message = _("Add at least one interval, or untick “Available”.")

    def __init__(self, *, empty_message=None, **kwargs):
        kwargs.setdefault("required", False)
        super().__init__(**kwargs)
        if empty_message is not None:
            self.empty_message = empty_message

    def clean(self, value):
        if not isinstance(value, RawDay):  # initial data, already clean
            return value
        if value.on is None:
            raise forms.ValidationError(_("Choose “Day off” or “Other hours”."), code="switch")
        if not value.on:
            return None
        if len(value.starts) != len(value.ends) or len(value.starts) > _MAX_RAW_VALUES:
            raise forms.ValidationError(_("These times could not be read. Please enter them again."), code="tampered")
        # Blank pairs (the one the page offers for a new interval) are skipped and not counted, so
        # "interval 2" is the second row the member sees when the page comes back with the errors.
        filled = [(s, e) for s, e in zip(value.starts, value.ends, strict=True) if s.strip() or e.strip()]
        intervals, errors = [], []
        for number, (start_text, end_text) in enumerate(filled, start=1):
            interval, error = self._interval(number, start_text, end_text)
            if error:
                errors.append(error)
            else:
                intervals.append(interval)
        if errors:
            raise forms.ValidationError(errors)
        if not intervals:
            raise forms.ValidationError(self.empty_message, code="empty")
        if len(intervals) > MAX_INTERVALS_PER_DAY:
            raise forms.ValidationError(
                _("At most %(max)d intervals a day."), params={"max": MAX_INTERVALS_PER_DAY}, code="too_many"
            )
        intervals.sort()
        for (s1, e1), (s2, e2) in zip(intervals, intervals[1:], strict=False):
            if e1 == MIDNIGHT or e1 > s2:
                errors.append(
                    forms.ValidationError(
                        _("%(first)s and %(second)s overlap."),
                        params={"first": format_intervals([(s1, e1)]), "second": format_intervals([(s2, e2)])},
                        code="overlap",
                    )
                )
        if errors:
            raise forms.ValidationError(errors)
        return intervals

    @staticmethod
    def _interval(number: int, start_text: str, end_text: str):
        params = {"n": number}
        if not start_text.strip() or not end_text.strip():
            return None, forms.ValidationError(
                _("Interval %(n)d: enter both a start and an end."), params=params, code="incomplete"
            )
        start, end = _parse_clock(start_text, is_end=False), _parse_clock(end_text, is_end=True)
        if start is None:
            return None, forms.ValidationError(
                _("Interval %(n)d: the start is not a time like 09:00."), params=params, code="format"
            )
        if end is None:
            return None, forms.ValidationError(
                _("Interval %(n)d: the end is not a time like 17:00."), params=params, code="format"
            )
        if end != MIDNIGHT and end <= start:
            return None, forms.ValidationError(
                _("Interval %(n)d: the end must be after the start (an end of 00:00 means midnight)."),
                params=params,
                code="order",
            )
        return (start, end), None


@dataclass(frozen=True)
class IntervalRow:
    number: int
    start: str
    end: str

    @property
    def interval(self) -> str:
        """'09:00–12:00' for the Remove button's name; an end of 00:00 is said as 24:00."""
        if not (self.start and self.end):
            return ""
        return f"{self.start}–{'24:00' if self.end == '00:00' else self.end}"


@dataclass(frozen=True)
class DayRows:
    """What the template needs to draw one day's editor, from the posted values or the stored ones."""

    name: str
    label: str
    on: bool
    rows: list[IntervalRow]
    errors: object
    max_intervals: int = MAX_INTERVALS_PER_DAY


def _day_rows(bound_field) -> DayRows:
    form, name = bound_field.form, bound_field.html_name
    if form.is_bound:
        raw = bound_field.field.widget.value_from_datadict(form.data, form.files, name)
        on = bool(raw.on)
        # Cut to the length of a real time: a tampered value is not worth echoing in full.
        pairs = [(s[:8], e[:8]) for s, e in zip(raw.starts, raw.ends, strict=False) if s.strip() or e.strip()]
    else:
        intervals = bound_field.initial or []
        on = bool(intervals)
        pairs = [(clock(start), clock(end)) for start, end in intervals]
    pairs = pairs[: MAX_INTERVALS_PER_DAY + 1] + [("", "")]  # one blank pair: one more interval per save without JS
    rows = [IntervalRow(number, start, end) for number, (start, end) in enumerate(pairs, start=1)]
    return DayRows(name=name, label=str(bound_field.label), on=on, rows=rows, errors=bound_field.errors)


def _editor_strings() -> dict[str, str]:
    """Texts the script needs, translated here because it has no catalogue of its own."""
    return {
        "start": _("%(day)s, interval %(n)s, start"),
        "end": _("%(day)s, interval %(n)s, end"),
        "remove": _("Remove %(day)s %(interval)s"),
        "removeEmpty": _("Remove %(day)s interval %(n)s"),
        "removed": _("Removed %(day)s %(interval)s."),
        "removedEmpty": _("Removed %(day)s interval %(n)s."),
        "added": _("Added interval %(n)s on %(day)s."),
        "copied": _("Monday’s hours were copied to Tuesday–Friday. Save to keep them."),
    }


class WeeklyHoursForm(forms.Form):
    """A member's weekly hours, one field per weekday (`day_0` Monday … `day_6` Sunday).

    Posted names, per day N:
      - `day_N_available`: the checkbox; absent (or "0"/"false"/"off") means not available, times ignored.
      - `day_N_start`, `day_N_end`: one value per interval, "HH:MM", paired by position; a pair left
        blank on both sides is skipped. An end of 00:00 (or 24:00) means midnight at the end of the day.
    The page always offers one blank pair per day, so without JavaScript a member adds one interval per
    save; hours.js adds and removes pairs in the page. Nothing is saved unless every day is valid.
    """

    weekdays = WorkingHours.Weekday

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for weekday, label in self.weekdays.choices:
            self.fields[f"day_{weekday}"] = IntervalsField(label=label)

    def clean(self):
        cleaned = super().clean()
        self.weekly: dict[int, list[tuple[time, time]]] = {
            weekday: cleaned.get(f"day_{weekday}") or [] for weekday in self.weekdays.values
        }
        return cleaned

    @classmethod
    def from_stored(cls, weekly: dict[int, list[tuple[time, time]]]) -> "WeeklyHoursForm":
        return cls(initial={f"day_{day}": intervals for day, intervals in weekly.items()})

    def with_monday_copied(self) -> "WeeklyHoursForm":
        """The same posted week with Monday's switch and times also on Tuesday to Friday (weekends untouched)."""
        data = self.data.copy()
        for weekday in range(1, 5):
            for suffix in ("available", "start", "end"):
                data.setlist(f"day_{weekday}_{suffix}", self.data.getlist(f"day_0_{suffix}"))
        return type(self)(data)

    @property
    def days(self) -> list[DayRows]:
        return [_day_rows(self[f"day_{weekday}"]) for weekday in self.weekdays.values]

    @property
    def strings(self) -> dict[str, str]:
        return _editor_strings()


class DateOverrideForm(forms.Form):
    """Other hours on one date, from today on (in the member's zone).

    Posted names: `date` (YYYY-MM-DD), `hours_kind` ("off" for a day off, "hours" for other hours),
    and `hours_start` / `hours_end` paired by position as in WeeklyHoursForm (used only with "hours").
    """

    date = forms.DateField(label=_("Date"), widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"))
    hours = IntervalsField(
        label=_("Date override"),
        widget=OverrideHoursInput,
        empty_message=_("Add at least one interval, or choose “Day off”."),
    )

    def __init__(self, *args, today: datetime.date, **kwargs):
        super().__init__(*args, **kwargs)
        self.today = today
        self.fields["date"].widget.attrs["min"] = today.isoformat()

    def clean_date(self):
        value = self.cleaned_data["date"]
        if value < self.today:
            raise forms.ValidationError(_("That date has passed. Pick today or a later date."), code="past")
        return value

    def clean_hours(self):
        return self.cleaned_data.get("hours") or []  # a day off: no intervals

    @property
    def hours_rows(self) -> DayRows:
        return _day_rows(self["hours"])

    @property
    def strings(self) -> dict[str, str]:
        return _editor_strings()
