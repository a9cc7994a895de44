"""Celery tasks of the banking app: housekeeping of its tables (beat, audit migration 0008)."""

from celery import shared_task
from django.conf import settings

from banking.retention import balance_snapshots_thin


@shared_task(name="banking.balance_snapshots_thin", acks_late=True, ignore_result=True)
def balance_snapshots_thin_task(full: bool = False) -> int:
    """Thin balance readings older than BALANCE_SNAPSHOT_DAILY_AFTER_DAYS to one a day per
    account (0 or less keeps them all); `full` re-reads every old day, not only the last week."""
    days = settings.BALANCE_SNAPSHOT_DAILY_AFTER_DAYS
    if days <= 0:
        return 0
    return balance_snapshots_thin(
        older_than_days=days, batch_size=settings.DATA_RETENTION_BATCH_ROWS, full=full
    )
