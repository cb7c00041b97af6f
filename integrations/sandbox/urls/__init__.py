"""URLs of the provider sandbox: one module per provider, each mounted at /sandbox/<provider>/.

Mounted only when settings.PROVIDER_SANDBOX is true (tsp/urls.py), and by test urlconfs that need
the fakes whatever the environment says. `mounts()` gives all of them at once, before the product's
own patterns (whose last ones match almost any path).
"""

from django.urls import include, path

# The URL namespace of each provider's fake; URLconfs that mount them leave the product's copies out.
APP_NAMES = ("zoom_sandbox", "google_sandbox", "microsoft_sandbox")


def mounts() -> list:
    return [
        path("sandbox/zoom/", include("integrations.sandbox.urls.zoom")),
        path("sandbox/google/", include("integrations.sandbox.urls.google")),
        path("sandbox/microsoft/", include("integrations.sandbox.urls.microsoft")),
    ]
