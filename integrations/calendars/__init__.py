"""Members' own calendars: which count as busy, their busy time kept in our database, push
channels and polling that keep it fresh, the live check at booking time, and the bookings' own
events on the host's chosen calendar.

- sync.py: the calendar list of a connection, and syncing one calendar's busy time;
- push.py: push channels (Google events.watch, Graph subscriptions) and the notifications;
- webhooks.py: the URLs the providers post their notifications to (mounted by each provider);
- sweep.py: the periodic sweep: due syncs (polling), channels renewed or made;
- live.py: the free/busy check of the chosen hosts just before a booking commits;
- events.py: a booking as an event on each host's chosen calendar, claimed before each call;
- tasks.py: the Celery tasks.
"""
