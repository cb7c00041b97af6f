"""The calendar data of the Google fake (integrations/sandbox/google.py): calendars and their
events, recurring events expanded into instances, what counts as busy, sync and page tokens, and
Google's `fields` partial responses. No HTTP here: google.py turns the errors into Google's JSON.

As Google documents it (developers.google.com/calendar/api/v3/reference):
- an event's start and end are {dateTime, timeZone} or, for an all-day event, {date} with the end
  date exclusive; an all-day event lasts from midnight to midnight in the calendar's zone;
- a recurring event ("recurrence": ["RRULE:…"]) is expanded in its start's zone (so 09:00 stays
  09:00 across a DST change); instance ids are "{eventId}_{YYYYMMDDTHHMMSSZ}" (all-day:
  "{eventId}_{YYYYMMDD}") and carry recurringEventId and originalStartTime;
- deleted events stay, with status "cancelled", so an incremental listing can report them;
- every change of a calendar bumps its sequence; a sync token is the sequence of a listing, and
  one older than the calendar's sync epoch answers 410 fullSyncRequired.
"""

import base64
import copy
import json
from dataclasses import MISSING, dataclass, field, fields
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dateutil.rrule import rrulestr

DEFAULT_PAGE_SIZE = 250
MAX_PAGE_SIZE = 2500
# Without a window, an endless rule (no COUNT or UNTIL) is expanded this far ahead of sandbox time
# (or of the event's start, if later), and no rule beyond this many occurrences.
RECURRENCE_HORIZON = timedelta(days=3 * 366)
MAX_INSTANCES = 5000
ACCESS_ROLES = ("freeBusyReader", "reader", "writer", "owner")  # weakest first, as minAccessRole ranks them
WRITE_ROLES = {"writer", "owner"}
TRANSPARENCIES = {"opaque", "transparent"}
EVENT_STATUSES = {"confirmed", "tentative", "cancelled"}
RESPONSE_STATUSES = {"needsAction", "declined", "tentative", "accepted"}


class CalendarDataError(ValueError):
    """Input Google would refuse with a 400: the message and Google's error reason."""

    def __init__(self, message: str, reason: str = "invalid"):
        super().__init__(message)
        self.reason = reason


def _upgrade_on_load(cls):
    """State pickled by an older version of the sandbox (the demo keeps its state across restarts)
    lacks the fields added since: give them their defaults instead of failing on first use."""

    def __setstate__(self, values):
        for item in fields(cls):
            if item.name not in values:
                factory = item.default_factory
                values[item.name] = factory() if factory is not MISSING else item.default
        self.__dict__.update(values)

    cls.__setstate__ = __setstate__
    return cls


@_upgrade_on_load
@dataclass
class Calendar:
    id: str
    owner_id: str  # the sandbox user whose calendar it is
    time_zone: str = "UTC"
    events: dict[str, dict] = field(default_factory=dict)  # by event id, as Google returns them
    # The sendUpdates parameter of each write of an event, in order ("" when it was not given).
    send_updates: dict[str, list[str]] = field(default_factory=dict)
    summary: str = ""
    primary: bool = False
    access_role: str = "owner"
    sequence: int = 0  # bumped by every change of the calendar's events
    changed_at: dict[str, int] = field(default_factory=dict)  # event or instance id → sequence of its last change
    sync_epoch: int = 0  # sync tokens of an older sequence are expired (410)

    @property
    def zone(self) -> ZoneInfo:
        return zone_or_utc(self.time_zone)

    def touch(self, *event_ids: str) -> None:
        """Record a change of these events: an incremental listing since an older token returns them."""
        self.sequence += 1
        for event_id in event_ids:
            self.changed_at[event_id] = self.sequence


@_upgrade_on_load
@dataclass
class Channel:
    """An events.watch notification channel."""

    id: str
    resource_id: str
    resource_uri: str
    calendar_id: str
    owner_id: str
    address: str
    token: str
    expiration_ms: int
    messages: int = 0  # the last X-Goog-Message-Number sent

    def is_live(self, moment: float) -> bool:
        return self.expiration_ms > moment * 1000


def zone_or_utc(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name) if name else ZoneInfo("UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def valid_zone(name) -> bool:
    if not isinstance(name, str) or not name:
        return False
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


# --- Times ---------------------------------------------------------------------------------------


def parse_rfc3339(value, name: str) -> datetime:
    """A query's timeMin/timeMax: RFC 3339 with an offset, as Google requires."""
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise CalendarDataError(f"Bad Request: invalid {name}.", "badRequest") from None
    if moment.tzinfo is None:
        raise CalendarDataError(f"Bad Request: {name} needs a time zone offset.", "badRequest")
    return moment.astimezone(UTC)


def parse_moment(value, name: str) -> datetime | date:
    """An event's start or end: an aware datetime ({dateTime[, timeZone]}) or a date ({date})."""
    if not isinstance(value, dict) or ("dateTime" not in value and "date" not in value):
        raise CalendarDataError(f"Missing {name} time.", "required")
    if "date" in value and "dateTime" not in value:
        try:
            return date.fromisoformat(str(value["date"]))
        except ValueError:
            raise CalendarDataError(f"Invalid {name} time.") from None
    zone_name = value.get("timeZone")
    if zone_name is not None and not valid_zone(zone_name):
        raise CalendarDataError(f"Invalid time zone definition for {name} time.")
    try:
        moment = datetime.fromisoformat(str(value["dateTime"]).replace("Z", "+00:00"))
    except ValueError:
        raise CalendarDataError(f"Invalid {name} time.") from None
    if moment.tzinfo is None:
        if zone_name is None:
            raise CalendarDataError(f"Missing time zone definition for {name} time.", "required")
        moment = moment.replace(tzinfo=ZoneInfo(zone_name))
    return moment


def check_times(start: dict, end: dict) -> None:
    first, last = parse_moment(start, "start"), parse_moment(end, "end")
    if isinstance(first, datetime) != isinstance(last, datetime):
        raise CalendarDataError("Start and end times must either both be date or both be dateTime.")
    if last <= first:
        raise CalendarDataError("The specified time range is empty.", "timeRangeEmpty")


def time_field(value: dict) -> dict:
    if "date" in value and "dateTime" not in value:
        return {"date": value["date"]}
    return {key: value[key] for key in ("dateTime", "timeZone") if key in value}


def local_midnight(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)


def bounds(calendar: Calendar, event: dict) -> tuple[datetime, datetime]:
    """When the event takes place, in UTC; an all-day event from midnight to midnight in the
    calendar's zone."""
    start, end = parse_moment(event["start"], "start"), parse_moment(event["end"], "end")
    if isinstance(start, datetime):
        return start.astimezone(UTC), end.astimezone(UTC)
    return local_midnight(start, calendar.zone), local_midnight(end, calendar.zone)


# --- Recurring events ---------------------------------------------------------------------------


def is_recurring(event: dict) -> bool:
    return bool(event.get("recurrence"))


def check_recurrence(value) -> None:
    if value is None:
        return
    if not isinstance(value, list) or not all(isinstance(line, str) for line in value):
        raise CalendarDataError("Invalid recurrence: a list of RRULE, EXDATE or RDATE lines is expected.")
    if value and not any(line.startswith("RRULE:") for line in value):
        raise CalendarDataError("Invalid recurrence rule: an RRULE line is required.")


def _occurrence_starts(event: dict, until: datetime) -> list[datetime | date]:
    """The starts of a recurring event's occurrences up to `until`, in the zone of its start."""
    first = parse_moment(event["start"], "start")
    if isinstance(first, datetime):
        zone = zone_or_utc(event["start"].get("timeZone")) if event["start"].get("timeZone") else first.tzinfo
        dtstart = first.astimezone(zone)
    else:
        dtstart = datetime.combine(first, time(0))  # floating: an all-day rule counts days
    lines = [line for line in event["recurrence"] if line.startswith(("RRULE:", "EXDATE", "RDATE"))]
    try:
        rule = rrulestr("\n".join(lines), dtstart=dtstart, forceset=True)
    except (ValueError, TypeError) as error:
        raise CalendarDataError(f"Invalid recurrence rule: {error}") from None
    limit = until if dtstart.tzinfo is not None else until.replace(tzinfo=None)
    starts = []
    try:
        for moment in rule:
            if moment > limit or len(starts) >= MAX_INSTANCES:
                break
            starts.append(moment if isinstance(first, datetime) else moment.date())
    except TypeError as error:  # an UNTIL in UTC against an all-day start, or the reverse
        raise CalendarDataError(f"Invalid recurrence rule: {error}") from None
    return starts


def instance_id(event_id: str, start: datetime | date) -> str:
    if isinstance(start, datetime):
        return f"{event_id}_{start.astimezone(UTC):%Y%m%dT%H%M%SZ}"
    return f"{event_id}_{start:%Y%m%d}"


def instances(event: dict, until: datetime) -> list[dict]:
    """A recurring event's instances starting no later than `until`, as singleEvents=true shows them."""
    first, last = parse_moment(event["start"], "start"), parse_moment(event["end"], "end")
    length = last - first
    result = []
    for start in _occurrence_starts(event, until):
        instance = copy.deepcopy(event)
        del instance["recurrence"]
        instance["id"] = instance_id(event["id"], start)
        instance["recurringEventId"] = event["id"]
        if isinstance(start, datetime):
            zone = {"timeZone": event["start"]["timeZone"]} if event["start"].get("timeZone") else {}
            instance["originalStartTime"] = {"dateTime": start.isoformat(), **zone}
            instance["start"] = {"dateTime": start.isoformat(), **zone}
            instance["end"] = {"dateTime": (start + length).astimezone(start.tzinfo).isoformat(), **zone}
        else:
            instance["originalStartTime"] = {"date": start.isoformat()}
            instance["start"] = {"date": start.isoformat()}
            instance["end"] = {"date": (start + length).isoformat()}
        result.append(instance)
    return result


def horizon(event: dict, now: datetime) -> datetime:
    """How far a recurring event is expanded when no window says: years ahead of now, or of its start."""
    first = parse_moment(event["start"], "start")
    first = first if isinstance(first, datetime) else datetime.combine(first, time(0), tzinfo=UTC)
    return max(now, first.astimezone(UTC)) + RECURRENCE_HORIZON


def instance_ids(event: dict, now: datetime) -> set[str]:
    """The ids of a live recurring event's occurrences (none for another event)."""
    if not is_recurring(event) or event.get("status") == "cancelled":
        return set()
    return {instance_id(event["id"], start) for start in _occurrence_starts(event, horizon(event, now))}


def reconcile_instances(calendar: Calendar, master_id: str, before: set[str], after: set[str]) -> list[str]:
    """After a change of a recurring event: occurrences it no longer has become cancelled
    exceptions, as Google lists them, so an incremental sync learns they are gone; occurrences it
    has again lose such an exception. Returns the ids of both, to be recorded as changed."""
    back = [item for item in after if calendar.events.get(item, {}).get("recurringEventId") == master_id]
    for item in back:
        del calendar.events[item]
    gone = sorted(before - after)
    for gone_id in gone:
        calendar.events[gone_id] = {
            "kind": "calendar#event",
            "id": gone_id,
            "status": "cancelled",
            "recurringEventId": master_id,
            "originalStartTime": _original_start(gone_id),
        }
    return gone + back


def _original_start(instance: str) -> dict:
    stamp = instance.rpartition("_")[2]
    if "T" in stamp:
        return {"dateTime": datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC).isoformat()}
    return {"date": datetime.strptime(stamp, "%Y%m%d").date().isoformat()}


# --- Listing -------------------------------------------------------------------------------------


def single_events(
    calendar: Calendar, *, until: datetime | None, now: datetime, changed_since: int | None = None
) -> list[dict]:
    """Every event of the calendar with recurring ones as their instances up to `until` (or their
    horizon), cancelled ones too; with `changed_since`, only what changed after that sequence (all
    instances of a changed recurring event)."""
    result = []
    for event in calendar.events.values():
        if changed_since is not None and calendar.changed_at.get(event["id"], 0) <= changed_since:
            continue
        if not is_recurring(event):
            result.append(copy.deepcopy(event))
        elif event["status"] != "cancelled":  # a deleted series: its instances are cancelled exceptions
            exceptions = calendar.events
            last = until or horizon(event, now)
            result.extend(item for item in instances(event, last) if item["id"] not in exceptions)
    return result


def overlaps(calendar: Calendar, event: dict, start: datetime | None, end: datetime | None) -> bool:
    """Whether the event ends after timeMin and starts before timeMax (Google's window rule)."""
    if "start" in event:
        first, last = bounds(calendar, event)
    else:  # a cancelled occurrence: only its original start is known
        first = start_of(calendar, event)
        last = first + timedelta(seconds=1)
    return (start is None or last > start) and (end is None or first < end)


def start_of(calendar: Calendar, event: dict) -> datetime:
    """When the event (or the occurrence a cancelled exception stands for) starts, in UTC."""
    if "start" in event:
        return bounds(calendar, event)[0]
    moment = parse_moment(event["originalStartTime"], "originalStartTime")
    return (moment if isinstance(moment, datetime) else local_midnight(moment, calendar.zone)).astimezone(UTC)


# --- Busy time -----------------------------------------------------------------------------------


def is_busy(event: dict) -> bool:
    """Google's free/busy rule: not cancelled, not "available" (transparent), not tentative, and not
    declined nor answered "maybe" by the calendar's owner when they are an attendee."""
    if event.get("status") in ("cancelled", "tentative") or event.get("transparency") == "transparent":
        return False
    mine = [item for item in event.get("attendees") or [] if isinstance(item, dict) and item.get("self")]
    return not any(item.get("responseStatus") in ("declined", "tentative") for item in mine)


def busy_periods(calendar: Calendar, start: datetime, end: datetime, now: datetime) -> list[tuple[datetime, datetime]]:
    """The calendar's busy time in [start, end), merged, in UTC."""
    spans = []
    for event in single_events(calendar, until=end, now=now):
        if not is_busy(event):
            continue
        first, last = bounds(calendar, event)
        if last > start and first < end:
            spans.append((max(first, start), min(last, end)))
    merged: list[tuple[datetime, datetime]] = []
    for first, last in sorted(spans):
        if merged and first <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], last))
        else:
            merged.append((first, last))
    return merged


# --- Tokens --------------------------------------------------------------------------------------


def encode_token(values: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(values, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_token(value: str) -> dict | None:
    try:
        decoded = json.loads(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)))
    except (ValueError, UnicodeDecodeError):
        return None
    return decoded if isinstance(decoded, dict) else None


# --- Partial responses ---------------------------------------------------------------------------


def parse_fields(mask: str) -> dict:
    """Google's `fields` syntax ("items(id,start),nextPageToken", "a/b") as a tree of dicts;
    an empty dict stands for the whole value."""
    tree: dict = {}
    position = _parse_field_list(mask, 0, tree)
    if position != len(mask):
        raise CalendarDataError("Invalid field selection.", "invalidParameter")
    return tree


def _parse_field_list(mask: str, position: int, tree: dict) -> int:
    while position < len(mask):
        name_end = position
        while name_end < len(mask) and mask[name_end] not in ",()":
            name_end += 1
        path = mask[position:name_end].strip()
        if not path or any(not part for part in path.split("/")):
            raise CalendarDataError("Invalid field selection.", "invalidParameter")
        node = tree
        for part in path.split("/"):
            node = node.setdefault(part, {})
        position = name_end
        if position < len(mask) and mask[position] == "(":
            position = _parse_field_list(mask, position + 1, node)
            if position >= len(mask) or mask[position] != ")":
                raise CalendarDataError("Invalid field selection.", "invalidParameter")
            position += 1
        if position < len(mask) and mask[position] == ")":
            return position
        if position < len(mask) and mask[position] == ",":
            position += 1
    return position


def select_fields(value, tree: dict):
    """`value` with only the fields of `tree` (lists keep their items, each masked the same way)."""
    if not tree:
        return value
    if isinstance(value, list):
        return [select_fields(item, tree) for item in value]
    if not isinstance(value, dict):
        return value
    return {name: select_fields(value[name], sub) for name, sub in tree.items() if name in value}
