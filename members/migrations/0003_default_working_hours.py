from datetime import time

from django.db import migrations


def add_default_hours(apps, schema_editor):
    TeamMember = apps.get_model("members", "TeamMember")
    WorkingHours = apps.get_model("members", "WorkingHours")
    for member in TeamMember.objects.filter(working_hours__isnull=True):
        WorkingHours.objects.bulk_create(
            WorkingHours(member=member, weekday=day, start=time(9), end=time(17)) for day in range(5)
        )


class Migration(migrations.Migration):
    dependencies = [("members", "0002_workinghours_dateoverride")]
    operations = [migrations.RunPython(add_default_hours, migrations.RunPython.noop)]
