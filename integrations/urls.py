from django.urls import include, path

from . import registry, views

app_name = "integrations"

urlpatterns = [
    path("integrations/<slug:provider>/connect/", views.connect, name="connect"),
    path("integrations/<slug:provider>/callback/", views.callback, name="callback"),
    path("integrations/<slug:provider>/disconnect/", views.disconnect, name="disconnect"),
    path("integrations/<slug:provider>/disconnect/confirm/", views.disconnect_confirm, name="disconnect_confirm"),
    # The viewer's own calendars: no URL names a member or another member's calendar.
    path("integrations/calendars/", views.calendar_choices, name="calendar_choices"),
    path("integrations/<slug:provider>/calendars/refresh/", views.refresh_calendars, name="refresh_calendars"),
]

# What a provider needs beyond those (Zoom's deauthorization webhook), under its own prefix.
for _provider in registry.all_providers():
    if _provider.extra_urls():
        urlpatterns.append(path(f"integrations/{_provider.key}/", include(_provider.extra_urls())))
