from django.db.models import Prefetch

from accounts.models import Organization

from .models import MeetingType, MeetingTypeHost


def meeting_types_for_list(*, organization: Organization):
    """All meeting types with their ordered hosts: two queries, whatever their number."""
    hosts = Prefetch("host_links", queryset=MeetingTypeHost.objects.select_related("member").order_by("position", "id"))
    return MeetingType.objects.filter(organization=organization).prefetch_related(hosts).order_by("-is_active", "name")


def get_meeting_type(*, organization: Organization, pk: int) -> MeetingType | None:
    return MeetingType.objects.filter(organization=organization, pk=pk).first()


def public_meeting_type(*, org_slug: str, slug: str) -> MeetingType | None:
    return (
        MeetingType.objects.select_related("organization")
        .filter(organization__slug=org_slug, slug=slug, is_active=True)
        .first()
    )
