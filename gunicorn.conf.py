"""gunicorn's configuration (Procfile: `gunicorn -c gunicorn.conf.py tsp.wsgi:application`).

The access log keeps its usual format, but every line goes through tsp.log_redaction first, so
manage links, invitation tokens, password-reset keys and OAuth `code` / `state` never reach it,
neither in the request line nor in the Referer (our pages send their full URL as Referer to our
own static files).
"""

import os

from gunicorn.glogging import Logger

from tsp.log_redaction import RedactSecretUrlsFilter

bind = f"0.0.0.0:{os.environ.get('PORT', '8000')}"
workers = int(os.environ.get("WEB_CONCURRENCY", "3"))
accesslog = os.environ.get("GUNICORN_ACCESS_LOG", "-")


class RedactingLogger(Logger):
    """gunicorn's logger with the secrets in URLs redacted from the access and error logs."""

    def setup(self, cfg):
        super().setup(cfg)
        for log in (self.access_log, self.error_log):
            if not any(isinstance(existing, RedactSecretUrlsFilter) for existing in log.filters):
                log.addFilter(RedactSecretUrlsFilter())


logger_class = RedactingLogger
