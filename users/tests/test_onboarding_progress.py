"""Onboarding progress that moves (issue 24), end to end: a sandbox client with a few thousand
transactions onboarded through the API, its connect and first sync carried out by a worker
thread (the tasks as a worker runs them), while the test long-polls GET /api/onboarding/status
with ?since=: transactions_added counts up batch by batch, the overall percent never goes back
and ends at 100, the ETA appears once the page count is known.

Needs a database the worker thread can open itself: PostgreSQL (CI); skipped on in-memory SQLite.
"""

import threading
import time

import pytest
from django.db import connection as db_connection
from django.db import connections

from banking.models import Transaction
from sandbox import faults
from sandbox.volume import set_client_volume
from sync import services as sync_services
from sync import tasks as sync_tasks
from sync.models import SyncRun, SyncStatus
from users.models import ConnectRequest
from users.onboarding import connect_requests
from users.onboarding import tasks as onboarding_tasks

pytestmark = pytest.mark.django_db(transaction=True)

CLIENT = "team260-1"  # the demo client a first user is proposed; a busy VBank checking account
POLL_DEADLINE_SECONDS = 180


@pytest.fixture
def worker_thread(monkeypatch):
    """Each task message (the connect's, then the first sync's) runs on a thread of its own, as
    a worker takes it from the queue once it is sent; joined at the end."""
    threads: list[threading.Thread] = []
    errors: list[BaseException] = []

    def worker(task, task_id: int) -> None:
        try:
            task.apply(args=[task_id])
        except BaseException as exc:  # shown by the test, not lost in the thread
            errors.append(exc)
        finally:
            connections.close_all()

    def sent_to(task):
        def send(**ids) -> bool:
            [task_id] = ids.values()
            thread = threading.Thread(target=worker, args=(task, task_id), name=task.name)
            threads.append(thread)
            thread.start()
            return True

        return send

    monkeypatch.setattr(
        connect_requests, "connect_request_send", sent_to(onboarding_tasks.connect_request_run)
    )
    monkeypatch.setattr(sync_services, "sync_run_send", sent_to(sync_tasks.connection_sync))
    yield errors
    for thread in threads:
        thread.join(timeout=POLL_DEADLINE_SECONDS)


def test_onboarding_progress_counts_up_while_a_worker_syncs_a_heavy_client(
    sandbox_banks, auth_client, settings, worker_thread, monkeypatch
):
    if db_connection.vendor == "sqlite":
        pytest.skip("a worker thread needs a database it can open itself (PostgreSQL in CI)")
    set_client_volume(CLIENT, 1500, history_months=24)  # ~3,000 rows on its busy account
    settings.SYNC_PAGE_LIMIT = 50
    settings.SYNC_WRITE_BATCH_ROWS = 100
    faults.set_faults("vbank", latency_ms=15)  # a bank that takes a little time per page
    # Progress rows at most every 0.2 s (1 s in production): a few seconds' sync shows several.
    monkeypatch.setattr(sync_services, "PROGRESS_WRITE_EVERY_SECONDS", 0.2)

    started = auth_client.post("/api/onboarding/start", {"banks": ["vbank"]}, format="json")
    assert started.status_code == 202, started.content
    version = started.json()["version"]

    seen: list[dict] = []
    deadline = time.monotonic() + POLL_DEADLINE_SECONDS
    while time.monotonic() < deadline:
        response = auth_client.get(f"/api/onboarding/status?since={version}&wait=5")
        assert response.status_code in (200, 304), response.content
        if response.status_code == 304:
            continue
        body = response.json()
        assert body["version"] != version
        version = body["version"]
        seen.append(body)
        if body["progress"]["percent"] == 100:
            break
    assert not worker_thread, worker_thread

    percents = [body["progress"]["percent"] for body in seen]
    syncs = [body["banks"][0]["sync"] for body in seen if body["banks"][0]["sync"]]
    added = [sync["transactions_added"] for sync in syncs]
    assert percents and percents[-1] == 100, percents
    assert percents == sorted(percents), percents  # never goes back
    assert added == sorted(added), added  # counts up, never back
    distinct = sorted(set(added))
    assert len([value for value in distinct if value > 0]) >= 3, added  # moved while reading
    run = SyncRun.objects.get(connection__user=auth_client.user)
    assert run.status == SyncStatus.SUCCEEDED, run.error
    stored = Transaction.objects.filter(user=auth_client.user).count()
    assert stored >= 2000
    assert added[-1] == run.transactions_added == stored
    # While reading, the page count was known and gave an ETA.
    reading = [sync for sync in syncs if sync["status"] == SyncStatus.RUNNING]
    assert any(sync["pages_total"] for sync in reading), reading
    assert any(sync["eta_seconds"] is not None for sync in reading), reading
    assert any(body["progress"]["eta_seconds"] is not None for body in seen)
    assert seen[-1]["step"] == "done" and seen[-1]["banks"][0]["connection_status"] == "ready"
    assert ConnectRequest.objects.get(user=auth_client.user).status == "succeeded"

    # The run itself long-polls the same way: unchanged now, 304.
    detail = auth_client.get(f"/api/sync-runs/{run.pk}").json()
    assert detail["pages_done"] == detail["pages_total"] and detail["eta_seconds"] is None
    again = auth_client.get(f"/api/sync-runs/{run.pk}?since={detail['version']}&wait=0")
    assert again.status_code == 304
