"""The main screen in one read: the latest snapshot's summary, stored as ready-made JSON text when
the snapshot is computed, spliced with the live part (bank statuses, the recomputing and outdated
flags) without being decoded or rendered again. Two queries with authentication (the snapshot,
the connections and the recomputation marker come in one), whatever the data size.

The ETag is a hash of the live part only (it holds the snapshot's id; a snapshot never changes
once stored), so a repeat costs no hashing of the whole answer."""

import hashlib
import json
from dataclasses import dataclass
from datetime import date

from analytics import selectors, services
from analytics.models import AnalyticsSnapshot
from analytics.summary import SNAPSHOT_VERSION, json_text, jsonable
from banking.selectors.connections import connection_status_message
from consents.models import ConsentStatus
from consents.selectors import consent_expiry

NO_DATA_MESSAGE = "No bank data yet: connect a bank and wait for the first sync."
# What the answer's head is made of, besides the snapshot's summary (analytics.summary).
_SNAPSHOT_HEAD = ("id", "created_at", "data_fresh_as_of", "currency")


@dataclass(frozen=True)
class DashboardAnswer:
    """The dashboard's JSON, ready to send, and its ETag."""

    content: bytes
    etag: str


def _etag(live_text: str) -> str:
    digest = hashlib.md5(f"{SNAPSHOT_VERSION}:{live_text}".encode(), usedforsecurity=False)
    return f'"{digest.hexdigest()}"'


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


def _snapshot_row(snapshot: AnalyticsSnapshot) -> dict:
    return {
        **{name: getattr(snapshot, name) for name in _SNAPSHOT_HEAD},
        "summary_json": snapshot.summary_json,
        "summary_json_version": snapshot.summary_json_version,
    }


def _snapshot_current(*, user, row: dict | None) -> dict | None:
    """The row when its ready-made JSON is of this version; else the snapshot's JSON made now
    from its summary (a row stored before summary_json existed); None when the summary itself is
    of an older version (it speaks an older vocabulary: computed again, as if missing)."""
    if row is None or row["summary_json_version"] == SNAPSHOT_VERSION:
        return row
    snapshot = selectors.snapshot_latest(user=user, with_breakdown=False)
    if snapshot is None or (snapshot.summary or {}).get("version") != SNAPSHOT_VERSION:
        return None
    return _snapshot_row(services.snapshot_summary_json_store(snapshot=snapshot))


def dashboard_render(*, user, today: date | None = None) -> DashboardAnswer:
    """Everything the main screen shows, from the snapshot, as JSON ready to send; never
    recomputes when a current snapshot exists."""
    row, connections, recomputing = selectors.dashboard_rows(
        user=user, marker_since=services.recompute_marker_live_since()
    )
    row = _snapshot_current(user=user, row=row)
    banks = [_bank_row(bank) for bank in connections]
    if row is None and (
        any(b["last_success_at"] for b in banks) or selectors.account_exists(user=user)
    ):
        # Data arrived but the debounced recomputation has not run yet: compute once, now.
        snapshot = services.analytics_recompute(user=user, today=today)
        row = _snapshot_row(snapshot) if snapshot is not None else None
    if row is None:
        text = json_text(
            jsonable(
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
        )
        return DashboardAnswer(content=text.encode(), etag=_etag(text))
    # A sync finished after this snapshot: its recomputation is on the way, or was lost (the
    # broker was down when the sync asked for it): then this read asks again.
    outdated = any(b["last_success_at"] and b["last_success_at"] > row["created_at"] for b in banks)
    if outdated and not recomputing:
        recomputing = services.analytics_recompute_request(user_id=user.id)
    live = json_text(
        jsonable(
            {
                "state": "ready",
                "message": "",
                "recomputing": recomputing,
                "outdated": outdated,
                "snapshot_id": row["id"],
                "computed_at": row["created_at"],
                "data_fresh_as_of": row["data_fresh_as_of"],
                "currency": row["currency"],
                "banks": banks,
            }
        )
    )
    # The live members, then the snapshot's (sts … history: analytics.summary.DASHBOARD_MEMBERS).
    content = f"{live[:-1]},{row['summary_json']}}}".encode()
    return DashboardAnswer(content=content, etag=_etag(live))


def dashboard_get(*, user, today: date | None = None) -> dict:
    """The dashboard as a dict (what GET /api/dashboard sends, decoded)."""
    return json.loads(dashboard_render(user=user, today=today).content)


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
