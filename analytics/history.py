"""How much of each bank's transaction history is stored: `complete`, or still `loading`.

A progressive first sync (sync/progressive.py) stores and analyses the newest days first and
backfills the rest in the same run; a backfill that failed leaves a history incomplete until the
next sync completes it. The state is read from what is stored, so every snapshot computed while a
history loads says so, whoever asked for it (the first phase's own snapshot, or one another bank's
sync asked for meanwhile):

- an account's watermark (`transactions_synced_through`) is set only after a complete read of its
  whole listing, so an active account with stored rows and no watermark has its history loading,
  complete from the day after its oldest stored row (reads go newest first: every row after that
  one is stored; its own day may miss earlier rows);
- a bank whose first sync is running (no account watermarked yet) is loading too, rows or none.

While a history loads, the figures that rest on long history (monthly averages, usual spending,
recurring income and bills, the health indicators built on them, debts estimated from the
instalments seen) are labelled as analytics labels its estimates: `is_estimate` with their
`basis` ("history_loading") and `history_from`. Once every history is complete the snapshot has
no label: its figures are those of a one-pass sync of the same data.
"""

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from analytics import selectors
from banking.models import ConnectionStatus

LOADING = "loading"
COMPLETE = "complete"
BASIS = "history_loading"
# A first sync runs or waits to retry.
FIRST_SYNC_STATUSES = (ConnectionStatus.SYNC_IN_PROGRESS, ConnectionStatus.RETRYING)
# Health indicators computed over months of transactions (the others read balances and limits).
HISTORY_INDICATORS = frozenset(
    {
        "spend_vs_income",
        "bills_on_time",
        "liquid_buffer",
        "savings_trend",
        "debt_service_ratio",
        "income_regularity",
        "regular_saving",
        "debt_load",
    }
)
# How far back debts look for instalments (banking's agreement payments read a year).
DEBT_HISTORY_DAYS = 365


def _local_day(moment: datetime, zone: ZoneInfo) -> date:
    return moment.astimezone(zone).date()


def history_state(*, accounts, connections, zone: ZoneInfo) -> dict:
    """{"state", "complete_from", "loading_banks", "banks": [{"bank_code", "state",
    "complete_from"}]}: `complete_from` is the first local day whose rows are all stored at every
    loading bank that has rows (None when complete, or when no loading bank has rows yet).

    `accounts`: the user's active accounts; `connections`: their bank connections. One query,
    only when some account has no watermark (an empty account, or a history loading)."""
    unmarked = [a.id for a in accounts if a.transactions_synced_through is None]
    oldest = selectors.account_oldest_booking(account_ids=unmarked) if unmarked else {}
    banks = []
    for connection in connections:
        own = [a for a in accounts if a.connection_id == connection.id]
        starts = [_local_day(oldest[a.id], zone) for a in own if a.id in oldest]
        first_sync = connection.status in FIRST_SYNC_STATUSES and not any(
            a.transactions_synced_through is not None for a in own
        )
        loading = bool(starts) or first_sync
        banks.append(
            {
                "bank_code": connection.bank_code,
                "state": LOADING if loading else COMPLETE,
                "complete_from": max(starts) + timedelta(days=1) if loading and starts else None,
            }
        )
    loading_banks = [b for b in banks if b["state"] == LOADING]
    known = [b["complete_from"] for b in loading_banks if b["complete_from"] is not None]
    return {
        "state": LOADING if loading_banks else COMPLETE,
        "complete_from": max(known) if known else None,
        "loading_banks": [b["bank_code"] for b in loading_banks],
        "banks": banks,
    }


def history_labels_apply(
    *, history: dict, today: date, window_start: date, summary: dict, breakdown: dict
) -> None:
    """Put the history state in the snapshot (summary and breakdown) and, while it loads, label
    the figures resting on long history (in place; both are the JSON-ready snapshot parts).

    Nothing is labelled when the stored history covers the snapshot's whole window (a backfill
    far enough along): its figures are then those of the complete history (debts, which look a
    year back for instalments, only once that year is covered)."""
    shown = _jsonable_history(history)
    summary["history"] = shown
    breakdown["history"] = shown
    if history["state"] != LOADING:
        return
    complete_from = history["complete_from"]
    if complete_from is not None and complete_from <= window_start:
        return
    since = f"the transactions from {complete_from.isoformat()}" if complete_from else "no days"
    days = (today - complete_from).days if complete_from else 0
    label = {
        "is_estimate": True,
        "basis": BASIS,
        "history_from": shown["complete_from"],
        "basis_note": (
            f"History still loading ({', '.join(history['loading_banks'])}): this rests on "
            f"{since} ({days} days), not on the whole history."
        ),
    }
    for part in (summary.get("sts"), breakdown.get("sts")):
        if isinstance(part, dict):
            part.update(label)
    # The recurring flows and the monthly figures are lists: their label sits beside them.
    breakdown["recurring_basis"] = label
    breakdown["monthly_basis"] = label
    for health in (summary.get("health"), breakdown.get("health")):
        if not isinstance(health, dict):
            continue
        health.update(label)
        for indicator in health.get("indicators") or []:
            if indicator.get("code") in HISTORY_INDICATORS:
                indicator.update(label)
    if complete_from is not None and complete_from <= today - timedelta(days=DEBT_HISTORY_DAYS):
        return
    debt = breakdown.get("debt") or {}
    from_history = [item for item in debt.get("items") or [] if _rests_on_history(item)]
    for item in from_history:
        item.update(label)
    if from_history:
        debt.update(label)
        if isinstance(summary.get("debt"), dict):
            summary["debt"].update(label)


def _rests_on_history(item: dict) -> bool:
    """A debt whose figures come from the instalments seen in the transactions."""
    return bool(
        item.get("is_estimate")
        or item.get("monthly_payment_source") == "detected_instalments"
        or item.get("next_payment_source") == "history"
    )


def _jsonable_history(history: dict) -> dict:
    def day(value):
        return value.isoformat() if value is not None else None

    return {
        "state": history["state"],
        "complete_from": day(history["complete_from"]),
        "loading_banks": list(history["loading_banks"]),
        "banks": [
            {**bank, "complete_from": day(bank["complete_from"])} for bank in history["banks"]
        ],
    }
