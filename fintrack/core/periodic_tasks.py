"""Beat's periodic tasks as the apps' data migrations seed them (django-celery-beat's tables).

Each task is created once, by name (get_or_create), so operators may re-time, pause or edit it
in the admin's schedule and a later migrate never undoes that. After a change a running beat
(DatabaseScheduler) is told its schedule changed. Migrations pass their historical `apps`, so
these work on the models as they were at that migration; task names are strings (no app is
imported).

    periodic_task_seed(apps, name=..., task=..., description=..., expire_seconds=...,
                       every=..., period=... | crontab={"minute": ..., "hour": ...},
                       queue=None) -> bool          True when it was created now
    beat_schedule_changed(apps) -> None             tell a running beat to reload
    periodic_tasks_remove(apps, *names) -> None     a migration's reverse
"""

from django.utils import timezone


def periodic_task_seed(
    apps,
    *,
    name: str,
    task: str,
    description: str,
    expire_seconds: int,
    every: int | None = None,
    period: str | None = None,
    crontab: dict[str, str] | None = None,
    queue: str | None = None,
) -> bool:
    """Create the periodic task `name` unless it exists; an interval (`every` `period`) or a
    UTC crontab (`minute`, `hour`; every day). True when it was created now."""
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    defaults: dict = {
        "task": task,
        "enabled": True,
        "expire_seconds": expire_seconds,
        "description": description,
    }
    if crontab is not None:
        CrontabSchedule = apps.get_model("django_celery_beat", "CrontabSchedule")
        defaults["crontab"], _ = CrontabSchedule.objects.get_or_create(
            minute=crontab["minute"],
            hour=crontab["hour"],
            day_of_week="*",
            day_of_month="*",
            month_of_year="*",
            timezone="UTC",
        )
    else:
        IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
        defaults["interval"], _ = IntervalSchedule.objects.get_or_create(every=every, period=period)
    if queue:
        defaults["queue"] = queue
    _task, created = PeriodicTask.objects.get_or_create(name=name, defaults=defaults)
    return created


def beat_schedule_changed(apps) -> None:
    """Tell a running beat (DatabaseScheduler) that its schedule changed."""
    PeriodicTasks = apps.get_model("django_celery_beat", "PeriodicTasks")
    PeriodicTasks.objects.update_or_create(ident=1, defaults={"last_update": timezone.now()})


def periodic_tasks_remove(apps, *names: str) -> None:
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    PeriodicTask.objects.filter(name__in=names).delete()
