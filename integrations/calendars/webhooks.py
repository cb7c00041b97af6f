"""The URLs Google and Microsoft post to when a watched calendar changes.

A notification carries no event, only "this calendar changed": the answer is to sync that
calendar (which asks the provider what changed). So a notification is only trusted as far as
that: it must name a channel we made and carry the calendar's token, checked in constant time.
Neither the token nor anything else from the request is logged.
"""

import json
import logging

from django.http import HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from . import push

logger = logging.getLogger(__name__)

# Graph's validation tokens are short; anything much longer is not Graph.
MAX_VALIDATION_TOKEN = 1024
# Graph batches notifications; more than this in one request is not Graph either.
MAX_NOTIFICATIONS = 1000


@csrf_exempt
@require_POST
def google_calendar_push(request):
    """Google's events.watch notification: X-Goog-Channel-ID names the channel, X-Goog-Channel-Token
    is the token we gave it, X-Goog-Resource-State is "sync" (the channel now works) or
    "exists" / "not_exists" (something changed)."""
    state = request.headers.get("X-Goog-Resource-State")
    if state == "sync":
        # A new channel says it works, often before the watch call that made it has returned and
        # our record of the channel exists. It asks nothing of us: acknowledged, unchecked.
        return HttpResponse(status=200)
    calendar = push.calendar_for_channel("google", request.headers.get("X-Goog-Channel-ID", ""))
    if calendar is None:
        return HttpResponse(status=404)
    if not push.token_matches(calendar, request.headers.get("X-Goog-Channel-Token")):
        logger.warning("calendar %s: Google push notification with a wrong token refused", calendar.pk)
        return HttpResponse(status=403)
    if state in ("exists", "not_exists"):
        push.calendar_changed(calendar.pk)
    return HttpResponse(status=200)


@csrf_exempt
@require_POST
def microsoft_calendar_notifications(request):
    """Graph's change notifications: first the validation handshake of a new subscription (echo
    `validationToken` as plain text), then {"value": [{subscriptionId, clientState, …}, …]}."""
    if "validationToken" in request.GET:
        token = request.GET["validationToken"]
        if not token or len(token) > MAX_VALIDATION_TOKEN:
            return HttpResponse(status=400)
        return HttpResponse(token, content_type="text/plain; charset=utf-8")
    notifications = _notifications(request.body)
    if notifications is None:
        return HttpResponse(status=400)
    calendars = push.calendars_for_channels("microsoft", [subscription for subscription, _state in notifications])
    changed, unknown, refused = set(), 0, 0
    for subscription, client_state in notifications:
        calendar = calendars.get(subscription)
        if calendar is None:
            unknown += 1  # a subscription we no longer keep: it ends at its expiry
        elif push.token_matches(calendar, client_state):
            changed.add(calendar.pk)
        else:
            refused += 1
    if refused:
        logger.warning("Graph notifications with a wrong clientState refused: %s", refused)
    for calendar_id in sorted(changed):
        push.calendar_changed(calendar_id)
    if changed or unknown:
        return HttpResponse(status=202)
    return HttpResponse(status=403)


def _notifications(body: bytes) -> list[tuple[str, str]] | None:
    """(subscriptionId, clientState) of each notification; None when the body is not Graph's."""
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    items = payload.get("value") if isinstance(payload, dict) else None
    if not isinstance(items, list) or not items or len(items) > MAX_NOTIFICATIONS:
        return None
    found = []
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("subscriptionId"), str):
            return None
        client_state = item.get("clientState")
        found.append((item["subscriptionId"], client_state if isinstance(client_state, str) else ""))
    return found
