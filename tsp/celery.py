"""The Celery app. Broker: CELERY_BROKER_URL or REDIS_URL; without one, tasks run in-process."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tsp.settings")

app = Celery("tsp")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
