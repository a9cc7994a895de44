"""Celery tasks of the analytics app."""

import logging

from celery import shared_task
from django.conf import settings
from django.contrib.auth import get_user_model

from analytics import services
from analytics.retention import analytics_snapshots_prune

logger = logging.getLogger(__name__)


@shared_task(name="analytics.recompute_user", acks_late=True)
def recompute_user(user_id: int) -> None:
    """Recompute the user's analytics snapshot from the data as it is when the task runs."""
    # Clear the marker first: a sync finishing after this point schedules a fresh recomputation,
    # one finishing before it is included because the data is read below.
    services.recompute_marker_clear(user_id=user_id)
    user = get_user_model().objects.filter(pk=user_id).first()
    if user is None:
        logger.info("analytics: user %s is gone, nothing to recompute", user_id)
        return
    services.analytics_recompute(user=user)


@shared_task(name="analytics.snapshots_prune", acks_late=True, ignore_result=True)
def snapshots_prune() -> int:
    """Keep each user's latest snapshot and one a day for ANALYTICS_SNAPSHOT_RETENTION_DAYS
    (0 or less keeps every snapshot); beat, daily."""
    days = settings.ANALYTICS_SNAPSHOT_RETENTION_DAYS
    if days <= 0:
        return 0
    return analytics_snapshots_prune(keep_days=days, batch_size=settings.DATA_RETENTION_BATCH_ROWS)
