"""An admin signs up, adds a member; the member sets a password from the emailed link and logs in."""

import re
from datetime import timedelta

import pytest
import time_machine
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from accounts.models import Organization, User
from members.models import MemberInvitation, TeamMember

from .conftest import PASSWORD

pytestmark = pytest.mark.django_db


def _link_in(message) -> str:
    match = re.search(r"https?://\S+", message.body)
    assert match, message.body
    return match.group(0)


def _path(url: str) -> str:
    return re.sub(r"^https?://[^/]+", "", url)


def test_signing_up_creates_an_organization_with_the_new_user_as_admin(client, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("account_signup"),
            {
                "display_name": "Ada Lovelace",
                "organization_name": "Analytical Engines",
                "email": "Ada@Example.com",
                "password1": PASSWORD,
                "password2": PASSWORD,
                "time_zone": "Europe/London",
            },
        )
    assert response.status_code == 302
    user = User.objects.get(email="ada@example.com")
    membership = TeamMember.objects.get(user=user)
    assert membership.role == TeamMember.Role.ADMIN
    assert membership.organization.name == "Analytical Engines"
    assert membership.organization.slug == "analytical-engines"
    assert membership.time_zone == "Europe/London"

    # Email confirmation is mandatory: the link in the email confirms and logs in.
    assert len(mail.outbox) == 1
    confirm_path = _path(_link_in(mail.outbox[0]))
    response = client.post(confirm_path)
    assert response.status_code == 302
    page = client.get(reverse("members:list"))
    assert page.status_code == 200
    assert "Ada Lovelace" in page.content.decode()


def test_sign_up_with_missing_organization_name_changes_nothing(client):
    response = client.post(
        reverse("account_signup"),
        {
            "display_name": "Bob",
            "organization_name": "  ",
            "email": "bob@example.com",
            "password1": PASSWORD,
            "password2": PASSWORD,
            "time_zone": "UTC",
        },
    )
    assert response.status_code == 200
    assert "organization" in response.content.decode().lower()
    assert not User.objects.filter(email="bob@example.com").exists()
    assert not Organization.objects.exists()


def test_sign_up_rejects_an_unknown_time_zone(client):
    response = client.post(
        reverse("account_signup"),
        {
            "display_name": "Bob",
            "organization_name": "Bob Co",
            "email": "bob@example.com",
            "password1": PASSWORD,
            "password2": PASSWORD,
            "time_zone": "Mars/Olympus_Mons",
        },
    )
    assert response.status_code == 200
    assert not User.objects.filter(email="bob@example.com").exists()


def _add_member(client, django_capture_on_commit_callbacks, **overrides):
    data = {"display_name": "Maya Patel", "email": "maya@example.com", "role": "member", "time_zone": "Asia/Kolkata"}
    data.update(overrides)
    with django_capture_on_commit_callbacks(execute=True):
        return client.post(reverse("members:create"), data)


def test_admin_adds_a_member_who_sets_a_password_and_sees_their_own_card(
    client, login, admin, django_capture_on_commit_callbacks
):
    login(admin)
    response = _add_member(client, django_capture_on_commit_callbacks)
    assert response.status_code == 302
    maya = TeamMember.objects.get(user__email="maya@example.com")
    assert maya.organization == admin.organization
    assert maya.role == TeamMember.Role.MEMBER
    assert not maya.user.has_usable_password()

    assert len(mail.outbox) == 1
    invitation_email = mail.outbox[0]
    assert invitation_email.to == ["maya@example.com"]
    assert "Acme Consulting" in invitation_email.subject
    link = _path(_link_in(invitation_email))
    # Only a hash of the token is stored.
    token = link.rstrip("/").rsplit("/", 1)[-1]
    assert not MemberInvitation.objects.filter(token_hash=token).exists()

    client.logout()
    page = client.get(link)
    assert page.status_code == 200
    assert page["Referrer-Policy"] == "same-origin"
    response = client.post(link, {"password1": PASSWORD, "password2": PASSWORD})
    assert response.status_code == 302
    assert response["Location"] == reverse("members:list")

    cards = client.get(reverse("members:list")).content.decode()
    own_card = re.search(rf'<li class="card member-card is-me" id="member-{maya.pk}".*?</li>', cards, re.S)
    assert own_card, "Maya's own card is marked as hers"
    assert "Maya Patel" in own_card.group(0) and "You" in own_card.group(0)

    # She can log in with the new password afterwards too.
    client.logout()
    response = client.post(reverse("account_login"), {"login": "maya@example.com", "password": PASSWORD})
    assert response.status_code == 302
    assert client.get(reverse("members:list")).status_code == 200


def test_an_invitation_link_works_only_once(client, login, admin, django_capture_on_commit_callbacks):
    login(admin)
    _add_member(client, django_capture_on_commit_callbacks)
    link = _path(_link_in(mail.outbox[0]))
    client.logout()
    client.post(link, {"password1": PASSWORD, "password2": PASSWORD})
    client.logout()
    again = client.post(link, {"password1": "another-" + PASSWORD, "password2": "another-" + PASSWORD})
    assert again.status_code == 404
    assert "can't be used" in again.content.decode()
    maya = User.objects.get(email="maya@example.com")
    assert maya.check_password(PASSWORD)


def test_an_invitation_link_expires(client, login, admin, django_capture_on_commit_callbacks, settings):
    login(admin)
    _add_member(client, django_capture_on_commit_callbacks)
    link = _path(_link_in(mail.outbox[0]))
    client.logout()
    with time_machine.travel(timezone.now() + timedelta(hours=settings.MEMBER_INVITATION_TTL_HOURS, minutes=1)):
        response = client.post(link, {"password1": PASSWORD, "password2": PASSWORD})
    assert response.status_code == 404
    assert not User.objects.get(email="maya@example.com").has_usable_password()


def test_resending_an_invitation_makes_the_old_link_useless(client, login, admin, django_capture_on_commit_callbacks):
    login(admin)
    _add_member(client, django_capture_on_commit_callbacks)
    first_link = _path(_link_in(mail.outbox[0]))
    maya = TeamMember.objects.get(user__email="maya@example.com")
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("members:resend_invitation", args=[maya.pk]))
    second_link = _path(_link_in(mail.outbox[1]))
    assert first_link != second_link
    client.logout()
    assert client.get(first_link).status_code == 404
    assert client.get(second_link).status_code == 200


def test_a_weak_password_is_refused_and_the_link_stays_usable(client, login, admin, django_capture_on_commit_callbacks):
    login(admin)
    _add_member(client, django_capture_on_commit_callbacks)
    link = _path(_link_in(mail.outbox[0]))
    client.logout()
    response = client.post(link, {"password1": "12345678", "password2": "12345678"})
    assert response.status_code == 200
    assert "errorlist" in response.content.decode()
    assert client.get(link).status_code == 200


def test_adding_someone_already_on_the_team_says_so_and_sends_nothing(
    client, login, admin, member, django_capture_on_commit_callbacks
):
    login(admin)
    response = _add_member(client, django_capture_on_commit_callbacks, email=member.user.email.upper())
    assert response.status_code == 200
    assert "is already on your team" in response.content.decode()
    assert TeamMember.objects.filter(user=member.user).count() == 1
    assert mail.outbox == []


def test_adding_an_address_with_an_account_elsewhere_looks_like_any_invitation_and_tells_its_owner(
    client, login, admin, outsider, django_capture_on_commit_callbacks
):
    """An admin must not learn who has an account in another organization: same redirect, same words."""
    login(admin)
    fresh = _add_member(client, django_capture_on_commit_callbacks, email="new.person@example.com")
    elsewhere = _add_member(client, django_capture_on_commit_callbacks, email=outsider.user.email.upper())

    assert (
        (fresh.status_code, fresh["Location"])
        == (elsewhere.status_code, elsewhere["Location"])
        == (302, "/app/members/")
    )
    said = [str(message) for message in client.get("/app/members/").context["messages"]]
    assert said == [
        "An invitation was sent to new.person@example.com.",
        f"An invitation was sent to {outsider.user.email}.",
    ]
    # Nothing changes for the existing account; its owner is told why nothing happened.
    assert list(TeamMember.objects.filter(user=outsider.user).values_list("organization", flat=True)) == [
        outsider.organization_id
    ]
    notice = mail.outbox[-1]
    assert notice.to == [outsider.user.email]
    assert "Acme Consulting" in notice.subject and "already has a TeamSchedulerPro login" in notice.body
    assert "/invite/" not in notice.body


def test_invitations_to_one_address_are_limited_per_hour(
    client, login, admin, settings, django_capture_on_commit_callbacks
):
    settings.INVITATIONS_PER_ADDRESS_PER_HOUR = 3
    login(admin)
    _add_member(client, django_capture_on_commit_callbacks)
    maya = TeamMember.objects.get(user__email="maya@example.com")
    resend = reverse("members:resend_invitation", args=[maya.pk])
    for _ in range(2):
        with django_capture_on_commit_callbacks(execute=True):
            client.post(resend)
    assert len(mail.outbox) == 3

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(resend, follow=True)

    assert "maya@example.com was sent several invitations in the last hour" in response.content.decode()
    assert len(mail.outbox) == 3
    with time_machine.travel(timezone.now() + timedelta(hours=1, minutes=1)):
        with django_capture_on_commit_callbacks(execute=True):
            client.post(resend)
    assert len(mail.outbox) == 4


def test_invitations_from_one_admin_are_limited_per_hour(
    client, login, admin, settings, django_capture_on_commit_callbacks
):
    settings.INVITATIONS_PER_ADMIN_PER_HOUR = 2
    login(admin)
    for n in range(2):
        assert _add_member(client, django_capture_on_commit_callbacks, email=f"p{n}@example.com").status_code == 302

    response = _add_member(client, django_capture_on_commit_callbacks, email="p3@example.com")

    assert response.status_code == 200
    assert "You have sent many invitations in the last hour" in response.content.decode()
    assert not User.objects.filter(email="p3@example.com").exists()
    assert len(mail.outbox) == 2


@pytest.mark.parametrize(
    "field, value",
    [("email", "not-an-email"), ("time_zone", "Nowhere/Special"), ("role", "owner"), ("display_name", "x" * 121)],
)
def test_bad_member_input_gets_a_form_error_and_saves_nothing(
    client, login, admin, django_capture_on_commit_callbacks, field, value
):
    login(admin)
    response = _add_member(client, django_capture_on_commit_callbacks, **{field: value})
    assert response.status_code == 200
    assert "errorlist" in response.content.decode()
    assert TeamMember.objects.count() == 1
    assert mail.outbox == []


def test_a_member_resets_a_forgotten_password_by_email(client, member):
    response = client.post(reverse("account_reset_password"), {"email": member.user.email})
    assert response.status_code == 302
    assert len(mail.outbox) == 1
    reset_path = _path(_link_in(mail.outbox[0]))
    response = client.get(reset_path, follow=True)  # allauth moves the key out of the URL first
    assert response.status_code == 200
    form_path = response.redirect_chain[-1][0] if response.redirect_chain else reset_path
    new_password = "a-brand-new-" + PASSWORD
    response = client.post(form_path, {"password1": new_password, "password2": new_password})
    assert response.status_code == 302
    member.user.refresh_from_db()
    assert member.user.check_password(new_password)


def test_logging_out_ends_the_session(client, member):
    client.post(reverse("account_login"), {"login": member.user.email, "password": PASSWORD})
    assert client.get(reverse("members:list")).status_code == 200
    client.post(reverse("account_logout"))
    assert client.get(reverse("members:list")).status_code == 302


def test_the_invitation_email_shows_an_ampersand_in_the_organization_name_as_typed(
    client, login, make_organization, make_member, django_capture_on_commit_callbacks
):
    organization = make_organization("Acme Plumbing & Co")
    login(make_member(organization, role=TeamMember.Role.ADMIN))
    _add_member(client, django_capture_on_commit_callbacks)

    invitation_email = mail.outbox[0]
    assert invitation_email.subject == "You're invited to Acme Plumbing & Co on TeamSchedulerPro"
    assert "You were added to Acme Plumbing & Co on TeamSchedulerPro." in invitation_email.body
    assert "&amp;" not in invitation_email.body
    html = invitation_email.alternatives[0][0]
    assert "<strong>Acme Plumbing &amp; Co</strong>" in html  # the HTML part stays escaped
