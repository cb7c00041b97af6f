"""The database keeps bookings_busyday in step with the busy rows it sums up (PostgreSQL only).

After every statement that inserts, updates or deletes booking hosts or calendar busy intervals,
each (member, UTC day) the changed rows overlapped (before and after the change) is worked out
again from both tables. Statement-level triggers with transition tables: a bulk insert of
thousands of rows works out each day once.

Two transactions changing the same member's day would otherwise each write what they saw, and
the later would drop the earlier's change. So each day is locked first (a transaction-scoped
advisory lock, taken in (member, day) order so that two statements don't deadlock over it), and
the day is read again after the lock: in READ COMMITTED each statement of the function takes a
new snapshot, which includes whatever the previous holder of the lock committed.

SQLite, used for development, has no such triggers; there the booking pages read the busy rows
themselves (bookings.selectors).
"""

from django.db import migrations

REFRESH_SQL = r"""
CREATE OR REPLACE FUNCTION bookings_refresh_busy_days(changed_members bigint[], changed_days date[])
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    key record;
BEGIN
    FOR key IN
        SELECT DISTINCT member_id, day FROM unnest(changed_members, changed_days) AS k(member_id, day)
        ORDER BY member_id, day
    LOOP
        -- One lock per (member, day); the namespace constant keeps these apart from other
        -- advisory locks, and a collision of two keys only makes one wait for the other.
        PERFORM pg_advisory_xact_lock(
            ((key.member_id % 2147483647) * 31 + 748213)::int4,
            (key.day - date '2000-01-01')::int4
        );
    END LOOP;

    DELETE FROM bookings_busyday AS d
    USING (SELECT DISTINCT member_id, day FROM unnest(changed_members, changed_days) AS k(member_id, day)) AS k
    WHERE d.member_id = k.member_id AND d.day = k.day;

    -- Overlapping and touching intervals merged (range_agg): a merged span blocks exactly the
    -- starts its parts block, since a meeting has a length; back-to-back bookings and their
    -- buffers become one span.
    INSERT INTO bookings_busyday (member_id, day, starts, ends)
    SELECT k.member_id, k.day,
           string_agg(timestamptz_send(lower(m.span)), '' ORDER BY m.span),
           string_agg(timestamptz_send(upper(m.span)), '' ORDER BY m.span)
    FROM (
        SELECT DISTINCT member_id, day,
               day::timestamp AT TIME ZONE 'UTC' AS day_start,
               (day + 1)::timestamp AT TIME ZONE 'UTC' AS day_end
        FROM unnest(changed_members, changed_days) AS k(member_id, day)
    ) AS k
    CROSS JOIN LATERAL (
        SELECT unnest(range_agg(tstzrange(b.busy_start, b.busy_end, '[)'))) AS span
        FROM (
            SELECT h.occupied_start, h.occupied_end FROM bookings_bookinghost AS h
            WHERE h.member_id = k.member_id AND h.is_active
              AND h.occupied_start >= k.day_start - interval '2 days'  -- no booking is longer (a check constraint)
              AND h.occupied_start < k.day_end AND h.occupied_end > k.day_start
            UNION ALL
            SELECT i.start, i."end" FROM integrations_busyinterval AS i
            WHERE i.member_id = k.member_id AND i.start < k.day_end AND i."end" > k.day_start
        ) AS b (busy_start, busy_end)
    ) AS m
    GROUP BY k.member_id, k.day;
END;
$$;

-- The days the spans [start, end) overlap, each worked out again.
CREATE OR REPLACE FUNCTION bookings_refresh_busy_days_of_spans(
    span_members bigint[], span_starts timestamptz[], span_ends timestamptz[]
) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    members bigint[];
    days date[];
BEGIN
    SELECT array_agg(s.member_id), array_agg(g.day::date) INTO members, days
    FROM unnest(span_members, span_starts, span_ends) AS s (member_id, busy_start, busy_end)
    CROSS JOIN LATERAL generate_series(
        (s.busy_start AT TIME ZONE 'UTC')::date,
        ((s.busy_end - interval '1 microsecond') AT TIME ZONE 'UTC')::date,
        interval '1 day'
    ) AS g (day);
    IF members IS NOT NULL THEN
        PERFORM bookings_refresh_busy_days(members, days);
    END IF;
END;
$$;
"""

# The trigger function of a table whose rows are spans [start_column, end_column) of member_id.
TRIGGER_FUNCTION_SQL = r"""
CREATE OR REPLACE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        PERFORM bookings_refresh_busy_days_of_spans(array_agg(member_id), array_agg({start}), array_agg({end}))
        FROM old_rows;
    END IF;
    IF TG_OP IN ('UPDATE', 'INSERT') THEN
        PERFORM bookings_refresh_busy_days_of_spans(array_agg(member_id), array_agg({start}), array_agg({end}))
        FROM new_rows;
    END IF;
    RETURN NULL;
END;
$$;
"""

# (table, its trigger function, the columns of its spans)
TRIGGERS = [
    ("bookings_bookinghost", "bookings_busy_days_of_booking_hosts", "occupied_start", "occupied_end"),
    ("integrations_busyinterval", "bookings_busy_days_of_calendar_intervals", "start", '"end"'),
]
# A trigger with transition tables handles one event; old_rows/new_rows as each event has them.
EVENTS = [
    ("insert", "INSERT", "REFERENCING NEW TABLE AS new_rows"),
    ("update", "UPDATE", "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows"),
    ("delete", "DELETE", "REFERENCING OLD TABLE AS old_rows"),
]

# The days of the rows already there, worked out once.
BACKFILL_SQL = r"""
SELECT bookings_refresh_busy_days_of_spans(array_agg(member_id), array_agg(busy_start), array_agg(busy_end))
FROM (
    SELECT member_id, occupied_start AS busy_start, occupied_end AS busy_end FROM bookings_bookinghost WHERE is_active
    UNION ALL
    SELECT member_id, start, "end" FROM integrations_busyinterval
) AS spans
"""


def create_triggers(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(REFRESH_SQL, params=None)  # no parameters: its % is SQL's modulo
    for table, function, start, end in TRIGGERS:
        schema_editor.execute(TRIGGER_FUNCTION_SQL.format(function=function, start=start, end=end))
        for suffix, event, referencing in EVENTS:
            schema_editor.execute(
                f"CREATE TRIGGER {table}_busy_days_{suffix} AFTER {event} ON {table} "
                f"{referencing} FOR EACH STATEMENT EXECUTE FUNCTION {function}()"
            )
    schema_editor.execute(BACKFILL_SQL)


def drop_triggers(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for table, function, _start, _end in TRIGGERS:
        for suffix, _event, _referencing in EVENTS:
            schema_editor.execute(f"DROP TRIGGER IF EXISTS {table}_busy_days_{suffix} ON {table}")
        schema_editor.execute(f"DROP FUNCTION IF EXISTS {function}()")
    schema_editor.execute(
        "DROP FUNCTION IF EXISTS bookings_refresh_busy_days_of_spans(bigint[], timestamptz[], timestamptz[])"
    )
    schema_editor.execute("DROP FUNCTION IF EXISTS bookings_refresh_busy_days(bigint[], date[])")


class Migration(migrations.Migration):
    dependencies = [
        ("bookings", "0009_busy_day"),
        ("integrations", "0007_busy_interval_covering_index"),
    ]
    operations = [migrations.RunPython(create_triggers, drop_triggers)]
