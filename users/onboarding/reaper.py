"""The reaper of connect requests: heals requests that a lost task message or a dead worker left
active (issue 21), as sync/reaper.py heals sync runs.

A request holds its bank's lock (`one_active_connect_per_user_bank`) while it is queued or
running, so one nobody works on would block every later connect, renewal or approval of that
bank, and the user would wait for an answer that never comes. Two faults leave one:
- the task message never reached the broker, or the broker lost it (the web process died between
  commit and send, Redis was down or restarted empty): the request stays `queued`;
- the worker died mid-request (kill -9, OOM, a lost node): the request stays `running`, and Redis
  would only redeliver the message after the broker's visibility timeout (an hour).
Beat runs `onboarding.reap_stale_connect_requests` every `SYNC_REAPER_PERIOD_SECONDS` (the sync
reaper's settings: one notion of "lost" for both). A queued request untouched for
`SYNC_QUEUED_STALE_SECONDS` (or that long past its retry time) gets its message sent again. A
running one claimed before `running_lost_before` (longer ago than a task may run: the hard time
limit killed any worker still on it, so no bank call of it is under way) goes back to `queued` and
is sent again. Either is failed honestly instead, with `worker_lost`, once it has had its attempts
(SYNC_TASK_MAX_RETRIES + 1, the claims counted in `attempts`) or has waited longer than a request
that retries all it may could take (`_GIVE_UP_AFTER`): a connect then shows why on the connection
and puts its client back, as a failed connect does. A duplicate message is harmless: a worker
claims a request with a conditional update (queued → running) and leaves one it cannot claim.
"""

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from users.models import ConnectRequest
from users.onboarding.connect_requests import (
    connect_request_give_up,
    connect_request_send,
    running_lost_before,
)

logger = logging.getLogger(__name__)
Status = ConnectRequest.Status

WORKER_LOST = "worker_lost"


@dataclass
class ReapResult:
    """What one pass of the reaper did, by request id."""

    resent: list[int] = field(default_factory=list)
    requeued: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)

    def as_dict(self) -> dict[str, list[int]]:
        return {"resent": self.resent, "requeued": self.requeued, "failed": self.failed}


def _max_attempts() -> int:
    return settings.SYNC_TASK_MAX_RETRIES + 1


def _give_up_after() -> timedelta:
    """The longest a request may honestly take: every attempt run to the task's hard time limit
    and every retry waiting its longest backoff, plus the reaper's own periods to notice."""
    attempts = _max_attempts()
    return timedelta(
        seconds=attempts * (settings.CELERY_TASK_TIME_LIMIT + settings.SYNC_RETRY_MAX_SECONDS)
        + 2 * settings.SYNC_QUEUED_STALE_SECONDS
    )


def stale_queued_requests(*, now: datetime) -> list[ConnectRequest]:
    """Queued requests whose message should have been picked up by now (first attempt, retry)."""
    threshold = now - timedelta(seconds=settings.SYNC_QUEUED_STALE_SECONDS)
    return list(
        ConnectRequest.objects.filter(status=Status.QUEUED)
        .filter(
            Q(next_retry_at__isnull=True, updated_at__lt=threshold) | Q(next_retry_at__lt=threshold)
        )
        .order_by("pk")
    )


def dead_running_requests(*, now: datetime) -> list[ConnectRequest]:
    """Running requests claimed longer ago than any live worker could still be on them."""
    return list(
        ConnectRequest.objects.filter(
            status=Status.RUNNING, updated_at__lt=running_lost_before(now=now)
        ).order_by("pk")
    )


def connect_requests_reap(*, now: datetime | None = None) -> ReapResult:
    """Re-send lost messages, requeue requests of dead workers, fail those that cannot succeed."""
    now = now or timezone.now()
    result = ReapResult()
    give_up_before = now - _give_up_after()
    for request in stale_queued_requests(now=now):
        if request.attempts >= _max_attempts() or request.created_at < give_up_before:
            if _give_up(request, now=now):
                result.failed.append(request.pk)
            continue
        # Touched (and its retry time cleared: the retry is due) so the next pass waits a full
        # period before sending once more; the claim takes the first message to arrive.
        touched = ConnectRequest.objects.filter(
            pk=request.pk, status=Status.QUEUED, updated_at=request.updated_at
        ).update(next_retry_at=None, updated_at=now)
        if touched:
            connect_request_send(connect_request_id=request.pk)
            result.resent.append(request.pk)
    for request in dead_running_requests(now=now):
        if request.attempts >= _max_attempts() or request.created_at < give_up_before:
            if _give_up(request, now=now):
                result.failed.append(request.pk)
            continue
        moved = ConnectRequest.objects.filter(
            pk=request.pk, status=Status.RUNNING, updated_at=request.updated_at
        ).update(
            status=Status.QUEUED,
            task_id="",
            next_retry_at=None,
            error="The worker carrying out this request stopped answering; it starts again.",
            updated_at=now,
        )
        if moved:
            connect_request_send(connect_request_id=request.pk)
            result.requeued.append(request.pk)
    if result.resent or result.requeued or result.failed:
        logger.warning("connect request reaper: %s", result.as_dict())
    return result


def _give_up(request: ConnectRequest, *, now: datetime) -> bool:
    if request.status == Status.RUNNING:
        why = f"the worker carrying it out stopped answering {request.attempts} time(s)"
    else:
        why = "no worker took it up in time"
    return connect_request_give_up(
        connect_request=request,
        error_code=WORKER_LOST,
        message=f"FinTrack could not finish this request ({why}); ask again.",
    )
