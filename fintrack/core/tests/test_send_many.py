"""Many tasks sent at once (fintrack.core.tasks.tasks_send_many): on a Redis broker, pushed in
pipelined batches, each message the one `apply_async` makes; a broker that goes away mid-send
stops it, with the count of what arrived; a real worker runs what was sent.

A throwaway redis-server on a free port (the `redis_broker` fixture), so the queue read back holds
only this test's messages.
"""

import base64
import json
import time
from datetime import datetime

import pytest
import redis
from django.conf import settings
from django.utils import timezone

from fintrack.core import tasks as core_tasks

ON_POSTGRESQL = settings.DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"
pytestmark = pytest.mark.broker


def _queued(url: str, queue: str = "sync") -> list[dict]:
    """The queue's messages, oldest first (LPUSH puts the newest at the head)."""
    client = redis.Redis.from_url(url)
    return [json.loads(raw) for raw in reversed(client.lrange(queue, 0, -1))]


def _comparable(message: dict) -> dict:
    """A message without what differs from one send to the next (ids, tags, the ETA)."""
    headers = {k: v for k, v in message["headers"].items() if k not in ("id", "root_id", "eta")}
    properties = {
        k: v
        for k, v in message["properties"].items()
        if k not in ("correlation_id", "delivery_tag")
    }
    return {**message, "headers": headers, "properties": properties}


def test_messages_are_pipelined_in_batches_and_are_those_apply_async_makes(
    redis_broker, monkeypatch
):
    from sync.tasks import connection_sync

    executes = []  # the pipelines of pushes sent (kombu declares the queue with one of its own)
    real_execute = redis.client.Pipeline.execute

    def execute(pipe, *args, **kwargs):
        names = {command_args[0] for command_args, _options in pipe.command_stack}
        if names == {"LPUSH"}:
            executes.append(len(pipe.command_stack))
        return real_execute(pipe, *args, **kwargs)

    monkeypatch.setattr(redis.client.Pipeline, "execute", execute)
    before = timezone.now()
    calls = [([run_id], 5.0 + run_id) for run_id in range(1, 8)]

    sent = core_tasks.tasks_send_many(connection_sync, calls, batch=3)

    assert sent == 7
    assert executes == [3, 3, 1]  # one round trip per batch, the rest at the end
    pipelined = _queued(redis_broker.url)
    assert [json.loads(_body(m))[0] for m in pipelined] == [[i] for i in range(1, 8)]
    for message, (_args, countdown) in zip(pipelined, calls, strict=True):
        eta = message["headers"]["eta"]
        assert eta is not None
        delay = (datetime.fromisoformat(eta) - before).total_seconds()
        assert countdown - 1 < delay < countdown + 5
    # The same message as one sent alone by apply_async, but for its ids and ETA.
    redis.Redis.from_url(redis_broker.url).delete("sync")
    connection_sync.apply_async(args=[1], countdown=6.0)
    [alone] = _queued(redis_broker.url)
    assert _comparable(pipelined[0]) == _comparable(alone)


def _body(message: dict) -> str:
    return base64.b64decode(message["body"]).decode()


def test_a_broker_gone_mid_send_stops_it_and_counts_what_arrived(redis_broker, caplog, monkeypatch):
    from sync.tasks import connection_sync

    real_flush = core_tasks._PushBatch.flush
    flushes = []

    def flush(batch):
        flushes.append(batch.queued)
        if len(flushes) == 2:
            redis_broker.stop()  # the second batch finds the broker gone
        real_flush(batch)

    monkeypatch.setattr(core_tasks._PushBatch, "flush", flush)
    calls = [([run_id], 1.0) for run_id in range(1, 8)]

    sent = core_tasks.tasks_send_many(connection_sync, calls, batch=3)

    assert sent == 3  # the first batch; the second, in flight, is not counted sent
    assert "4 of 7 sync.connection_sync task(s) not sent" in caplog.text
    redis_broker.start()


def test_eager_runs_each_at_once(monkeypatch):
    from sync.tasks import connection_sync

    ran = []
    monkeypatch.setattr(connection_sync, "apply_async", lambda **kw: ran.append(kw["args"]))
    assert connection_sync.app.conf.task_always_eager
    assert core_tasks.tasks_send_many(connection_sync, [([1], 2.0), ([2], None)]) == 2
    assert ran == [[1], [2]]


@pytest.mark.skipif(
    not ON_POSTGRESQL,
    reason="needs PostgreSQL: the worker is another process and reads the test database",
)
@pytest.mark.django_db(transaction=True)
def test_a_worker_runs_every_run_a_chunk_sent_pipelined(sandbox_banks, redis_broker, user):
    from banking.models import BankConnection, ConnectionStatus
    from fintrack.tests.celery_workers import celery_worker, worker_environment
    from sync.fanout import fanout_chunk_start
    from sync.models import SyncRun, SyncStatus
    from sync.tests.test_sandbox_sync import _connected

    connections = [_connected(user, code) for code in ("vbank", "abank", "sbank")]
    BankConnection.objects.filter(user=user).update(status=ConnectionStatus.READY)  # scheduled
    environment = worker_environment(
        broker_url=redis_broker.url,
        **{
            f"{code.upper()}_BASE_URL": config["base_url"] for code, config in sandbox_banks.items()
        },
    )
    with celery_worker(name="send-many", environment=environment):
        run_ids = fanout_chunk_start(
            connection_ids=[c.pk for c in connections], span_seconds=1.0
        )  # its sends go on commit: autocommit here
        assert len(run_ids) == 3
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            statuses = set(SyncRun.objects.filter(pk__in=run_ids).values_list("status", flat=True))
            if statuses <= {SyncStatus.SUCCEEDED, SyncStatus.FAILED, SyncStatus.PARTIAL}:
                break
            time.sleep(0.3)
    runs = SyncRun.objects.filter(pk__in=run_ids)
    assert sorted(runs.values_list("status", flat=True)) == [SyncStatus.SUCCEEDED] * 3
