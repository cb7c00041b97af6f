"""URLs of the Zoom sandbox, mounted at /sandbox/zoom/ only when settings.PROVIDER_SANDBOX is true.

Paths mirror Zoom's: the OAuth base is /sandbox/zoom (zoom.us) and the API base /sandbox/zoom/v2
(api.zoom.us/v2). Zoom's paths have no trailing slash, so these don't either.
"""

from django.urls import path, re_path

from . import zoom

app_name = "zoom_sandbox"

urlpatterns = [
    path("oauth/authorize", zoom.authorize, name="authorize"),
    path("oauth/token", zoom.token, name="token"),
    path("oauth/revoke", zoom.revoke, name="revoke"),
    path("v2/users/me", zoom.users_me, name="users_me"),
    path("v2/users/me/meetings", zoom.user_meetings, name="user_meetings"),
    path("v2/meetings/<str:meeting_id>", zoom.meeting_detail, name="meeting"),
    path("control/", zoom.control_page, name="control"),
    path("control/remove-app", zoom.control_remove_app, name="control_remove_app"),
    path("control/fail", zoom.control_fail, name="control_fail"),
    path("control/expire-tokens", zoom.control_expire_tokens, name="control_expire_tokens"),
    path("control/reset", zoom.control_reset, name="control_reset"),
    path("control/state", zoom.control_state, name="control_state"),
    path("control/deauthorize", zoom.control_deauthorize, name="control_deauthorize"),
    # Anything else under the API or OAuth paths gets a JSON 404, as from Zoom, not an HTML page.
    re_path(r"^(?:v2|oauth)/", zoom.not_found),
]
