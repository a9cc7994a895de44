"""One sync end to end through a real broker and a real worker (not eager), against the sandbox.

Runs where CELERY_BROKER_URL is a Redis URL (CI: PostgreSQL + Redis); skipped elsewhere.
"""

import os
import time

import pytest

from sync.models import SyncRun, SyncStatus, SyncTrigger
from sync.services import connection_sync_start
from sync.tests.ground_truth import assert_equals_ground_truth

BROKER_URL = os.environ.get("CELERY_BROKER_URL", "")

pytestmark = [
    pytest.mark.broker,
    pytest.mark.skipif(
        not BROKER_URL.startswith("redis://"), reason="needs CELERY_BROKER_URL=redis://…"
    ),
    pytest.mark.django_db(transaction=True),
]


@pytest.fixture
def not_eager():
    """Tasks go through the broker for this test; eager mode (the test default) comes back after."""
    from fintrack.tests.celery_workers import tasks_through_the_broker

    with tasks_through_the_broker():
        yield


def test_sync_runs_end_to_end_on_a_real_celery_worker(sandbox_banks, not_eager, user):
    from celery.contrib.testing.worker import start_worker
    from django.db import connection as db_connection

    from fintrack.celery import app
    from sync.tests.test_sandbox_sync import _connected

    if db_connection.vendor == "sqlite" and db_connection.is_in_memory_db():
        pytest.skip("a worker thread needs a database it can open itself (PostgreSQL in CI)")
    connection = _connected(user, "vbank")

    with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=30):
        run, created = connection_sync_start(connection=connection, trigger=SyncTrigger.USER)
        assert created is True
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            run.refresh_from_db()
            if run.status in (SyncStatus.SUCCEEDED, SyncStatus.FAILED):
                break
            time.sleep(0.2)

    assert run.status == SyncStatus.SUCCEEDED, (run.status, run.error)
    assert run.attempts == 1
    assert SyncRun.objects.filter(connection=connection).count() == 1
    assert_equals_ground_truth(user=user, bank_code="vbank")
