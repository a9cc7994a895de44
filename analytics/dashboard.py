"""The main screen in one read: the latest snapshot (with its stored summary) and live bank
statuses. Three queries with authentication, whatever the data size."""

from datetime import date

from analytics import selectors, services
from analytics.summary import SNAPSHOT_VERSION, jsonable
from banking.selectors.connections import connection_status_message
from consents.models import ConsentStatus
from consents.selectors import consent_expiry

NO_DATA_MESSAGE = "No bank data yet: connect a bank and wait for the first sync."


def _snapshot_head(snapshot) -> dict:
    return {
        "snapshot_id": snapshot.id,
        "computed_at": snapshot.created_at,
        "data_fresh_as_of": snapshot.data_fresh_as_of,
        "currency": snapshot.currency,
    }


def _bank_row(row: dict) -> dict:
    """A connection as the dashboard shows it: status with reason and message, freshness, and
    where its account and product consents stand against their expiry."""
    states = {}
    for kind in ("account", "product"):
        expiry = consent_expiry(
            status=ConsentStatus.AUTHORIZED if row[f"{kind}_consent_authorised"] else None,
            expires_at=row[f"{kind}_consent_expires_at"],
        )
        states[kind] = expiry
    accounts, products = states["account"], states["product"]
    return {
        "bank_code": row["bank_code"],
        "status": row["status"],
        "status_reason": row["status_reason"],
        "status_message": connection_status_message(
            bank_code=row["bank_code"], status=row["status"], last_error=row["last_error"]
        ),
        "next_retry_at": row["next_retry_at"],
        "last_success_at": row["last_success_at"],
        "last_sync_at": row["last_sync_at"],
        "last_error": row["last_error"],
        "consent_state": accounts.state,
        "consent_expires_at": accounts.expires_at,
        "consent_days_left": accounts.days_left,
        "product_consent_state": products.state,
        "product_consent_expires_at": products.expires_at,
        "product_consent_days_left": products.days_left,
        "consent_expiring": accounts.expiring or products.expiring,
    }


def dashboard_get(*, user, today: date | None = None) -> dict:
    """Everything the main screen shows, from the snapshot; never recomputes when one exists."""
    row = selectors.snapshot_latest_summary(user=user)
    banks = [_bank_row(bank) for bank in selectors.dashboard_connections(user=user)]
    # A snapshot of an older version speaks an older vocabulary: computed again, as if missing.
    stale = row is not None and (row["summary"] or {}).get("version") != SNAPSHOT_VERSION
    if (row is None or stale) and (
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
                "history": None,
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
        "computed_at": jsonable(row["created_at"]),
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
        # Complete, or still loading (a first sync's backfill) and from which day: analytics/history
        "history": summary.get("history"),
    }


def next_payment_get(*, user, today: date | None = None) -> dict:
    """{"next_payment": …} from the latest snapshot: the same answer the dashboard and
    /api/analytics give. Computed once when data exists but no snapshot yet."""
    stored = selectors.snapshot_next_payment(user=user)
    if (stored is None or stored["version"] != SNAPSHOT_VERSION) and (
        selectors.account_exists(user=user) or selectors.agreement_exists(user=user)
    ):
        services.analytics_recompute(user=user, today=today)
        stored = selectors.snapshot_next_payment(user=user)
    # The dashboard's debt.next_payment itself: one answer, one shape.
    return {"next_payment": (stored or {}).get("next_payment") or None}


def analytics_breakdown_get(*, user, today: date | None = None) -> dict:
    """The latest snapshot's full breakdown (every STS term, indicator and forecast day)."""
    snapshot = selectors.snapshot_latest(user=user)
    stale = snapshot is not None and (snapshot.breakdown or {}).get("version") != SNAPSHOT_VERSION
    if (snapshot is None or stale) and selectors.account_exists(user=user):
        snapshot = services.analytics_recompute(user=user, today=today) or snapshot
    if snapshot is None:
        return {
            "state": "no_data",
            "snapshot_id": None,
            "computed_at": None,
            "data_fresh_as_of": None,
            "currency": "RUB",
            "breakdown": None,
            "history": None,
        }
    return {
        "state": "ready",
        **jsonable(_snapshot_head(snapshot)),
        "history": (snapshot.breakdown or {}).get("history"),
        "breakdown": snapshot.breakdown,
    }
