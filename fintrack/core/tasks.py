"""Sending a Celery task without letting a broker outage fail the work that sends it.

Tasks are sent after the work they follow has committed (`transaction.on_commit`): a sync's data,
a run's row. An exception there reaches the caller after the commit: the sync that stored
everything would be recorded failed, the API request that queued a run would answer 500. So
follow-up tasks go through `enqueue`, which catches the broker's errors (Redis down, refusing,
or not answering within the transport's socket timeouts, settings.py), logs them and returns
False. What was not sent must be sent again by someone: each call site says who (the next sync or
dashboard read re-requests an analytics recomputation; the reaper re-sends a queued sync run).
"""

import logging
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
