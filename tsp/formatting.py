"""Dates and times as each viewer reads them: one format per viewer, everywhere.

The booking calendar formats with the browser's Intl API in `navigator.language`; the server
formats with Babel, which reads the same CLDR data. So a page, the form after it and the
confirmation agree: "12:00 AM" and "Wednesday, December 2, 2026" for en-US, "00:00" and
"Wednesday, 2 December 2026" for en-GB. The pairs (see static/js/booking.js):

    Intl {dateStyle: "full"}                     ⇔ long_date()   (Babel format_date "full")
    Intl {timeStyle: "short"}                    ⇔ time_of_day() (Babel format_time "short")
    Intl {weekday, day, month: "short", year}    ⇔ short_date()  (Babel skeleton "yMMMEd")

The "format locale" is separate from the interface language (Django's translation): pages are
in English, but an English page read in London says 00:00 and one read in Chicago 12:00 AM.
For a request it is the first usable tag of Accept-Language, which is what `navigator.language`
is made of; emails use the locale stored with the recipient (`override_format_locale`).
Values are converted to the active Django time zone first, as Django's `|date` does.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import date, datetime, time, timedelta
from functools import lru_cache

from babel import Locale, UnknownLocaleError
from babel.dates import format_date, format_skeleton, format_time, get_datetime_format
from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation.trans_real import parse_accept_lang_header

DEFAULT_LOCALE = "en-US"
LOCALE_MAX_LENGTH = 35

_format_locale: ContextVar[str] = ContextVar("format_locale", default=DEFAULT_LOCALE)

# CLDR puts a narrow no-break space before "AM" and thin spaces around range dashes; Chromium's
# Intl writes plain spaces there. Plain spaces on both sides keep the server's text identical
# to the calendar's.
_PLAIN_SPACES = str.maketrans({"\u202f": " ", "\u2009": " ", "\u00a0": " "})


# ---------------------------------------------------------------- locales


@lru_cache(maxsize=512)
def normalize_locale(tag: str | None) -> str | None:
    """A BCP 47 tag Babel knows, normalised ("en_us" → "en-US", "zh-hant-tw" → "zh-Hant-TW"); None otherwise."""
    if not tag or len(tag) > LOCALE_MAX_LENGTH or tag.strip() in {"*", ""}:
        return None
    try:
        locale = Locale.parse(tag.strip().replace("_", "-"), sep="-")
    except (UnknownLocaleError, ValueError, TypeError):
        return None
    parts = [locale.language, locale.script, locale.territory, locale.variant]
    normalized = "-".join(part for part in parts if part)
    return normalized if len(normalized) <= LOCALE_MAX_LENGTH else None


def validate_locale(value: str) -> None:
    if value and normalize_locale(value) != value:
        raise ValidationError(
            _("“%(value)s” is not a known locale."), params={"value": value[:LOCALE_MAX_LENGTH]}, code="invalid_locale"
        )


def locale_from_accept_language(header: str | None) -> str | None:
    """The first tag of an Accept-Language header that Babel knows (the browser's `navigator.language`)."""
    if not header or len(header) > 1000:
        return None
    for tag, _quality in parse_accept_lang_header(header):
        normalized = normalize_locale(tag)
        if normalized:
            return normalized
    return None


def browser_locale(request) -> str | None:
    """The locale the request's browser formats dates in, or None when it does not say (scripts, bots)."""
    return locale_from_accept_language(request.META.get("HTTP_ACCEPT_LANGUAGE"))


def get_format_locale() -> str:
    return _format_locale.get()


@contextmanager
def override_format_locale(tag: str | None) -> Iterator[str]:
    """Format in another locale meanwhile (an email in its recipient's); unknown tags give the default."""
    locale = normalize_locale(tag) or DEFAULT_LOCALE
    token = _format_locale.set(locale)
    try:
        yield locale
    finally:
        _format_locale.reset(token)


class FormatLocaleMiddleware:
    """Formats every page of a request in its browser's locale."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        with override_format_locale(browser_locale(request)):
            return self.get_response(request)


# ---------------------------------------------------------------- formatting


def _babel_locale(locale: str | None) -> Locale:
    return _parsed(normalize_locale(locale) or get_format_locale())


@lru_cache(maxsize=128)
def _parsed(tag: str) -> Locale:
    return Locale.parse(tag, sep="-")


def _local(value):
    """Aware datetimes in the active time zone (the viewer's, or an email recipient's)."""
    if isinstance(value, datetime) and timezone.is_aware(value):
        return timezone.localtime(value)
    return value


def _plain(text: str) -> str:
    return text.translate(_PLAIN_SPACES)


def long_date(value: date | datetime, locale: str | None = None) -> str:
    """Gives "Wednesday, December 2, 2026" (en-US), "Wednesday, 2 December 2026" (en-GB)."""
    value = _local(value)
    return _plain(format_date(value, "full", locale=_babel_locale(locale)))


def short_date(value: date | datetime, locale: str | None = None) -> str:
    """Gives "Wed, Dec 2, 2026" (en-US), "Wed, 2 Dec 2026" (en-GB): for tables and subjects."""
    value = _local(value)
    return _plain(format_skeleton("yMMMEd", value, locale=_babel_locale(locale)))


def time_of_day(value: datetime, locale: str | None = None) -> str:
    """Gives "12:00 AM" (en-US), "00:00" (en-GB)."""
    value = _local(value)
    return _plain(format_time(value, "short", tzinfo=value.tzinfo, locale=_babel_locale(locale)))


def time_range(start: datetime, end: datetime, locale: str | None = None) -> str:
    """Gives "9:00 AM – 9:30 AM": two times of day, as the calendar shows them one by one."""
    return f"{time_of_day(start, locale)} – {time_of_day(end, locale)}"


def working_hours(intervals, locale: str | None = None) -> str:
    """Wall-clock intervals (working hours) as the viewer reads times: "9:00 AM – 5:00 PM, 6:00 PM – 8:00 PM".

    An end at 00:00 is midnight at the end of the day: "24:00" on a 24-hour clock, "12:00 AM" on a 12-hour one.
    """
    babel_locale = _babel_locale(locale)
    twenty_four_hours = "H" in babel_locale.time_formats["short"].pattern

    def end_text(end: time) -> str:
        return "24:00" if end == time(0) and twenty_four_hours else time_of_day(end, locale)

    return ", ".join(f"{time_of_day(start, locale)} – {end_text(end)}" for start, end in intervals)


def _joined(day: str, clock: str, locale: str | None) -> str:
    """A date and a time joined as the locale joins them ("{1}, {0}" in English, "{1} {0}" in Japanese)."""
    pattern = get_datetime_format("full", locale=_babel_locale(locale))
    return _plain(pattern.replace("{1}", day).replace("{0}", clock))


def date_time(value: datetime, locale: str | None = None) -> str:
    """Gives "Wednesday, December 2, 2026, 9:00 AM"."""
    return _joined(long_date(value, locale), time_of_day(value, locale), locale)


def date_time_range(start: datetime, end: datetime, locale: str | None = None) -> str:
    """Gives "Wednesday, December 2, 2026, 9:00 AM – 9:30 AM"."""
    return _joined(long_date(start, locale), time_range(start, end, locale), locale)


def short_date_time(value: datetime, locale: str | None = None) -> str:
    """Gives "Wed, Dec 2, 2026, 9:00 AM GMT-8": an email subject's time, with the offset of the zone it is in.

    ASCII hyphen here: an English subject stays plain ASCII, not an RFC 2047 encoded word."""
    offset = offset_label(_local(value).utcoffset() or timedelta(0), minus="-")
    return f"{_joined(short_date(value, locale), time_of_day(value, locale), locale)} {offset}"


def gmt_offset(value: datetime) -> str:
    """Gives "GMT−8", "GMT+5:30", "GMT+0" at that instant in the active zone (with the real minus sign)."""
    return offset_label(_local(value).utcoffset() or timedelta(0))


def offset_label(offset: timedelta, *, minus: str = "−") -> str:
    minutes = int(offset.total_seconds()) // 60
    sign = minus if minutes < 0 else "+"
    hours, rest = divmod(abs(minutes), 60)
    return f"GMT{sign}{hours}" + (f":{rest:02d}" if rest else "")
