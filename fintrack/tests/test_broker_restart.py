"""The worker outlives a broker restart: a real worker process, a real Redis restarted under it.

With celery/kombu 5.7.0 the worker process exited on the first Redis restart ("Unrecoverable
error: AttributeError: 'NoneType' object has no attribute 'hostname'") whenever it held an
unacknowledged message: a task running (mid-sync) or one waiting for its countdown (idle, with an
analytics recomputation or a consent poll scheduled). Celery 5.7's consumer closes the broken
connection again after collecting it, and kombu 5.7's channel then builds a Redis pool from the
transport the collect had detached. Pinned to celery 5.6.3 / kombu 5.6.2 / redis 6.4.0
(requirements.txt), and retrying the connection for as long as the broker is away (settings.py),
the worker reconnects and runs what is sent after the restart.

The test starts its own redis-server on a free port (the shared one is never restarted) and needs
PostgreSQL: the worker is another process and reads the test's database.
"""

import time

import pytest
from django.conf import settings

from fintrack.tests.celery_workers import REDIS_SERVER

ON_POSTGRESQL = settings.DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"

pytestmark = [
    pytest.mark.broker,
    pytest.mark.skipif(
        REDIS_SERVER is None, reason="needs redis-server on PATH (apt-get install redis-server)"
    ),
    pytest.mark.skipif(
        not ON_POSTGRESQL,
        reason="needs PostgreSQL: the worker is another process and reads the test database",
    ),
    pytest.mark.django_db(transaction=True),
]


def _assert_reconnected(worker, *, after: int) -> None:
    """The worker logs a new connection to the broker, and is still alive a moment later."""
    reconnected = worker.wait_for_log("Connected to redis", seconds=60, after=after)
    if reconnected:
        time.sleep(2)  # 5.7.0 died within a second of losing the connection
    assert reconnected and worker.alive(), (
        f"the worker did not survive the restart (alive: {worker.alive()}):\n{worker.log()[-6000:]}"
    )


def _wait_for_run(run, *, statuses, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        run.refresh_from_db()
        if run.status in statuses:
            return
        time.sleep(0.2)


def test_worker_reconnects_after_redis_restarts_idle_and_mid_sync(
    sandbox_banks, redis_broker, user
):
    broker = redis_broker
    from analytics.tasks import recompute_user
    from fintrack.tests.celery_workers import (
        celery_worker,
        tasks_through_the_broker,
        worker_environment,
    )
    from sandbox.faults import set_faults
    from sync.models import SyncStatus, SyncTrigger
    from sync.services import connection_sync_start
    from sync.tests.test_sandbox_sync import _connected

    vbank, abank = (_connected(user, code) for code in ("vbank", "abank"))
    environment = worker_environment(
        broker_url=broker.url,
        **{
            f"{code.upper()}_BASE_URL": config["base_url"] for code, config in sandbox_banks.items()
        },
    )
    # Gossip, mingle and heartbeats on, as in production: they all hold channels to the broker.
    with (
        tasks_through_the_broker(),
        celery_worker(name="restart", environment=environment) as worker,
    ):
        # Idle, holding a message: a recomputation waiting for its countdown is unacknowledged.
        recompute_user.apply_async(args=[user.pk], countdown=120)
        assert worker.wait_for_log("received", seconds=10), worker.log()[-3000:]
        connected = worker.log().count("Connected to redis")
        mark = len(worker.log())
        broker.restart()
        _assert_reconnected(worker, after=mark)
        assert worker.log().count("Connected to redis") > connected

        # Mid-sync: the bank answers slowly, the broker restarts while the run reads it.
        set_faults("vbank", latency_ms=400)
        run, created = connection_sync_start(connection=vbank, trigger=SyncTrigger.USER)
        assert created
        _wait_for_run(run, statuses={SyncStatus.RUNNING}, seconds=30)
        assert run.status == SyncStatus.RUNNING, (run.status, worker.log()[-3000:])
        time.sleep(1)
        mark = len(worker.log())
        broker.restart()
        _assert_reconnected(worker, after=mark)

        # A task sent after the restarts runs: a whole sync of another bank.
        after, created = connection_sync_start(connection=abank, trigger=SyncTrigger.USER)
        assert created
        _wait_for_run(after, statuses={SyncStatus.SUCCEEDED, SyncStatus.FAILED}, seconds=120)
        assert after.status == SyncStatus.SUCCEEDED, (after.status, after.error,
                                                      worker.log()[-3000:])  # fmt: skip
        assert worker.alive()
        assert "Unrecoverable error" not in worker.log()
