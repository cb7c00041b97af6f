from accounts.models import Organization

from .models import TeamMember


def members_for_viewer(*, organization: Organization, viewer: TeamMember):
    """Cards on the Team Members page: admins also see deactivated members. One query."""
    members = TeamMember.objects.filter(organization=organization).select_related("user")
    if not viewer.is_admin:
        members = members.filter(is_active=True)
    return members.order_by("-is_active", "display_name", "id")


def get_member(*, organization: Organization, pk: int) -> TeamMember | None:
    return TeamMember.objects.select_related("user").filter(organization=organization, pk=pk).first()
