"""Celery tasks of the sync: one run per connection, and the scheduled fan-out."""

import logging
import random

from celery import shared_task
from django.conf import settings

from banking.clients.errors import BankUnavailableError
from banking.clients.transport import bank_calls_retried_by_task
from fintrack.core.logging import task_correlation_resolver_register
from sync.fanout import fanout_chunk_start, fanout_plan_send
from sync.models import SyncRun
from sync.reaper import sync_runs_reap
from sync.retention import sync_runs_prune
from sync.services import (
    failed_steps_retry_start,
    sync_run_execute,
    sync_run_fail,
    sync_run_retry_wait,
)

logger = logging.getLogger(__name__)


def retry_countdown(*, retries: int, retry_after: float | None) -> float:
    """Exponential backoff with full jitter, at least the bank's Retry-After, capped."""
    ceiling = settings.SYNC_RETRY_MAX_SECONDS
    backoff = min(ceiling, settings.SYNC_RETRY_BASE_SECONDS * (2**retries))
    countdown = random.uniform(backoff / 2, backoff)
    if retry_after:
        # At least the bank's (or its open circuit's) wait, plus up to a quarter more: the runs
        # all waiting for one bank do not all come back in the same second.
        countdown = max(countdown, float(retry_after) * random.uniform(1.0, 1.25))
    return min(countdown, ceiling)


def _bank_retries_left_to_this_task():
    """This task's retry is the layer that waits (banking/clients/transport.py): the bank calls
    of its run make only quick retries of their own, never a long backoff."""
    return bank_calls_retried_by_task(
        max_retries=settings.BANK_TASK_MAX_RETRIES,
        max_sleep_seconds=settings.BANK_TASK_MAX_SLEEP_SECONDS,
    )


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
                with _bank_retries_left_to_this_task():
                    sync_run_execute(
                        sync_run_id=sync_run_id,
                        retry_allowed=attempt < max_retries,
                        task_id=self.request.id,
                    )
                return
            except BankUnavailableError as exc:
                logger.info("sync run %s: bank unavailable (%s), eager retry", sync_run_id, exc)
                sync_run_retry_wait(
                    sync_run_id=sync_run_id,
                    exc=exc,
                    countdown=0,
                    retry=attempt + 1,
                    retries=max_retries,
                )
        return
    retries_left = self.request.retries < max_retries
    try:
        with _bank_retries_left_to_this_task():
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
        # The run and its connection show the wait (retrying, next_retry_at) until it resumes.
        sync_run_retry_wait(
            sync_run_id=sync_run_id,
            exc=exc,
            countdown=countdown,
            retry=self.request.retries + 1,
            retries=max_retries,
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
    """Fan out this interval's syncs (beat): chunk tasks spread over the interval (sync.fanout);
    returns how many connections were scheduled."""
    return fanout_plan_send()


@shared_task(name="sync.fanout_chunk", acks_late=True, ignore_result=True)
def fanout_chunk(connection_ids: list[int], span_seconds: float) -> int:
    """One slot of the fan-out: runs for its connections still due, sent spread over the span;
    returns how many runs were started."""
    return len(fanout_chunk_start(connection_ids=connection_ids, span_seconds=span_seconds))


@shared_task(name="sync.failed_steps_retry", acks_late=True, ignore_result=True)
def failed_steps_retry(sync_run_id: int) -> int | None:
    """Retry, alone, the optional steps a partial run could not do; the new run's id or None."""
    run = failed_steps_retry_start(sync_run_id=sync_run_id)
    return run.pk if run is not None else None


def sync_run_correlation_id(sync_run_id: int, *_args, **_kwargs) -> str | None:
    """The run's correlation id: a sync task's log lines (its retries too) carry it."""
    value = SyncRun.objects.filter(pk=sync_run_id).values_list("correlation_id", flat=True).first()
    return str(value) if value else None


task_correlation_resolver_register("sync.connection_sync", sync_run_correlation_id)


@shared_task(name="sync.reap_stale_runs", ignore_result=True)
def reap_stale_runs() -> dict[str, list[int]]:
    """Heal runs a lost message or a dead worker left active (beat, every few seconds)."""
    return sync_runs_reap().as_dict()


@shared_task(name="sync.runs_prune", acks_late=True, ignore_result=True)
def runs_prune() -> int:
    """Delete finished sync runs older than SYNC_RUN_RETENTION_DAYS, each connection's latest
    excepted (0 or less keeps them all); beat, daily."""
    days = settings.SYNC_RUN_RETENTION_DAYS
    if days <= 0:
        return 0
    return sync_runs_prune(older_than_days=days, batch_size=settings.DATA_RETENTION_BATCH_ROWS)
