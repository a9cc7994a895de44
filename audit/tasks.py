"""Audit housekeeping tasks (beat, audit migration 0008): raw-log partitions and retention."""

import logging

from celery import shared_task
from django.conf import settings

from audit.partitions import raw_log_partitions_ensure
from audit.services import audit_events_purge, raw_logs_purge_detailed

logger = logging.getLogger(__name__)


@shared_task(name="audit.raw_logs_purge", acks_late=True)
def raw_logs_purge_task() -> int:
    """Remove raw API logs older than RAW_LOG_RETENTION_DAYS (0 or less keeps them forever):
    whole day partitions on PostgreSQL, batched DELETEs elsewhere; then unused bodies."""
    days = settings.RAW_LOG_RETENTION_DAYS
    if days <= 0:
        logger.info("raw api logs: retention disabled (RAW_LOG_RETENTION_DAYS=%s)", days)
        return 0
    result = raw_logs_purge_detailed(
        older_than_days=days, batch_size=settings.DATA_RETENTION_BATCH_ROWS
    )
    # The partitions ahead too, in case the hourly task has not run for a while.
    raw_log_partitions_ensure(days_ahead=settings.RAW_LOG_PARTITIONS_AHEAD_DAYS)
    return result.rows


@shared_task(name="audit.raw_log_partitions_ensure", ignore_result=True)
def raw_log_partitions_ensure_task() -> list[str]:
    """Create the day partitions of raw_api_logs for today and RAW_LOG_PARTITIONS_AHEAD_DAYS
    ahead (PostgreSQL; a no-op elsewhere); the names created."""
    return raw_log_partitions_ensure(days_ahead=settings.RAW_LOG_PARTITIONS_AHEAD_DAYS)


@shared_task(name="audit.audit_events_purge", acks_late=True)
def audit_events_purge_task() -> int:
    """Delete audit events older than AUDIT_EVENT_RETENTION_DAYS (0 or less keeps them)."""
    days = settings.AUDIT_EVENT_RETENTION_DAYS
    if days <= 0:
        return 0
    return audit_events_purge(older_than_days=days, batch_size=settings.DATA_RETENTION_BATCH_ROWS)
