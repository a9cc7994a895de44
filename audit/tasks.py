"""Audit housekeeping tasks: raw API log retention."""

import logging

from celery import shared_task
from django.conf import settings

from audit.services import raw_logs_purge

logger = logging.getLogger(__name__)

PURGE_BATCH_SIZE = 5000


@shared_task(name="audit.raw_logs_purge", acks_late=True)
def raw_logs_purge_task() -> int:
    """Delete raw API logs older than RAW_LOG_RETENTION_DAYS (0 or less keeps them forever)."""
    days = settings.RAW_LOG_RETENTION_DAYS
    if days <= 0:
        logger.info("raw api logs: retention disabled (RAW_LOG_RETENTION_DAYS=%s)", days)
        return 0
    return raw_logs_purge(older_than_days=days, batch_size=PURGE_BATCH_SIZE)
