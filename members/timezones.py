"""Time zones: the canonical IANA names people pick from, friendly labels, and the picker field.

People choose from the zones of the tz database's zone.tab (one or more per country, canonical
names only: "Asia/Kolkata", never "Asia/Calcutta", "US/Pacific" or "Etc/GMT+8"), plus "UTC".
Older names still arrive: from rows saved before this list, and from browsers (Chromium's Intl
reports ICU's frozen names, e.g. "Asia/Calcutta"); `canonical_name` maps them through the tz
database's links. The data comes from the `tzdata` package, so every machine offers the same list.
"""

import zoneinfo
from datetime import datetime, timedelta
from functools import lru_cache
from importlib import resources

from babel import Locale
from babel.core import get_global
from babel.dates import get_timezone_location, get_timezone_name
from django import forms
from django.core.exceptions import ValidationError
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

_UTC_NAMES = {"Etc/UTC", "Etc/GMT"}  # link targets that mean UTC: shown as "UTC"


def _tzdata_text(name: str) -> str:
    return resources.files("tzdata").joinpath("zoneinfo", name).read_text(encoding="utf-8")


@lru_cache(maxsize=1)
def all_time_zones() -> frozenset[str]:
    """Every name zoneinfo can load, aliases included (what old rows may hold)."""
    return frozenset(zoneinfo.available_timezones() - {"localtime", "Factory"})


@lru_cache(maxsize=1)
def canonical_zones() -> frozenset[str]:
    rows = (line.split("\t") for line in _tzdata_text("zone.tab").splitlines() if line and not line.startswith("#"))
    return frozenset({row[2] for row in rows if len(row) >= 3} & all_time_zones() | {"UTC"})


@lru_cache(maxsize=1)
def _aliases() -> dict[str, str]:
    """Every other name a browser or an old row may use → its canonical name."""
    links: dict[str, str] = {}
    for line in _tzdata_text("tzdata.zi").splitlines():
        if line.startswith("L "):
            _kind, target, alias = line.split()[:3]
            links[alias] = target
    links.update({alias: target for alias, target in get_global("zone_aliases").items() if alias not in links})
    canonical = canonical_zones()
    aliases = {}
    for alias, target in links.items():
        target = "UTC" if target in _UTC_NAMES else links.get(target, target)
        if alias not in canonical and target in canonical:
            aliases[alias] = target
    aliases.update({name: "UTC" for name in _UTC_NAMES})
    return aliases


def canonical_name(name: str | None) -> str | None:
    """Maps "Asia/Calcutta" → "Asia/Kolkata"; a canonical name stays; anything else (unknown, "Etc/GMT+5") → None."""
    if not name or len(name) > 64:
        return None
    if name in canonical_zones():
        return name
    return _aliases().get(name)


def aliases_of(name: str) -> list[str]:
    return _aliases_by_zone().get(name, [])


@lru_cache(maxsize=1)
def _aliases_by_zone() -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = {}
    for alias, target in sorted(_aliases().items()):
        grouped.setdefault(target, []).append(alias)
    return grouped


def is_valid_time_zone(name: str | None) -> bool:
    """A name a client or member may send: canonical, or an alias of one."""
    return canonical_name(name) is not None


def validate_time_zone(name: str) -> None:
    """Model validation: any zone zoneinfo knows (rows saved before the canonical list stay valid)."""
    if name not in all_time_zones():
        raise ValidationError(_("“%(name)s” is not a known time zone."), params={"name": name}, code="invalid_tz")


# ---------------------------------------------------------------- labels


def _label_locale() -> Locale:
    """Zone names follow the interface language (the page's words), not the date format."""
    return Locale.parse(translation.to_locale(translation.get_language() or "en"))


@lru_cache(maxsize=2048)
def _zone_name(name: str, locale: Locale) -> tuple[str, str]:
    """("Pacific Time", "Los Angeles") from CLDR, as a person names the zone."""
    zone = zoneinfo.ZoneInfo(name)
    if name == "UTC":
        return get_timezone_name(zone, "long", zone_variant="standard", locale=locale), "UTC"
    city = get_timezone_location(zone, locale=locale, return_city=True)
    generic = get_timezone_name(zone, "long", zone_variant="generic", locale=locale)
    fallback = get_timezone_location(zone, locale=locale)  # "Japan Time": no generic name in CLDR
    if generic == fallback and not _has_dst(zone):
        # Zones without DST are known by their standard name: "India Standard Time", "Gulf Standard Time".
        standard = get_timezone_name(zone, "long", zone_variant="standard", locale=locale)
        if not standard.startswith("GMT"):
            generic = standard
    if generic == fallback and f"({city})" in generic:
        generic = ""  # "Antarctica (Palmer Land) Time" says no more than the city itself
    return generic, city


def _has_dst(zone: zoneinfo.ZoneInfo) -> bool:
    year = timezone.now().year
    return datetime(year, 1, 15, tzinfo=zone).utcoffset() != datetime(year, 7, 15, tzinfo=zone).utcoffset()


def _offset_text(offset: timedelta) -> str:
    from tsp.formatting import offset_label

    return offset_label(offset)


def zone_name(name) -> str:
    """Reads "Pacific Time — Los Angeles": what the zone is called and a city in it."""
    key = str(getattr(name, "key", name))
    canonical = canonical_name(key) or key
    if canonical not in all_time_zones():
        return key
    generic, city = _zone_name(canonical, _label_locale())
    return f"{generic} — {city}" if generic else city


def zone_label(name, at: datetime | None = None) -> str:
    """Reads "Pacific Time — Los Angeles (GMT−8)": the zone's name and its offset at `at` (now)."""
    key = str(getattr(name, "key", name))
    canonical = canonical_name(key) or key
    if canonical not in all_time_zones():
        return key
    offset = (at or timezone.now()).astimezone(zoneinfo.ZoneInfo(canonical)).utcoffset() or timedelta(0)
    return f"{zone_name(canonical)} ({_offset_text(offset)})"


def time_zone_choices() -> list[tuple[str, str]]:
    """The picker's options: canonical zones, labelled, ordered by current offset then label."""
    now = timezone.now()
    return list(_choices(now.replace(minute=0, second=0, microsecond=0), translation.get_language() or "en"))


@lru_cache(maxsize=8)
def _choices(hour: datetime, _language: str) -> tuple[tuple[str, str], ...]:
    # Labels carry the current offset, which moves with DST: worked out again every hour.
    rows = []
    for name in canonical_zones():
        offset = hour.astimezone(zoneinfo.ZoneInfo(name)).utcoffset() or timedelta(0)
        rows.append((offset, zone_label(name, at=hour), name))
    rows.sort()
    return tuple((name, label) for _offset, label, name in rows)


# ---------------------------------------------------------------- the picker


class TimeZoneSelect(forms.Select):
    """A native <select> (works without JavaScript); static/js/tz-picker.js adds a search box above it.

    Each option lists its zone's other names (data-aliases) so the script can match the zone a
    browser reports and find "Calcutta" under Kolkata.
    """

    def __init__(self, attrs=None, *, browser_zone: str = ""):
        base = {
            "data-tz-picker": "",
            "data-filter-label": gettext_lazy("Search time zones"),
            "data-filter-placeholder": gettext_lazy("City, country or zone"),
            "data-count-one": gettext_lazy("1 time zone matches"),
            "data-count-other": gettext_lazy("{count} time zones match"),
            "data-count-none": gettext_lazy("No time zone matches"),
        }
        if browser_zone == "suggest":
            base["data-tz-suggest"] = gettext_lazy("Your browser is in {zone}.")
            base["data-tz-use"] = gettext_lazy("Use it")
        elif browser_zone == "preselect":
            base["data-tz-detect"] = ""
        super().__init__({**base, **(attrs or {})}, choices=time_zone_choices)

    def create_option(self, name, value, label, selected, index, subindex=None, attrs=None):
        option = super().create_option(name, value, label, selected, index, subindex, attrs)
        aliases = aliases_of(str(value))
        if aliases:
            option["attrs"]["data-aliases"] = " ".join(aliases)
        return option

    def format_value(self, value):
        values = super().format_value(value)
        return [canonical_name(item) or item for item in values]

    def optgroups(self, name, value, attrs=None):
        groups = super().optgroups(name, value, attrs)
        current = value[0] if value else ""
        if current and current not in dict(time_zone_choices()) and current in all_time_zones():
            # A zone saved before the list was canonical and without a canonical twin ("Etc/GMT+5"):
            # show it, rather than letting the select fall on its first option and save that.
            groups.insert(0, (None, [self.create_option(name, current, current, True, 0)], 0))
        return groups


class TimeZoneField(forms.ChoiceField):
    """A canonical IANA zone; older names ("Asia/Calcutta") are taken and stored canonical."""

    widget = TimeZoneSelect
    default_error_messages = {
        "invalid_choice": gettext_lazy("“%(value)s” is not a time zone from the list. Please choose one."),
    }

    def __init__(self, *, browser_zone: str = "", **kwargs):
        kwargs.setdefault("initial", "UTC")
        super().__init__(choices=time_zone_choices, widget=TimeZoneSelect(browser_zone=browser_zone), **kwargs)

    def to_python(self, value):
        value = super().to_python(value).strip()
        return canonical_name(value) or value

    def valid_value(self, value):
        return value in canonical_zones()
