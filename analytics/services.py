"""Analytics writes: recompute a user's snapshot now, or request a debounced recomputation."""

import logging

from django.core.cache import cache

from analytics.models import AnalyticsSnapshot

logger = logging.getLogger(__name__)

# Syncs of several banks finish within seconds of each other; one recomputation covers them all.
RECOMPUTE_DELAY_SECONDS = 3
# Safety net: if a scheduled task is lost, the marker expires and the next request schedules again.
RECOMPUTE_MARKER_TTL_SECONDS = 600


def recompute_marker_key(user_id: int) -> str:
    """Cache key of the "a recomputation is already scheduled for this user" marker."""
    return f"analytics:recompute-scheduled:{user_id}"


def analytics_recompute_request(*, user_id: int) -> None:
    """Schedule one recomputation for the user unless one is already waiting (debounced)."""
    from analytics.tasks import recompute_user

    # cache.add is atomic (SET NX in Redis), so of several concurrent callers exactly one wins.
    if not cache.add(recompute_marker_key(user_id), 1, timeout=RECOMPUTE_MARKER_TTL_SECONDS):
        logger.debug("analytics: recomputation for user %s already scheduled", user_id)
        return
    try:
        recompute_user.apply_async(args=[user_id], countdown=RECOMPUTE_DELAY_SECONDS)
    except Exception:
        # A broker outage must not fail the sync that asked; the next request tries again.
        cache.delete(recompute_marker_key(user_id))
        logger.exception("analytics: could not schedule recomputation for user %s", user_id)


def analytics_recompute(*, user, today=None) -> AnalyticsSnapshot:
    """Compute STS, health, debt and forecast from current data and store a snapshot."""
    from analytics.compute import snapshot_compute

    return snapshot_compute(user=user, today=today)
