"""Heartbeat and next-retry times on runs, and the periodic task "reap stale sync runs".

Like the sync schedule (0003), the periodic task is created once by name, so operators may
re-time or pause it in the admin without a later migrate undoing it.
"""

from django.conf import settings
from django.db import migrations, models

from fintrack.core.periodic_tasks import (
    beat_schedule_changed,
    periodic_task_seed,
    periodic_tasks_remove,
)

PERIODIC_TASK_NAME = "reap stale sync runs"


def create_reaper_schedule(apps, schema_editor):
    seconds = max(int(settings.SYNC_REAPER_PERIOD_SECONDS), 5)
    if periodic_task_seed(
        apps,
        name=PERIODIC_TASK_NAME,
        task="sync.reap_stale_runs",
        every=seconds,
        period="seconds",
        expire_seconds=seconds,
        description=(
            "Re-sends queued sync runs whose task message was lost and restarts running "
            "ones whose worker stopped beating (sync/reaper.py)."
        ),
    ):
        beat_schedule_changed(apps)


def remove_reaper_schedule(apps, schema_editor):
    periodic_tasks_remove(apps, PERIODIC_TASK_NAME)


class Migration(migrations.Migration):
    dependencies = [
        ("sync", "0003_run_skipped_items_and_default_schedule"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [
        migrations.AddField(
            model_name="syncrun",
            name="heartbeat_at",
            field=models.DateTimeField(
                blank=True,
                help_text="Last sign of life of the worker running it (the reaper).",
                null=True,
            ),
        ),
        migrations.AddField(
            model_name="syncrun",
            name="task_id",
            field=models.CharField(
                blank=True,
                default="",
                help_text="The task message that claimed it; its redelivery may take the run over.",
                max_length=64,
            ),
        ),
        migrations.AddField(
            model_name="syncrun",
            name="next_retry_at",
            field=models.DateTimeField(
                blank=True,
                help_text="When a run waiting to retry after a bank outage resumes.",
                null=True,
            ),
        ),
        migrations.RunPython(create_reaper_schedule, remove_reaper_schedule),
    ]
