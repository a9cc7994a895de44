"""The compact main-screen payload stored with each snapshot, and the JSON conversion."""

from collections.abc import Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from analytics import selectors
from banking.models import DEBT_ACCOUNT_TYPES, SAVINGS_ACCOUNT_TYPES, SPENDABLE_ACCOUNT_TYPES

RECENT_TRANSACTIONS = 10
TOP_CATEGORIES = 5
TOP_CATEGORY_DAYS = 30
INDICATOR_FIELDS = ("code", "has_data", "value", "score", "band", "explanation")


def jsonable(value):
    """Decimals as strings, dates as ISO text, recursively: snapshots hold plain JSON."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value


def _totals_from_accounts(accounts: Sequence[Mapping[str, Any]]) -> list[dict]:
    """Per-currency totals when the sync has not written AccountSummary rows yet."""
    totals: dict[str, dict] = {}
    zero = Decimal("0")
    for account in accounts:
        row = totals.setdefault(
            account["currency"],
            {
                "currency": account["currency"],
                "spendable_total": zero,
                "savings_total": zero,
                "debt_total": zero,
                "updated_at": None,
            },
        )
        balance = account["current_balance"] or zero
        if account["account_type"] in SPENDABLE_ACCOUNT_TYPES:
            row["spendable_total"] += balance
        elif account["account_type"] in SAVINGS_ACCOUNT_TYPES:
            row["savings_total"] += balance
        elif account["account_type"] in DEBT_ACCOUNT_TYPES:
            row["debt_total"] += balance
    return [totals[c] for c in sorted(totals)]


def _totals_with_savings(
    totals: Sequence[Mapping[str, Any]], savings: dict | None
) -> Sequence[Mapping[str, Any]]:
    """The base-currency row's savings total = deposits (invested sums) and savings accounts,
    each once; spendable money is left as it is."""
    if savings is None:
        return totals
    rows = [dict(t) for t in totals]
    row = next((t for t in rows if t["currency"] == "RUB"), None)
    if row is None:
        zero = Decimal("0")
        row = {
            "currency": "RUB",
            "spendable_total": zero,
            "savings_total": zero,
            "debt_total": zero,
            "updated_at": None,
        }
        rows.append(row)
    row["savings_total"] = savings["total"]
    return sorted(rows, key=lambda t: t["currency"])


def summary_build(
    *,
    user,
    today: date,
    sts: dict,
    health: dict,
    debt: dict,
    next_payment: dict | None = None,
    savings: dict | None = None,
) -> dict:
    """What the dashboard shows, computed with the snapshot so serving it costs one read. The
    next payment is THE one analytics computed from the obligations (same on every endpoint)."""
    accounts = selectors.dashboard_accounts(user=user)
    next_income = sts["next_income"]
    totals = selectors.dashboard_summaries(user=user) or _totals_from_accounts(accounts)
    return jsonable(
        {
            "sts": {
                "status": sts["status"],
                "period": sts["sts_period"],
                "daily": sts["sts_daily"],
                "shortfall": sts["shortfall"],
                "horizon_days": sts["horizon_days"],
                "next_income_date": next_income["date"]
                if next_income and sts.get("income_assumed", True)
                else None,
                "confidence": sts["confidence"]["level"],
                "reasons": [
                    {"code": r["code"], "message": r["message"]} for r in sts.get("reasons", [])
                ],
            },
            "health": {
                "score": health["score"],
                "band": health["band"],
                "indicators": [{k: i[k] for k in INDICATOR_FIELDS} for i in health["indicators"]],
            },
            "debt": {
                "total": debt["total_debt"],
                "monthly_service": debt["monthly_debt_service"],
                "next_payment": next_payment,
            },
            "savings": savings,
            "totals": _totals_with_savings(totals, savings),
            "accounts": accounts,
            "recent_transactions": selectors.dashboard_recent_transactions(
                user=user, limit=RECENT_TRANSACTIONS
            ),
            "top_categories": selectors.dashboard_top_categories(
                user=user, today=today, days=TOP_CATEGORY_DAYS, limit=TOP_CATEGORIES
            ),
        }
    )
