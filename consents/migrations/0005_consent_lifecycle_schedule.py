"""The periodic task "consent lifecycle" (consents/tasks.py: consents.lifecycle_sweep).

Like the sync schedules (sync 0003, 0004), it is created once by name, so operators may re-time
or pause it in the admin without a later migrate undoing it.
"""

from django.conf import settings
from django.db import migrations
from django.utils import timezone

PERIODIC_TASK_NAME = "consent lifecycle"


def create_lifecycle_schedule(apps, schema_editor):
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    PeriodicTasks = apps.get_model("django_celery_beat", "PeriodicTasks")
    minutes = max(int(settings.CONSENT_LIFECYCLE_PERIOD_MINUTES), 1)
    schedule, _ = IntervalSchedule.objects.get_or_create(every=minutes, period="minutes")
    _task, created = PeriodicTask.objects.get_or_create(
        name=PERIODIC_TASK_NAME,
        defaults={
            "task": "consents.lifecycle_sweep",
            "interval": schedule,
            "enabled": True,
            "expire_seconds": minutes * 60,
            "description": (
                "Expires approval requests that timed out, learns unknown consent expiries, "
                "renews consents expiring within CONSENT_EXPIRY_WARNING_DAYS, polls pending "
                "renewals and revokes at the bank consents their renewal replaced "
                "(consents/lifecycle.py)."
            ),
        },
    )
    if created:
        PeriodicTasks.objects.update_or_create(ident=1, defaults={"last_update": timezone.now()})


def remove_lifecycle_schedule(apps, schema_editor):
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    PeriodicTask.objects.filter(name=PERIODIC_TASK_NAME).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("consents", "0004_renewal_and_consent_constraints"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(create_lifecycle_schedule, remove_lifecycle_schedule)]
