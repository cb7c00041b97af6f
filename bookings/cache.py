"""The cache of bookable times, and the one rule that keeps it true: every change to what can be
booked in an organization gives the organization a new version, and every cached value names the
version it was worked out at, so a change makes every older value unreachable at once.

Booking pages are viewed far more often than anything on them changes. The short lifetime bounds
the damage of a change made outside the services (the Django admin, a shell): a value a few
seconds stale can only offer a time that is then refused with "just taken", since booking
re-checks against the database.
"""

import hashlib
import logging
import uuid
from collections.abc import Callable
from typing import TypeVar

from django.core.cache import cache
from django.db import transaction

from meetingtypes.models import MeetingType

from . import availability

logger = logging.getLogger(__name__)

SLOTS_CACHE_SECONDS = 30

T = TypeVar("T")


def availability_changed(organization_id: int) -> None:
    """The organization's bookable times changed (bookings, hours, hosts): forget what is cached.

    Now, so the change is seen at once in this process, and again after the commit, so that a
    value worked out meanwhile by another request from the not-yet-committed data does not stay.
    """
    _new_version(organization_id)
    transaction.on_commit(lambda: _new_version(organization_id))


def remember(meeting_type: MeetingType, rules: availability.SlotRules, what: str, compute: Callable[[], T]) -> T:
    """The cached value of `what` for the meeting type, worked out by `compute()` when missing.

    The meeting type's own rules are part of the key, so editing them needs no invalidation.
    `what` must never hold anything a client chooses freely (a time zone, say): the cache would
    then hold one copy per choice and the first request of each would miss.
    """
    version = _safely(cache.get, _version_key(meeting_type.organization_id))
    if version is None:
        version = _new_version(meeting_type.organization_id)
    rules_hash = hashlib.sha256(repr(rules).encode()).hexdigest()[:16]
    key = f"slots:{meeting_type.pk}:{rules_hash}:{version}:{what}"
    value = _safely(cache.get, key)
    if value is None:
        value = compute()
        _safely(cache.set, key, value, SLOTS_CACHE_SECONDS)
    return value


def _version_key(organization_id: int) -> str:
    return f"availability-version:{organization_id}"


def _new_version(organization_id: int) -> str:
    # A fresh random value rather than an increment (an evicted counter restarting at 1 could
    # bring back values cached under that number) or a clock reading (two changes can share one).
    version = uuid.uuid4().hex
    _safely(cache.set, _version_key(organization_id), version, None)
    return version


def _safely(method, *args):
    """A cache read or write that never fails the request: with the cache down, times are worked
    out every time and bookings go through (their re-check reads the database, not the cache)."""
    try:
        return method(*args)
    except Exception:  # whatever the cache backend raises (redis.ConnectionError, timeouts, …)
        logger.warning("cache unavailable for booking pages", exc_info=True)
        return None
