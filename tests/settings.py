"""Settings of a test run: the project's own, with one Redis database per parallel test worker.

`make test` runs the suite on two pytest-xdist workers. Tests clear the cache (a Redis FLUSHDB),
keep the provider fakes' state in Redis and send Celery tasks through it: two workers sharing one
database would wipe and steal each other's. So worker gwN uses the database N after the one
REDIS_URL names. The processes a test starts (a Celery worker, gunicorn, manage.py) inherit that
URL and load the project's own settings, as they would anywhere else.
"""

import os
from urllib.parse import urlsplit, urlunsplit

_worker = os.environ.get("PYTEST_XDIST_WORKER", "")
if _worker.startswith("gw"):
    if os.environ.get("REDIS_URL"):
        _url = urlsplit(os.environ["REDIS_URL"])
        _database = (int(_url.path.strip("/") or 0) + int(_worker[2:])) % 16
        os.environ["REDIS_URL"] = urlunsplit(_url._replace(path=f"/{_database}"))
    # For the processes this worker starts: the project's settings, with the URL above.
    os.environ["DJANGO_SETTINGS_MODULE"] = "tsp.settings"

from tsp.settings import *  # noqa: E402, F403
