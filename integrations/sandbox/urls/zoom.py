"""URLs of the Zoom sandbox, mounted at /sandbox/zoom/.

Paths mirror Zoom's: the OAuth base is /sandbox/zoom (zoom.us) and the API base /sandbox/zoom/v2
(api.zoom.us/v2). Zoom's paths have no trailing slash, so these don't either.
"""

from django.urls import path, re_path

from .. import common, zoom

app_name = "zoom_sandbox"
bound = {"sandbox": zoom.SANDBOX}

urlpatterns = [
    path("oauth/authorize", common.authorize, bound, name="authorize"),
    path("oauth/token", zoom.token, name="token"),
    path("oauth/revoke", zoom.revoke, name="revoke"),
    path("v2/users/me", zoom.users_me, name="users_me"),
    path("v2/users/me/meetings", zoom.user_meetings, name="user_meetings"),
    path("v2/meetings/<str:meeting_id>", zoom.meeting_detail, name="meeting"),
    *common.control_urlpatterns(zoom.SANDBOX),
    path("control/deauthorize", zoom.control_deauthorize, bound, name="control_deauthorize"),
    # Anything else under the API or OAuth paths gets a JSON 404, as from Zoom, not an HTML page.
    re_path(r"^(?:v2|oauth)/", common.not_found, bound),
]
