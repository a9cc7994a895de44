"""Retention: raw API logs older than N days are deleted in batches; newer ones and events stay."""

import uuid
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from audit.models import AuditEvent, Direction, RawApiLog
from audit.services import raw_logs_purge
from audit.tasks import raw_logs_purge_task


def make_logs(count: int, *, age: timedelta) -> list[int]:
    created_at = timezone.now() - age
    rows = RawApiLog.objects.bulk_create(
        RawApiLog(
            bank_code="vbank",
            endpoint="/accounts",
            method="GET",
            direction=Direction.REQUEST,
            exchange_id=uuid.uuid4(),
            created_at=created_at,
        )
        for _ in range(count)
    )
    return [row.pk for row in rows]


def delete_statements(queries) -> list[str]:
    return [q["sql"] for q in queries if q["sql"].startswith('DELETE FROM "raw_api_logs"')]


@pytest.mark.django_db
def test_purge_deletes_only_rows_older_than_the_retention():
    make_logs(3, age=timedelta(days=91))
    kept = make_logs(2, age=timedelta(days=89))
    event = AuditEvent.objects.create(action="sync.started")
    AuditEvent.objects.filter(pk=event.pk).update(created_at=timezone.now() - timedelta(days=400))

    deleted = raw_logs_purge(older_than_days=90, batch_size=5000)

    assert deleted == 3
    assert sorted(RawApiLog.objects.values_list("id", flat=True)) == sorted(kept)
    assert AuditEvent.objects.count() == 1


@pytest.mark.django_db
def test_purge_works_in_batches_of_the_given_size():
    make_logs(7, age=timedelta(days=100))
    kept = make_logs(1, age=timedelta(days=1))

    with CaptureQueriesContext(connection) as queries:
        deleted = raw_logs_purge(older_than_days=90, batch_size=3)

    assert deleted == 7
    assert len(delete_statements(queries.captured_queries)) == 3  # 3 + 3 + 1 rows
    assert list(RawApiLog.objects.values_list("id", flat=True)) == kept


@pytest.mark.django_db
def test_purge_with_nothing_old_deletes_nothing():
    kept = make_logs(2, age=timedelta(days=10))

    with CaptureQueriesContext(connection) as queries:
        deleted = raw_logs_purge(older_than_days=90, batch_size=3)

    assert deleted == 0
    assert delete_statements(queries.captured_queries) == []
    assert sorted(RawApiLog.objects.values_list("id", flat=True)) == sorted(kept)


@pytest.mark.parametrize(("days", "batch"), [(0, 10), (-1, 10), (30, 0)])
def test_purge_refuses_non_positive_arguments(days, batch):
    with pytest.raises(ValueError, match="must be positive"):
        raw_logs_purge(older_than_days=days, batch_size=batch)


@pytest.mark.django_db
def test_task_uses_the_retention_setting(settings):
    settings.RAW_LOG_RETENTION_DAYS = 30
    make_logs(2, age=timedelta(days=31))
    kept = make_logs(1, age=timedelta(days=29))

    assert raw_logs_purge_task.delay().get() == 2
    assert list(RawApiLog.objects.values_list("id", flat=True)) == kept


@pytest.mark.django_db
def test_task_with_retention_zero_keeps_everything(settings):
    settings.RAW_LOG_RETENTION_DAYS = 0
    make_logs(2, age=timedelta(days=3650))

    assert raw_logs_purge_task() == 0
    assert RawApiLog.objects.count() == 2


@pytest.mark.django_db
def test_migration_registers_a_daily_purge_with_expiry():
    from django_celery_beat.models import PeriodicTask

    task = PeriodicTask.objects.get(name="purge old raw API logs")

    assert task.task == "audit.raw_logs_purge"
    assert task.enabled is True
    assert task.expire_seconds == 12 * 60 * 60
    assert task.interval is None
    schedule = task.crontab
    assert (schedule.minute, schedule.hour, schedule.day_of_week, schedule.day_of_month) == (
        "30",
        "3",
        "*",
        "*",
    )
    assert schedule.month_of_year == "*"
    assert str(schedule.timezone) == "UTC"


@pytest.mark.django_db
def test_audit_events_older_than_the_retention_go_in_batches(settings):
    from audit.tasks import audit_events_purge_task

    settings.AUDIT_EVENT_RETENTION_DAYS = 365
    settings.DATA_RETENTION_BATCH_ROWS = 2
    old = [AuditEvent.objects.create(action="sync.started") for _ in range(5)]
    AuditEvent.objects.filter(pk__in=[e.pk for e in old]).update(
        created_at=timezone.now() - timedelta(days=366)
    )
    kept = AuditEvent.objects.create(action="sync.succeeded")

    with CaptureQueriesContext(connection) as queries:
        assert audit_events_purge_task() == 5

    deletes = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("DELETE")]
    assert len(deletes) == 3  # 2 + 2 + 1
    assert list(AuditEvent.objects.values_list("pk", flat=True)) == [kept.pk]

    settings.AUDIT_EVENT_RETENTION_DAYS = 0
    AuditEvent.objects.update(created_at=timezone.now() - timedelta(days=5000))
    assert audit_events_purge_task() == 0
    assert AuditEvent.objects.count() == 1


LIFECYCLE_SCHEDULES = {
    "purge old raw API logs": "audit.raw_logs_purge",
    "create raw API log partitions ahead": "audit.raw_log_partitions_ensure",
    "prune analytics snapshots": "analytics.snapshots_prune",
    "prune sync runs": "sync.runs_prune",
    "thin balance snapshots": "banking.balance_snapshots_thin",
    "purge old audit events": "audit.audit_events_purge",
}


@pytest.mark.django_db
def test_every_lifecycle_task_is_scheduled_by_beat_and_exists():
    from django_celery_beat.models import PeriodicTask

    from fintrack.celery import app

    app.loader.import_default_modules()
    scheduled = {
        task.name: task for task in PeriodicTask.objects.filter(name__in=list(LIFECYCLE_SCHEDULES))
    }

    assert {name: task.task for name, task in scheduled.items()} == LIFECYCLE_SCHEDULES
    for task in scheduled.values():
        assert task.enabled and task.crontab is not None and task.expire_seconds
        assert task.task in app.tasks, task.task
        assert task.description
    assert "partitions" in scheduled["purge old raw API logs"].description


@pytest.mark.django_db
def test_the_retention_tasks_run_on_the_maintenance_queue():
    from fintrack.celery import app

    app.loader.import_default_modules()
    router = app.amqp.router
    for task_name in LIFECYCLE_SCHEDULES.values():
        route = router.route({}, task_name)
        assert route["queue"].name == "maintenance", task_name
