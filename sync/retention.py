"""Retention of sync runs: finished runs older than the retention go, in short batches; each
connection's latest run stays (the connection's status and the sync timeline show it).

Read per chunk of connections (the runs' connection index), deleted by primary key
(audit.retention). A balance snapshot that named a deleted run keeps its reading, its run set
to null (SET_NULL).
"""

import logging
from datetime import datetime, timedelta

from django.utils import timezone

from audit.retention import chunks, delete_ids, keyset_ids
from banking.models import BankConnection
from sync.models import ACTIVE_SYNC_STATUSES, SyncRun

logger = logging.getLogger(__name__)

CONNECTIONS_PER_READ = 500


def sync_runs_prune(*, older_than_days: int, batch_size: int, now: datetime | None = None) -> int:
    """Delete finished runs created before the cutoff, each connection's latest excepted; the
    count. Queued and running runs are never touched (the reaper owns them)."""
    if older_than_days < 1 or batch_size < 1:
        raise ValueError("older_than_days and batch_size must be positive")
    cutoff = (now or timezone.now()) - timedelta(days=older_than_days)
    deleted = 0
    for connection_ids in keyset_ids(BankConnection.objects.all(), size=CONNECTIONS_PER_READ):
        # Only the old runs are read (after the first prune: about a day's worth); a connection
        # with no newer run keeps its newest old one.
        old = list(
            SyncRun.objects.filter(connection_id__in=connection_ids, created_at__lt=cutoff)
            .order_by("connection_id", "-created_at", "-id")
            .values_list("id", "connection_id", "status")
        )
        if not old:
            continue
        has_newer = set(
            SyncRun.objects.filter(connection_id__in=connection_ids, created_at__gte=cutoff)
            .values_list("connection_id", flat=True)
            .distinct()
        )
        doomed = []
        for run_id, connection_id, status in old:
            if connection_id not in has_newer:
                has_newer.add(connection_id)  # its latest run: kept
                continue
            if status not in ACTIVE_SYNC_STATUSES:
                doomed.append(run_id)
        for ids in chunks(doomed, batch_size):
            deleted += delete_ids(SyncRun, ids)
    if deleted:
        logger.info("sync runs: pruned %d finished before %s", deleted, cutoff.isoformat())
    return deleted
