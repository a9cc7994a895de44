"""Heartbeat and next-retry times on runs, and the periodic task "reap stale sync runs".

Like the sync schedule (0003), the periodic task is created once by name, so operators may
re-time or pause it in the admin without a later migrate undoing it.
"""

from django.conf import settings
from django.db import migrations, models
from django.utils import timezone

PERIODIC_TASK_NAME = "reap stale sync runs"


def create_reaper_schedule(apps, schema_editor):
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    PeriodicTasks = apps.get_model("django_celery_beat", "PeriodicTasks")
    seconds = max(int(settings.SYNC_REAPER_PERIOD_SECONDS), 5)
    schedule, _ = IntervalSchedule.objects.get_or_create(every=seconds, period="seconds")
    _task, created = PeriodicTask.objects.get_or_create(
        name=PERIODIC_TASK_NAME,
        defaults={
            "task": "sync.reap_stale_runs",
            "interval": schedule,
            "enabled": True,
            "expire_seconds": seconds,
            "description": (
                "Re-sends queued sync runs whose task message was lost and restarts running "
                "ones whose worker stopped beating (sync/reaper.py)."
            ),
        },
    )
    if created:
        PeriodicTasks.objects.update_or_create(ident=1, defaults={"last_update": timezone.now()})


def remove_reaper_schedule(apps, schema_editor):
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    PeriodicTask.objects.filter(name=PERIODIC_TASK_NAME).delete()


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
