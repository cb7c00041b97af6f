from django.urls import include, path
from django.views.generic import RedirectView

from . import health

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("accounts/", include("allauth.urls")),
    path("app/", RedirectView.as_view(pattern_name="members:list", permanent=False), name="dashboard"),
    path("", RedirectView.as_view(pattern_name="members:list", permanent=False), name="home"),
    path("", include("members.urls")),
    path("", include("meetingtypes.urls")),
    # Last: /<organization>/<meeting type>/ booking pages match almost any path.
    path("", include("bookings.urls")),
]
