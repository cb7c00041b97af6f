"""URLs of the Google sandbox, mounted at /sandbox/google/.

/sandbox/google stands for accounts.google.com (o/oauth2/v2/auth), oauth2.googleapis.com (token,
revoke), openidconnect.googleapis.com (v1/userinfo) and www.googleapis.com (calendar/v3) at once:
every GOOGLE_*_URL setting of the sandbox points here.
"""

from django.urls import path, re_path

from .. import common, google

app_name = "google_sandbox"
bound = {"sandbox": google.SANDBOX}
CALENDAR = "calendar/v3/calendars/<str:calendar_id>"

urlpatterns = [
    path("o/oauth2/v2/auth", common.authorize, bound, name="authorize"),
    path("token", google.token, name="token"),
    path("revoke", google.revoke, name="revoke"),
    path("v1/userinfo", google.userinfo, name="userinfo"),
    path("calendar/v3/users/me/calendarList", google.calendar_list, name="calendar_list"),
    path("calendar/v3/freeBusy", google.free_busy, name="free_busy"),
    path("calendar/v3/channels/stop", google.stop_channel, name="stop_channel"),
    path(f"{CALENDAR}/events", google.events, name="events"),
    # Before the event URL: "watch" is no event id (base32hex has no "w").
    path(f"{CALENDAR}/events/watch", google.watch, name="watch"),
    path(f"{CALENDAR}/events/<str:event_id>", google.event_detail, name="event"),
    *common.control_urlpatterns(google.SANDBOX),
    *google.control_urlpatterns(),
    # Anything else under the API or OAuth paths gets Google's JSON 404, not an HTML page.
    re_path(r"^(?:o|v1|calendar)/", common.not_found, bound),
]
