"""Skipped-item counts on runs, and the default periodic task "sync all connected banks".

The periodic task is created once (get_or_create by name), so operators may edit, pause or
re-time it in the admin and a later migrate never overwrites their changes.
"""

from django.conf import settings
from django.db import migrations, models

from fintrack.core.periodic_tasks import (
    beat_schedule_changed,
    periodic_task_seed,
    periodic_tasks_remove,
)

PERIODIC_TASK_NAME = "sync all connected banks"


def create_default_schedule(apps, schema_editor):
    minutes = max(int(settings.SYNC_PERIODIC_MINUTES), 1)
    if periodic_task_seed(
        apps,
        name=PERIODIC_TASK_NAME,
        task="sync.sync_all_due",
        every=minutes,
        period="minutes",
        # A fan-out nobody picked up within one period is stale: the next one replaces it.
        expire_seconds=minutes * 60,
        description=(
            "Fans out one sync per connected bank that has not synced within "
            "SYNC_MIN_INTERVAL_MINUTES; skips the others."
        ),
    ):
        beat_schedule_changed(apps)


def remove_default_schedule(apps, schema_editor):
    periodic_tasks_remove(apps, PERIODIC_TASK_NAME)


class Migration(migrations.Migration):
    dependencies = [
        ("sync", "0002_initial"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [
        migrations.AddField(
            model_name="syncrun",
            name="transactions_skipped",
            field=models.PositiveIntegerField(
                default=0, help_text="Bank items that could not be parsed; never stored."
            ),
        ),
        migrations.AddField(
            model_name="syncrun",
            name="warnings",
            field=models.JSONField(
                blank=True, default=list, help_text="Samples of skipped bank items, with the reason."
            ),
        ),
        migrations.RunPython(create_default_schedule, remove_default_schedule),
    ]
