"""Celery tasks of the sync: one run per connection, and the scheduled fan-out."""

import logging
import random

from celery import shared_task
from django.conf import settings

from banking.clients.errors import BankUnavailableError
from sync.models import SyncRun, SyncTrigger
from sync.selectors import connection_due_for_sync_list
from sync.services import connection_sync_start, sync_run_execute, sync_run_fail

logger = logging.getLogger(__name__)

MAX_RETRIES = getattr(settings, "SYNC_TASK_MAX_RETRIES", 5)
RETRY_BASE_SECONDS = getattr(settings, "SYNC_RETRY_BASE_SECONDS", 15)
RETRY_MAX_SECONDS = getattr(settings, "SYNC_RETRY_MAX_SECONDS", 600)


def retry_countdown(*, retries: int, retry_after: float | None) -> float:
    """Exponential backoff with full jitter, at least the bank's Retry-After, capped."""
    backoff = min(RETRY_MAX_SECONDS, RETRY_BASE_SECONDS * (2**retries))
    countdown = random.uniform(backoff / 2, backoff)
    if retry_after:
        countdown = max(countdown, float(retry_after))
    return min(countdown, RETRY_MAX_SECONDS)


@shared_task(
    name="sync.connection_sync",
    bind=True,
    acks_late=True,
    max_retries=MAX_RETRIES,
    ignore_result=True,
)
def connection_sync(self, sync_run_id: int) -> None:
    """Run one sync; idempotent on redelivery (a finished run is left alone)."""
    if self.request.is_eager:
        # Eager mode (tests, no broker): Celery would propagate Retry to the caller, so the
        # attempts run here, one after another, without waiting.
        for attempt in range(self.max_retries + 1):
            try:
                sync_run_execute(sync_run_id=sync_run_id, retry_allowed=attempt < self.max_retries)
                return
            except BankUnavailableError as exc:
                logger.info("sync run %s: bank unavailable (%s), eager retry", sync_run_id, exc)
        return
    retries_left = self.request.retries < self.max_retries
    try:
        sync_run_execute(sync_run_id=sync_run_id, retry_allowed=retries_left)
    except BankUnavailableError as exc:
        countdown = retry_countdown(retries=self.request.retries, retry_after=exc.retry_after)
        logger.info(
            "sync run %s: bank unavailable (%s), retry %s/%s in %.0fs",
            sync_run_id,
            exc,
            self.request.retries + 1,
            self.max_retries,
            countdown,
        )
        try:
            raise self.retry(exc=exc, countdown=countdown) from exc
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
