"""Rate throttles that count exactly across processes, and keep answering when the cache is down.

DRF's SimpleRateThrottle reads the history list of a client from the cache, appends, and writes
it back: two processes reading at once both see room, so a 30/min limit let 33 of 50 concurrent
requests through. Here each client has one counter per window, created with `cache.add` (atomic:
SET NX on Redis) and bumped with `cache.incr` (INCRBY on Redis, under the lock in locmem), so
exactly N requests of a window pass, whatever the number of processes or threads.

Windows are fixed and anchored at the client's first request (kept in the cache for a day):
N+1 requests in a row are always refused the last, never split by a clock minute; a client may
still spend N at the end of one window and N at the start of the next. Each counter's key names
its window, so a counter that expires is never found again by a late increment.

When the cache fails (Redis down or unreachable), the request is counted in a process-local
cache instead, with a warning in the log: limits then hold per process, and the API keeps
answering. The shared cache is tried again after CACHE_RETRY_SECONDS.
"""

import logging
import math
import threading
import time

from django.core.cache.backends.locmem import LocMemCache
from rest_framework.throttling import ScopedRateThrottle as DrfScopedRateThrottle
from rest_framework.throttling import SimpleRateThrottle

logger = logging.getLogger(__name__)

CACHE_RETRY_SECONDS = 5.0
# How long a client's first request anchors its windows.
ANCHOR_SECONDS = 24 * 60 * 60
# Counters outlive their window by a second: a request at its last instant still finds its own.
_EXPIRY_SLACK_SECONDS = 1


class _CacheHealth:
    """Whether the shared cache failed lately (per process): skip it for CACHE_RETRY_SECONDS."""

    def __init__(self):
        self._lock = threading.Lock()
        self._down_until = 0.0

    def usable(self) -> bool:
        return time.monotonic() >= self._down_until

    def failed(self, exc: Exception) -> None:
        with self._lock:
            first = self.usable()
            self._down_until = time.monotonic() + CACHE_RETRY_SECONDS
        if first:
            logger.warning(
                "throttle cache unavailable (%s: %s); counting in this process only for the "
                "next %.0f s",
                type(exc).__name__,
                exc,
                CACHE_RETRY_SECONDS,
            )

    def reset(self) -> None:
        with self._lock:
            self._down_until = 0.0


cache_health = _CacheHealth()
local_counters = LocMemCache("fintrack-throttle-fallback", {"OPTIONS": {"MAX_ENTRIES": 100000}})


def fallback_reset() -> None:
    """Trust the shared cache again and forget the local counts (tests start clean with it)."""
    cache_health.reset()
    local_counters.clear()


def counter_increment(cache, key: str, timeout: int) -> int:
    """Add one to the counter `key` (created at 0 with `timeout` if missing); the new count."""
    for _attempt in range(3):
        cache.add(key, 0, timeout=timeout)
        try:
            return cache.incr(key)
        except ValueError:
            continue  # evicted between add and incr: create it again
    raise RuntimeError(f"throttle counter {key} vanished three times")


def window_count(cache, key: str, *, now: float, duration: int) -> tuple[int, float]:
    """Count one request of client `key` in its current window: (count, when the window ends)."""
    anchor_key = f"{key}:anchor"
    anchor = cache.get(anchor_key)
    if anchor is None:
        cache.add(anchor_key, now, timeout=ANCHOR_SECONDS)
        anchor = cache.get(anchor_key, now)
    window = int((now - anchor) // duration)
    count = counter_increment(
        cache, f"{key}:{anchor:.6f}:{window}", duration + _EXPIRY_SLACK_SECONDS
    )
    return count, anchor + (window + 1) * duration


class AtomicRateThrottle(SimpleRateThrottle):
    """SimpleRateThrottle counted with one atomic counter per client and fixed window."""

    # Set from the rate by SimpleRateThrottle.__init__ (or ScopedRateThrottle.allow_request).
    num_requests: int
    duration: int

    def allow_request(self, request, view):
        if self.rate is None:
            return True
        self.key = self.get_cache_key(request, view)
        if self.key is None:
            return True
        self.now = self.timer()
        count, self.window_ends_at = self._count(self.key)
        if count > self.num_requests:
            return self.throttle_failure()
        return self.throttle_success()

    def throttle_success(self):
        return True

    def wait(self):
        """Whole seconds (at least 1) until the current window ends and the counter restarts."""
        return max(1, math.ceil(self.window_ends_at - self.now))

    def _count(self, key: str) -> tuple[int, float]:
        if cache_health.usable():
            try:
                return window_count(self.cache, key, now=self.now, duration=self.duration)
            except Exception as exc:  # the cache backend's own errors: redis.ConnectionError …
                cache_health.failed(exc)
        return window_count(local_counters, key, now=self.now, duration=self.duration)


class ScopedRateThrottle(DrfScopedRateThrottle, AtomicRateThrottle):
    """DRF's ScopedRateThrottle (`throttle_scope` on the view, rates in DEFAULT_THROTTLE_RATES),
    counted atomically: the throttle every FinTrack view uses."""
