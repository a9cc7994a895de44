"""Long-poll for status endpoints: answer as soon as the state differs from what the client has.

`GET …?since=<version>&wait=<seconds>`: every answer carries its `version` (a hash of the body,
opaque to the client; also the ETag). With `since`, the view reads the state again every
LONG_POLL_INTERVAL_SECONDS (each read is its own autocommit queries: no transaction stays open
while it waits) until its version differs from `since`, then answers 200 with the new body; when
`wait` runs out first it answers 304 Not Modified (the same ETag, no body): ask again. Without
`since` it answers at once, as a plain GET.

Why long-poll rather than server-sent events: gunicorn's sync workers serve one request each,
and an event stream would hold a worker for as long as the page stays open; a long-poll holds
one for at most `wait` seconds (STATUS_LONG_POLL_MAX_SECONDS, at most 25: below gunicorn's 30 s
timeout), goes through every proxy as a plain GET, and a client that loses it simply asks again.
The version is of the body itself, so it changes exactly when something the client would see
changes (a count, a percent, a status), whatever wrote it.
"""

import hashlib
import time
from collections.abc import Callable
from typing import Any

import orjson
from django.conf import settings
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse
from rest_framework import serializers, status
from rest_framework.response import Response

from fintrack.core.exceptions import ValidationFailed

# How often the state is read again while a long-poll waits.
LONG_POLL_INTERVAL_SECONDS = 0.5
# The longest wait a client may ask for, whatever the setting says (gunicorn's timeout is 30 s).
LONG_POLL_WAIT_CEILING_SECONDS = 25.0

# The query parameters and the 304, for the OpenAPI schema of a long-polled view.
LONG_POLL_PARAMETERS = [
    OpenApiParameter(
        "since",
        {"type": "string", "maxLength": 64},
        description="The `version` of the answer you have: the answer waits until the state "
        "differs from it (or `wait` runs out: 304). Left out: answered at once.",
    ),
    OpenApiParameter(
        "wait",
        {"type": "number", "minimum": 0, "maximum": LONG_POLL_WAIT_CEILING_SECONDS},
        description="With `since`: the most seconds to wait for a change (0–25; default the "
        "server's STATUS_LONG_POLL_MAX_SECONDS).",
    ),
]
NOT_MODIFIED_RESPONSE = OpenApiResponse(
    description="Not Modified: nothing changed since `since` within `wait` seconds; ask again."
)


def body_version(body: Any) -> str:
    """The version of a JSON-ready body: a hash of it, changing exactly when the body does."""
    encoded = orjson.dumps(body, option=orjson.OPT_SORT_KEYS, default=str)
    return hashlib.sha256(encoded).hexdigest()[:24]


class LongPollQuerySerializer(serializers.Serializer):
    since = serializers.CharField(required=False, max_length=64, allow_blank=False)
    wait = serializers.FloatField(required=False, min_value=0)


def _max_wait() -> float:
    configured = float(settings.STATUS_LONG_POLL_MAX_SECONDS)
    return max(0.0, min(configured, LONG_POLL_WAIT_CEILING_SECONDS))


def long_poll_query(query_params) -> tuple[str | None, float]:
    """(since, wait) from the query string; a 400 on the field for a bad one."""
    query = LongPollQuerySerializer(data=query_params)
    query.is_valid(raise_exception=True)
    since = query.validated_data.get("since")
    limit = _max_wait()
    wait = query.validated_data.get("wait", limit)
    if wait > limit:
        message = f"At most {limit:g} seconds."
        raise ValidationFailed(f"wait: {message}", extra={"fields": {"wait": [message]}})
    return since, (wait if since else 0.0)


def long_poll(
    *,
    read: Callable[[], Any],
    since: str | None,
    wait: float,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> tuple[Any | None, str]:
    """(body, version) once the version differs from `since`, or (None, version) when `wait`
    seconds passed without a change; `read()` is called at most every 0.5 s."""
    deadline = clock() + wait
    while True:
        body = read()
        version = body_version(body)
        if since is None or version != since:
            return body, version
        left = deadline - clock()
        if left <= 0:
            return None, version
        sleep(min(LONG_POLL_INTERVAL_SECONDS, left))


def long_poll_response(request, read: Callable[[], dict]) -> Response:
    """The view's answer: 200 with the body and its `version` (also the ETag), or 304 when
    nothing changed since `?since=` within `?wait=` seconds."""
    since, wait = long_poll_query(request.query_params)
    body, version = long_poll(read=read, since=since, wait=wait)
    headers = {"ETag": f'"{version}"', "Cache-Control": "private, no-cache"}
    if body is None:
        return Response(status=status.HTTP_304_NOT_MODIFIED, headers=headers)
    return Response({**body, "version": version}, headers=headers)
