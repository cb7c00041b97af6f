"""The database refuses overlapping active bookings of one host (PostgreSQL only).

SQLite, used for development, has no exclusion constraints; there the booking service's own
check inside the transaction is the guard.
"""

from django.db import migrations

CONSTRAINT_SQL = """
ALTER TABLE bookings_bookinghost
  ADD CONSTRAINT bookinghost_no_overlap
  EXCLUDE USING gist (
    member_id WITH =,
    tstzrange(occupied_start, occupied_end, '[)') WITH &&
  ) WHERE (is_active)
"""


def add_constraint(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("CREATE EXTENSION IF NOT EXISTS btree_gist")
        schema_editor.execute(CONSTRAINT_SQL)


def drop_constraint(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("ALTER TABLE bookings_bookinghost DROP CONSTRAINT IF EXISTS bookinghost_no_overlap")


class Migration(migrations.Migration):
    dependencies = [("bookings", "0002_initial")]
    operations = [migrations.RunPython(add_constraint, drop_constraint)]
