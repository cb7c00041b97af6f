from django.urls import path
from django.views.generic import TemplateView

app_name = "help"

urlpatterns = [
    path("zoom/", TemplateView.as_view(template_name="help/zoom.html"), name="zoom"),
    path("google/", TemplateView.as_view(template_name="help/google.html"), name="google"),
    path("microsoft/", TemplateView.as_view(template_name="help/microsoft.html"), name="microsoft"),
    path("support/", TemplateView.as_view(template_name="help/support.html"), name="support"),
]
