from django.conf import settings
from django.shortcuts import redirect
from django.templatetags.static import static
from django.urls import include, path
from django.views.generic import RedirectView

from . import health


def favicon(request):
    # Browsers ask for /favicon.ico whatever a page links to. Not permanent: the file's name
    # carries a content hash in production and changes with it.
    return redirect(static("img/favicon.svg"))


urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("accounts/", include("allauth.urls")),
    path("app/", RedirectView.as_view(pattern_name="members:list", permanent=False), name="dashboard"),
    path("", RedirectView.as_view(pattern_name="members:list", permanent=False), name="home"),
    path("", include("members.urls")),
    path("", include("meetingtypes.urls")),
    path("", include("integrations.urls")),
    path("help/", include("tsp.help_urls")),
    path("", include("accounts.urls")),
    path("favicon.ico", favicon, name="favicon"),
]

handler500 = "tsp.error_pages.server_error"

if settings.EMAIL_OUTBOX:
    urlpatterns.append(path("dev/outbox/", include("tsp.outbox")))

if settings.PROVIDER_SANDBOX:
    from integrations.sandbox import urls as sandbox_urls

    urlpatterns += sandbox_urls.mounts()

# Last: /<organization>/<meeting type>/ booking pages match almost any path.
urlpatterns.append(path("", include("bookings.urls")))
