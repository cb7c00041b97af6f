import itertools

import pytest
from allauth.account.models import EmailAddress
from django.core.cache import cache

from accounts.models import Organization, User
from members.models import TeamMember
from members.services import add_default_working_hours

# Fixtures shared by many modules (frozen_now; zoom_sandbox, eager_retries), without a `noqa`
# import of each in every module that uses them.
pytest_plugins = [
    "tests.booking_helpers",
    "tests.zoom_helpers",
    "tests.provider_sandbox_helpers",
    "tests.calendar_helpers",
]

_counter = itertools.count(1)
PASSWORD = "correct-horse-battery-staple-42"


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # Real hashing is deliberately slow; tests create many users.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _video_providers_configured(settings):
    # As on a site with an app at each provider: every provider is offered on the cards and in the
    # chain. (Tests of a provider's real HTTP point it at the sandbox with their own fixture.)
    for prefix in ("ZOOM", "GOOGLE", "MICROSOFT"):
        if not getattr(settings, f"{prefix}_CLIENT_ID"):
            setattr(settings, f"{prefix}_CLIENT_ID", f"test-{prefix.lower()}-client-id")


@pytest.fixture(autouse=True)
def _isolated_cache():
    # Rate limits and cached values must not leak from one test to the next.
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def make_organization(db):
    def make(name: str | None = None) -> Organization:
        name = name or f"Organization {next(_counter)}"
        return Organization.objects.create(name=name, slug=Organization.unique_slug_for(name))

    return make


@pytest.fixture
def make_member(db, make_organization):
    def make(
        organization: Organization | None = None,
        *,
        role: str = TeamMember.Role.MEMBER,
        name: str | None = None,
        time_zone: str = "UTC",
        email: str | None = None,
        password: str | None = PASSWORD,
    ) -> TeamMember:
        n = next(_counter)
        user = User.objects.create_user(email=email or f"person{n}@example.com", password=password)
        EmailAddress.objects.create(user=user, email=user.email, verified=True, primary=True)
        member = TeamMember.objects.create(
            organization=organization or make_organization(),
            user=user,
            display_name=name or f"Person {n}",
            role=role,
            time_zone=time_zone,
        )
        add_default_working_hours(member)
        return member

    return make


@pytest.fixture
def organization(make_organization):
    return make_organization("Acme Consulting")


@pytest.fixture
def admin(make_member, organization):
    return make_member(organization, role=TeamMember.Role.ADMIN, name="Alice Admin", time_zone="Europe/Berlin")


@pytest.fixture
def member(make_member, organization):
    return make_member(organization, name="Maya Member", time_zone="Asia/Kolkata")


@pytest.fixture
def other_member(make_member, organization):
    return make_member(organization, name="Oscar Other", time_zone="America/New_York")


@pytest.fixture
def outsider(make_member, make_organization):
    """An admin of a different organization: must never see or change anything of ours."""
    return make_member(make_organization("Rival Inc"), role=TeamMember.Role.ADMIN, name="Rita Rival")


def client_for(client_class, member: TeamMember | None):
    client = client_class()
    if member is not None:
        client.force_login(member.user)
    return client


@pytest.fixture
def login(client):
    def as_member(member: TeamMember):
        client.force_login(member.user)
        return client

    return as_member


@pytest.fixture(autouse=True)
def _tasks_run_in_process():
    """Tasks run in-process (after commit) unless a test starts a real worker itself."""
    from tsp.celery import app

    previous = app.conf.task_always_eager, app.conf.task_eager_propagates
    app.conf.task_always_eager, app.conf.task_eager_propagates = True, True
    yield
    app.conf.task_always_eager, app.conf.task_eager_propagates = previous


@pytest.fixture
def committed(django_capture_on_commit_callbacks):
    """Run a booking service call, then what its commit queues (video step, emails), in-process."""

    def run(action, **arguments):
        with django_capture_on_commit_callbacks(execute=True):
            booking = action(**arguments)
        booking.refresh_from_db()
        return booking

    return run


@pytest.fixture(scope="session", autouse=True)
def _no_permission_rows_after_each_flush(django_db_setup):
    """Tests that need real transactions (a live server, threads) end with a flush of every table,
    after which Django re-creates content types and auth permissions. Nothing here uses
    permissions (roles live on TeamMember), and re-creating them took half of each such test's
    teardown on PostgreSQL; content types and the site are still re-created."""
    from django.contrib.auth.management import create_permissions
    from django.db.models.signals import post_migrate

    post_migrate.disconnect(create_permissions, dispatch_uid="django.contrib.auth.management.create_permissions")
    yield
