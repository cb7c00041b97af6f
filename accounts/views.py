from django.contrib import messages
from django.core.files.storage import default_storage
from django.http import FileResponse, Http404
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from accounts.access import admin_required

from . import services
from .branding import LOGO_CONTENT_TYPES, LOGO_NAME
from .forms import OrganizationForm
from .models import Organization


@admin_required
def organization_settings(request):
    organization = request.organization
    has_logo = bool(organization.logo)
    if request.method == "POST":
        form = OrganizationForm(request.POST, request.FILES, has_logo=has_logo)
        if form.is_valid():
            services.update_organization(
                organization=organization,
                name=form.cleaned_data["name"],
                accent_color=form.cleaned_data["accent_color"],
                new_logo=form.cleaned_data["logo"],
                remove_logo=form.cleaned_data.get("remove_logo", False),
            )
            messages.success(request, _("The organization's settings were saved."))
            return redirect("organization:settings")
    else:
        form = OrganizationForm(
            initial={"name": organization.name, "accent_color": organization.accent_color}, has_logo=has_logo
        )
    return render(request, "accounts/organization.html", {"form": form, "organization": organization})


@require_GET
def organization_logo(request, name: str):
    """A current logo of some organization, by its random file name (booking pages are public)."""
    path = f"logos/{name}"
    if not LOGO_NAME.fullmatch(name) or not Organization.objects.filter(logo=path).exists():
        raise Http404
    try:
        file = default_storage.open(path, "rb")
    except FileNotFoundError:
        raise Http404 from None
    response = FileResponse(file, content_type=LOGO_CONTENT_TYPES[name.rsplit(".", 1)[1]])
    # A new upload gets a new name, so this address never changes its content.
    response["Cache-Control"] = "public, max-age=31536000, immutable"
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response["Cross-Origin-Resource-Policy"] = "same-site"
    return response
