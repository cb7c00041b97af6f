import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse

from accounts.management.commands.seed_demo import DEMO_PASSWORD, DEMO_PEOPLE
from members.models import TeamMember

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _development(settings):
    settings.DEBUG = True  # as under `make run`; pytest-django turns it off


def test_outside_development_seeding_is_refused_and_creates_no_login(settings):
    settings.DEBUG = False

    with pytest.raises(CommandError, match="--force"):
        call_command("seed_demo")

    assert not TeamMember.objects.filter(organization__slug="demo").exists()


def test_outside_development_force_seeds_anyway(settings, capsys):
    settings.DEBUG = False

    call_command("seed_demo", "--force")

    assert TeamMember.objects.filter(organization__slug="demo").count() == 4


def test_the_demo_organization_has_an_admin_and_three_members_whose_logins_work(capsys):
    call_command("seed_demo")
    call_command("seed_demo")  # running it again (every `make run`) is harmless
    printed = capsys.readouterr().out
    members = TeamMember.objects.filter(organization__slug="demo")
    assert members.count() == 4
    assert members.filter(role=TeamMember.Role.ADMIN).count() == 1
    assert len({m.time_zone for m in members}) == 4
    for email, *_ in DEMO_PEOPLE:
        assert email in printed
        client = Client()
        response = client.post(reverse("account_login"), {"login": email, "password": DEMO_PASSWORD})
        assert response.status_code == 302, email
        assert client.get(reverse("members:list")).status_code == 200


def test_the_demo_printout_says_where_emails_go_when_the_outbox_is_on(capsys, settings):
    settings.EMAIL_OUTBOX = True
    settings.SITE_URL = "http://127.0.0.1:8123"
    call_command("seed_demo")
    assert "http://127.0.0.1:8123/dev/outbox/" in capsys.readouterr().out

    settings.EMAIL_OUTBOX = False
    call_command("seed_demo")
    assert "/dev/outbox/" not in capsys.readouterr().out
