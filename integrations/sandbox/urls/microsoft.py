"""URLs of the Microsoft sandbox, mounted at /sandbox/microsoft/.

/sandbox/microsoft stands for login.microsoftonline.com (common/oauth2/v2.0/…) and
graph.microsoft.com (v1.0/…: the user, online meetings, calendars, events, calendarView delta,
getSchedule, subscriptions). There is no revoke endpoint: Microsoft has none.
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
    path("v1.0/me/calendars", microsoft.calendars, name="calendars"),
    path("v1.0/me/calendars/<str:calendar_id>/events", microsoft.calendar_events, name="calendar_events"),
    path("v1.0/me/calendars/<str:calendar_id>/events/<str:event_id>", microsoft.calendar_event, name="calendar_event"),
    path(
        "v1.0/me/calendars/<str:calendar_id>/calendarView/delta",
        microsoft.calendar_view_delta,
        name="calendar_view_delta",
    ),
    path("v1.0/me/calendar/getSchedule", microsoft.get_schedule, name="get_schedule"),
    path("v1.0/me/events", microsoft.calendar_events, name="events"),
    path("v1.0/me/events/<str:event_id>", microsoft.calendar_event, name="event"),
    path("v1.0/me/events/<str:event_id>/cancel", microsoft.cancel_event_endpoint, name="cancel_event"),
    path("v1.0/subscriptions", microsoft.subscriptions_endpoint, name="subscriptions"),
    path("v1.0/subscriptions/<str:subscription_id>", microsoft.subscription_endpoint, name="subscription"),
    *common.control_urlpatterns(microsoft.SANDBOX),
    *microsoft.control_urlpatterns(),
    # Anything else under the API or sign-in paths gets Graph's JSON 404, not an HTML page.
    re_path(r"^(?:v1\.0|common)/", common.not_found, bound),
]
