from django.db import transaction

from members.models import TeamMember
from members.services import add_default_working_hours

from .models import Organization, User


@transaction.atomic
def create_organization_with_admin(
    *, user: User, organization_name: str, display_name: str, time_zone: str
) -> TeamMember:
    """Signing up makes a new organization with the new user as its first admin."""
    organization = Organization.objects.create(
        name=organization_name.strip(), slug=Organization.unique_slug_for(organization_name)
    )
    member = TeamMember.objects.create(
        organization=organization,
        user=user,
        display_name=display_name.strip(),
        role=TeamMember.Role.ADMIN,
        time_zone=time_zone,
    )
    add_default_working_hours(member)
    return member
