"""Fixtures that point the product at the Google and Microsoft fakes of the provider sandbox.

Like `zoom_sandbox` (tests/zoom_helpers.py), each serves the product with every fake mounted on
pytest-django's live server, points the provider's settings at its fake, and empties the fake
before and after the test; each gives the live server's URL. `provider_sandboxes` is all three.
They reach every test through `pytest_plugins` in tests/conftest.py.
"""

import pytest

from integrations.sandbox import google, microsoft

from .zoom_helpers import ENCRYPTION_KEY

# The product's URLs with every provider's fake mounted (whatever PROVIDER_SANDBOX was at startup).
SANDBOX_URLCONF = "tests.zoom_helpers"

GOOGLE_CLIENT_ID = "tsp-test-google-client-id.apps.googleusercontent.com"
GOOGLE_CLIENT_SECRET = "tsp-test-google-client-secret-3e9a"
MICROSOFT_CLIENT_ID = "5f1c2a7e-0000-4000-8000-7e57c11e4700"
MICROSOFT_CLIENT_SECRET = "tsp-test-microsoft-client-secret-b27d"


def _serve_the_product_with_the_sandbox(live_server, settings) -> None:
    settings.ROOT_URLCONF = SANDBOX_URLCONF
    settings.SITE_URL = live_server.url
    settings.TOKEN_ENCRYPTION_KEYS = [ENCRYPTION_KEY]
    # The live server speaks plain HTTP, also when the suite runs without DEBUG.
    settings.CSRF_COOKIE_SECURE = settings.SESSION_COOKIE_SECURE = settings.SECURE_SSL_REDIRECT = False


@pytest.fixture
def google_sandbox(live_server, settings, live_server_released):
    """The product pointed at an empty Google sandbox on the live server; the live server's URL."""
    _serve_the_product_with_the_sandbox(live_server, settings)
    base = live_server.url + "/sandbox/google"
    settings.GOOGLE_CLIENT_ID = GOOGLE_CLIENT_ID
    settings.GOOGLE_CLIENT_SECRET = GOOGLE_CLIENT_SECRET
    settings.GOOGLE_OAUTH_BASE_URL = base
    settings.GOOGLE_TOKEN_URL = base + "/token"
    settings.GOOGLE_REVOKE_URL = base + "/revoke"
    settings.GOOGLE_API_BASE_URL = base
    settings.GOOGLE_USERINFO_URL = base + "/v1/userinfo"
    google.reset()
    yield live_server.url
    # A push notification still on its way would reach the next test's database.
    google.wait_for_deliveries()
    google.reset()


@pytest.fixture
def microsoft_sandbox(live_server, settings, live_server_released):
    """The product pointed at an empty Microsoft sandbox on the live server; the live server's URL."""
    _serve_the_product_with_the_sandbox(live_server, settings)
    base = live_server.url + "/sandbox/microsoft"
    settings.MICROSOFT_CLIENT_ID = MICROSOFT_CLIENT_ID
    settings.MICROSOFT_CLIENT_SECRET = MICROSOFT_CLIENT_SECRET
    settings.MICROSOFT_OAUTH_BASE_URL = base + "/common"
    settings.MICROSOFT_API_BASE_URL = base + "/v1.0"
    microsoft.reset()
    yield live_server.url
    # Notifications still on their way would reach the next test's product (the live server stays).
    microsoft.wait_for_deliveries()
    microsoft.reset()


@pytest.fixture
def provider_sandboxes(zoom_sandbox, google_sandbox, microsoft_sandbox):
    """Zoom, Google and Microsoft all pointed at their fakes; the live server's URL."""
    return zoom_sandbox
