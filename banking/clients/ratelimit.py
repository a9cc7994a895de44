"""FinTrack's own rate limit per bank, shared by every worker and process (SPEC §10).

Every HTTP attempt the transport makes (transport.py, token fetches and retries included) first
takes the bank's next call slot here and sleeps until it. The schedule is a GCRA with no burst,
kept in Redis and advanced by one Lua script (atomic: Redis runs one script at a time, on its
own clock): a slot is never closer than ⌈10⁶ / (rate × (1 − headroom))⌉ µs to the previous one,
so in any one second (any window, not only whole seconds) at most ⌈rate⌉ calls are let through,
whatever the number of workers, threads or machines. The headroom (BANK_RATE_LIMIT_HEADROOM,
10 %) is for what happens between the slot and the bank: a caller wakes a little late, a request
waits for a connection or a busy CPU, and the next one is on time, so the bank sees two calls
closer together than their slots were. Slots spaced exactly 1/rate apart let the bank count
11 calls in a whole second at a limit of 10 (bench/scale_sync.py, 2,000 connections); with the
headroom a call would have to arrive a whole interval (111 ms at 10/s) late for that.

A caller that comes late for its slot (its request took longer than an interval, its thread
waited for the CPU) leaves that slot unused; a schedule with no burst at all never gives that
time back, so a caller that is late now and then falls behind the rate for good. So a bank
whose headroom leaves calls to spare may take a small burst (BANK_RATE_LIMIT_BURST, at most;
`burst_calls`): up to that many slots left unused may be made up by callers that come early,
the GCRA's tolerance of burst × interval. The bound above becomes ⌈1 s / interval⌉ + burst
calls in any one-second window, and the burst is at most half of what the headroom spares
(less one): at 100/s, slots 11.1 ms apart, 90 a second and a burst of 4, so any second holds
at most 94 and 6 are left for arrival jitter. A limit whose headroom spares less (20/s: 18
slots a second) has no burst and keeps the schedule above exactly.

A caller is given a slot in the future and sleeps; a slot further away than it may wait (its
deadline, BANK_RATE_LIMIT_MAX_WAIT_SECONDS) is not taken, and the call fails with
BankRateLimitedError(retry_after) instead: a sync task retries later, an API call answers 503.

Where the limit lives:
- BANK_RATE_LIMIT_REDIS_URL set (production, the benches; it defaults to the cache's Redis, else
  the broker's): shared by every process ("shared").
- No Redis configured (the embedded default, tests): each process keeps its own schedule at the
  full rate ("local"); the embedded sandbox is in-process and publishes no limit.
- Redis configured but unreachable: each process keeps its own schedule at the rate divided by
  BANK_RATE_LIMIT_FALLBACK_PROCESSES ("fallback"), logs that once, and tries Redis again after
  REDIS_RETRY_SECONDS. Never unlimited, never an error for the caller.

Public API (for the transport, the sync and the benches):

    limiter_for(bank_code) -> BankRateLimiter            one per bank and process, cheap
    BankRateLimiter.acquire(*, max_wait=None) -> RateSlot
        sleep until the bank's next slot; RateSlot(at = the slot's unix time on the schedule's
        clock (Redis's when shared), waited = seconds slept); BankRateLimitedError past max_wait
    rate_limit_for(bank_code) -> float                   configured calls per second (0 = off)
    limiter_mode(bank_code) -> str                       "shared", "local", "fallback" or "off"
    calls_per_second(bank_code, *, since, until=None) -> dict[int, int]
        calls let through per whole unix second in [since, until], counted when their slot was
        given: Redis counters (key `fintrack:bank-rate:{<bank>}:calls:<unix second>`, kept
        STATS_TTL_SECONDS) plus this process's own local/fallback counts
    peak_calls_per_second(bank_code, *, since, until=None) -> int   the highest of those
    rate_limits_reset() -> None                          forget every schedule and counter (tests)

Settings (read at each call): BANK_RATE_LIMIT_PER_SECOND, VBANK_/ABANK_/SBANK_RATE_LIMIT_PER_SECOND
(> 0 replaces the shared value for that bank), BANK_RATE_LIMIT_HEADROOM, BANK_RATE_LIMIT_BURST,
BANK_RATE_LIMIT_REDIS_URL,
BANK_RATE_LIMIT_FALLBACK_PROCESSES, BANK_RATE_LIMIT_MAX_WAIT_SECONDS.

Clients never import models or the ORM; this module only reads settings.
"""

import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

import redis
from django.conf import settings

from banking.clients.errors import BankRateLimitedError

logger = logging.getLogger(__name__)

# How long the Redis counters of calls per second are kept (a bench reads them afterwards).
STATS_TTL_SECONDS = 900
# After Redis failed, the per-process fallback is used for this long before Redis is tried again.
REDIS_RETRY_SECONDS = 30.0
# A Redis that hangs must not hang bank calls: connect and answer within this, else fall back.
REDIS_TIMEOUT_SECONDS = 0.5
_MICROS = 1_000_000

# What a Redis that is down, hangs or is misconfigured raises: the fallback takes over.
_REDIS_FAILURES = (redis.RedisError, OSError, ValueError)

# Looked up when called, so a test may replace them.
sleep: Callable[[float], None] = time.sleep
monotonic: Callable[[], float] = time.monotonic

# KEYS[1]: the bank's theoretical arrival time (the GCRA's TAT: the next slot when no burst is
# left; µs on Redis's clock); KEYS[2]: prefix of its counters. ARGV: the interval between slots
# (µs), the longest wait accepted (µs), the counters' TTL (s), the burst tolerance (µs: burst ×
# interval; 0 = none). A slot is the TAT less the tolerance, or now if that has passed; the TAT
# then moves one interval on from the later of itself and the slot.
# Returns {1 if the slot was taken else 0, the wait (µs), the slot (µs since the epoch)}.
_RESERVE_SCRIPT = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local interval = tonumber(ARGV[1])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
local slot = math.max(tat - tonumber(ARGV[4] or '0'), now)
local wait = slot - now
if wait > tonumber(ARGV[2]) then
  return {0, wait, slot}
end
local after = math.max(tat, slot) + interval
redis.call('SET', KEYS[1], string.format('%d', after),
           'PX', math.floor((after - now) / 1000) + 1000)
local counter = KEYS[2] .. string.format('%d', math.floor(slot / 1000000))
redis.call('INCR', counter)
redis.call('EXPIRE', counter, tonumber(ARGV[3]))
return {1, wait, slot}
"""


@dataclass(frozen=True, slots=True)
class RateSlot:
    """The slot a call was given: when (unix seconds, on the schedule's clock) and how long the
    caller slept for it. No slot is closer than 1/rate seconds to another of the same bank."""

    at: float
    waited: float


def rate_limit_for(bank_code: str) -> float:
    """Calls per second allowed to `bank_code` over all processes: its own
    `<CODE>_RATE_LIMIT_PER_SECOND` when set (> 0), else BANK_RATE_LIMIT_PER_SECOND; 0 = off."""
    own = {
        "vbank": settings.VBANK_RATE_LIMIT_PER_SECOND,
        "abank": settings.ABANK_RATE_LIMIT_PER_SECOND,
        "sbank": settings.SBANK_RATE_LIMIT_PER_SECOND,
    }.get(bank_code) or 0.0
    rate = float(own) if own > 0 else float(settings.BANK_RATE_LIMIT_PER_SECOND)
    return rate if rate > 0 and math.isfinite(rate) else 0.0


def slot_interval_us(rate: float) -> int:
    """Microseconds between two slots of a bank limited to `rate` calls per second: 1/rate
    widened by the headroom (0 to 0.5), so arrival jitter stays under the limit."""
    headroom = min(max(float(settings.BANK_RATE_LIMIT_HEADROOM), 0.0), 0.5)
    return math.ceil(_MICROS / (rate * (1.0 - headroom)))


def burst_calls(rate: float, interval_us: int) -> int:
    """Unused slots a bank limited to `rate` calls/s, slots `interval_us` apart, may make up:
    half of the calls a second the headroom spares, less one, and at most BANK_RATE_LIMIT_BURST
    (0 = no burst). Any one-second window then holds at most ⌈10⁶ / interval_us⌉ + this."""
    cap = max(0, int(settings.BANK_RATE_LIMIT_BURST))
    spare = math.ceil(rate) - math.ceil(_MICROS / interval_us)
    return max(0, min(cap, (spare - 1) // 2))


def _keys(bank_code: str) -> tuple[str, str]:
    # The braces are a Redis Cluster hash tag: both keys of a bank live on one node.
    return f"fintrack:bank-rate:{{{bank_code}}}:next", f"fintrack:bank-rate:{{{bank_code}}}:calls:"


class _RedisSchedules:
    """The shared schedules in one Redis, and the script that advances them."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.client = redis.Redis.from_url(
            url,
            socket_timeout=REDIS_TIMEOUT_SECONDS,
            socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
        )
        self.script = self.client.register_script(_RESERVE_SCRIPT)

    def reserve(
        self, bank_code: str, interval_us: int, max_wait_us: int, tolerance_us: int
    ) -> tuple[bool, int, int]:
        granted, wait_us, slot_us = self.script(
            keys=list(_keys(bank_code)),
            args=[interval_us, max_wait_us, STATS_TTL_SECONDS, tolerance_us],
        )
        return bool(granted), int(wait_us), int(slot_us)

    def counts(self, bank_code: str, seconds: list[int]) -> dict[int, int]:
        _next, prefix = _keys(bank_code)
        if not seconds:
            return {}
        values = cast(list[Any], self.client.mget([f"{prefix}{second}" for second in seconds]))
        return {second: int(v) for second, v in zip(seconds, values, strict=True) if v is not None}

    def reset(self, bank_code: str) -> None:
        next_key, prefix = _keys(bank_code)
        keys = [next_key, *self.client.scan_iter(match=f"{prefix}*", count=1000)]
        self.client.delete(*keys)


class _LocalSchedules:
    """This process's schedules (the embedded default, or while Redis is unreachable)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.next_slot: dict[str, float] = {}  # bank → its TAT, monotonic seconds
        self.counts: dict[str, dict[int, int]] = {}  # bank → unix second → calls
        self.wall_offset: float | None = None  # unix time − monotonic time, taken once

    def reserve(
        self, bank_code: str, interval: float, max_wait: float, tolerance: float
    ) -> tuple[bool, float, float]:
        """The Redis script's schedule (see there), on this process's monotonic clock."""
        with self.lock:
            now = monotonic()
            tat = self.next_slot.get(bank_code, 0.0)
            slot = max(tat - tolerance, now)
            wait = slot - now
            if self.wall_offset is None:
                self.wall_offset = time.time() - now
            at = slot + self.wall_offset
            if wait > max_wait:
                return False, wait, at
            self.next_slot[bank_code] = max(tat, slot) + interval
            second = int(at)
            counts = self.counts.setdefault(bank_code, {})
            counts[second] = counts.get(second, 0) + 1
            if len(counts) > STATS_TTL_SECONDS:
                for old in [s for s in counts if s < second - STATS_TTL_SECONDS]:
                    del counts[old]
            return True, wait, at

    def reset(self) -> None:
        with self.lock:
            self.next_slot.clear()
            self.counts.clear()
            self.wall_offset = None


_local = _LocalSchedules()
_redis_lock = threading.Lock()
_redis_by_url: dict[str, _RedisSchedules] = {}
_redis_down_until: dict[str, float] = {}  # url → monotonic time Redis is tried again


def _redis(url: str) -> _RedisSchedules:
    schedules = _redis_by_url.get(url)
    if schedules is None:
        with _redis_lock:
            schedules = _redis_by_url.get(url) or _RedisSchedules(url)
            _redis_by_url[url] = schedules
    return schedules


def _redis_usable(url: str) -> bool:
    """Whether Redis is to be asked now (not while resting after a failure)."""
    until = _redis_down_until.get(url)
    return until is None or monotonic() >= until


def _redis_failed(url: str, exc: Exception) -> None:
    """Rest Redis for a while; say so once per outage, not once per call."""
    with _redis_lock:
        first = url not in _redis_down_until
        _redis_down_until[url] = monotonic() + REDIS_RETRY_SECONDS
    if first:
        logger.warning(
            "bank rate limit: Redis unreachable (%s: %s); each process now limits itself to "
            "1/%s of each bank's rate, Redis is tried again every %.0f s",
            type(exc).__name__,
            exc,
            max(1, settings.BANK_RATE_LIMIT_FALLBACK_PROCESSES),
            REDIS_RETRY_SECONDS,
        )


def _redis_recovered(url: str) -> None:
    if url in _redis_down_until:
        with _redis_lock:
            was_down = _redis_down_until.pop(url, None) is not None
        if was_down:
            logger.info("bank rate limit: Redis reachable again; the limit is shared again")


def limiter_mode(bank_code: str) -> str:
    """Where `bank_code`'s limit is kept now: "shared", "local", "fallback" or "off"."""
    if rate_limit_for(bank_code) <= 0:
        return "off"
    url = settings.BANK_RATE_LIMIT_REDIS_URL
    if not url:
        return "local"
    return "shared" if _redis_usable(url) else "fallback"


class BankRateLimiter:
    """The rate limit of one bank (settings read at each call, so a change applies at once)."""

    def __init__(self, bank_code: str) -> None:
        self.bank_code = bank_code

    def acquire(self, *, max_wait: float | None = None) -> RateSlot:
        """Take the bank's next call slot and sleep until it.

        A slot further away than `max_wait` (or BANK_RATE_LIMIT_MAX_WAIT_SECONDS) is left for
        others: BankRateLimitedError with retry_after = the wait it would have needed.
        """
        rate = rate_limit_for(self.bank_code)
        if rate <= 0:
            return RateSlot(at=time.time(), waited=0.0)
        limit = float(settings.BANK_RATE_LIMIT_MAX_WAIT_SECONDS)
        if max_wait is not None:
            limit = min(limit, max_wait)
        limit = max(0.0, limit)
        granted, wait, at = self._reserve(rate, limit)
        if not granted:
            raise BankRateLimitedError(
                f"{self.bank_code}: FinTrack's rate limit of {rate:g} calls/s is booked"
                f" {wait:.1f} s ahead, longer than this call may wait ({limit:.1f} s)",
                bank_code=self.bank_code,
                retry_after=wait,
            )
        if wait > 0:
            sleep(wait)
        return RateSlot(at=at, waited=wait)

    def _reserve(self, rate: float, max_wait: float) -> tuple[bool, float, float]:
        interval_us = slot_interval_us(rate)
        url = settings.BANK_RATE_LIMIT_REDIS_URL
        if url and _redis_usable(url):
            tolerance_us = burst_calls(rate, interval_us) * interval_us
            try:
                granted, wait_us, slot_us = _redis(url).reserve(
                    self.bank_code, interval_us, int(max_wait * _MICROS), tolerance_us
                )
            except _REDIS_FAILURES as exc:
                _redis_failed(url, exc)
            else:
                _redis_recovered(url)
                return granted, wait_us / _MICROS, slot_us / _MICROS
        # No Redis at all: this process is the only caller it knows of, at the full rate.
        # Redis unreachable: the other processes carry on too, each with a share of the rate.
        share = max(1, settings.BANK_RATE_LIMIT_FALLBACK_PROCESSES) if url else 1
        interval = interval_us * share / _MICROS
        burst = burst_calls(rate / share, interval_us * share)
        return _local.reserve(self.bank_code, interval, max_wait, burst * interval)


_limiters: dict[str, BankRateLimiter] = {}


def limiter_for(bank_code: str) -> BankRateLimiter:
    """The rate limiter of `bank_code` (one per bank in each process)."""
    limiter = _limiters.get(bank_code)
    if limiter is None:
        limiter = _limiters.setdefault(bank_code, BankRateLimiter(bank_code))
    return limiter


def calls_per_second(bank_code: str, *, since: float, until: float | None = None) -> dict[int, int]:
    """Calls let through to `bank_code` per whole unix second from `since` to `until` (now),
    counted at the second of their slot: the shared Redis counters plus this process's own."""
    end = time.time() if until is None else until
    seconds = list(range(int(since), int(end) + 1))
    counts: dict[int, int] = {}
    url = settings.BANK_RATE_LIMIT_REDIS_URL
    if url:
        try:
            counts = _redis(url).counts(bank_code, seconds)
        except _REDIS_FAILURES as exc:
            logger.info("bank rate limit: Redis counters unreadable (%s)", exc)
    with _local.lock:
        own = dict(_local.counts.get(bank_code, {}))
    for second in seconds:
        if second in own:
            counts[second] = counts.get(second, 0) + own[second]
    return counts


def peak_calls_per_second(bank_code: str, *, since: float, until: float | None = None) -> int:
    """The most calls let through to `bank_code` in one whole second from `since` to `until`."""
    return max(calls_per_second(bank_code, since=since, until=until).values(), default=0)


def rate_limits_reset() -> None:
    """Forget every bank's schedule and counters, shared and local (tests, benches)."""
    _local.reset()
    url = settings.BANK_RATE_LIMIT_REDIS_URL
    if url:
        _redis_down_until.pop(url, None)
        try:
            schedules = _redis(url)
            for bank_code in dict.fromkeys([*settings.BANK_CODES, *settings.BANKS]):
                schedules.reset(bank_code)
        except _REDIS_FAILURES as exc:
            logger.info("bank rate limit: Redis not reset (%s)", exc)
