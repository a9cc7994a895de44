"""Throttles count exactly under concurrency (threads, and processes on Redis), and degrade to a
local counter, logged, while the cache is down.

The Redis cases run on the Redis of REDIS_CACHE_URL (CI sets it), in its database 13 so they
clear nothing of anyone else's; without REDIS_CACHE_URL they are skipped and say so (CI fails on
a skip of them: `CI` set and no Redis is a configuration error).
"""

import multiprocessing
import os
import socket
import threading
from types import SimpleNamespace
from urllib.parse import urlsplit, urlunsplit

import pytest
from django.core.cache.backends.locmem import LocMemCache

from fintrack.core import throttling
from fintrack.core.throttling import ScopedRateThrottle

RATE = "30/min"
LIMIT = 30
CLIENTS = 50
FIXED_NOW = 1_740_000_000.0
REDIS_TEST_DB = 13


def _redis_url(db: int = REDIS_TEST_DB) -> str | None:
    url = os.environ.get("REDIS_CACHE_URL", "")
    if not url:
        return None
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{db}", parts.query, parts.fragment))


def _redis_cache(url: str):
    from django.core.cache.backends.redis import RedisCache

    return RedisCache(url, {"OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5}})


@pytest.fixture
def redis_cache():
    url = _redis_url()
    if url is None:
        if os.environ.get("CI"):
            pytest.fail("REDIS_CACHE_URL is not set in CI: the Redis throttle tests must run")
        pytest.skip("REDIS_CACHE_URL is not set: the Redis throttle tests need a Redis")
    cache = _redis_cache(url)
    cache.clear()
    yield cache
    cache.clear()


@pytest.fixture(autouse=True)
def _fresh_fallback():
    """Each test starts with the shared cache trusted and no local counts."""
    throttling.cache_health.reset()
    throttling.local_counters.clear()
    yield
    throttling.cache_health.reset()
    throttling.local_counters.clear()


@pytest.fixture(autouse=True)
def _rate(monkeypatch):
    monkeypatch.setattr(
        "rest_framework.throttling.SimpleRateThrottle.THROTTLE_RATES", {"login": RATE}
    )


VIEW = SimpleNamespace(throttle_scope="login")


def _request(address: str = "203.0.113.7"):
    from django.test import RequestFactory

    request = RequestFactory().post("/api/auth/login", REMOTE_ADDR=address)
    request.user = None  # anonymous: keyed on the address
    return request


def _throttle(cache, now: float = FIXED_NOW) -> ScopedRateThrottle:
    throttle = ScopedRateThrottle()
    throttle.cache = cache
    throttle.timer = lambda: now
    return throttle


def _concurrent_allowed(cache, clients: int = CLIENTS) -> int:
    """How many of `clients` simultaneous requests (one thread each) the throttle lets through."""
    barrier = threading.Barrier(clients)
    allowed = []

    def one():
        throttle = _throttle(cache)  # DRF makes a throttle per request
        barrier.wait()
        allowed.append(throttle.allow_request(_request(), VIEW))

    threads = [threading.Thread(target=one) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(allowed)


def test_exactly_the_limit_passes_concurrently_on_a_local_cache():
    cache = LocMemCache("throttle-test", {})
    assert _concurrent_allowed(cache) == LIMIT


def test_exactly_the_limit_passes_concurrently_on_redis(redis_cache):
    assert _concurrent_allowed(redis_cache) == LIMIT


def _process_worker(url: str, calls: int, barrier, results) -> None:
    """One process's share of the requests (spawned: nothing of the parent's state is shared)."""
    from rest_framework.throttling import SimpleRateThrottle

    SimpleRateThrottle.THROTTLE_RATES = {"login": RATE}
    cache = _redis_cache(url)
    throttle_calls = [_throttle(cache) for _ in range(calls)]
    barrier.wait()
    results.put(sum(t.allow_request(_request(), VIEW) for t in throttle_calls))


def test_exactly_the_limit_passes_across_processes_on_redis(redis_cache):
    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(5), context.Queue()
    processes = [
        context.Process(target=_process_worker, args=(_redis_url(), 10, barrier, results))
        for _ in range(5)
    ]
    for process in processes:
        process.start()
    allowed = sum(results.get(timeout=60) for _ in processes)
    for process in processes:
        process.join(timeout=30)
    assert allowed == LIMIT  # 50 requests from 5 processes


def test_windows_start_at_the_first_request_and_wait_says_when():
    cache = LocMemCache("throttle-window-test", {})
    start = FIXED_NOW + 17.25  # any instant: no clock minute splits the burst
    for _ in range(LIMIT):
        assert _throttle(cache, now=start).allow_request(_request(), VIEW)
    late = _throttle(cache, now=start + 59)
    assert not late.allow_request(_request(), VIEW)
    assert late.wait() == 1  # the window ends 60 s after the first request
    assert _throttle(cache, now=start + 59).allow_request(_request("198.51.100.1"), VIEW)
    assert _throttle(cache, now=start + 60).allow_request(_request(), VIEW)


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]  # nothing listens once it is closed


def test_a_down_cache_falls_back_to_a_local_count_and_logs_it(caplog):
    down = _redis_cache(f"redis://127.0.0.1:{_closed_port()}/0")
    caplog.set_level("WARNING", logger="fintrack.core.throttling")

    allowed = [_throttle(down).allow_request(_request(), VIEW) for _ in range(LIMIT + 5)]

    assert allowed == [True] * LIMIT + [False] * 5  # the limit holds in this process
    warnings = [r for r in caplog.records if "throttle cache unavailable" in r.getMessage()]
    assert len(warnings) == 1  # once, not per request
    assert not throttling.cache_health.usable()


def test_while_redis_is_down_the_api_keeps_answering(api_client, make_user, settings, caplog):
    make_user(email="anna@example.com", password="Correct-Horse-2026")
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{_closed_port()}/0",
            "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5},
        }
    }
    caplog.set_level("WARNING", logger="fintrack.core.throttling")

    login = api_client.post(
        "/api/auth/login",
        {"login": "anna@example.com", "password": "Correct-Horse-2026"},
        format="json",
    )
    wrong = api_client.post(
        "/api/auth/login", {"login": "anna@example.com", "password": "nope"}, format="json"
    )
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {login.json()['access']}")
    me = api_client.get("/api/auth/me")

    assert (login.status_code, wrong.status_code, me.status_code) == (200, 401, 200)
    assert any("throttle cache unavailable" in r.getMessage() for r in caplog.records)


def test_every_throttled_view_uses_the_atomic_throttle():
    from django.urls import get_resolver
    from rest_framework.throttling import SimpleRateThrottle

    def views(patterns):
        for pattern in patterns:
            if hasattr(pattern, "url_patterns"):
                yield from views(pattern.url_patterns)
            else:
                yield getattr(pattern.callback, "cls", None)

    throttled = {
        view: throttle
        for view in views(get_resolver().url_patterns)
        if view is not None
        for throttle in getattr(view, "throttle_classes", [])
        if issubclass(throttle, SimpleRateThrottle)
    }
    assert throttled, "no throttled view found"
    assert {
        view.__name__: throttle.__name__
        for view, throttle in throttled.items()
        if not issubclass(throttle, throttling.AtomicRateThrottle)
    } == {}
