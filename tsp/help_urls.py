from django.urls import path
from django.views.generic import TemplateView

app_name = "help"

urlpatterns = [
    path("zoom/", TemplateView.as_view(template_name="help/zoom.html"), name="zoom"),
    path("support/", TemplateView.as_view(template_name="help/support.html"), name="support"),
]
