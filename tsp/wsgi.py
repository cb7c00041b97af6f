import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tsp.settings")
application = get_wsgi_application()

from django.conf import settings  # noqa: E402  (after the application has set Django up)

if settings.CELERY_TASK_ALWAYS_EAGER:
    # No broker, so no celery beat either (`make run`): this process sweeps follow-up work itself,
    # and polls the members' calendars (push can't reach a local site).
    from bookings.tasks import sweep_follow_ups  # noqa: E402
    from integrations.calendars.tasks import sweep_calendars  # noqa: E402
    from tsp.tasks import start_in_process_sweeper  # noqa: E402

    start_in_process_sweeper(sweep_follow_ups, settings.FOLLOW_UP_SWEEP_SECONDS)
    start_in_process_sweeper(sweep_calendars, settings.CALENDAR_SWEEP_SECONDS)
