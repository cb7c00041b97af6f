"""Celery tasks of members' calendars (filled in by sync.py, push.py and events.py users)."""

from celery import shared_task


@shared_task
def sweep_calendars() -> int:
    """Every calendar whose sync is due, every push channel near its expiry."""
    from . import sweep

    return sweep.run()
