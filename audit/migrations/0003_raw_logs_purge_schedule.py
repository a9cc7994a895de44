"""The periodic task "purge old raw API logs": daily at 03:30 UTC, deleting in batches.

Created once (get_or_create by name), so operators may edit, pause or re-time it in the admin
and a later migrate never overwrites their changes. The retention itself is
RAW_LOG_RETENTION_DAYS, read by the task at run time.
"""

from django.db import migrations

from fintrack.core.periodic_tasks import (
    beat_schedule_changed,
    periodic_task_seed,
    periodic_tasks_remove,
)

PERIODIC_TASK_NAME = "purge old raw API logs"


def create_purge_schedule(apps, schema_editor):
    if periodic_task_seed(
        apps,
        name=PERIODIC_TASK_NAME,
        task="audit.raw_logs_purge",
        crontab={"minute": "30", "hour": "3"},
        # A purge nobody picked up within 12 hours is dropped; tomorrow's run catches up.
        expire_seconds=12 * 60 * 60,
        description=(
            "Deletes raw bank request/response logs older than RAW_LOG_RETENTION_DAYS, "
            "5,000 rows per DELETE."
        ),
    ):
        beat_schedule_changed(apps)


def remove_purge_schedule(apps, schema_editor):
    periodic_tasks_remove(apps, PERIODIC_TASK_NAME)


class Migration(migrations.Migration):
    dependencies = [
        ("audit", "0002_initial"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [
        migrations.RunPython(create_purge_schedule, remove_purge_schedule),
    ]
