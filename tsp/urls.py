from django.conf import settings
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
    path("", include("integrations.urls")),
    path("help/", include("tsp.help_urls")),
]

if settings.EMAIL_OUTBOX:
    urlpatterns.append(path("dev/outbox/", include("tsp.outbox")))

if settings.PROVIDER_SANDBOX:
    urlpatterns.append(path("sandbox/zoom/", include("integrations.sandbox.urls")))

# Last: /<organization>/<meeting type>/ booking pages match almost any path.
urlpatterns.append(path("", include("bookings.urls")))
