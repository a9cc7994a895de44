"""The main screen in one read: the latest snapshot plus a few small, indexed queries."""

from datetime import date

from django.core.cache import cache
from django.utils import timezone

from analytics import selectors, services
from analytics.compute import jsonable
from analytics.models import AnalyticsSnapshot

RECENT_TRANSACTIONS = 10
TOP_CATEGORIES = 5
TOP_CATEGORY_DAYS = 30


def _snapshot_head(snapshot: AnalyticsSnapshot) -> dict:
    return {
        "snapshot_id": snapshot.id,
        "computed_at": snapshot.created_at,
        "data_fresh_as_of": snapshot.data_fresh_as_of,
        "currency": snapshot.currency,
    }


def _snapshot_or_compute(*, user, has_data: bool, today: date | None):
    snapshot = selectors.snapshot_latest(user=user, with_breakdown=False)
    if snapshot is None and has_data:
        # Data arrived but the debounced recomputation has not run yet: compute once, now.
        snapshot = services.analytics_recompute(user=user, today=today)
    return snapshot


def dashboard_get(*, user, today: date | None = None) -> dict:
    """Everything the main screen shows; a constant number of queries whatever the data size."""
    today = today or timezone.localdate()
    accounts = selectors.dashboard_accounts(user=user)
    banks = selectors.dashboard_connections(user=user)
    has_data = bool(accounts) or any(b["last_success_at"] for b in banks)
    snapshot = _snapshot_or_compute(user=user, has_data=has_data, today=today)
    recomputing = cache.get(services.recompute_marker_key(user.id)) is not None
    if snapshot is None:
        return jsonable(
            {
                "state": "no_data",
                "message": "No bank data yet: connect a bank and wait for the first sync.",
                "recomputing": recomputing,
                "snapshot_id": None,
                "computed_at": None,
                "data_fresh_as_of": None,
                "currency": "RUB",
                "sts": None,
                "health": None,
                "debt": None,
                "totals": [],
                "accounts": accounts,
                "banks": banks,
                "recent_transactions": [],
                "top_categories": [],
            }
        )
    summary = snapshot.summary or {}
    return jsonable(
        {
            "state": "ready",
            "message": "",
            "recomputing": recomputing,
            **_snapshot_head(snapshot),
            "sts": summary.get("sts"),
            "health": summary.get("health"),
            "debt": summary.get("debt"),
            "totals": selectors.dashboard_summaries(user=user),
            "accounts": accounts,
            "banks": banks,
            "recent_transactions": selectors.dashboard_recent_transactions(
                user=user, limit=RECENT_TRANSACTIONS
            ),
            "top_categories": selectors.dashboard_top_categories(
                user=user, today=today, days=TOP_CATEGORY_DAYS, limit=TOP_CATEGORIES
            ),
        }
    )


def analytics_breakdown_get(*, user, today: date | None = None) -> dict:
    """The latest snapshot's full breakdown (every STS term, indicator and forecast day)."""
    snapshot = selectors.snapshot_latest(user=user)
    if snapshot is None:
        has_data = bool(selectors.dashboard_accounts(user=user))
        if has_data:
            snapshot = services.analytics_recompute(user=user, today=today)
    if snapshot is None:
        return {
            "state": "no_data",
            "snapshot_id": None,
            "computed_at": None,
            "data_fresh_as_of": None,
            "currency": "RUB",
            "breakdown": None,
        }
    return jsonable({"state": "ready", **_snapshot_head(snapshot), "breakdown": snapshot.breakdown})
