from celery import shared_task
from django.conf import settings
from django.core.mail import send_mail
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import translation

from .models import TeamMember
from .services import issue_invitation


@shared_task(acks_late=True, autoretry_for=(OSError,), retry_backoff=30, retry_jitter=True, max_retries=5)
def send_member_invitation(member_id: int) -> None:
    """Email a new member their set-password link.

    The token is made here, in the worker, so the clear-text token never travels through the
    broker; a retry simply issues a fresh token (the earlier one was never delivered).
    """
    member = TeamMember.objects.select_related("user", "organization").filter(pk=member_id, is_active=True).first()
    if member is None or member.user.has_usable_password():
        return
    token = issue_invitation(member)
    link = settings.SITE_URL + reverse("members:accept_invitation", args=[token])
    context = {"member": member, "link": link, "hours": settings.MEMBER_INVITATION_TTL_HOURS}
    with translation.override(settings.LANGUAGE_CODE):
        subject = render_to_string("members/email/invitation_subject.txt", context).strip()
        body = render_to_string("members/email/invitation.txt", context)
        html = render_to_string("members/email/invitation.html", context)
    send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, [member.user.email], html_message=html)


@shared_task(acks_late=True, autoretry_for=(OSError,), retry_backoff=30, retry_jitter=True, max_retries=5)
def send_existing_account_notice(user_id: int, organization_id: int) -> None:
    """Tell the owner of an address that an admin tried to add it to their organization.

    The admin was told "an invitation was sent", as for any address, so that adding members
    reveals nothing about who has an account; the person learns why nothing else happened.
    """
    from accounts.models import Organization, User

    user = User.objects.filter(pk=user_id).first()
    organization = Organization.objects.filter(pk=organization_id).first()
    if user is None or organization is None:
        return
    context = {"organization": organization, "login_link": settings.SITE_URL + reverse("account_login")}
    with translation.override(settings.LANGUAGE_CODE):
        subject = render_to_string("members/email/existing_account_subject.txt", context).strip()
        body = render_to_string("members/email/existing_account.txt", context)
    send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, [user.email])
