from django.urls import path

from .zoom import views as zoom

app_name = "integrations"

urlpatterns = [
    path("integrations/zoom/connect/", zoom.connect, name="zoom_connect"),
    path("integrations/zoom/callback/", zoom.callback, name="zoom_callback"),
    path("integrations/zoom/disconnect/", zoom.disconnect, name="zoom_disconnect"),
    path("integrations/zoom/disconnect/confirm/", zoom.disconnect_confirm, name="zoom_disconnect_confirm"),
    path("integrations/zoom/webhook/", zoom.zoom_webhook, name="zoom_webhook"),
]
