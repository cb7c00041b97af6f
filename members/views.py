from datetime import date

from django.contrib import messages
from django.contrib.auth import login
from django.core.exceptions import ValidationError
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from accounts.access import admin_required, ensure_admin, member_required
from tsp.formatting import browser_locale, long_date
from tsp.privacy import secret_url

from . import selectors, services
from .forms import (
    DateOverrideForm,
    MemberForm,
    NewMemberForm,
    ProfileForm,
    SetPasswordForm,
    WeeklyHoursForm,
)


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
            services.create_member(organization=request.organization, invited_by=request.member, **form.cleaned_data)
        except ValidationError as error:
            _apply_errors(form, error)
        else:
            # The same words whether or not the address already has an account somewhere.
            email = form.cleaned_data["email"].strip().lower()
            messages.success(request, _("An invitation was sent to %(email)s.") % {"email": email})
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
    try:
        services.resend_invitation(member=member, invited_by=request.member)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, _("A new invitation was sent to %(email)s.") % {"email": member.email})
    return redirect("members:list")


def _profile_page(request, *, form=None, hours_form=None, hours_status="", override_form=None, status=200):
    member = request.member
    today = timezone.localdate()  # the member's own zone: the middleware activated it
    if form is None:
        form = ProfileForm(initial={"display_name": member.display_name, "time_zone": member.time_zone})
    if hours_form is None:
        hours_form = WeeklyHoursForm.from_stored(selectors.weekly_hours_by_day(member))
    overrides = selectors.upcoming_overrides(member, today=today)
    context = {
        "form": form,
        "hours_form": hours_form,
        "hours_status": hours_status,
        "override_form": override_form or DateOverrideForm(today=today),
        "overrides": overrides,
    }
    return render(request, "members/profile.html", context, status=status)


@member_required
def profile(request):
    if request.method == "POST":
        form = ProfileForm(request.POST)
        if form.is_valid():
            services.update_own_profile(member=request.member, locale=browser_locale(request), **form.cleaned_data)
            messages.success(request, _("Your profile was saved."))
            return redirect("members:profile")
        return _profile_page(request, form=form)
    return _profile_page(request)


@require_POST
@member_required
def weekly_hours(request):
    form = WeeklyHoursForm(request.POST)
    if "copy_monday" in request.POST:
        # Without JavaScript the copy button posts the form: show the copied week, save nothing yet.
        if not form["day_0"].errors:
            form = form.with_monday_copied()
            status = _("Monday’s hours were copied to Tuesday–Friday. Save to keep them.")
            return _profile_page(request, hours_form=form, hours_status=status)
        return _profile_page(request, hours_form=form)
    if not form.is_valid():
        return _profile_page(request, hours_form=form)
    services.set_weekly_hours(member=request.member, weekly=form.weekly)
    messages.success(request, _("Your working hours were saved."))
    return redirect("members:profile")


@require_POST
@member_required
def date_override_add(request):
    form = DateOverrideForm(request.POST, today=timezone.localdate())
    if not form.is_valid():
        return _profile_page(request, override_form=form)
    services.set_date_override(
        member=request.member, date=form.cleaned_data["date"], intervals=form.cleaned_data["hours"]
    )
    messages.success(request, _("Your hours for %(date)s were saved.") % {"date": long_date(form.cleaned_data["date"])})
    return redirect("members:profile")


@require_POST
@member_required
def date_override_remove(request, day: str):
    try:
        parsed = date.fromisoformat(day)
    except ValueError:
        raise Http404 from None
    if not services.remove_date_override(member=request.member, date=parsed):
        raise Http404
    messages.success(request, _("%(date)s uses your weekly hours again.") % {"date": long_date(parsed)})
    return redirect("members:profile")


@secret_url
def accept_invitation(request, token: str):
    invitation = services.find_usable_invitation(token)
    if invitation is None:
        return render(request, "members/invitation_invalid.html", status=404)
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
    return render(request, "members/accept_invitation.html", {"form": form, "invitation": invitation})
