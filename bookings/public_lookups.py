"""What every public booking page looks up before anything else, kept in the shared cache: the
meeting type (with its organization) that an address's two slugs name, and the names of its hosts.

Building that query costs a web worker about as much CPU as serving a whole month of times from
the cache, for an answer that changes a few times a year. So both are cached (in Redis, so that
every web node reads and forgets the same entries) and forgotten, by model signals, whenever a
row they were read from is saved or deleted through the ORM: by the services, a management
command or `.save()` in a shell alike. An address is forgotten as it was before the change and as
it is after it, so a renamed meeting type or organization stops answering at its old address at
once, and a deactivated one 404s at once.

Writes that send no signals (`QuerySet.update`, raw SQL) are not noticed: an entry lives
SLOTS_CACHE_SECONDS, as long as a cached month of times, and that lifetime is how long such a
write can go unseen. A booking never relies on a cached copy: it reads the meeting type from the
database (see bookings.views.book).
"""

import hashlib
from functools import cache as once

import django
from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import QuerySet
from django.db.models.signals import m2m_changed, post_delete, post_save, pre_delete, pre_save
from django.dispatch import receiver

from accounts.models import Organization
from meetingtypes.models import MeetingType, MeetingTypeHost
from members.models import TeamMember

from .cache import safely

# Both slugs are SlugFields of this length: a longer one in an address names nothing, and is
# answered without asking the cache or the database.
_SLUG_MAX_LENGTH = 60

# What the host names shown on a page are read from, besides the host rows themselves.
_MEMBER_FIELDS_SHOWN = {"display_name", "is_active"}


def meeting_type_at(org_slug: str, slug: str, *, cached: bool = True) -> MeetingType | None:
    """The meeting type at this public address, active or not, with its organization loaded;
    None when there is none. `cached=False` reads the database."""
    if len(org_slug) > _SLUG_MAX_LENGTH or len(slug) > _SLUG_MAX_LENGTH:
        return None
    if not (cached and _lifetime()):
        return _read_meeting_type(org_slug, slug)
    key = _address_key(org_slug, slug)
    meeting_type = safely(cache.get, key)
    if meeting_type is None:
        meeting_type = _read_meeting_type(org_slug, slug)
        # An address that names nothing is not remembered: a meeting type created there later is
        # then found at once, with nothing to forget.
        if meeting_type is not None:
            safely(cache.set, key, meeting_type, _lifetime())
    return meeting_type


def host_names(meeting_type: MeetingType) -> list[str]:
    """The names of the meeting type's active hosts, in host order."""
    if not _lifetime():
        return _read_host_names(meeting_type.pk)
    key = _host_names_key(meeting_type.pk)
    names = safely(cache.get, key)
    if names is None:
        names = _read_host_names(meeting_type.pk)
        safely(cache.set, key, names, _lifetime())
    return names


def _lifetime() -> int:
    # 0 (the load test's cold web node) keeps nothing, so nothing is asked of the cache either.
    return settings.SLOTS_CACHE_SECONDS


def _read_meeting_type(org_slug: str, slug: str) -> MeetingType | None:
    return MeetingType.objects.select_related("organization").filter(organization__slug=org_slug, slug=slug).first()


def _read_host_names(meeting_type_id: int) -> list[str]:
    links = MeetingTypeHost.objects.filter(meeting_type_id=meeting_type_id, member__is_active=True)
    return list(links.order_by("position", "id").values_list("member__display_name", flat=True))


@once
def _schema() -> str:
    """Cached meeting types are pickled model instances: a release that changes either model's
    fields, or Django, reads them under new keys instead of unpickling rows of another shape."""
    fields = [
        f"{model._meta.label}.{field.attname}"
        for model in (MeetingType, Organization)
        for field in model._meta.concrete_fields
    ]
    return hashlib.sha256(" ".join([django.get_version(), *fields]).encode()).hexdigest()[:12]


def _address_key(org_slug: str, slug: str) -> str:
    return f"public-address:{_schema()}:{org_slug}:{slug}"


def _host_names_key(meeting_type_id: int) -> str:
    return f"public-host-names:{meeting_type_id}"


# ---------------------------------------------------------------- forgetting


def _forget_addresses(meeting_types: QuerySet) -> None:
    """Forget the addresses these meeting types have in the database right now (one query)."""
    addresses = meeting_types.order_by().values_list("organization__slug", "slug")
    _forget([_address_key(org_slug, slug) for org_slug, slug in addresses])


def _forget_host_names(meeting_type_ids) -> None:
    _forget([_host_names_key(meeting_type_id) for meeting_type_id in set(meeting_type_ids)])


def _forget(keys: list[str]) -> None:
    """Forget now, so that the change is seen at once by the transaction making it, and again
    after the commit, so that an entry read meanwhile by another request from the data not yet
    committed does not stay."""
    if not keys:
        return
    safely(cache.delete_many, keys)
    if transaction.get_connection().in_atomic_block:
        transaction.on_commit(lambda: safely(cache.delete_many, keys))


def _hosted_by(member_id: int) -> QuerySet:
    return MeetingTypeHost.objects.filter(member_id=member_id).values_list("meeting_type_id", flat=True)


def _may_change(update_fields, fields: set[str]) -> bool:
    return update_fields is None or not fields.isdisjoint(update_fields)


@receiver(pre_save, sender=MeetingType, dispatch_uid="public_lookups.meeting_type_saving")
def _meeting_type_saving(sender, instance: MeetingType, update_fields=None, **kwargs) -> None:
    # The address it had: after the save, the database only knows the new one.
    if not instance._state.adding and _may_change(update_fields, {"slug", "organization", "organization_id"}):
        _forget_addresses(MeetingType.objects.filter(pk=instance.pk))


@receiver(post_save, sender=MeetingType, dispatch_uid="public_lookups.meeting_type_saved")
def _meeting_type_saved(sender, instance: MeetingType, created: bool, **kwargs) -> None:
    if not created:  # a new meeting type's address was never remembered (see meeting_type_at)
        _forget_addresses(MeetingType.objects.filter(pk=instance.pk))


@receiver(pre_delete, sender=MeetingType, dispatch_uid="public_lookups.meeting_type_deleting")
def _meeting_type_deleting(sender, instance: MeetingType, **kwargs) -> None:
    # Before the delete (also when its organization's delete takes it along): its address is then
    # still in the database.
    _forget_addresses(MeetingType.objects.filter(pk=instance.pk))
    _forget_host_names([instance.pk])


@receiver(pre_save, sender=Organization, dispatch_uid="public_lookups.organization_saving")
def _organization_saving(sender, instance: Organization, update_fields=None, **kwargs) -> None:
    if not instance._state.adding and _may_change(update_fields, {"slug"}):
        _forget_addresses(MeetingType.objects.filter(organization_id=instance.pk))


@receiver(post_save, sender=Organization, dispatch_uid="public_lookups.organization_saved")
def _organization_saved(sender, instance: Organization, created: bool, **kwargs) -> None:
    # Every cached meeting type of the organization carries a copy of it (its name and branding).
    if not created:
        _forget_addresses(MeetingType.objects.filter(organization_id=instance.pk))


@receiver(post_save, sender=MeetingTypeHost, dispatch_uid="public_lookups.host_saved")
@receiver(post_delete, sender=MeetingTypeHost, dispatch_uid="public_lookups.host_deleted")
def _host_changed(sender, instance: MeetingTypeHost, **kwargs) -> None:
    _forget_host_names([instance.meeting_type_id])


@receiver(m2m_changed, sender=MeetingType.hosts.through, dispatch_uid="public_lookups.hosts_added")
def _hosts_added(sender, instance, action: str, reverse: bool, pk_set, **kwargs) -> None:
    """`meeting_type.hosts.add(…)` and `member.meeting_types.add(…)` write host rows in bulk, which
    sends no post_save (removing and clearing delete them one by one, with their post_delete)."""
    if action == "post_add":
        _forget_host_names(pk_set if reverse else [instance.pk])


@receiver(post_save, sender=TeamMember, dispatch_uid="public_lookups.member_saved")
def _member_saved(sender, instance: TeamMember, created: bool, update_fields=None, **kwargs) -> None:
    # A new member hosts nothing yet; a deleted one takes its host rows along (their own signals).
    if not created and _may_change(update_fields, _MEMBER_FIELDS_SHOWN):
        _forget_host_names(_hosted_by(instance.pk))
