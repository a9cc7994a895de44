"""Connect requests of every kind (issue 21: renewals, fresh requests and demo approvals are
carried out by a worker too), and the periodic task "reap stale connect requests".

Like the sync reaper's (sync 0004), the periodic task is created once by name, so operators may
re-time or pause it in the admin without a later migrate undoing it.
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

from fintrack.core.periodic_tasks import (
    beat_schedule_changed,
    periodic_task_seed,
    periodic_tasks_remove,
)

PERIODIC_TASK_NAME = "reap stale connect requests"


def create_reaper_schedule(apps, schema_editor):
    seconds = max(int(settings.SYNC_REAPER_PERIOD_SECONDS), 5)
    if periodic_task_seed(
        apps,
        name=PERIODIC_TASK_NAME,
        task="onboarding.reap_stale_connect_requests",
        every=seconds,
        period="seconds",
        queue="maintenance",
        expire_seconds=seconds,
        description=(
            "Re-sends queued connect requests (connect, renew, request again, demo "
            "approval) whose task message was lost, restarts running ones whose worker "
            "died, and fails those that cannot finish (users/onboarding/reaper.py)."
        ),
    ):
        beat_schedule_changed(apps)


def remove_reaper_schedule(apps, schema_editor):
    periodic_tasks_remove(apps, PERIODIC_TASK_NAME)


class Migration(migrations.Migration):
    dependencies = [
        ("users", "0007_connect_requests"),
        ("consents", "0005_consent_lifecycle_schedule"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [
        migrations.AddField(
            model_name="connectrequest",
            name="kind",
            field=models.CharField(
                choices=[
                    ("connect", "Connect"),
                    ("renew", "Renew consents"),
                    ("request_again", "Request consents again"),
                    ("approve_demo", "Demo approval"),
                ],
                default="connect",
                max_length=16,
            ),
        ),
        migrations.AddField(
            model_name="connectrequest",
            name="consent",
            field=models.ForeignKey(
                blank=True,
                help_text="The consent a demo approval approves.",
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to="consents.consent",
            ),
        ),
        migrations.AlterField(
            model_name="connectrequest",
            name="outcome",
            field=models.CharField(
                blank=True,
                default="",
                help_text="Once succeeded: sync_started, awaiting_approval or authorized.",
                max_length=32,
            ),
        ),
        migrations.RunPython(create_reaper_schedule, remove_reaper_schedule),
    ]
