from django.urls import path

from . import views

# Not "accounts": that namespace prefix is django-allauth's.
app_name = "organization"

urlpatterns = [
    path("app/organization/", views.organization_settings, name="settings"),
    path("media/logos/<str:name>", views.organization_logo, name="logo"),
]
