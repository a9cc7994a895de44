"""The periodic fan-out: every connection synced once per beat interval, spread over it.

A serial loop starting one run per connection (about 5 ms each) would reach its time limit near
185k connections, and every run starting at the top of the hour is a thundering herd at the
banks. So the work is split in two tasks:

1. `fanout_plan_send` (beat, `sync.sync_all_due`, the maintenance queue): the candidate ids,
   read by keyset pages (`pk > last ORDER BY pk LIMIT n`, never OFFSET), each page sent as one
   chunk task whose countdown is the page's slot: position / total × the spread
   (SYNC_FANOUT_SPREAD_SHARE of SYNC_PERIODIC_MINUTES). Slots follow the id order, so a
   connection comes back at about the same minute every interval.
2. `fanout_chunk_start` (`sync.fanout_chunk`, the sync queue), at its slot: the chunk's
   connections still due (checked now, not at the beat: a user may have synced meanwhile) get
   their runs in one bulk insert, then each run's message is sent with a countdown spread over
   the chunk's span with jitter.

A chunk spans at most CHUNK_SPAN_MAX_SECONDS, so no run waits queued (holding its connection's
lock, which a user's "sync now" would find) for long, and stays far under the reaper's
SYNC_QUEUED_STALE_SECONDS; small deployments get more, smaller chunks.

Candidates are the connections that will be due by the end of the spread: one synced at minute
50 of the last interval is due again at minute 50 of this one, though not at its top.
"""

import logging
import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from banking.models import BankConnection, ConnectionStatus
from consents.models import Consent, ConsentKind, ConsentStatus
from fintrack.core.tasks import BROKER_ERRORS, tasks_send_many
from sync.models import SyncKind, SyncRun, SyncTrigger
from sync.selectors import connection_due_for_sync_list

logger = logging.getLogger(__name__)

# The longest span of one chunk's countdowns: its runs wait queued at most this long.
CHUNK_SPAN_MAX_SECONDS = 60.0


@dataclass(frozen=True)
class Chunk:
    """One chunk task's share of a fan-out: its connections, when it starts, over how long."""

    connection_ids: list[int]
    countdown: float
    span_seconds: float


def fanout_spread_seconds() -> float:
    """How long a fan-out's runs are spread over: a share of the beat interval."""
    interval = max(int(settings.SYNC_PERIODIC_MINUTES), 1) * 60
    share = min(max(float(settings.SYNC_FANOUT_SPREAD_SHARE), 0.0), 1.0)
    return interval * share


def fanout_candidates(*, now: datetime, horizon: datetime) -> QuerySet[BankConnection]:
    """Connections that may sync at some point before `horizon`: ready or in error, with an
    authorised account consent (valid now), not synced nor started within the minimum interval
    before `horizon`. Each is checked again at its slot (connection_due_for_sync_list)."""
    threshold = horizon - timedelta(minutes=settings.SYNC_MIN_INTERVAL_MINUTES)
    authorised_consent = Consent.objects.filter(
        user_id=OuterRef("user_id"),
        bank_code=OuterRef("bank_code"),
        kind=ConsentKind.ACCOUNTS,
        status=ConsentStatus.AUTHORIZED,
    ).filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))
    recent_run = SyncRun.objects.filter(connection_id=OuterRef("pk"), created_at__gte=threshold)
    return (
        BankConnection.objects.filter(status__in=[ConnectionStatus.READY, ConnectionStatus.ERROR])
        .filter(Q(last_sync_at__isnull=True) | Q(last_sync_at__lt=threshold))
        .filter(Exists(authorised_consent))
        .exclude(Exists(recent_run))
    )


def fanout_candidate_ids(*, now: datetime, horizon: datetime, page_size: int) -> list[int]:
    """Every candidate's id, in id order, read by keyset pages of `page_size`."""
    candidates = fanout_candidates(now=now, horizon=horizon).order_by("pk")
    ids: list[int] = []
    last = 0
    while True:
        page = list(candidates.filter(pk__gt=last).values_list("pk", flat=True)[:page_size])
        ids.extend(page)
        if len(page) < page_size:
            return ids
        last = page[-1]


def fanout_plan(*, now: datetime | None = None) -> list[Chunk]:
    """The chunks of this interval's fan-out: consecutive ids, each at its slot of the spread."""
    now = now or timezone.now()
    spread = fanout_spread_seconds()
    page_size = max(int(settings.SYNC_FANOUT_CHUNK_SIZE), 1)
    horizon = now + timedelta(seconds=spread)
    ids = fanout_candidate_ids(now=now, horizon=horizon, page_size=page_size)
    if not ids:
        return []
    per_connection = spread / len(ids)
    # Few connections over a long spread: smaller chunks, so none spans more than the maximum.
    size = page_size
    if per_connection > 0:
        size = max(1, min(page_size, int(CHUNK_SPAN_MAX_SECONDS / per_connection)))
    return [
        Chunk(
            connection_ids=ids[start : start + size],
            countdown=start * per_connection,
            span_seconds=min(
                len(ids[start : start + size]) * per_connection, CHUNK_SPAN_MAX_SECONDS
            ),
        )
        for start in range(0, len(ids), size)
    ]


def fanout_plan_send(*, now: datetime | None = None) -> int:
    """Plan the fan-out and send its chunk tasks; returns how many connections were scheduled.

    A chunk is dropped when it is not picked up within one interval (`expires`): the next
    fan-out has its connections. When the broker refuses a chunk, the rest are not tried; the
    connections left wait for the next fan-out (logged).
    """
    from sync.tasks import fanout_chunk

    chunks = fanout_plan(now=now)
    interval = max(int(settings.SYNC_PERIODIC_MINUTES), 1) * 60
    scheduled = 0
    for chunk in chunks:
        try:
            fanout_chunk.apply_async(
                args=[chunk.connection_ids, chunk.span_seconds],
                countdown=chunk.countdown,
                expires=chunk.countdown + interval,
            )
        except BROKER_ERRORS as exc:
            left = sum(len(c.connection_ids) for c in chunks) - scheduled
            logger.warning(
                "fan-out: broker unavailable (%s: %s); %s connection(s) wait for the next one",
                type(exc).__name__,
                exc,
                left,
            )
            break
        scheduled += len(chunk.connection_ids)
    logger.info("fan-out: %s connection(s) in %s chunk(s)", scheduled, len(chunks))
    return scheduled


def fanout_chunk_start(
    *, connection_ids: list[int], span_seconds: float, now: datetime | None = None
) -> list[int]:
    """Start a scheduled run for each of the chunk's connections still due: one bulk insert,
    then each run's message with a countdown spread over `span_seconds` (with jitter). Returns
    the new runs' ids."""
    due = list(
        connection_due_for_sync_list(now=now)
        .filter(pk__in=connection_ids)
        .order_by("pk")
        .values_list("pk", "user_id")
    )
    if not due:
        return []
    runs = [
        SyncRun(
            connection_id=connection_id,
            user_id=user_id,
            kind=SyncKind.FULL,
            trigger=SyncTrigger.SCHEDULE,
        )
        for connection_id, user_id in due
    ]
    try:
        with transaction.atomic():
            SyncRun.objects.bulk_create(runs)
    except IntegrityError:
        # A connection got an active run since it was checked (a user's "sync now"): one by
        # one, each answered by the run that holds its lock as connection_sync_start does.
        return _chunk_start_one_by_one(due)
    run_ids = [run.pk for run in runs]
    # robust: a broker that is down must not undo the runs (the reaper sends them again).
    transaction.on_commit(lambda: runs_send_spread(run_ids, span_seconds=span_seconds), robust=True)
    return run_ids


def _chunk_start_one_by_one(due: list[tuple[int, int]]) -> list[int]:
    from sync.services import connection_sync_start

    started = []
    for connection_id, user_id in due:
        connection = BankConnection(pk=connection_id, user_id=user_id)
        run, created = connection_sync_start(connection=connection, trigger=SyncTrigger.SCHEDULE)
        if created:
            started.append(run.pk)
    return started


def runs_send_spread(run_ids: list[int], *, span_seconds: float) -> int:
    """Send each run's task, the i-th of n after span × (i + jitter) / n seconds, through one
    producer (pipelined on Redis: fintrack.core.tasks.tasks_send_many); returns how many were
    sent. A broker error stops the sending: the runs left stay queued and the reaper sends them
    after SYNC_QUEUED_STALE_SECONDS (a run sent twice is run once: the task is idempotent)."""
    from sync.tasks import connection_sync

    count = len(run_ids)
    calls = [
        ([run_id], span_seconds * (index + random.random()) / count)
        for index, run_id in enumerate(run_ids)
    ]
    sent = tasks_send_many(connection_sync, calls)
    if sent < count:
        logger.warning(
            "fan-out: %s of %s run(s) not sent; the reaper will send them", count - sent, count
        )
    return sent
