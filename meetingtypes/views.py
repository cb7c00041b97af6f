from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from accounts.access import admin_required, ensure_admin, member_required
from members.selectors import get_member

from . import selectors, services
from .forms import MeetingTypeForm
from .video_coverage import coverage_of


def _meeting_type_or_404(request, pk: int):
    meeting_type = selectors.get_meeting_type(organization=request.organization, pk=pk)
    if meeting_type is None:
        raise Http404
    return meeting_type


def booking_link(request, meeting_type) -> str:
    path = reverse("bookings:public_page", args=[meeting_type.organization.slug, meeting_type.slug])
    return request.build_absolute_uri(path)


@member_required
def meeting_type_list(request):
    meeting_types = list(selectors.meeting_types_for_list(organization=request.organization))
    for meeting_type in meeting_types:
        meeting_type.organization = request.organization  # already loaded: no query per row
        meeting_type.link = booking_link(request, meeting_type)
        meeting_type.video_coverage = coverage_of(meeting_type, meeting_type.host_links.all())
    embed_script = request.build_absolute_uri("/static/js/embed.js")
    return render(request, "meetingtypes/list.html", {"meeting_types": meeting_types, "embed_script": embed_script})


@admin_required
def meeting_type_create(request):
    form = MeetingTypeForm(request.POST or None, organization=request.organization)
    if request.method == "POST" and form.is_valid():
        meeting_type = services.save_meeting_type(form=form, organization=request.organization)
        messages.success(request, _("“%(name)s” was created.") % {"name": meeting_type.name})
        return redirect("meetingtypes:list")
    return render(request, "meetingtypes/form.html", {"form": form, "title": _("New meeting type")})


@member_required
def meeting_type_edit(request, pk: int):
    meeting_type = _meeting_type_or_404(request, pk)
    ensure_admin(request)
    # As saved, before the form copies a post (perhaps invalid) onto the instance.
    host_links = selectors.host_links_with_accounts(meeting_type=meeting_type)
    video_coverage = coverage_of(meeting_type, host_links)
    form = MeetingTypeForm(request.POST or None, instance=meeting_type, organization=request.organization)
    if request.method == "POST" and form.is_valid():
        services.save_meeting_type(form=form, organization=request.organization)
        messages.success(request, _("“%(name)s” was saved.") % {"name": meeting_type.name})
        return redirect("meetingtypes:list")
    context = {
        "form": form,
        "meeting_type": meeting_type,
        "host_links": host_links,
        "video_coverage": video_coverage,
        "title": meeting_type.name,
    }
    return render(request, "meetingtypes/form.html", context)


@require_POST
@member_required
def meeting_type_toggle(request, pk: int):
    meeting_type = _meeting_type_or_404(request, pk)
    ensure_admin(request)
    services.set_active(meeting_type=meeting_type, active=not meeting_type.is_active)
    if meeting_type.is_active:
        messages.success(request, _("“%(name)s” can be booked again.") % {"name": meeting_type.name})
    else:
        messages.success(
            request, _("“%(name)s” is deactivated: its link no longer takes bookings.") % {"name": meeting_type.name}
        )
    return redirect("meetingtypes:list")


@require_POST
@member_required
def meeting_type_host_up(request, pk: int, member_pk: int):
    meeting_type = _meeting_type_or_404(request, pk)
    ensure_admin(request)
    member = get_member(organization=request.organization, pk=member_pk)
    if member is None or not meeting_type.host_links.filter(member=member).exists():
        raise Http404
    services.move_host_up(meeting_type=meeting_type, member=member)
    return redirect("meetingtypes:edit", pk=meeting_type.pk)
