"""URLs of the Google sandbox, mounted at /sandbox/google/.

/sandbox/google stands for accounts.google.com (o/oauth2/v2/auth), oauth2.googleapis.com (token,
revoke), openidconnect.googleapis.com (v1/userinfo) and www.googleapis.com (calendar/v3) at once:
every GOOGLE_*_URL setting of the sandbox points here.
"""

from django.urls import path, re_path

from .. import common, google

app_name = "google_sandbox"
bound = {"sandbox": google.SANDBOX}
EVENTS = "calendar/v3/calendars/<str:calendar_id>/events"

urlpatterns = [
    path("o/oauth2/v2/auth", common.authorize, bound, name="authorize"),
    path("token", google.token, name="token"),
    path("revoke", google.revoke, name="revoke"),
    path("v1/userinfo", google.userinfo, name="userinfo"),
    path(EVENTS, google.events, name="events"),
    path(f"{EVENTS}/<str:event_id>", google.event_detail, name="event"),
    *common.control_urlpatterns(google.SANDBOX),
    # Anything else under the API or OAuth paths gets Google's JSON 404, not an HTML page.
    re_path(r"^(?:o|v1|calendar)/", common.not_found, bound),
]
