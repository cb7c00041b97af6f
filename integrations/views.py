"""Connect, callback and disconnect, the same for every provider in the registry.

A member can only ever act on their own connections: no view takes a member id.
"""

import logging

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from accounts.access import member_required
from tsp.privacy import secret_url
from tsp.tasks import enqueue_after_commit

from . import http, oauth, registry, services
from .base import PermissionNotGranted, ProviderResponseError, VideoProvider
from .calendars import choices
from .calendars import tasks as calendar_tasks

logger = logging.getLogger(__name__)


def redirect_uri(provider: VideoProvider) -> str:
    # Exactly the URI registered with the provider: built from SITE_URL, never from the request's Host.
    return settings.SITE_URL + reverse("integrations:callback", kwargs={"provider": provider.key})


def _offered_provider(key: str) -> VideoProvider:
    """The provider named in the URL, if members can connect it on this site; else 404."""
    try:
        provider = registry.get(key)
    except LookupError:
        raise Http404 from None
    if not registry.is_configured(provider):
        raise Http404
    return provider


def _back_to_card(request):
    return redirect(reverse("members:list") + f"#member-{request.member.pk}")


@require_POST
@member_required
def connect(request, provider: str):
    """Start connecting the viewer's own account (there is no way to name someone else's)."""
    video = _offered_provider(provider)
    authorize_url, params = video.authorize_url(redirect_uri(video))
    url = oauth.begin(
        request, provider=video.key, member_id=request.member.pk, authorize_url=authorize_url, params=params
    )
    return redirect(url)


def _refuse(request, message: str, status: int = 400):
    return render(request, "integrations/connect_failed.html", {"message": message}, status=status)


@secret_url
@require_GET
@member_required
def callback(request, provider: str):
    video = _offered_provider(provider)
    names = {"provider": video.name}
    flow = oauth.complete(request, provider=video.key, member_id=request.member.pk, state=request.GET.get("state"))
    if flow is None:
        message = _("This link to connect %(provider)s is not valid or was already used. Nothing was saved.")
        return _refuse(request, message % names, 403)
    if request.GET.get("error"):
        messages.info(request, _("You did not allow access, so %(provider)s is not connected.") % names)
        return _back_to_card(request)
    if not request.GET.get("code"):
        return _refuse(request, _("%(provider)s sent us back without an authorization. Nothing was saved.") % names)
    tokens = None
    try:
        tokens = video.exchange_code(code=request.GET["code"], redirect_uri=redirect_uri(video), verifier=flow.verifier)
        account = video.account_for(tokens)
    except (http.HTTPError, ProviderResponseError) as error:
        logger.warning("%s connect for member %s failed: %s", video.name, request.member.pk, error)
        if tokens is not None:
            # The provider authorized us but we could not finish: leave no live access behind.
            services.revoke_unsaved(provider=video.key, tokens=tokens)
        if isinstance(error, PermissionNotGranted):
            message = _(
                "%(provider)s is not connected: a permission that meeting links need was not allowed. "
                "Connect %(provider)s again and leave every box on its consent page ticked."
            )
        else:
            message = _("%(provider)s did not accept the connection. Please try again.")
        messages.error(request, message % names)
        return _back_to_card(request)
    connection = services.save_connection(member=request.member, provider=video.key, tokens=tokens, account=account)
    if connection.grants_calendars:
        # The card offers the account's calendars: read their list in the background.
        enqueue_after_commit(calendar_tasks.refresh_calendar_list, connection.pk)
    messages.success(
        request, _("%(provider)s connected · %(email)s") % {"provider": video.name, "email": connection.email}
    )
    return _back_to_card(request)


@require_GET
@member_required
def disconnect_confirm(request, provider: str):
    """Ask first: disconnecting cannot be undone from here (a new connect needs consent again)."""
    video = _offered_provider(provider)
    connection = request.member.connection_for(video.key)
    if connection is None:
        messages.info(request, _("%(provider)s is not connected, so there is nothing to disconnect.") % {
            "provider": video.name
        })  # fmt: skip
        return _back_to_card(request)
    context = {"provider": video, "provider_name": video.name, "connection": connection}
    return render(request, "integrations/disconnect_confirm.html", context)


@require_POST
@member_required
def disconnect(request, provider: str):
    video = _offered_provider(provider)
    if services.disconnect(member=request.member, provider=video.key):
        if video.can_revoke:
            message = _("%(provider)s disconnected. Its access was deleted here and revoked at %(provider)s.")
        else:
            # Said here in full: with the connection gone, the card no longer shows where to go.
            message = _(
                "%(provider)s disconnected. Its access was deleted here; to remove the app from your "
                "%(provider)s account too, go to %(places)s."
            )
        where = "; ".join(f"{label}: {url}" for label, url in video.removal_help)
        messages.success(request, message % {"provider": video.name, "places": where})
    return _back_to_card(request)


# --- Calendars ------------------------------------------------------------------------------------


@require_POST
@member_required
def calendar_choices(request):
    """Save which of the viewer's own calendars count as busy and which one receives their bookings."""
    try:
        choices.save_calendar_choices(
            member=request.member,
            busy_ids=request.POST.getlist("busy"),
            booking_calendar_id=request.POST.get("booking_calendar"),
        )
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, _("Your calendar choices were saved."))
    return _back_to_card(request)


@require_POST
@member_required
def refresh_calendars(request, provider: str):
    """Read the list of calendars of the viewer's own account again (one added or renamed since)."""
    video = _offered_provider(provider)
    connection = request.member.connection_for(video.key)
    if connection is None or not connection.is_active or not connection.grants_calendars:
        messages.info(request, _("%(provider)s has no calendars to read here.") % {"provider": video.name})
    else:
        enqueue_after_commit(calendar_tasks.refresh_calendar_list, connection.pk)
        messages.success(request, _("The list of your %(provider)s calendars is being read again.") % {
            "provider": video.name
        })  # fmt: skip
    return _back_to_card(request)
