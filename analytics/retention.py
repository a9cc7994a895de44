"""Retention of analytics snapshots: each user's latest, plus the last one of each UTC day for
the recent days (the history a trend needs), the rest deleted in short batches.

A snapshot is ~17 KB (its breakdown) and one is made per sync: unpruned, an hourly sync leaves
24 a day per user. Read per chunk of users (the users' own index), decided in Python, deleted by
primary key (audit.retention): a run never holds the table, whatever its size.
"""

import logging
from datetime import datetime, timedelta

from django.contrib.auth import get_user_model
from django.utils import timezone

from analytics.models import AnalyticsSnapshot
from audit.retention import chunks, delete_ids, keyset_ids, utc_day

logger = logging.getLogger(__name__)

USERS_PER_READ = 500


def snapshots_prunable(rows: list[tuple[int, int, datetime]], *, cutoff: datetime) -> list[int]:
    """The ids to delete among (id, user_id, created_at) rows ordered by user, newest first:
    all but each user's newest, and, from `cutoff` on, the newest of each UTC day."""
    doomed = []
    latest_of: set[int] = set()
    days_kept: set[tuple[int, object]] = set()
    for snapshot_id, user_id, created_at in rows:
        if user_id not in latest_of:
            latest_of.add(user_id)  # the latest: always kept (the dashboard serves it)
            days_kept.add((user_id, utc_day(created_at)))
            continue
        day = (user_id, utc_day(created_at))
        if created_at >= cutoff and day not in days_kept:
            days_kept.add(day)
            continue
        doomed.append(snapshot_id)
    return doomed


def analytics_snapshots_prune(
    *, keep_days: int, batch_size: int, now: datetime | None = None
) -> int:
    """Delete the snapshots `snapshots_prunable` names, for every user; the count."""
    if keep_days < 1 or batch_size < 1:
        raise ValueError("keep_days and batch_size must be positive")
    cutoff = (now or timezone.now()) - timedelta(days=keep_days)
    deleted = 0
    for user_ids in keyset_ids(get_user_model().objects.all(), size=USERS_PER_READ):
        rows = list(
            AnalyticsSnapshot.objects.filter(user_id__in=user_ids)
            .order_by("user_id", "-created_at", "-id")
            .values_list("id", "user_id", "created_at")
        )
        for ids in chunks(snapshots_prunable(rows, cutoff=cutoff), batch_size):
            deleted += delete_ids(AnalyticsSnapshot, ids)
    if deleted:
        logger.info("analytics snapshots: pruned %d (kept one a day since %s)", deleted, cutoff)
    return deleted
