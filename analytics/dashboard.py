"""The main screen in one read: the latest snapshot (with its stored summary) and live bank
statuses. Three queries with authentication, whatever the data size."""

from datetime import date

from analytics import selectors, services
from analytics.summary import jsonable

NO_DATA_MESSAGE = "No bank data yet: connect a bank and wait for the first sync."


def _snapshot_head(snapshot) -> dict:
    return {
        "snapshot_id": snapshot.id,
        "computed_at": snapshot.created_at,
        "data_fresh_as_of": snapshot.data_fresh_as_of,
        "currency": snapshot.currency,
    }


def dashboard_get(*, user, today: date | None = None) -> dict:
    """Everything the main screen shows, from the snapshot; never recomputes when one exists."""
    row = selectors.snapshot_latest_summary(user=user)
    banks = selectors.dashboard_connections(user=user)
    if row is None and (
        any(b["last_success_at"] for b in banks) or selectors.account_exists(user=user)
    ):
        # Data arrived but the debounced recomputation has not run yet: compute once, now.
        services.analytics_recompute(user=user, today=today)
        row = selectors.snapshot_latest_summary(user=user)
    recomputing = services.recompute_scheduled(user_id=user.id)
    if row is None:
        return jsonable(
            {
                "state": "no_data",
                "message": NO_DATA_MESSAGE,
                "recomputing": recomputing,
                "outdated": False,
                "snapshot_id": None,
                "computed_at": None,
                "data_fresh_as_of": None,
                "currency": "RUB",
                "sts": None,
                "health": None,
                "debt": None,
                "savings": None,
                "totals": [],
                "accounts": [],
                "banks": banks,
                "recent_transactions": [],
                "top_categories": [],
            }
        )
    summary = row["summary"] or {}
    # A sync finished after this snapshot: its recomputation is on the way, or was lost (the
    # broker was down when the sync asked for it): then this read asks again.
    outdated = any(b["last_success_at"] and b["last_success_at"] > row["created_at"] for b in banks)
    if outdated and not recomputing:
        recomputing = services.analytics_recompute_request(user_id=user.id)
    return {
        "state": "ready",
        "message": "",
        "recomputing": recomputing,
        "outdated": outdated,
        "snapshot_id": row["id"],
        "computed_at": row["created_at"].isoformat(),
        "data_fresh_as_of": jsonable(row["data_fresh_as_of"]),
        "currency": row["currency"],
        "sts": summary.get("sts"),
        "health": summary.get("health"),
        "debt": summary.get("debt"),
        "savings": summary.get("savings"),
        "totals": summary.get("totals", []),
        "accounts": summary.get("accounts", []),
        "banks": jsonable(banks),
        "recent_transactions": summary.get("recent_transactions", []),
        "top_categories": summary.get("top_categories", []),
    }


def next_payment_get(*, user, today: date | None = None) -> dict:
    """{"next_payment": …} from the latest snapshot: the same answer the dashboard and
    /api/analytics give. Computed once when data exists but no snapshot yet."""
    stored = selectors.snapshot_next_payment(user=user)
    if stored is None and (
        selectors.account_exists(user=user) or selectors.agreement_exists(user=user)
    ):
        services.analytics_recompute(user=user, today=today)
        stored = selectors.snapshot_next_payment(user=user)
    payment = (stored or {}).get("next_payment")
    if not payment:
        return {"next_payment": None}
    return {
        "next_payment": {
            # The one-line fields earlier clients read …
            "debt_id": payment.get("debt_id"),
            "bank": payment.get("bank_code", ""),
            "agreement_id": payment.get("agreement_id", ""),
            "product_name": payment.get("name", ""),
            "currency": "RUB",
            "date": payment["date"],
            "amount": payment["amount"],
            "source": payment.get("source", ""),
            # … and what is behind the amount.
            "due_in_7_days": payment.get("due_in_7_days"),
            "due_in_7_days_until": payment.get("due_in_7_days_until"),
            "items": payment.get("items", []),
        }
    }


def analytics_breakdown_get(*, user, today: date | None = None) -> dict:
    """The latest snapshot's full breakdown (every STS term, indicator and forecast day)."""
    snapshot = selectors.snapshot_latest(user=user)
    if snapshot is None and selectors.account_exists(user=user):
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
    return {"state": "ready", **jsonable(_snapshot_head(snapshot)), "breakdown": snapshot.breakdown}
