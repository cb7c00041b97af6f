"""When each host last got a booking of each meeting type (MeetingTypeHost.last_booked_at): the
one input of the round-robin order (selectors.least_recently_booked_first) that depends on the
bookings.

It is the created_at of the host's latest booking of the type that is still confirmed. Stored,
the order reads one row per host; worked out, it read every booking the type ever had, more
with each month of history. The booking services keep it in step in the booking's own
transaction, through `hosts_changed`:

- a host given a booking (booked, or a booking moved to them): the booking is their latest,
  unless a later one is already there;
- a host losing one (cancelled, or moved away from them): if it was their latest, their previous
  confirmed booking of the type takes over, found by walking back through the type's bookings
  from the newest (`refresh`);
- a host added to a meeting type brings their history with them (`refresh`).

Anything that writes bookings around the services (a bulk load) calls `refresh` afterwards.
"""

from collections.abc import Iterable

from django.db.models import OuterRef, Q, QuerySet, Subquery

from meetingtypes.models import MeetingTypeHost

from .models import Booking


def _latest_confirmed_booking() -> Subquery:
    """The created_at of the link's host's latest confirmed booking of the link's meeting type.

    Newest first along the index on (meeting_type, created_at), each booking's hosts looked up
    by (booking, member): it stops at the host's latest, in a round-robin rotation about as many
    bookings back as there are hosts. A host with no other confirmed booking of the type has it
    read all of them (about 7 ms for 10,000): only a cancellation or move of such a host's one
    booking, or adding them to the type, pays that."""
    return Subquery(
        Booking.objects.filter(
            meeting_type_id=OuterRef("meeting_type_id"),
            status=Booking.Status.CONFIRMED,
            host_rows__member_id=OuterRef("member_id"),
        )
        .order_by("-created_at")
        .values("created_at")[:1]
    )


def refresh(links: QuerySet[MeetingTypeHost]) -> None:
    """Work `links`' last_booked_at out again from the bookings, in one statement."""
    links.update(last_booked_at=_latest_confirmed_booking())


def hosts_changed(booking: Booking, *, added: Iterable[int] = (), removed: Iterable[int] = ()) -> None:
    """`booking` now counts for the hosts `added` and no longer for the hosts `removed` (member
    ids, two disjoint sets). Called in the booking's transaction after its host rows are written,
    whose triggers lock the hosts' busy days: every change takes those locks before these.

    One host given a booking (a round-robin or one-person booking) is one conditional UPDATE: a
    booking only ever moves a host's value forward, and PostgreSQL checks the condition again
    against a change that commits while the UPDATE waits for the row. (A booking's created_at
    is taken before its transaction commits, so a later one can commit first.)

    Otherwise the hosts' rows are locked first, in id order: two transactions changing several
    rows of the same meeting type (collective bookings of the same hosts) then never wait for each
    other, and what is read under the lock stays true until the commit, so a cancellation can't
    write the previous booking it looked up over a newer one that committed meanwhile."""
    added, removed = set(added), set(removed)
    if not (added or removed):
        return
    concerned = MeetingTypeHost.objects.filter(meeting_type_id=booking.meeting_type_id, member_id__in=added | removed)
    if len(added) == 1 and not removed:
        concerned.filter(Q(last_booked_at__isnull=True) | Q(last_booked_at__lt=booking.created_at)).update(
            last_booked_at=booking.created_at
        )
        return
    stored = dict(concerned.select_for_update().order_by("pk").values_list("member_id", "last_booked_at"))
    later = [member_id for member_id in added & stored.keys() if _earlier(stored[member_id], booking.created_at)]
    if later:
        concerned.filter(member_id__in=later).update(last_booked_at=booking.created_at)
    # Only a host whose latest this booking was needs their previous one looked up.
    stale = [member_id for member_id in removed & stored.keys() if stored[member_id] == booking.created_at]
    if stale:
        refresh(concerned.filter(member_id__in=stale))


def _earlier(stored, created_at) -> bool:
    """Whether a stored last_booked_at (None: never booked) comes before `created_at`."""
    return stored is None or stored < created_at
