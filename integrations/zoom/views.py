import json
import logging

from django.conf import settings
from django.contrib import messages
from django.http import HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from accounts.access import member_required
from tsp.privacy import secret_url

from .. import http, oauth, services
from ..base import ProviderResponseError
from ..models import Provider
from . import client, webhook

logger = logging.getLogger(__name__)


def redirect_uri() -> str:
    # Exactly the URI registered with Zoom: built from SITE_URL, never from the request's Host.
    return settings.SITE_URL + reverse("integrations:zoom_callback")


def _back_to_card(request):
    return redirect(reverse("members:list") + f"#member-{request.member.pk}")


@require_POST
@member_required
def connect(request):
    """Start connecting the viewer's own Zoom account (there is no way to name someone else's)."""
    params = {**client.authorize_params(redirect_uri()), "scope": settings.ZOOM_SCOPES}
    url = oauth.begin(
        request,
        provider=Provider.ZOOM,
        member_id=request.member.pk,
        authorize_url=client.authorize_url(),
        params=params,
    )
    return redirect(url)


def _refuse(request, message: str, status: int = 400):
    return render(request, "integrations/connect_failed.html", {"message": message}, status=status)


@secret_url
@require_GET
@member_required
def callback(request):
    flow = oauth.complete(request, provider=Provider.ZOOM, member_id=request.member.pk, state=request.GET.get("state"))
    if flow is None:
        return _refuse(
            request, _("This link to connect Zoom is not valid or was already used. Nothing was saved."), 403
        )
    if request.GET.get("error"):
        messages.info(request, _("You did not allow access, so Zoom is not connected."))
        response = _back_to_card(request)
    elif not request.GET.get("code"):
        return _refuse(request, _("Zoom sent us back without an authorization. Nothing was saved."))
    else:
        tokens = None
        try:
            tokens = client.exchange_code(code=request.GET["code"], redirect_uri=redirect_uri(), verifier=flow.verifier)
            account = client.get_account(tokens.access_token)
        except (http.HTTPError, ProviderResponseError) as error:
            logger.warning("Zoom connect for member %s failed: %s", request.member.pk, error)
            if tokens is not None:
                # Zoom authorized us but we could not finish: leave no live access behind.
                services.revoke_unsaved(provider=Provider.ZOOM, tokens=tokens)
            messages.error(request, _("Zoom did not accept the connection. Please try again."))
            response = _back_to_card(request)
        else:
            connection = services.save_connection(
                member=request.member, provider=Provider.ZOOM, tokens=tokens, account=account
            )
            messages.success(request, _("Zoom connected · %(email)s") % {"email": connection.email})
            response = _back_to_card(request)
    return response


@require_GET
@member_required
def disconnect_confirm(request):
    """Ask first: disconnecting cannot be undone from here (a new connect needs Zoom's consent again)."""
    connection = request.member.zoom_connection
    if connection is None:
        messages.info(request, _("Zoom is not connected, so there is nothing to disconnect."))
        return _back_to_card(request)
    return render(request, "integrations/disconnect_confirm.html", {"provider_name": "Zoom", "connection": connection})


@require_POST
@member_required
def disconnect(request):
    if services.disconnect(member=request.member, provider=Provider.ZOOM):
        messages.success(request, _("Zoom disconnected. Its access was deleted here and revoked at Zoom."))
    return _back_to_card(request)


@csrf_exempt
@require_POST
def zoom_webhook(request):
    secret = settings.ZOOM_WEBHOOK_SECRET_TOKEN
    if not webhook.is_authentic(
        secret=secret,
        timestamp=request.headers.get("x-zm-request-timestamp"),
        given=request.headers.get("x-zm-signature"),
        raw_body=request.body,
    ):
        return HttpResponse(status=401)
    try:
        event = json.loads(request.body)
        name, payload = event["event"], event.get("payload") or {}
    except (ValueError, KeyError, TypeError):
        return JsonResponse({"error": "malformed event"}, status=400)
    if not isinstance(payload, dict):
        return JsonResponse({"error": "malformed event"}, status=400)
    if name == "endpoint.url_validation":
        plain = payload.get("plainToken")
        if not isinstance(plain, str) or not plain:
            return JsonResponse({"error": "plainToken missing"}, status=400)
        return JsonResponse(webhook.url_validation_answer(secret, plain))
    if name == "app_deauthorized":
        user_id = payload.get("user_id")
        if not isinstance(user_id, str) or not user_id:
            return JsonResponse({"error": "user_id missing"}, status=400)
        deleted = services.forget_account(provider=Provider.ZOOM, external_user_id=user_id)
        logger.info("Zoom app_deauthorized: %s connection(s) deleted", deleted)
    # Other events are not subscribed to; acknowledging them stops Zoom's retries.
    return HttpResponse(status=204)
