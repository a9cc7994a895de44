"""The compact main-screen payload stored with each snapshot, and the JSON conversion."""

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from analytics import selectors
from banking.models import DEBT_ACCOUNT_TYPES, SAVINGS_ACCOUNT_TYPES, SPENDABLE_ACCOUNT_TYPES
from banking.textfold import merchant_display_name
from fintrack.core.localtime import local_date, user_zone

RECENT_TRANSACTIONS = 10
TOP_CATEGORIES = 5
TOP_CATEGORY_DAYS = 30
INDICATOR_FIELDS = ("code", "has_data", "value", "score", "band", "explanation")
# Stamped on the summary and the breakdown: a snapshot of an older version is recomputed when it
# is read (3: the API vocabulary of issue 24, times in UTC with Z, money with two decimals).
SNAPSHOT_VERSION = 3
CENT = Decimal("0.01")
# The summary's members the dashboard serves, in order, with what it shows when one is missing.
DASHBOARD_MEMBERS = (
    ("sts", None),
    ("health", None),
    ("debt", None),
    ("savings", None),
    ("totals", []),
    ("accounts", []),
    ("recent_transactions", []),
    ("top_categories", []),
    # Complete, or still loading (a first sync's backfill) and from which day: analytics/history
    ("history", None),
)


def jsonable(value):
    """Decimals as strings, dates as ISO text (aware times in UTC with Z, as DRF renders them),
    recursively: snapshots hold plain JSON."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        if value.tzinfo is None:
            return value.isoformat()
        text = value.astimezone(UTC).isoformat()
        return text[:-6] + "Z" if text.endswith("+00:00") else text
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value


def json_text(value) -> str:
    """JSON text as DRF's JSONRenderer writes it (compact, UTF-8, no NaN, U+2028 and U+2029
    escaped): what the dashboard sends without DRF rendering it."""
    text = json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    return text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def summary_json_text(summary: Mapping[str, Any]) -> str:
    """The summary's dashboard members as ready-made JSON text, `"sts":…,"history":…` without
    the braces, so the dashboard splices it into its answer without decoding it."""
    return json_text({name: summary.get(name, default) for name, default in DASHBOARD_MEMBERS})[
        1:-1
    ]


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


def _money(value):
    """Money with exactly two decimals ("0.00"), whatever the computation's scale."""
    return value.quantize(CENT) if isinstance(value, Decimal) else value


def _next_payment_shown(payment: dict | None, currency: str) -> dict | None:
    """The next payment in the API's names (analytics' own: agreement_id, name)."""
    if payment is None:
        return None
    return {
        "date": payment["date"],
        "amount": _money(payment["amount"]),
        "currency": currency,
        "due_in_7_days": _money(payment["due_in_7_days"]),
        "due_in_7_days_until": payment["due_in_7_days_until"],
        "items": [
            {
                "label": item["label"],
                "amount": _money(item["amount"]),
                "currency": currency,
                "date": item["date"],
                "kind": item["kind"],
                "source": item["source"],
                "schedule_source": item["schedule_source"],
                "bank_code": item["bank_code"],
                "bank_agreement_id": item["agreement_id"],
                "debt_id": item["debt_id"],
            }
            for item in payment["items"]
        ],
        "bank_agreement_id": payment["agreement_id"],
        "debt_id": payment["debt_id"],
        "label": payment["name"],
        "bank_code": payment["bank_code"],
        "overdue": payment["overdue"],
        "source": payment["source"],
    }


def _savings_shown(savings: dict | None, currency: str, zone) -> dict | None:
    if savings is None:
        return None

    def day(value):
        # A deposit starts at an instant, a savings account on a day: both as the user's day.
        return local_date(zone, value) if isinstance(value, datetime) else value

    return {
        "total": _money(savings["total"]),
        "currency": currency,
        "note": savings.get("note", ""),
        "items": [
            {
                "kind": item["kind"],
                "bank_code": item["bank_code"],
                "bank_agreement_id": item["agreement_id"],
                "account_id": item.get("account_id"),
                "name": item["name"],
                "amount": _money(item["amount"]),
                "currency": currency,
                "interest_rate": item.get("interest_rate"),
                "start_date": day(item.get("start_date")),
                "source": item.get("source", ""),
            }
            for item in savings["items"]
        ],
    }


def _account_shown(account: Mapping[str, Any]) -> dict:
    return {
        "id": account["id"],
        "bank_code": account["bank_code"],
        "account_type": account["account_type"],
        "masked_number": account["masked_number"],
        "nickname": account["nickname"],
        "currency": account["currency"],
        "balance": _money(account["current_balance"]),
        "balance_as_of": account["balance_as_of"],
    }


def _transaction_shown(row: Mapping[str, Any], zone) -> dict:
    """A recent transaction as the feed names it (merchant_name without the city)."""
    return {
        "id": row["id"],
        "account_id": row["account_id"],
        "bank_code": row["bank_code"],
        "amount": _money(row["amount"]),
        "currency": row["currency"],
        "booking_date": row["booking_date"],
        "local_date": local_date(zone, row["booking_date"]),
        "status": row["status"],
        "description": row["description"],
        "merchant_name": merchant_display_name(
            merchant_name=row["merchant_name"], description=row["description"]
        ),
        "is_own_transfer": row["is_own_transfer"],
        "category_code": row["category__code"],
        "category_name_en": row["category__name_en"],
        "category_name_ru": row["category__name_ru"],
    }


def _top_category_shown(row: Mapping[str, Any]) -> dict:
    return {
        "category_code": row["category__code"],
        "category_name_en": row["category__name_en"],
        "category_name_ru": row["category__name_ru"],
        "currency": row["currency"],
        "total": _money(row["total"]),
    }


def _totals_shown(row: Mapping[str, Any]) -> dict:
    return {
        "currency": row["currency"],
        "spendable_total": _money(row["spendable_total"]),
        "savings_total": _money(row["savings_total"]),
        "debt_total": _money(row["debt_total"]),
        "updated_at": row["updated_at"],
    }


def summary_build(
    *,
    user,
    today: date,
    sts: dict,
    health: dict,
    debt: dict,
    next_payment: dict | None = None,
    savings: dict | None = None,
    currency: str = "RUB",
) -> dict:
    """What the dashboard shows, computed with the snapshot so serving it costs one read, in the
    API's vocabulary (the analytics computation keeps its own names in the breakdown). The next
    payment is THE one analytics computed from the obligations (same on every endpoint)."""
    zone = user_zone(user)
    accounts = selectors.dashboard_accounts(user=user)
    next_income = sts["next_income"]
    totals = selectors.dashboard_summaries(user=user) or _totals_from_accounts(accounts)
    return jsonable(
        {
            "version": SNAPSHOT_VERSION,
            "sts": {
                "status": sts["status"],
                "period": _money(sts["sts_period"]),
                "daily": _money(sts["sts_daily"]),
                "shortfall": _money(sts["shortfall"]),
                "currency": currency,
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
                "total": _money(debt["total_debt"]),
                "monthly_service": _money(debt["monthly_debt_service"]),
                "currency": currency,
                "next_payment": _next_payment_shown(next_payment, currency),
            },
            "savings": _savings_shown(savings, currency, zone),
            "totals": [_totals_shown(row) for row in _totals_with_savings(totals, savings)],
            "accounts": [_account_shown(account) for account in accounts],
            "recent_transactions": [
                _transaction_shown(row, zone)
                for row in selectors.dashboard_recent_transactions(
                    user=user, limit=RECENT_TRANSACTIONS
                )
            ],
            "top_categories": [
                _top_category_shown(row)
                for row in selectors.dashboard_top_categories(
                    user=user, today=today, days=TOP_CATEGORY_DAYS, limit=TOP_CATEGORIES
                )
            ],
        }
    )
