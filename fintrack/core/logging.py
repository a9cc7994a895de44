"""The correlation id on every log line, in web requests and in Celery tasks alike.

One id ties together what one user action or one sync run did: its log lines, its raw bank logs
(audit.capture stamps the current id) and its audit events. It lives in the context variable of
fintrack.core.correlation; this module sets it at the edges and prints it:

- `CorrelationIdMiddleware` (first in MIDDLEWARE): each request runs under the client's
  `X-Correlation-Id` when it is a plausible id (letters, digits, `-`, `_`, `.`, `:`, at most 64:
  the raw logs' column), else under a fresh uuid; the response echoes it in the same header, so a
  user reporting a problem can quote it and the bank calls made for that request are found by it.
- Celery: `task_publish_stamp` (before_task_publish) puts the sender's id in the message headers,
  `task_scope_enter` / `task_scope_exit` (task_prerun / task_postrun) run the task under it, or a
  fresh one; a task whose arguments name its own id (a sync run's, sync.tasks) registers a
  resolver for it (`task_correlation_resolver_register`), which comes first.
- `CorrelationIdFilter` gives every log record a `correlation_id` attribute ("-" outside any
  scope) for the `%(correlation_id)s` of the formats in settings.LOGGING and of the worker's.
"""

import logging
import re
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

from django.http import HttpRequest, HttpResponse

from fintrack.core.correlation import correlation_scope, get_correlation_id, new_correlation_id

HEADER = "X-Correlation-Id"
HEADER_META = "HTTP_X_CORRELATION_ID"
# A task message's header carrying the sender's correlation id.
TASK_HEADER = "correlation_id"
NO_CORRELATION = "-"
# What a client may send as its id: a uuid, or any short token of safe characters (no spaces,
# no quotes, no control characters: it is written into log lines and response headers as is).
_VALID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}")
# The format of a log line (settings.LOGGING), and of a worker's, which names its process too.
logger = logging.getLogger(__name__)

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(correlation_id)s] %(message)s"
WORKER_LOG_FORMAT = (
    "%(asctime)s %(levelname)s %(processName)s %(name)s [%(correlation_id)s] %(message)s"
)


def correlation_id_valid(value: str | None) -> str | None:
    """The id a client sent, if it is a plausible one; None otherwise (a fresh one is used)."""
    if value and _VALID.fullmatch(value):
        return value
    return None


class CorrelationIdFilter(logging.Filter):
    """Adds `record.correlation_id` (the current scope's, or "-"); never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "correlation_id", None):
            # Django logs a 4xx/5xx answer (django.request) once the middleware has returned:
            # the id is then the one the middleware left on the request.
            request_id = getattr(getattr(record, "request", None), "correlation_id", None)
            record.correlation_id = get_correlation_id() or request_id or NO_CORRELATION
        return True


class CorrelationIdMiddleware:
    """Runs each request under its correlation id and echoes it in `X-Correlation-Id`."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        correlation_id = correlation_id_valid(request.META.get(HEADER_META)) or new_correlation_id()
        request.correlation_id = correlation_id  # type: ignore[attr-defined]
        with correlation_scope(correlation_id):
            response = self.get_response(request)
        response[HEADER] = correlation_id
        return response


# --- Celery (connected in fintrack/celery.py) ----------------------------------------------------

# task id → the scope a running task entered, left when it ends. A pool process runs one task at
# a time, a thread pool several (each in its own thread): keyed by task id, each leaves its own.
_task_scopes: dict[str, AbstractContextManager] = {}
# task name → how to find the id it runs under from its arguments (registered by its app).
_task_resolvers: dict[str, Callable[..., str | None]] = {}


def task_publish_stamp(headers: dict | None = None, **_kwargs: Any) -> None:
    """before_task_publish: the sender's correlation id travels in the message's headers."""
    current = get_correlation_id()
    if headers is not None and current and TASK_HEADER not in headers:
        headers[TASK_HEADER] = current


def task_correlation_resolver_register(task_name: str, resolver: Callable[..., str | None]) -> None:
    """Let a task run under an id found from its own arguments (a sync run's, by its id), the
    first choice of `task_scope_enter`; `resolver(*args, **kwargs)` returns it or None."""
    _task_resolvers[task_name] = resolver


def _task_correlation_id(task: Any, args: Any, kwargs: Any) -> str | None:
    resolver = _task_resolvers.get(getattr(task, "name", ""))
    if resolver is None:
        return None
    try:
        return correlation_id_valid(str(resolver(*(args or ()), **(kwargs or {})) or ""))
    except Exception as exc:  # a lookup that fails must not fail the task: the next choice is used
        logger.warning("correlation id of task %s not found: %s", task.name, exc)
        return None


def _carried(request: Any) -> str:
    """The id a task's message carries: a worker puts the message's headers on the request, an
    eager `apply(headers=…)` keeps them under `request.headers`."""
    value = getattr(request, TASK_HEADER, None) or (getattr(request, "headers", None) or {}).get(
        TASK_HEADER
    )
    return str(value or "")


def task_scope_enter(
    task_id: str | None = None, task: Any = None, args: Any = None, kwargs: Any = None, **_: Any
) -> None:
    """task_prerun: run the task under its own id (a registered resolver's), else the one its
    message carries, else its caller's (a task run eagerly), else a fresh one."""
    if not task_id:
        return
    request = getattr(task, "request", None)
    correlation_id = (
        _task_correlation_id(task, args, kwargs)
        or correlation_id_valid(_carried(request))
        or get_correlation_id()
        or new_correlation_id()
    )
    scope = correlation_scope(correlation_id)
    scope.__enter__()
    _task_scopes[task_id] = scope


def task_scope_exit(task_id: str | None = None, **_kwargs: Any) -> None:
    """task_postrun: back to the worker's own (empty) scope."""
    scope = _task_scopes.pop(task_id, None) if task_id else None
    if scope is not None:
        scope.__exit__(None, None, None)


def worker_handlers_format(logger: logging.Logger | None = None, **_kwargs: Any) -> None:
    """after_setup_logger / after_setup_task_logger: the worker's handlers print the id too."""
    if logger is None:
        return
    for handler in logger.handlers:
        if not any(isinstance(f, CorrelationIdFilter) for f in handler.filters):
            handler.addFilter(CorrelationIdFilter())
        handler.setFormatter(logging.Formatter(WORKER_LOG_FORMAT))
