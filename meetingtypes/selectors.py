from django.db.models import Prefetch

from accounts.models import Organization
from integrations.models import Connection

from .models import MeetingType, MeetingTypeHost


def _host_links_with_accounts():
    """Host links in host order, each member with its video connections (`connection_list`, as
    TeamMember.connection_for reads them): two queries however many links."""
    connections = Prefetch("member__connections", queryset=Connection.objects.order_by("pk"), to_attr="connection_list")
    return MeetingTypeHost.objects.select_related("member").prefetch_related(connections).order_by("position", "id")


def meeting_types_for_list(*, organization: Organization):
    """All meeting types with their ordered hosts and the hosts' video accounts (for the warnings):
    three queries, whatever their number."""
    hosts = Prefetch("host_links", queryset=_host_links_with_accounts())
    return MeetingType.objects.filter(organization=organization).prefetch_related(hosts).order_by("-is_active", "name")


def host_links_with_accounts(*, meeting_type: MeetingType) -> list[MeetingTypeHost]:
    """The meeting type's hosts in host order, with their video accounts: two queries."""
    return list(_host_links_with_accounts().filter(meeting_type=meeting_type))


def get_meeting_type(*, organization: Organization, pk: int) -> MeetingType | None:
    return MeetingType.objects.filter(organization=organization, pk=pk).first()


def public_meeting_type(*, org_slug: str, slug: str) -> MeetingType | None:
    return (
        MeetingType.objects.select_related("organization")
        .filter(organization__slug=org_slug, slug=slug, is_active=True)
        .first()
    )
