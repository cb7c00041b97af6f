"""{% load datetimes %}: dates and times in the viewer's locale and time zone (see tsp/formatting.py).

Filters convert to the active time zone first, like Django's |date, so `{% timezone zone %}`
blocks and emails rendered under their recipient's zone work unchanged.
"""

from django import template

from members.timezones import zone_label as _zone_label
from members.timezones import zone_name as _zone_name
from tsp import formatting

register = template.Library()


def _safe(function):
    def filter_(value, *args):
        if value in (None, ""):
            return ""
        return function(value, *args)

    filter_.__name__ = function.__name__
    return filter_


register.filter("long_date", _safe(formatting.long_date))
register.filter("short_date", _safe(formatting.short_date))
register.filter("time_of_day", _safe(formatting.time_of_day))
register.filter("date_time", _safe(formatting.date_time))
register.filter("short_date_time", _safe(formatting.short_date_time))
register.filter("gmt_offset", _safe(formatting.gmt_offset))
register.filter("working_hours", _safe(formatting.working_hours))


@register.filter
def time_range(start, end):
    """{{ booking.start|time_range:booking.end }} → "9:00 AM – 9:30 AM"."""
    if not start or not end:
        return ""
    return formatting.time_range(start, end)


@register.filter
def date_time_range(start, end):
    """{{ booking.start|date_time_range:booking.end }} → "Wednesday, December 2, 2026, 9:00 AM – 9:30 AM"."""
    if not start or not end:
        return ""
    return formatting.date_time_range(start, end)


@register.filter
def zone_label(zone, at=None):
    """{{ zone|zone_label:booking.start }} → "Pacific Time — Los Angeles (GMT−8)", offset at that instant."""
    if not zone:
        return ""
    return _zone_label(zone, at=at or None)


@register.filter
def zone_name(zone):
    """{{ zone|zone_name }} → "Pacific Time — Los Angeles"."""
    return _zone_name(zone) if zone else ""
