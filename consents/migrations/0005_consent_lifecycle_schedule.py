"""The periodic task "consent lifecycle" (consents/tasks.py: consents.lifecycle_sweep).

Like the sync schedules (sync 0003, 0004), it is created once by name, so operators may re-time
or pause it in the admin without a later migrate undoing it.
"""

from django.conf import settings
from django.db import migrations

from fintrack.core.periodic_tasks import (
    beat_schedule_changed,
    periodic_task_seed,
    periodic_tasks_remove,
)

PERIODIC_TASK_NAME = "consent lifecycle"


def create_lifecycle_schedule(apps, schema_editor):
    minutes = max(int(settings.CONSENT_LIFECYCLE_PERIOD_MINUTES), 1)
    if periodic_task_seed(
        apps,
        name=PERIODIC_TASK_NAME,
        task="consents.lifecycle_sweep",
        every=minutes,
        period="minutes",
        expire_seconds=minutes * 60,
        description=(
            "Expires approval requests that timed out, learns unknown consent expiries, "
            "renews consents expiring within CONSENT_EXPIRY_WARNING_DAYS, polls pending "
            "renewals and revokes at the bank consents their renewal replaced "
            "(consents/lifecycle.py)."
        ),
    ):
        beat_schedule_changed(apps)


def remove_lifecycle_schedule(apps, schema_editor):
    periodic_tasks_remove(apps, PERIODIC_TASK_NAME)


class Migration(migrations.Migration):
    dependencies = [
        ("consents", "0004_renewal_and_consent_constraints"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(create_lifecycle_schedule, remove_lifecycle_schedule)]
