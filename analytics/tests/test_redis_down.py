"""Without Redis the API keeps answering, and finished work is recorded as finished.

Redis is the cache (throttle counters, the analytics debounce marker) and the Celery broker.
"Down" here is real: the cache and the broker point at a loopback port nobody listens on, so
every call fails as it does in an outage (connection refused), through the real backends.
- the cache: throttles count in the process (fintrack.core.throttling), saying so once in the
  log; the debounce marker is a database row (analytics.models.RecomputeRequest), which the
  outage does not touch;
- the broker: a task that cannot be sent is logged and reported (fintrack.core.tasks.enqueue),
  the work that sent it keeps its outcome, and the next read or sync asks again.
"""

import logging
import socket
import time
from datetime import timedelta
from unittest import mock

import pytest
from django.test import override_settings
from django.utils import timezone
from rest_framework.test import APIClient

from analytics import services
from analytics.models import AnalyticsSnapshot
from analytics.tasks import recompute_user
from fintrack.core.tasks import enqueue
from sync.models import SyncRun, SyncStatus
from sync.tests.test_sandbox_sync import _connected, _sync
from users.services import token_pair_for

PASSWORD = "A-strong-pass-2026"


def _closed_port() -> int:
    """A loopback port nobody listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def fallbacks_reset():
    """The process-local throttle counters start and end clean."""
    from fintrack.core.throttling import fallback_reset

    fallback_reset()
    yield
    fallback_reset()


@pytest.fixture
def redis_cache_down(fallbacks_reset):
    """The default cache is Redis at a port where nothing answers."""
    down = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{_closed_port()}/0",
            "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5},
        }
    }
    with override_settings(CACHES=down):
        yield


@pytest.fixture
def broker_down():
    """Tasks go to a Redis broker at a port where nothing answers (not inline)."""
    from fintrack.tests.celery_workers import broker_at, tasks_through_the_broker

    with broker_at(f"redis://127.0.0.1:{_closed_port()}/0"), tasks_through_the_broker():
        yield


def _client(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token_pair_for(user)['access']}")
    return client


@pytest.mark.django_db
def test_without_the_cache_requests_are_still_debounced(redis_cache_down, user):
    with mock.patch("analytics.tasks.recompute_user.apply_async") as apply_async:
        for _ in range(3):
            assert services.analytics_recompute_request(user_id=user.id) is True
    apply_async.assert_called_once_with(args=[user.id], countdown=services.RECOMPUTE_DELAY_SECONDS)
    assert services.recompute_scheduled(user_id=user.id) is True
    services.recompute_marker_clear(user_id=user.id)  # what the task does first
    assert services.recompute_scheduled(user_id=user.id) is False


@pytest.mark.django_db(transaction=True)
def test_login_dashboard_sync_and_recompute_answer_without_redis(
    sandbox_banks, redis_cache_down, make_user, caplog
):
    """Every endpoint the outage gave a 500 on; the sync started runs (inline, as tests do)
    and is recorded succeeded."""
    caplog.set_level(logging.WARNING)
    user = make_user(email="olga@example.com", password=PASSWORD)
    _connected(user, "vbank")
    login = APIClient().post(
        "/api/auth/login", {"login": "olga@example.com", "password": PASSWORD}, format="json"
    )
    assert login.status_code == 200, login.content
    client = _client(user)

    started = client.post("/api/banks/vbank/sync")
    assert started.status_code == 202, started.content
    run = SyncRun.objects.get(pk=started.json()["sync_run_id"])
    assert (run.status, run.error_code) == (SyncStatus.SUCCEEDED, "")

    dashboard = client.get("/api/dashboard")
    assert dashboard.status_code == 200, dashboard.content
    assert dashboard.json()["state"] == "ready"
    recompute = client.post("/api/analytics/recompute")
    assert recompute.status_code == 202, recompute.content
    assert any("throttle cache unavailable" in r.getMessage() for r in caplog.records)


@pytest.mark.django_db
def test_a_task_the_broker_cannot_take_is_reported_quickly_not_raised(broker_down, caplog):
    caplog.set_level(logging.WARNING)
    started = time.monotonic()
    assert enqueue(recompute_user, 123, countdown=3) is False
    assert time.monotonic() - started < 5
    assert any(
        "analytics.recompute_user" in r.getMessage() and "not sent" in r.getMessage()
        for r in caplog.records
    )


@pytest.mark.django_db
def test_a_send_failing_for_another_reason_clears_the_marker_and_raises(user):
    """Not an outage enqueue knows (a bug, a closed pool): the error is not hidden, and the
    marker of the task that was never sent does not block the next request."""
    failure = RuntimeError("Acquire on closed pool")
    with (
        mock.patch("analytics.tasks.recompute_user.apply_async", side_effect=failure),
        pytest.raises(RuntimeError, match="closed pool"),
    ):
        services.analytics_recompute_request(user_id=user.id)
    assert services.recompute_scheduled(user_id=user.id) is False
    with mock.patch("analytics.tasks.recompute_user.apply_async") as apply_async:
        assert services.analytics_recompute_request(user_id=user.id) is True
    apply_async.assert_called_once()


@pytest.mark.django_db
def test_a_broker_address_used_again_is_met_with_fresh_connections():
    """broker_at closes its pools and drops them from kombu's process-wide registry, keyed by
    the address: a later block at the same address (a released port the system hands out
    again) gets new connections, and the send fails as an outage, not on a closed pool."""
    from fintrack.tests.celery_workers import broker_at, tasks_through_the_broker

    url = f"redis://127.0.0.1:{_closed_port()}/0"
    for _ in range(2):
        with broker_at(url), tasks_through_the_broker():
            assert enqueue(recompute_user, 123) is False


@pytest.mark.django_db
def test_enqueue_sends_when_the_broker_takes_it(user):
    # Eager (the tests' broker): the task runs at once; the marker it clears was never set.
    assert enqueue(recompute_user, user.id) is True
    assert AnalyticsSnapshot.objects.filter(user=user).count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_committed_sync_stays_succeeded_when_its_recomputation_cannot_be_sent(
    sandbox_banks, fallbacks_reset, user, settings
):
    """The broker is down when the sync's finalize asks for the recomputation: the run is
    succeeded, the request forgotten (no marker), and the next dashboard read asks again."""
    # One pass: a progressive first sync also stores a snapshot after its recent phase.
    settings.FIRST_SYNC_RECENT_DAYS = 0
    connection = _connected(user, "vbank")
    old = services.analytics_recompute(user=user)
    AnalyticsSnapshot.objects.filter(pk=old.pk).update(
        created_at=timezone.now() - timedelta(minutes=5)
    )
    from fintrack.tests.celery_workers import broker_at, tasks_through_the_broker

    with broker_at(f"redis://127.0.0.1:{_closed_port()}/0"), tasks_through_the_broker():
        run = _sync(connection)
    assert (run.status, run.error) == (SyncStatus.SUCCEEDED, "")
    assert services.recompute_scheduled(user_id=user.id) is False
    assert AnalyticsSnapshot.objects.filter(user=user).count() == 1

    # The broker is back (inline in tests): the dashboard finds its snapshot older than the
    # sync and asks for the recomputation that was lost.
    body = _client(user).get("/api/dashboard").json()
    assert body["outdated"] is True
    assert AnalyticsSnapshot.objects.filter(user=user).count() == 2
    assert _client(user).get("/api/dashboard").json()["outdated"] is False
