"""Each host's latest confirmed booking of each meeting type, stored on the host link
(MeetingTypeHost.last_booked_at), so that round-robin reads one row per host instead of every
booking of the type. The rows already there get it from the bookings already there."""

from django.db import migrations, models
from django.db.models import OuterRef, Subquery


def backfill(apps, schema_editor):
    # The historical models, not bookings.last_booked: a migration runs against the schema of its
    # time, whatever the application code becomes later.
    Booking = apps.get_model("bookings", "Booking")
    MeetingTypeHost = apps.get_model("meetingtypes", "MeetingTypeHost")
    latest = (
        Booking.objects.filter(
            meeting_type_id=OuterRef("meeting_type_id"), status="confirmed", host_rows__member_id=OuterRef("member_id")
        )
        .order_by("-created_at")
        .values("created_at")[:1]
    )
    MeetingTypeHost.objects.using(schema_editor.connection.alias).update(last_booked_at=Subquery(latest))


class Migration(migrations.Migration):
    dependencies = [
        ("meetingtypes", "0003_meetingtype_show_branding"),
        ("bookings", "0010_busy_day_triggers"),
    ]

    operations = [
        migrations.AddField(
            model_name="meetingtypehost",
            name="last_booked_at",
            field=models.DateTimeField(blank=True, editable=False, null=True),
        ),
        migrations.RunPython(backfill, migrations.RunPython.noop, elidable=True),
    ]
