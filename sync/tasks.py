"""Celery tasks of the sync: one run per connection, and the scheduled fan-out."""

import logging
import random
from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from banking.clients.errors import BankUnavailableError
from sync.models import SyncRun, SyncStatus, SyncTrigger
from sync.reaper import sync_runs_reap
from sync.selectors import connection_due_for_sync_list
from sync.services import connection_sync_start, sync_run_execute, sync_run_fail

logger = logging.getLogger(__name__)


def retry_countdown(*, retries: int, retry_after: float | None) -> float:
    """Exponential backoff with full jitter, at least the bank's Retry-After, capped."""
    ceiling = settings.SYNC_RETRY_MAX_SECONDS
    backoff = min(ceiling, settings.SYNC_RETRY_BASE_SECONDS * (2**retries))
    countdown = random.uniform(backoff / 2, backoff)
    if retry_after:
        countdown = max(countdown, float(retry_after))
    return min(countdown, ceiling)


# The retry limit is settings.SYNC_TASK_MAX_RETRIES, read when the task runs and passed to
# self.retry (a value on the decorator would be read once, at import).
@shared_task(name="sync.connection_sync", bind=True, acks_late=True, ignore_result=True)
def connection_sync(self, sync_run_id: int) -> None:
    """Run one sync; idempotent on redelivery (a finished run is left alone)."""
    max_retries = settings.SYNC_TASK_MAX_RETRIES
    if self.request.is_eager:
        # Eager mode (tests, no broker): Celery would propagate Retry to the caller, so the
        # attempts run here, one after another, without waiting.
        for attempt in range(max_retries + 1):
            try:
                sync_run_execute(
                    sync_run_id=sync_run_id,
                    retry_allowed=attempt < max_retries,
                    task_id=self.request.id,
                )
                return
            except BankUnavailableError as exc:
                logger.info("sync run %s: bank unavailable (%s), eager retry", sync_run_id, exc)
        return
    retries_left = self.request.retries < max_retries
    try:
        sync_run_execute(
            sync_run_id=sync_run_id, retry_allowed=retries_left, task_id=self.request.id
        )
    except BankUnavailableError as exc:
        countdown = retry_countdown(retries=self.request.retries, retry_after=exc.retry_after)
        logger.info(
            "sync run %s: bank unavailable (%s), retry %s/%s in %.0fs",
            sync_run_id,
            exc,
            self.request.retries + 1,
            max_retries,
            countdown,
        )
        SyncRun.objects.filter(pk=sync_run_id, status=SyncStatus.QUEUED).update(
            next_retry_at=timezone.now() + timedelta(seconds=countdown)
        )
        try:
            raise self.retry(exc=exc, countdown=countdown, max_retries=max_retries) from exc
        except self.MaxRetriesExceededError:
            run = (
                SyncRun.objects.select_related("connection", "user").filter(pk=sync_run_id).first()
            )
            if run is not None:
                sync_run_fail(sync_run=run, error=str(exc), error_code=exc.code)


@shared_task(name="sync.sync_all_due", acks_late=True, ignore_result=True)
def sync_all_due() -> int:
    """Start a sync for every due connection (beat); returns how many runs were started."""
    started = 0
    for connection in connection_due_for_sync_list().select_related("user"):
        _run, created = connection_sync_start(connection=connection, trigger=SyncTrigger.SCHEDULE)
        started += int(created)
    logger.info("sync_all_due: %s run(s) started", started)
    return started


@shared_task(name="sync.reap_stale_runs", ignore_result=True)
def reap_stale_runs() -> dict[str, list[int]]:
    """Heal runs a lost message or a dead worker left active (beat, every few seconds)."""
    return sync_runs_reap().as_dict()
