"""Sending a Celery task without letting a broker outage fail the work that sends it.

Tasks are sent after the work they follow has committed (`transaction.on_commit`): a sync's data,
a run's row. An exception there reaches the caller after the commit: the sync that stored
everything would be recorded failed, the API request that queued a run would answer 500. So
follow-up tasks go through `enqueue`, which catches the broker's errors (Redis down, refusing,
or not answering within the transport's socket timeouts, settings.py), logs them and returns
False. What was not sent must be sent again by someone: each call site says who (the next sync or
dashboard read re-requests an analytics recomputation; the reaper re-sends a queued sync run).

Many messages at once (a fan-out chunk's runs) go through `tasks_send_many`: one producer, and on
Redis their pushes pipelined in batches (kombu makes a client and a round trip per message).
"""

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from kombu.exceptions import OperationalError as KombuOperationalError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

logger = logging.getLogger(__name__)

# What a send raises when the broker cannot take the message: kombu wraps the transport's errors
# in its OperationalError once its publish retries are spent; the others are the same failures
# met outside kombu's retry (a pooled connection, a socket).
BROKER_ERRORS: tuple[type[BaseException], ...] = (
    KombuOperationalError,
    RedisConnectionError,
    RedisTimeoutError,
    ConnectionError,
    TimeoutError,
)


def enqueue(task: Any, *args: Any, countdown: float | None = None, **kwargs: Any) -> bool:
    """Send `task(*args, **kwargs)` (after `countdown` seconds); False, logged, if the broker
    cannot take it."""
    options: dict[str, Any] = {"args": list(args)}
    if kwargs:
        options["kwargs"] = kwargs
    if countdown is not None:
        options["countdown"] = countdown
    try:
        task.apply_async(**options)
    except BROKER_ERRORS as exc:
        logger.warning(
            "broker unavailable, task %s%r not sent (%s: %s)",
            task.name,
            tuple(args) + tuple(f"{key}={value!r}" for key, value in kwargs.items()),
            type(exc).__name__,
            exc,
        )
        return False
    return True


# Messages a Redis broker takes in one round trip when many are sent at once (tasks_send_many).
SEND_BATCH = 500


class _PushBatch:
    """The Redis client kombu's channel uses during `tasks_send_many`: each LPUSH (a publish to
    a direct queue) is queued on a pipeline, which goes out every `size` pushes and at the end,
    instead of one client made and one round trip per message. Any other command (a queue's
    declaration, on a producer's first publish) goes straight to one client, answered."""

    def __init__(self, client, size: int):
        self._client = client
        self._pipe = client.pipeline(transaction=False)
        self._size = size
        self.queued = 0
        self.pushed = 0

    def lpush(self, *args):
        self._pipe.lpush(*args)
        self.queued += 1
        if self.queued >= self._size:
            self.flush()

    def __getattr__(self, name: str):
        return getattr(self._client, name)

    def flush(self) -> None:
        if self.queued:
            self._pipe.execute()
            self.pushed += self.queued
            self.queued = 0


@contextmanager
def _pushes_batched(producer, size: int) -> Iterator[_PushBatch | None]:
    """On a Redis broker, the producer's publishes in the block are pipelined (see _PushBatch);
    elsewhere (the embedded file-system broker) they go one by one, and None is yielded."""
    channel = producer.channel
    if producer.connection.transport.driver_type != "redis":
        yield None
        return
    batch = _PushBatch(channel._create_client(), size)

    @contextmanager
    def conn_or_acquire(client=None):
        yield client or batch

    channel.conn_or_acquire = conn_or_acquire  # this producer's own channel, for the block
    try:
        yield batch
    finally:
        del channel.conn_or_acquire  # kombu's method again


def tasks_send_many(
    task: Any, calls: Sequence[tuple[Sequence[Any], float | None]], *, batch: int = SEND_BATCH
) -> int:
    """Send `task(*args)` after `countdown` seconds for each (args, countdown) of `calls`, in
    order, through one producer: each message is made by Celery's own `apply_async` (routing,
    headers, ETA), and on a Redis broker they are pushed in pipelined batches of `batch`.
    Returns how many reached the broker. A broker error stops the sending, logged: what was
    not confirmed sent (the whole batch in flight, some of which may have arrived) is left to
    the caller's re-sender, so a task sent this way must be idempotent on redelivery."""
    if task.app.conf.task_always_eager:
        for args, countdown in calls:
            task.apply_async(args=list(args), countdown=countdown)
        return len(calls)
    sent = 0
    pushes: _PushBatch | None = None
    try:
        with (
            task.app.producer_or_acquire() as producer,
            _pushes_batched(producer, batch) as pushes,
        ):
            for args, countdown in calls:
                task.apply_async(args=list(args), countdown=countdown, producer=producer)
                if pushes is None:
                    sent += 1
            if pushes is not None:
                pushes.flush()
                sent = pushes.pushed
    except BROKER_ERRORS as exc:
        if pushes is not None:
            sent = pushes.pushed
        logger.warning(
            "broker unavailable, %s of %s %s task(s) not sent (%s: %s)",
            len(calls) - sent,
            len(calls),
            task.name,
            type(exc).__name__,
            exc,
        )
    return sent
