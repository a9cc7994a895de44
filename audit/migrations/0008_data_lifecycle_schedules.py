"""The data-lifecycle periodic tasks (issue 22), visible and editable in the admin's schedule.

Created once each by name (get_or_create), so operators may re-time or pause them and a later
migrate never undoes it; the retention of each is a setting read by the task when it runs.
Seeded here, in one place, for the tasks of four apps (the task names are strings: no app is
imported). Also corrects the raw-log purge's description (0003) if nobody edited it.
"""

from django.db import migrations

from fintrack.core.periodic_tasks import (
    beat_schedule_changed,
    periodic_task_seed,
    periodic_tasks_remove,
)

DAY = 12 * 60 * 60  # a daily task nobody picked up within 12 hours is dropped; tomorrow's runs

SCHEDULES = [
    # (name, task, crontab minute, hour, expire seconds, description)
    (
        "create raw API log partitions ahead",
        "audit.raw_log_partitions_ensure",
        "5",
        "*",
        60 * 60,
        "PostgreSQL: creates the day partitions of raw_api_logs for today and the next "
        "RAW_LOG_PARTITIONS_AHEAD_DAYS days (rows of a day without one land in the default "
        "partition and are moved in when it is created).",
    ),
    (
        "prune analytics snapshots",
        "analytics.snapshots_prune",
        "40",
        "3",
        DAY,
        "Keeps each user's latest analytics snapshot and the last of each day for "
        "ANALYTICS_SNAPSHOT_RETENTION_DAYS; deletes the rest, DATA_RETENTION_BATCH_ROWS per "
        "DELETE.",
    ),
    (
        "prune sync runs",
        "sync.runs_prune",
        "50",
        "3",
        DAY,
        "Deletes finished sync runs older than SYNC_RUN_RETENTION_DAYS (each connection's "
        "latest stays), DATA_RETENTION_BATCH_ROWS per DELETE.",
    ),
    (
        "thin balance snapshots",
        "banking.balance_snapshots_thin",
        "0",
        "4",
        DAY,
        "Keeps one balance reading a day per account once older than "
        "BALANCE_SNAPSHOT_DAILY_AFTER_DAYS (the last of the day); kwargs {\"full\": true} "
        "re-reads every old day, not only the last week.",
    ),
    (
        "purge old audit events",
        "audit.audit_events_purge",
        "10",
        "4",
        DAY,
        "Deletes audit events older than AUDIT_EVENT_RETENTION_DAYS, "
        "DATA_RETENTION_BATCH_ROWS per DELETE.",
    ),
]

RAW_LOG_PURGE = "purge old raw API logs"
RAW_LOG_PURGE_OLD_DESCRIPTION = (
    "Deletes raw bank request/response logs older than RAW_LOG_RETENTION_DAYS, "
    "5,000 rows per DELETE."
)
RAW_LOG_PURGE_DESCRIPTION = (
    "Removes raw bank request/response logs older than RAW_LOG_RETENTION_DAYS: whole day "
    "partitions dropped on PostgreSQL, DATA_RETENTION_BATCH_ROWS per DELETE elsewhere; then the "
    "shared response bodies no kept log uses."
)


def create_schedules(apps, schema_editor):
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    changed = False
    for name, task, minute, hour, expire_seconds, description in SCHEDULES:
        created = periodic_task_seed(
            apps,
            name=name,
            task=task,
            crontab={"minute": minute, "hour": hour},
            expire_seconds=expire_seconds,
            description=description,
        )
        changed = changed or created
    changed = bool(
        PeriodicTask.objects.filter(
            name=RAW_LOG_PURGE, description=RAW_LOG_PURGE_OLD_DESCRIPTION
        ).update(description=RAW_LOG_PURGE_DESCRIPTION)
    ) or changed
    if changed:
        beat_schedule_changed(apps)


def remove_schedules(apps, schema_editor):
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    periodic_tasks_remove(apps, *[item[0] for item in SCHEDULES])
    PeriodicTask.objects.filter(
        name=RAW_LOG_PURGE, description=RAW_LOG_PURGE_DESCRIPTION
    ).update(description=RAW_LOG_PURGE_OLD_DESCRIPTION)


class Migration(migrations.Migration):
    dependencies = [
        ("audit", "0007_raw_api_bodies"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(create_schedules, remove_schedules)]
