"""Our own 403, 404 and 500 pages, the same with DEBUG on as in production.

With DEBUG on, Django answers a 404 with its technical page (URL patterns, settings): useful to
whoever is writing the code, confusing to whoever is trying the app with `make run`. 403 already
goes through templates/403.html in both modes.
"""

import logging

from django.conf import settings
from django.http import Http404, HttpResponseServerError
from django.template import loader
from django.views import defaults

logger = logging.getLogger(__name__)


class FriendlyErrorPagesMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if settings.DEBUG and response.status_code == 404 and getattr(request, "resolver_match", None) is None:
            # No URL pattern matched, so no view ran: the answer is Django's technical page.
            return defaults.page_not_found(request, Http404())
        return response

    def process_exception(self, request, exception):
        if settings.DEBUG and isinstance(exception, Http404):
            return defaults.page_not_found(request, exception)
        return None


def server_error(request):
    """The 500 page: rendered without the request or the database, which may be what failed."""
    try:
        body = loader.get_template("500.html").render({"support_email": settings.SUPPORT_EMAIL})
    except Exception:
        logger.exception("The 500 page itself failed to render")
        body = "<h1>Server error</h1><p>Something went wrong on our side. Please try again in a few minutes.</p>"
    return HttpResponseServerError(body)
