"""Zoom's deauthorization webhook (connect, callback and disconnect are integrations/views.py)."""

import json
import logging

from django.conf import settings
from django.http import HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from .. import services
from . import webhook

logger = logging.getLogger(__name__)


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
        deleted = services.forget_account(provider="zoom", external_user_id=user_id)
        logger.info("Zoom app_deauthorized: %s connection(s) deleted", deleted)
    # Other events are not subscribed to; acknowledging them stops Zoom's retries.
    return HttpResponse(status=204)
