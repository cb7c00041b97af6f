"""Enqueueing helpers shared by every app."""

import logging

from celery import Task
from django.db import transaction
from kombu.exceptions import OperationalError

logger = logging.getLogger(__name__)


def enqueue_after_commit(task: Task, *args, **kwargs) -> None:
    """Queue a task once the current transaction commits.

    Tasks take primary keys and load fresh rows, so they must never run before the rows are
    visible to other connections, and never at all for a transaction that rolls back.
    """
    transaction.on_commit(lambda: _enqueue(task, args, kwargs))


def _enqueue(task: Task, args: tuple, kwargs: dict) -> None:
    try:
        task.delay(*args, **kwargs)
    except OperationalError:
        # The broker is unreachable. What was committed stays committed and the client gets their
        # answer; the work is picked up again by the beat task that looks for missed follow-ups.
        logger.error("could not queue %s%r: broker unreachable", task.name, args, exc_info=True)
