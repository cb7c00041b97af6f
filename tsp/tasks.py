"""Enqueueing helpers shared by every app."""

from celery import Task
from django.db import transaction


def enqueue_after_commit(task: Task, *args, **kwargs) -> None:
    """Queue a task once the current transaction commits.

    Tasks take primary keys and load fresh rows, so they must never run before the rows are
    visible to other connections, and never at all for a transaction that rolls back.
    """
    transaction.on_commit(lambda: task.delay(*args, **kwargs))
