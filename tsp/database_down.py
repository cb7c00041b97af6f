"""While the database is unreachable, every page answers 503 with Retry-After, not a 500.

A 500 says "our bug" and is retried by nobody; a 503 with Retry-After says "come back shortly" to
browsers, proxies, load balancers and monitoring alike. The page is rendered without the request
and without the database, which is what failed.

Where the error is raised decides how it reaches us. Raised in a view (most requests), it comes to
`process_exception`. Raised in another middleware (the session or the signed-in member being
loaded, the session being saved) it never does: Django turns it into a 500 response on the spot.
For those, a `got_request_exception` receiver marks the request, and `__call__` replaces the 500.
"""

import logging
import sys

from django.core.signals import got_request_exception
from django.db import InterfaceError, OperationalError
from django.http import HttpResponse
from django.template import loader

logger = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 30
_MARK = "_tsp_database_down"
_FALLBACK_PAGE = (
    "<!DOCTYPE html><title>Service unavailable</title><h1>We'll be back in a moment</h1>"
    "<p>The service is briefly unavailable. Please try again in a minute.</p>"
)


def is_database_down(error: BaseException | None) -> bool:
    """OperationalError and InterfaceError: the connection failed or was lost, not bad SQL."""
    return isinstance(error, OperationalError | InterfaceError)


def unavailable_response() -> HttpResponse:
    try:
        body = loader.get_template("503.html").render({"retry_after": RETRY_AFTER_SECONDS})
    except Exception:  # the page must be served whatever else is broken
        logger.exception("The 503 page itself failed to render")
        body = _FALLBACK_PAGE
    response = HttpResponse(body, status=503)
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    response["Cache-Control"] = "no-store"
    return response


def _mark_request(sender, request=None, **kwargs) -> None:
    # Sent while the exception is being handled, so it is still the current one.
    if request is not None and is_database_down(sys.exc_info()[1]):
        setattr(request, _MARK, True)


got_request_exception.connect(_mark_request, dispatch_uid="tsp.database_down")


class DatabaseDownMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if getattr(request, _MARK, False) and response.status_code >= 500:
            return unavailable_response()
        return response

    def process_exception(self, request, exception):
        if not is_database_down(exception):
            return None
        logger.warning("database unavailable (%s): answered 503", exception.__class__.__name__)
        return unavailable_response()
