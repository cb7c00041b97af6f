"""Seed a demo organization: an admin and three members in different time zones.

When the providers are sandboxed (`make run` without real apps), three members have a video
account connected in the sandbox, one provider each, and a collective Zoom type whose hosts have
no Zoom shows the fallback chain: its calls are on Google Meet. Leo's Google and Sam's Microsoft
calendars count as busy and receive their bookings, and each holds a meeting of theirs, so the
Team workshop page (Leo is a host) shows that time taken.
"""

from datetime import datetime, time, timedelta
from importlib import import_module
from zoneinfo import ZoneInfo

from allauth.account.models import EmailAddress
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone

from accounts.models import Organization, User
from bookings.cache import hosts_changed
from integrations import registry
from integrations.base import Account, CalendarInfo, TokenSet
from integrations.models import BusyInterval, Calendar, Connection
from integrations.services import save_connection
from meetingtypes.models import MeetingType, MeetingTypeHost
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
# Whose video account of which provider is connected in the demo: one provider each, so that the
# meeting types show the chain (the admin has none, which the meeting-type warnings point out).
DEMO_VIDEO_ACCOUNTS = [
    ("maya@demo.teamschedulerpro.local", "zoom"),
    ("leo@demo.teamschedulerpro.local", "google"),
    ("sam@demo.teamschedulerpro.local", "microsoft"),
]
# A user of each sandbox as that provider's own account lookup (integrations/<key>/client.py)
# reads it: the site isn't serving yet, so its sandbox can't be asked over HTTP.
SANDBOX_ACCOUNTS = {
    "zoom": lambda user: Account(user["id"], user["account_id"], user["email"]),
    "google": lambda user: Account(user["sub"], user.get("hd", ""), user["email"]),
    "microsoft": lambda user: Account(user["id"], "", user["mail"]),
}
# The sandbox's calendars as each provider's calendar list (integrations/<key>/client.py) reads them.
SANDBOX_CALENDARS = {
    "google": lambda item: CalendarInfo(
        item["id"],
        item.get("summary") or item["id"],
        item.get("primary") is True,
        item.get("accessRole") in ("owner", "writer"),
    ),
    "microsoft": lambda item: CalendarInfo(
        item["id"], item["name"], item.get("isDefaultCalendar") is True, item.get("canEdit") is not False
    ),
}
# A meeting in the member's own calendar, in their working hours on the first weekday two days ahead.
DEMO_MEETING_START, DEMO_MEETING_MINUTES = time(10), 60


class Command(BaseCommand):
    help = "Create (or reset) the demo organization and print its logins (development only)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--force",
            action="store_true",
            help="Seed even with DEBUG off. The demo admin's password is published: never on a public site.",
        )

    @transaction.atomic
    def handle(self, *args, **options):
        if not settings.DEBUG and not options["force"]:
            # The logins it creates have a password printed in the README: on a reachable
            # server, anyone could sign in as the demo admin.
            raise CommandError(
                "seed_demo creates logins with a published password and runs only with DEBUG=1. "
                "Use --force to seed anyway (never on a public site)."
            )
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
        self._meeting_types(organization)
        connected = self._video_accounts(organization)
        meetings = self._calendars(organization)
        self.stdout.write(self.style.SUCCESS(f"Demo organization “{organization.name}” is ready. Logins:"))
        for email, _name, role, time_zone in DEMO_PEOPLE:
            video = f", {connected[email]} account in the sandbox" if email in connected else ""
            if email in meetings:
                video += f", a meeting in its calendar {meetings[email]:%a %d %b %H:%M}"
            self.stdout.write(f"  {email:40} {DEMO_PASSWORD}   ({role}, {time_zone}{video})")
        if settings.EMAIL_OUTBOX:
            # Sign-up confirmations, invitations and booking emails go here instead of to real inboxes.
            self.stdout.write(f"  Emails (outbox): {settings.SITE_URL}/dev/outbox/")

    def _video_accounts(self, organization: Organization) -> dict[str, str]:
        """Connect each demo member's account of a sandboxed provider, with tokens that provider's
        sandbox issued now (so that they work in the site's sandbox, whose state every process
        shares); a provider with a real app is left alone. {login email: provider}."""
        connected = {}
        for email, key in DEMO_VIDEO_ACCOUNTS:
            if key not in settings.SANDBOXED_PROVIDERS:
                continue
            sandbox = import_module(f"integrations.sandbox.{key}")
            tokens = sandbox.issue_tokens(email)
            save_connection(
                member=TeamMember.objects.get(organization=organization, user__email=email),
                provider=key,
                tokens=TokenSet(
                    tokens["access_token"], tokens.get("refresh_token", ""), tokens["expires_in"], tokens["scope"]
                ),
                account=SANDBOX_ACCOUNTS[key](sandbox.get_or_create_user(email)),
            )
            connected[email] = registry.get(key).name
        return connected

    def _calendars(self, organization: Organization) -> dict[str, datetime]:
        """The sandboxed calendar accounts' calendars on the cards (the primary one counting as busy
        and receiving the bookings, as after a connect) and a meeting of the member's in it.
        {login email: the meeting's start, in the member's zone}.

        Stored as the first sync will find them (the site isn't serving yet, so it can't be asked
        over HTTP): that sync is due at once and confirms them once the site runs."""
        meetings = {}
        for email, key in DEMO_VIDEO_ACCOUNTS:
            connection = Connection.objects.filter(
                member__organization=organization, member__user__email=email, provider=key
            ).first()
            if key not in settings.SANDBOXED_PROVIDERS or connection is None or not connection.grants_calendars:
                continue
            sandbox = import_module(f"integrations.sandbox.{key}")
            primary = self._calendar_rows(
                connection, [SANDBOX_CALENDARS[key](item) for item in sandbox.calendars_of(email)]
            )
            if primary is not None and primary.checks_busy:
                meetings[email] = self._demo_meeting(primary, sandbox, email)
        return meetings

    def _calendar_rows(self, connection: Connection, listed: list[CalendarInfo]) -> Calendar | None:
        """Store the listed calendars (the member's choices kept when seeding again); the primary one."""
        Calendar.objects.filter(connection=connection).exclude(
            external_id__in=[info.external_id for info in listed]
        ).delete()
        primary = None
        for info in listed:
            calendar, created = Calendar.objects.update_or_create(
                connection=connection,
                external_id=info.external_id,
                defaults={
                    "member": connection.member,
                    "name": info.name,
                    "is_primary": info.is_primary,
                    "can_write": info.can_write,
                },
            )
            if created and info.is_primary:
                calendar.checks_busy = True
                calendar.receives_bookings = (
                    info.can_write
                    and not Calendar.objects.filter(member=connection.member, receives_bookings=True).exists()
                )
                calendar.next_sync_at = timezone.now()
                calendar.save()
            if info.is_primary:
                primary = calendar
        return primary

    def _demo_meeting(self, calendar: Calendar, sandbox, email: str) -> datetime:
        """The member's meeting in the sandbox and in the busy time we keep: one that is still to
        come is kept, so seeding again adds none."""
        live = {event["id"] for event in sandbox.events_of(email)}
        upcoming = BusyInterval.objects.filter(calendar=calendar, event_id__in=live, end__gt=timezone.now()).first()
        zone = ZoneInfo(calendar.member.time_zone)
        if upcoming is not None:
            return upcoming.start.astimezone(zone)
        day = timezone.now().astimezone(zone).date() + timedelta(days=2)
        while day.weekday() >= 5:
            day += timedelta(days=1)
        start = datetime.combine(day, DEMO_MEETING_START, tzinfo=zone)
        end = start + timedelta(minutes=DEMO_MEETING_MINUTES)
        event_id = sandbox.add_event(email, start, end, calendar_id=calendar.external_id)
        BusyInterval.objects.create(calendar=calendar, member=calendar.member, event_id=event_id, start=start, end=end)
        hosts_changed([calendar.member_id])
        return start

    def _meeting_types(self, organization: Organization) -> None:
        members = list(TeamMember.objects.filter(organization=organization).select_related("user").order_by("id"))
        by_email = {member.user.email: member for member in members}
        for name, slug, assignment, location, hosts in [
            ("Intro call", "intro-call", MeetingType.Assignment.ROUND_ROBIN, MeetingType.Location.ZOOM, members),
            (
                "Project review",
                "project-review",
                MeetingType.Assignment.COLLECTIVE,
                MeetingType.Location.ZOOM,
                members[:2],
            ),
            (
                "Phone consultation",
                "phone",
                MeetingType.Assignment.ONE_PERSON,
                MeetingType.Location.PHONE,
                members[1:2],
            ),
            # Neither host has Zoom: the chain goes on to Google Meet, on Leo's account. Berlin's and
            # New York's working hours overlap, so the two can be booked together.
            (
                "Team workshop",
                "team-workshop",
                MeetingType.Assignment.COLLECTIVE,
                MeetingType.Location.ZOOM,
                [by_email["admin@demo.teamschedulerpro.local"], by_email["leo@demo.teamschedulerpro.local"]],
            ),
        ]:
            meeting_type, created = MeetingType.objects.get_or_create(
                organization=organization,
                slug=slug,
                defaults={
                    "name": name,
                    "assignment": assignment,
                    "location": location,
                    "location_detail": "+1 555 0100" if location == MeetingType.Location.PHONE else "",
                    "duration_minutes": 30,
                    "minimum_notice_minutes": 60,
                    "description": "A demo meeting type.",
                },
            )
            if created:
                for position, member in enumerate(hosts):
                    MeetingTypeHost.objects.create(meeting_type=meeting_type, member=member, position=position)
            self.stdout.write(f"  Booking page: {settings.SITE_URL}/{organization.slug}/{meeting_type.slug}/")
