"""Analytics writes: recompute a user's snapshot now, or request a debounced recomputation.

The debounce marker ("a recomputation is scheduled for this user") is a row of
analytics.models.RecomputeRequest: set by the one request that sends the task, deleted by the
task as it starts (analytics.tasks.recompute_user). The dashboard reads it in the query that
reads its snapshot (analytics.selectors.dashboard_rows): no cache round trip per read, and a
Redis outage cannot lose a marker or make one up. Every caller requests outside a transaction
(after the commit of what changed: the sync's finalize, banking.signals, the APIs), so the task
never starts before the marker it clears is visible.

A request whose task the broker cannot take clears its marker (fintrack.core.tasks.enqueue logs
the failure): the next request schedules again — the next sync that finishes, the next
transactions change, a POST /api/analytics/recompute, or the next dashboard read that finds its
snapshot older than a bank's last successful sync. A marker whose task was lost (a worker killed
before it ran) lasts RECOMPUTE_MARKER_TTL_SECONDS, then counts as gone.
"""

import logging
from datetime import datetime, timedelta

from django.db import connection
from django.utils import timezone

from analytics.models import AnalyticsSnapshot, RecomputeRequest
from analytics.summary import summary_json_text
from fintrack.core.tasks import enqueue

logger = logging.getLogger(__name__)

# Syncs of several banks finish within seconds of each other; one recomputation covers them all.
RECOMPUTE_DELAY_SECONDS = 3
# Safety net: if a scheduled task is lost, the marker expires and the next request schedules again.
RECOMPUTE_MARKER_TTL_SECONDS = 600


def recompute_marker_live_since(now: datetime | None = None) -> datetime:
    """A marker set before this moment counts as gone (its task was lost)."""
    return (now or timezone.now()) - timedelta(seconds=RECOMPUTE_MARKER_TTL_SECONDS)


def recompute_scheduled(*, user_id: int) -> bool:
    """Whether a recomputation of the user's snapshot is scheduled (a live marker is set)."""
    return RecomputeRequest.objects.filter(
        user_id=user_id, requested_at__gte=recompute_marker_live_since()
    ).exists()


def recompute_marker_clear(*, user_id: int) -> None:
    """Forget the user's marker: the recomputation starts (or was never sent)."""
    RecomputeRequest.objects.filter(user_id=user_id).delete()


# Set the marker unless a live one is set: an upsert that only replaces an expired marker, one
# statement, so of several concurrent callers exactly one gets the row back (PostgreSQL, SQLite).
_MARKER_CLAIM_SQL = """
INSERT INTO {table} (user_id, requested_at) VALUES (%s, %s)
ON CONFLICT (user_id) DO UPDATE SET requested_at = excluded.requested_at
WHERE {table}.requested_at < %s
RETURNING user_id
"""


def _marker_claim(*, user_id: int) -> bool:
    """Set the user's marker unless a live one is set; True for the one caller that set it."""
    now = timezone.now()
    moment = connection.ops.adapt_datetimefield_value  # as the ORM stores them (SQLite: text)
    sql = _MARKER_CLAIM_SQL.format(table=connection.ops.quote_name(RecomputeRequest._meta.db_table))
    with connection.cursor() as cursor:
        cursor.execute(sql, [user_id, moment(now), moment(recompute_marker_live_since(now))])
        return cursor.fetchone() is not None


def analytics_recompute_request(*, user_id: int) -> bool:
    """Schedule one recomputation for the user unless one is already waiting (debounced);
    False when the broker could not take it (logged; the next request tries again)."""
    from analytics.tasks import recompute_user

    if not _marker_claim(user_id=user_id):
        logger.debug("analytics: recomputation for user %s already scheduled", user_id)
        return True
    try:
        sent = enqueue(recompute_user, user_id, countdown=RECOMPUTE_DELAY_SECONDS)
    except BaseException:
        # A failure enqueue does not know as an outage: the task was not sent either, so the
        # marker must not stand for ten minutes blocking the requests after this one.
        recompute_marker_clear(user_id=user_id)
        raise
    if sent:
        return True
    # A broker outage must not fail the sync that asked; without the marker the next request
    # schedules again.
    recompute_marker_clear(user_id=user_id)
    return False


def analytics_recompute(*, user, today=None) -> AnalyticsSnapshot:
    """Compute STS, health, debt and forecast from current data and store a snapshot, with its
    summary as the ready-made JSON the dashboard serves."""
    from analytics.compute import snapshot_compute

    # The snapshot is created with its summary_json (analytics.compute); only rows stored before
    # that column are given theirs when read (snapshot_summary_json_store, from the dashboard).
    return snapshot_compute(user=user, today=today)


def snapshot_summary_json_store(*, snapshot: AnalyticsSnapshot) -> AnalyticsSnapshot:
    """Store the snapshot's summary as the dashboard's ready-made JSON text (summary_json), in
    the version the summary was computed in. Idempotent: two concurrent stores of one snapshot
    write the same members."""
    summary = snapshot.summary or {}
    snapshot.summary_json = summary_json_text(summary)
    snapshot.summary_json_version = summary.get("version")
    AnalyticsSnapshot.objects.filter(pk=snapshot.pk).update(
        summary_json=snapshot.summary_json, summary_json_version=snapshot.summary_json_version
    )
    return snapshot
