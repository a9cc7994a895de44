"""The reaper: heals sync runs that a lost task message or a dead worker left active.

A run holds its connection's lock (`one_active_sync_per_connection`) while it is queued or
running, so a run nobody works on would block the bank for good. Two faults leave one:
- the task message never reached the broker (the web process died between commit and send, or
  Redis was down): the run stays `queued`;
- the worker died mid-run (kill -9, OOM, a lost node): the run stays `running`, and Redis would
  only redeliver the message after the broker's visibility timeout (an hour).
Beat runs `sync.reap_stale_runs` every `SYNC_REAPER_PERIOD_SECONDS`. A queued run older than
`SYNC_QUEUED_STALE_SECONDS` gets its message sent again; a running run whose heartbeat is older
than `SYNC_HEARTBEAT_TIMEOUT_SECONDS` goes back to `queued` and is sent again (its rows are safe:
watermarks move only when a run succeeds), until it has had `SYNC_RUN_MAX_ATTEMPTS` attempts,
when it fails with `worker_lost`. A duplicate message is harmless: a worker claims a run with a
conditional update (queued → running) and a run that is not queued any more is left alone.
"""

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from sync.models import SyncRun, SyncStatus, SyncStep
from sync.services import sync_run_fail, sync_run_send

logger = logging.getLogger(__name__)


@dataclass
class ReapResult:
    """What one pass of the reaper did, by run id."""

    resent: list[int]
    requeued: list[int]
    failed: list[int]

    def as_dict(self) -> dict[str, list[int]]:
        return {"resent": self.resent, "requeued": self.requeued, "failed": self.failed}


def stale_queued_runs(*, now: datetime) -> list[SyncRun]:
    """Queued runs whose message should have been picked up by now (first attempt or retry)."""
    threshold = now - timedelta(seconds=settings.SYNC_QUEUED_STALE_SECONDS)
    return list(
        SyncRun.objects.filter(status=SyncStatus.QUEUED)
        .filter(
            Q(next_retry_at__isnull=True, created_at__lt=threshold)
            | Q(next_retry_at__isnull=False, next_retry_at__lt=threshold)
        )
        .filter(Q(heartbeat_at__isnull=True) | Q(heartbeat_at__lt=threshold))
        .order_by("pk")
    )


def dead_running_runs(*, now: datetime) -> list[SyncRun]:
    """Running runs whose worker stopped beating (or never did, long after it started)."""
    threshold = now - timedelta(seconds=settings.SYNC_HEARTBEAT_TIMEOUT_SECONDS)
    return list(
        SyncRun.objects.filter(status=SyncStatus.RUNNING)
        .filter(
            Q(heartbeat_at__lt=threshold)
            | Q(heartbeat_at__isnull=True, started_at__lt=threshold)
            | Q(heartbeat_at__isnull=True, started_at__isnull=True, created_at__lt=threshold)
        )
        .select_related("connection", "user")
        .order_by("pk")
    )


def sync_runs_reap(*, now: datetime | None = None) -> ReapResult:
    """Re-send lost messages, requeue runs of dead workers, fail those out of attempts."""
    now = now or timezone.now()
    result = ReapResult(resent=[], requeued=[], failed=[])
    for run in stale_queued_runs(now=now):
        # Touch the heartbeat so the next pass waits a full period before sending once more.
        SyncRun.objects.filter(pk=run.pk, status=SyncStatus.QUEUED).update(heartbeat_at=now)
        sync_run_send(sync_run_id=run.pk)
        result.resent.append(run.pk)
    for run in dead_running_runs(now=now):
        if run.attempts >= settings.SYNC_RUN_MAX_ATTEMPTS:
            sync_run_fail(
                sync_run=run,
                error=(
                    "The worker running this sync stopped answering "
                    f"{run.attempts} time(s); the next scheduled sync will try again."
                ),
                error_code="worker_lost",
            )
            result.failed.append(run.pk)
            continue
        moved = SyncRun.objects.filter(
            pk=run.pk, status=SyncStatus.RUNNING, heartbeat_at=run.heartbeat_at
        ).update(
            status=SyncStatus.QUEUED,
            step=SyncStep.QUEUED,
            heartbeat_at=now,
            error="The worker running this sync stopped answering; the sync starts again.",
        )
        if moved:
            sync_run_send(sync_run_id=run.pk)
            result.requeued.append(run.pk)
    if result.resent or result.requeued or result.failed:
        logger.warning("sync reaper: %s", result.as_dict())
    return result
