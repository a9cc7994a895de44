"""Analytics snapshot retention: each user's latest, plus the last of each day for N days."""

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from analytics.models import AnalyticsSnapshot
from analytics.retention import analytics_snapshots_prune
from analytics.tasks import snapshots_prune

NOW = datetime(2026, 6, 30, 12, tzinfo=UTC)


def snapshot(user, at: datetime) -> AnalyticsSnapshot:
    row = AnalyticsSnapshot.objects.create(user=user)
    AnalyticsSnapshot.objects.filter(pk=row.pk).update(created_at=at)
    return row


def kept_times(user) -> list[datetime]:
    return sorted(AnalyticsSnapshot.objects.filter(user=user).values_list("created_at", flat=True))


@pytest.mark.django_db
def test_latest_plus_the_last_of_each_recent_day_are_kept(user, make_user):
    other = make_user(email="boris.snapshots@example.com")
    hours = [
        NOW - timedelta(days=days, hours=hour)
        for days in range(0, 40)
        for hour in (1, 5, 9)  # three a day: hourly syncs, fewer for the test
    ]
    for at in hours:
        snapshot(user, at)
    lonely = snapshot(other, NOW - timedelta(days=300))  # the other user's only, very old

    deleted = analytics_snapshots_prune(keep_days=30, batch_size=7, now=NOW)

    kept = kept_times(user)
    cutoff = NOW - timedelta(days=30)
    recent_days = {at.date() for at in hours if at >= cutoff}
    # One a day since the cutoff (the newest of its day), the latest of all included.
    assert len(kept) == len(recent_days)
    for day in recent_days:
        newest = max(at for at in hours if at.date() == day and at >= cutoff)
        assert newest in kept
    assert max(kept) == max(hours)
    assert min(kept) >= cutoff
    assert deleted == len(hours) - len(kept)
    assert list(AnalyticsSnapshot.objects.filter(user=other).values_list("pk", flat=True)) == [
        lonely.pk
    ]


@pytest.mark.django_db
def test_a_user_with_only_old_snapshots_keeps_the_latest(user):
    old = [snapshot(user, NOW - timedelta(days=100 + n)) for n in range(4)]

    assert analytics_snapshots_prune(keep_days=30, batch_size=100, now=NOW) == 3
    assert list(AnalyticsSnapshot.objects.values_list("pk", flat=True)) == [old[0].pk]


@pytest.mark.django_db
def test_deletes_are_batched(user):
    for n in range(10):
        snapshot(user, NOW - timedelta(days=100 + n))

    with CaptureQueriesContext(connection) as queries:
        assert analytics_snapshots_prune(keep_days=30, batch_size=4, now=NOW) == 9

    deletes = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("DELETE")]
    assert len(deletes) == 3  # 4 + 4 + 1


@pytest.mark.django_db
def test_the_task_reads_the_setting_and_zero_keeps_everything(user, settings):
    for n in range(3):
        snapshot(user, NOW - timedelta(days=400 + n))
    settings.ANALYTICS_SNAPSHOT_RETENTION_DAYS = 0
    assert snapshots_prune() == 0
    settings.ANALYTICS_SNAPSHOT_RETENTION_DAYS = 90
    assert snapshots_prune() == 2
    assert AnalyticsSnapshot.objects.count() == 1
