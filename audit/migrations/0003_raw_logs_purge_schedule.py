"""The periodic task "purge old raw API logs": daily at 03:30 UTC, deleting in batches.

Created once (get_or_create by name), so operators may edit, pause or re-time it in the admin
and a later migrate never overwrites their changes. The retention itself is
RAW_LOG_RETENTION_DAYS, read by the task at run time.
"""

from django.db import migrations
from django.utils import timezone

PERIODIC_TASK_NAME = "purge old raw API logs"


def create_purge_schedule(apps, schema_editor):
    CrontabSchedule = apps.get_model("django_celery_beat", "CrontabSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    PeriodicTasks = apps.get_model("django_celery_beat", "PeriodicTasks")
    schedule, _ = CrontabSchedule.objects.get_or_create(
        minute="30",
        hour="3",
        day_of_week="*",
        day_of_month="*",
        month_of_year="*",
        timezone="UTC",
    )
    _task, created = PeriodicTask.objects.get_or_create(
        name=PERIODIC_TASK_NAME,
        defaults={
            "task": "audit.raw_logs_purge",
            "crontab": schedule,
            "enabled": True,
            # A purge nobody picked up within 12 hours is dropped; tomorrow's run catches up.
            "expire_seconds": 12 * 60 * 60,
            "description": (
                "Deletes raw bank request/response logs older than RAW_LOG_RETENTION_DAYS, "
                "5,000 rows per DELETE."
            ),
        },
    )
    if created:
        # Tell a running beat (DatabaseScheduler) that its schedule changed.
        PeriodicTasks.objects.update_or_create(ident=1, defaults={"last_update": timezone.now()})


def remove_purge_schedule(apps, schema_editor):
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    PeriodicTask.objects.filter(name=PERIODIC_TASK_NAME).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("audit", "0002_initial"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [
        migrations.RunPython(create_purge_schedule, remove_purge_schedule),
    ]
