"""Analytics writes: recompute a user's snapshot now, or request a debounced recomputation.

The debounce marker ("a recomputation is scheduled for this user") lives in the shared cache
(Redis in production). When the cache fails, the markers are kept in this process instead, with
one warning in the log per outage, and the shared cache is tried again after
CACHE_RETRY_SECONDS: a Redis outage never fails the sync, the dashboard or the recompute request
that touch a marker. A local marker cannot be cleared by the worker's task, so it lasts only
LOCAL_MARKER_TTL_SECONDS: at worst a process schedules one extra (harmless) recomputation.

A request whose task the broker cannot take clears its marker (fintrack.core.tasks.enqueue logs
the failure): the next request schedules again — the next sync that finishes, the next
transactions change, a POST /api/analytics/recompute, or the next dashboard read that finds its
snapshot older than a bank's last successful sync.
"""

import logging
import threading
import time

from django.core.cache import cache
from django.core.cache.backends.locmem import LocMemCache

from analytics.models import AnalyticsSnapshot
from analytics.summary import summary_json_text
from fintrack.core.tasks import enqueue

logger = logging.getLogger(__name__)

# Syncs of several banks finish within seconds of each other; one recomputation covers them all.
RECOMPUTE_DELAY_SECONDS = 3
# Safety net: if a scheduled task is lost, the marker expires and the next request schedules again.
RECOMPUTE_MARKER_TTL_SECONDS = 600
# While the shared cache is down: how long to keep markers here before trying it again, and how
# long a marker kept here lasts (long enough to merge the syncs of one onboarding).
CACHE_RETRY_SECONDS = 5.0
LOCAL_MARKER_TTL_SECONDS = 30


class _MarkerCache:
    """The shared cache, or a process-local one while the shared one fails."""

    def __init__(self):
        self._lock = threading.Lock()
        self._down_until = 0.0
        self.local = LocMemCache("fintrack-analytics-markers", {"OPTIONS": {"MAX_ENTRIES": 100000}})

    def _shared_usable(self) -> bool:
        return time.monotonic() >= self._down_until

    def _shared_failed(self, exc: Exception) -> None:
        with self._lock:
            first = self._shared_usable()
            self._down_until = time.monotonic() + CACHE_RETRY_SECONDS
        if first:
            logger.warning(
                "analytics: cache unavailable (%s: %s); recomputation markers kept in this "
                "process for the next %.0f s",
                type(exc).__name__,
                exc,
                CACHE_RETRY_SECONDS,
            )

    def add(self, key: str) -> bool:
        if self._shared_usable():
            try:
                return cache.add(key, 1, timeout=RECOMPUTE_MARKER_TTL_SECONDS)
            except Exception as exc:  # the cache backend's own errors: redis.ConnectionError …
                self._shared_failed(exc)
        return self.local.add(key, 1, timeout=LOCAL_MARKER_TTL_SECONDS)

    def exists(self, key: str) -> bool:
        if self._shared_usable():
            try:
                return cache.get(key) is not None
            except Exception as exc:
                self._shared_failed(exc)
        return self.local.get(key) is not None

    def delete(self, key: str) -> None:
        self.local.delete(key)
        if self._shared_usable():
            try:
                cache.delete(key)
            except Exception as exc:
                self._shared_failed(exc)

    def reset(self) -> None:
        with self._lock:
            self._down_until = 0.0
        self.local.clear()


markers = _MarkerCache()


def recompute_marker_key(user_id: int) -> str:
    """Cache key of the "a recomputation is already scheduled for this user" marker."""
    return f"analytics:recompute-scheduled:{user_id}"


def recompute_scheduled(*, user_id: int) -> bool:
    """Whether a recomputation of the user's snapshot is scheduled (the marker is set)."""
    return markers.exists(recompute_marker_key(user_id))


def recompute_marker_clear(*, user_id: int) -> None:
    """Forget the user's marker: the recomputation starts (or was never sent)."""
    markers.delete(recompute_marker_key(user_id))


def analytics_recompute_request(*, user_id: int) -> bool:
    """Schedule one recomputation for the user unless one is already waiting (debounced);
    False when the broker could not take it (logged; the next request tries again)."""
    from analytics.tasks import recompute_user

    # cache.add is atomic (SET NX in Redis), so of several concurrent callers exactly one wins.
    if not markers.add(recompute_marker_key(user_id)):
        logger.debug("analytics: recomputation for user %s already scheduled", user_id)
        return True
    if enqueue(recompute_user, user_id, countdown=RECOMPUTE_DELAY_SECONDS):
        return True
    # A broker outage must not fail the sync that asked; without the marker the next request
    # schedules again.
    recompute_marker_clear(user_id=user_id)
    return False


def analytics_recompute(*, user, today=None) -> AnalyticsSnapshot:
    """Compute STS, health, debt and forecast from current data and store a snapshot, with its
    summary as the ready-made JSON the dashboard serves."""
    from analytics.compute import snapshot_compute

    # The snapshot is created with its summary_json (analytics.compute); only rows stored before
    # that column are given theirs when read (snapshot_summary_json_store, from the dashboard).
    return snapshot_compute(user=user, today=today)


def snapshot_summary_json_store(*, snapshot: AnalyticsSnapshot) -> AnalyticsSnapshot:
    """Store the snapshot's summary as the dashboard's ready-made JSON text (summary_json), in
    the version the summary was computed in. Idempotent: two concurrent stores of one snapshot
    write the same members."""
    summary = snapshot.summary or {}
    snapshot.summary_json = summary_json_text(summary)
    snapshot.summary_json_version = summary.get("version")
    AnalyticsSnapshot.objects.filter(pk=snapshot.pk).update(
        summary_json=snapshot.summary_json, summary_json_version=snapshot.summary_json_version
    )
    return snapshot
