"""Enqueueing helpers shared by every app."""

import logging
import random
import threading
import time

from celery import Task
from django.db import transaction
from kombu.exceptions import OperationalError

logger = logging.getLogger(__name__)


def backoff_seconds(attempt: int, *, base: float = 10, cap: float = 3600, retry_after: float | None = None) -> float:
    """How long to wait before try number `attempt + 1`: exponential, capped, with jitter that
    never goes below `base` (a wait of 0 s would be a retry in a tight loop), and never sooner
    than the server's Retry-After."""
    ceiling = max(base, min(cap, base * 2**attempt))
    return max(random.uniform(base, ceiling), retry_after or 0)


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


_in_process_sweepers: dict[str, threading.Thread] = {}


def start_in_process_sweeper(task: Task, every: float) -> None:
    """Without a broker there is no celery beat: a web process runs the periodic task itself, in a
    daemon thread (once per process and task). Several processes may each run it: the work is claimed."""
    if task.name in _in_process_sweepers:
        return

    def loop() -> None:
        from django.db import close_old_connections

        while True:
            time.sleep(every)
            try:
                task.apply()
            except Exception:  # the next round tries again; the thread must not die
                logger.exception("in-process %s failed", task.name)
            finally:
                close_old_connections()

    thread = threading.Thread(target=loop, name=f"sweep {task.name}", daemon=True)
    _in_process_sweepers[task.name] = thread
    thread.start()
