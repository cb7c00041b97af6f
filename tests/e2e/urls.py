"""URLs of the browser tests: the product's, with the development outbox and the provider sandbox mounted.

tsp.urls mounts those two only when the settings that were loaded first allowed it (DEBUG and no real
email server or Zoom app); the journeys need both whatever the environment of the test run says.
"""

from django.urls import include, path

from integrations.sandbox import urls as sandbox_urls
from tsp import urls as product_urls

_MOUNTED_HERE = {"outbox", *sandbox_urls.APP_NAMES}

# Before the product's own patterns: its last ones are the catch-all /<organization>/<meeting type>/ pages.
urlpatterns = [
    path("dev/outbox/", include("tsp.outbox")),
    *sandbox_urls.mounts(),
] + [pattern for pattern in product_urls.urlpatterns if getattr(pattern, "app_name", None) not in _MOUNTED_HERE]

# The product's error pages (if it names its own) stay the same under this URLConf.
for _handler in ("handler400", "handler403", "handler404", "handler500"):
    if hasattr(product_urls, _handler):
        globals()[_handler] = getattr(product_urls, _handler)
