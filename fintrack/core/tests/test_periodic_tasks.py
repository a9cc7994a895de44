"""Periodic tasks seeded by the apps' migrations (fintrack/core/periodic_tasks.py): created once
by name, never overwriting what an operator changed; the migrations' seeded set is complete."""

import importlib

import pytest
from django.apps import apps as live_apps
from django_celery_beat.models import PeriodicTask, PeriodicTasks

from audit.tests.test_retention import LIFECYCLE_SCHEDULES
from fintrack.core.periodic_tasks import (
    beat_schedule_changed,
    periodic_task_seed,
    periodic_tasks_remove,
)

pytestmark = pytest.mark.django_db


def test_a_task_is_created_once_and_an_operators_change_survives_a_second_seed():
    seed = dict(
        name="test task",
        task="sync.sync_all_due",
        every=15,
        period="minutes",
        expire_seconds=900,
        description="first",
    )
    assert periodic_task_seed(live_apps, **seed) is True
    PeriodicTask.objects.filter(name="test task").update(enabled=False, description="mine")
    assert periodic_task_seed(live_apps, **{**seed, "description": "second"}) is False

    task = PeriodicTask.objects.get(name="test task")
    assert (task.enabled, task.description) == (False, "mine")
    assert (task.interval.every, task.interval.period, task.crontab) == (15, "minutes", None)


def test_a_crontab_task_runs_daily_in_utc_on_its_queue():
    periodic_task_seed(
        live_apps,
        name="nightly",
        task="audit.raw_logs_purge",
        crontab={"minute": "30", "hour": "3"},
        expire_seconds=60,
        description="d",
        queue="maintenance",
    )
    task = PeriodicTask.objects.get(name="nightly")
    crontab = task.crontab
    assert (crontab.minute, crontab.hour, crontab.day_of_week, str(crontab.timezone)) == (
        "30",
        "3",
        "*",
        "UTC",
    )
    assert (task.interval, task.queue) == (None, "maintenance")


def test_beat_is_told_and_removal_takes_only_the_named_tasks():
    for name in ("a", "b"):
        periodic_task_seed(
            live_apps,
            name=name,
            task="t",
            every=1,
            period="hours",
            expire_seconds=1,
            description="",
        )
    before = PeriodicTasks.last_change()
    beat_schedule_changed(live_apps)
    assert PeriodicTasks.last_change() is not None and PeriodicTasks.last_change() != before
    periodic_tasks_remove(live_apps, "a")
    assert set(PeriodicTask.objects.filter(name__in=["a", "b"]).values_list("name", flat=True)) == {
        "b"
    }


SEEDING_MIGRATIONS = [
    ("sync.migrations.0003_run_skipped_items_and_default_schedule", "create_default_schedule"),
    ("sync.migrations.0004_run_heartbeat_and_reaper_schedule", "create_reaper_schedule"),
    ("consents.migrations.0005_consent_lifecycle_schedule", "create_lifecycle_schedule"),
    ("users.migrations.0008_connect_request_kinds_and_reaper_schedule", "create_reaper_schedule"),
    ("audit.migrations.0003_raw_logs_purge_schedule", "create_purge_schedule"),
    ("audit.migrations.0008_data_lifecycle_schedules", "create_schedules"),
]


def test_the_migrations_seed_every_periodic_task_of_the_apps():
    PeriodicTask.objects.all().delete()
    for module, function in SEEDING_MIGRATIONS:
        getattr(importlib.import_module(module), function)(live_apps, None)
    seeded = dict(PeriodicTask.objects.values_list("name", "task"))
    assert seeded == {
        "sync all connected banks": "sync.sync_all_due",
        "reap stale sync runs": "sync.reap_stale_runs",
        "consent lifecycle": "consents.lifecycle_sweep",
        "reap stale connect requests": "onboarding.reap_stale_connect_requests",
        **LIFECYCLE_SCHEDULES,  # the data-lifecycle tasks (audit 0003, 0008)
    }
