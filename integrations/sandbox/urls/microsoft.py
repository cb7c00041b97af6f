"""URLs of the Microsoft sandbox, mounted at /sandbox/microsoft/.

/sandbox/microsoft stands for login.microsoftonline.com (common/oauth2/v2.0/…) and
graph.microsoft.com (v1.0/…). There is no revoke endpoint: Microsoft has none.
"""

from django.urls import path, re_path

from .. import common, microsoft

app_name = "microsoft_sandbox"
bound = {"sandbox": microsoft.SANDBOX}

urlpatterns = [
    path("common/oauth2/v2.0/authorize", common.authorize, bound, name="authorize"),
    path("common/oauth2/v2.0/token", microsoft.token, name="token"),
    path("v1.0/me", microsoft.me, name="me"),
    path("v1.0/me/onlineMeetings", microsoft.online_meetings, name="online_meetings"),
    path("v1.0/me/onlineMeetings/<str:meeting_id>", microsoft.online_meeting, name="online_meeting"),
    *common.control_urlpatterns(microsoft.SANDBOX),
    # Anything else under the API or sign-in paths gets Graph's JSON 404, not an HTML page.
    re_path(r"^(?:v1\.0|common)/", common.not_found, bound),
]
