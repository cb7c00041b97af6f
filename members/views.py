from django.contrib import messages
from django.contrib.auth import login
from django.core.exceptions import ValidationError
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from accounts.access import admin_required, ensure_admin, member_required

from . import selectors, services
from .forms import MemberForm, NewMemberForm, ProfileForm, SetPasswordForm


def _member_or_404(request, pk: int):
    member = selectors.get_member(organization=request.organization, pk=pk)
    if member is None:
        raise Http404
    return member


def _apply_errors(form, error: ValidationError) -> None:
    if hasattr(error, "error_dict"):
        for field, errors in error.error_dict.items():
            form.add_error(field if field in form.fields else None, errors)
    else:
        form.add_error(None, error)


@member_required
def member_list(request):
    members = selectors.members_for_viewer(organization=request.organization, viewer=request.member)
    return render(request, "members/list.html", {"members": members})


@admin_required
def member_create(request):
    form = NewMemberForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            member = services.create_member(organization=request.organization, **form.cleaned_data)
        except ValidationError as error:
            _apply_errors(form, error)
        else:
            messages.success(request, _("%(name)s was added and invited by email.") % {"name": member.display_name})
            return redirect("members:list")
    return render(request, "members/form.html", {"form": form, "title": _("Add a team member")})


@member_required
def member_edit(request, pk: int):
    member = _member_or_404(request, pk)
    ensure_admin(request)
    initial = {"display_name": member.display_name, "role": member.role, "time_zone": member.time_zone}
    form = MemberForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            services.update_member(member=member, **form.cleaned_data)
        except ValidationError as error:
            _apply_errors(form, error)
        else:
            messages.success(request, _("Changes to %(name)s were saved.") % {"name": member.display_name})
            return redirect("members:list")
    context = {"form": form, "member": member, "title": _("Edit %(name)s") % {"name": member.display_name}}
    return render(request, "members/form.html", context)


@require_POST
@member_required
def member_deactivate(request, pk: int):
    member = _member_or_404(request, pk)
    ensure_admin(request)
    try:
        services.deactivate_member(member=member)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        message = _("%(name)s was deactivated and can no longer log in.") % {"name": member.display_name}
        messages.success(request, message)
    return redirect("members:list")


@require_POST
@member_required
def member_reactivate(request, pk: int):
    member = _member_or_404(request, pk)
    ensure_admin(request)
    services.reactivate_member(member=member)
    messages.success(request, _("%(name)s is active again.") % {"name": member.display_name})
    return redirect("members:list")


@require_POST
@member_required
def member_resend_invitation(request, pk: int):
    member = _member_or_404(request, pk)
    ensure_admin(request)
    if not member.is_active or member.user.has_usable_password():
        messages.error(request, _("%(name)s has already set a password.") % {"name": member.display_name})
    else:
        services.send_invitation(member)
        messages.success(request, _("A new invitation was sent to %(email)s.") % {"email": member.email})
    return redirect("members:list")


@member_required
def profile(request):
    member = request.member
    initial = {"display_name": member.display_name, "time_zone": member.time_zone}
    form = ProfileForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        services.update_own_profile(member=member, **form.cleaned_data)
        messages.success(request, _("Your profile was saved."))
        return redirect("members:profile")
    return render(request, "members/profile.html", {"form": form})


def accept_invitation(request, token: str):
    invitation = services.find_usable_invitation(token)
    if invitation is None:
        response = render(request, "members/invitation_invalid.html", status=404)
    else:
        form = SetPasswordForm(request.POST or None, user=invitation.member.user)
        if request.method == "POST" and form.is_valid():
            try:
                member = services.accept_invitation(token=token, password=form.cleaned_data["password1"])
            except ValidationError as error:
                form.add_error(None, error)
            else:
                login(request, member.user, backend="django.contrib.auth.backends.ModelBackend")
                messages.success(request, _("Welcome, %(name)s! Your password is set.") % {"name": member.display_name})
                return redirect("members:list")
        response = render(request, "members/accept_invitation.html", {"form": form, "invitation": invitation})
    # The token is in this page's URL: never let it leak to another site through the Referer header.
    response["Referrer-Policy"] = "no-referrer"
    return response
