from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction

from members.models import TeamMember
from members.services import add_default_working_hours
from tsp.formatting import normalize_locale

from .models import Organization, User


@transaction.atomic
def create_organization_with_admin(
    *, user: User, organization_name: str, display_name: str, time_zone: str, locale: str = ""
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
        locale=normalize_locale(locale) or "",
    )
    add_default_working_hours(member)
    return member


def update_organization(
    *, organization: Organization, name: str, accent_color: str, new_logo: ContentFile | None, remove_logo: bool
) -> None:
    """Save the organization's settings; a replaced or removed logo file is deleted once that is committed."""
    old_logo = organization.logo.name if organization.logo else ""
    with transaction.atomic():
        organization.name = name
        organization.accent_color = accent_color
        if new_logo is not None:
            organization.logo.save(new_logo.name, new_logo, save=False)
        elif remove_logo:
            organization.logo = ""
        organization.save(update_fields=["name", "accent_color", "logo"])
        if old_logo and old_logo != organization.logo.name:
            transaction.on_commit(lambda: default_storage.delete(old_logo))
