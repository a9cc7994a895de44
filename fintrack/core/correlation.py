"""The correlation id shared by everything one user action or one sync run does.

Bank clients stamp it on every raw API log; audit events carry it too. It lives in a context
variable, so concurrent requests and tasks in one process never mix theirs up.
"""

import uuid
from contextlib import contextmanager
from contextvars import ContextVar

_correlation_id: ContextVar[str | None] = ContextVar("correlation_id", default=None)


def get_correlation_id() -> str | None:
    return _correlation_id.get()


def new_correlation_id() -> str:
    return str(uuid.uuid4())


@contextmanager
def correlation_scope(correlation_id: str | None = None):
    """Run the block under `correlation_id` (a new one if not given); restore the old after."""
    token = _correlation_id.set(str(correlation_id) if correlation_id else new_correlation_id())
    try:
        yield _correlation_id.get()
    finally:
        _correlation_id.reset(token)
