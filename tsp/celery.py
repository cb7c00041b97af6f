"""The Celery app. Broker: CELERY_BROKER_URL or REDIS_URL; without one, tasks run in-process."""

import os

from celery import Celery
from celery.signals import task_postrun, task_prerun

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tsp.settings")

app = Celery("tsp")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@task_prerun.connect
@task_postrun.connect
def close_old_database_connections(sender=None, **_signal) -> None:
    """Before and after each task, the worker's database connections follow Django's rules for a
    request: kept for DB_CONN_MAX_AGE, checked before they are used again, closed after an error.

    Celery's own Django support closes them after every task (unless CELERY_DB_REUSE_MAX says
    otherwise), and a new PostgreSQL connection per task cost more CPU than the rest of a booking's
    follow-up: the server starts a process for each and reads its catalog again."""
    if getattr(getattr(sender, "request", None), "is_eager", False):
        return  # run in-process, inside the caller's request (or test) and its transaction
    from django.db import close_old_connections

    close_old_connections()
