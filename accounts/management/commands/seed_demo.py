"""Seed a demo organization: an admin and three members in different time zones."""

from allauth.account.models import EmailAddress
from django.core.management.base import BaseCommand
from django.db import transaction

from accounts.models import Organization, User
from members.models import TeamMember
from members.services import add_default_working_hours

DEMO_PASSWORD = "demo-pass-2026"
DEMO_ORGANIZATION = ("Demo Consulting", "demo")
DEMO_PEOPLE = [
    ("admin@demo.teamschedulerpro.local", "Ada Admin", TeamMember.Role.ADMIN, "Europe/Berlin"),
    ("maya@demo.teamschedulerpro.local", "Maya Patel", TeamMember.Role.MEMBER, "Asia/Kolkata"),
    ("leo@demo.teamschedulerpro.local", "Leo Martin", TeamMember.Role.MEMBER, "America/New_York"),
    ("sam@demo.teamschedulerpro.local", "Sam Carter", TeamMember.Role.MEMBER, "Australia/Adelaide"),
]


class Command(BaseCommand):
    help = "Create (or reset) the demo organization and print its logins."

    @transaction.atomic
    def handle(self, *args, **options):
        name, slug = DEMO_ORGANIZATION
        organization, _ = Organization.objects.get_or_create(slug=slug, defaults={"name": name})
        for email, display_name, role, time_zone in DEMO_PEOPLE:
            user, _ = User.objects.get_or_create(email=email)
            user.set_password(DEMO_PASSWORD)
            user.is_active = True
            user.save()
            EmailAddress.objects.update_or_create(user=user, email=email, defaults={"verified": True, "primary": True})
            member, created = TeamMember.objects.update_or_create(
                organization=organization,
                user=user,
                defaults={"display_name": display_name, "role": role, "time_zone": time_zone, "is_active": True},
            )
            if created:
                add_default_working_hours(member)
        self.stdout.write(self.style.SUCCESS(f"Demo organization “{organization.name}” is ready. Logins:"))
        for email, _name, role, time_zone in DEMO_PEOPLE:
            self.stdout.write(f"  {email:40} {DEMO_PASSWORD}   ({role}, {time_zone})")
