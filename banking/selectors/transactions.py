"""Transaction reads: the keyset-paginated feed, one transaction, and summaries from aggregates."""

from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from django.db.models import Sum

from banking.filters import (
    FeedCursor,
    TransactionFilters,
    cursor_encode,
    transactions_after,
    transactions_filter,
)
from banking.models import Transaction, TransactionAggregate
from fintrack.core.exceptions import NotFound

ZERO = Decimal("0.00")


@dataclass(frozen=True, slots=True)
class TransactionPage:
    results: list[Transaction]
    next_cursor: str | None


def transaction_feed(
    *, user, filters: TransactionFilters, cursor: FeedCursor | None, page_size: int
) -> TransactionPage:
    """One page of the user's transactions, newest first, after `cursor`."""
    queryset = transactions_filter(Transaction.objects.filter(user=user), filters)
    queryset = transactions_after(queryset, cursor).select_related("category")
    rows = list(queryset.defer("raw_json")[: page_size + 1])
    next_cursor = None
    if len(rows) > page_size:
        rows = rows[:page_size]
        next_cursor = cursor_encode(booking_date=rows[-1].booking_date, row_id=rows[-1].id)
    return TransactionPage(results=rows, next_cursor=next_cursor)


def transaction_get(*, user, transaction_id: int) -> Transaction:
    """One of the user's transactions; another user's or an unknown id is not found."""
    transaction = (
        Transaction.objects.filter(user=user, id=transaction_id)
        .select_related("category", "account")
        .defer("raw_json")
        .first()
    )
    if transaction is None:
        raise NotFound("No such transaction.", extra={"transaction_id": transaction_id})
    return transaction


def transaction_summary(*, user, date_from: date, date_to: date) -> list[dict]:
    """Income, spending and net per currency, by category and by day, from the aggregates."""
    aggregates = TransactionAggregate.objects.filter(
        user=user, date__gte=date_from, date__lte=date_to
    ).order_by()
    by_category = aggregates.values(
        "currency",
        "category__code",
        "category__name_en",
        "category__name_ru",
        "category__kind",
    ).annotate(
        income_sum=Sum("income"), spending_sum=Sum("spending"), count=Sum("transaction_count")
    )
    by_day = aggregates.values("currency", "date").annotate(
        income_sum=Sum("income"), spending_sum=Sum("spending"), count=Sum("transaction_count")
    )
    currencies: dict[str, dict] = defaultdict(
        lambda: {"income": ZERO, "spending": ZERO, "count": 0, "by_category": [], "by_day": []}
    )
    for item in by_category.order_by("currency", "category__code"):
        summary = currencies[item["currency"]]
        summary["income"] += item["income_sum"]
        summary["spending"] += item["spending_sum"]
        summary["count"] += item["count"]
        summary["by_category"].append(
            {
                "code": item["category__code"],
                "name_en": item["category__name_en"],
                "name_ru": item["category__name_ru"],
                "kind": item["category__kind"],
                "income": item["income_sum"],
                "spending": item["spending_sum"],
                "net": item["income_sum"] - item["spending_sum"],
                "count": item["count"],
            }
        )
    for item in by_day.order_by("currency", "date"):
        currencies[item["currency"]]["by_day"].append(
            {
                "date": item["date"],
                "income": item["income_sum"],
                "spending": item["spending_sum"],
                "net": item["income_sum"] - item["spending_sum"],
                "count": item["count"],
            }
        )
    result = []
    for currency in sorted(currencies):
        summary = currencies[currency]
        summary["by_category"].sort(key=lambda row: (-row["spending"], -row["income"], row["code"]))
        result.append(
            {
                "currency": currency,
                "income": summary["income"],
                "spending": summary["spending"],
                "net": summary["income"] - summary["spending"],
                "count": summary["count"],
                "by_category": summary["by_category"],
                "by_day": summary["by_day"],
            }
        )
    return result
