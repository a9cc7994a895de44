"""Transaction reads: the keyset-paginated feed, its CSV rows, one transaction, and summaries.

Days and months are the user's local ones (the aggregates are built by local day). A month is
`complete` only when the whole of it is inside the range, it is not the first month of the user's
history (history rarely starts on the 1st at midnight) and it has ended (the current local month
has not): monthly averages are taken over complete months only, never over a few days' data.
"""

import calendar
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal

from django.db import connection as db_connection
from django.db.models import Min, Sum

from banking.filters import (
    DEFAULT_ORDERING,
    FeedCursor,
    TransactionFilters,
    cursor_after_row,
    transactions_after,
    transactions_filter,
)
from banking.models import Transaction, TransactionAggregate
from fintrack.core.exceptions import NotFound
from fintrack.core.localtime import user_today

ZERO = Decimal("0.00")


@dataclass(frozen=True, slots=True)
class TransactionPage:
    results: list[Transaction]
    next_cursor: str | None


def transaction_feed(
    *,
    user,
    filters: TransactionFilters,
    cursor: FeedCursor | None,
    page_size: int,
    ordering: str = DEFAULT_ORDERING,
) -> TransactionPage:
    """One page of the user's transactions in `ordering` (newest first by default), after
    `cursor` (which must have been issued for the same ordering)."""
    queryset = transactions_filter(Transaction.objects.filter(user=user), filters)
    queryset = transactions_after(queryset, cursor, ordering).select_related("category")
    rows = list(queryset.defer("raw_json")[: page_size + 1])
    next_cursor = None
    if len(rows) > page_size:
        rows = rows[:page_size]
        next_cursor = cursor_after_row(rows[-1], ordering)
    return TransactionPage(results=rows, next_cursor=next_cursor)


# The columns of one exported row, in the order transaction_export_rows yields them.
EXPORT_COLUMNS = (
    "id",
    "booking_date",
    "amount",
    "currency",
    "description",
    "merchant_name",
    "category__code",
    "category__name_ru",
    "counterparty",
    "bank_code",
    "account__masked_number",
    "account__bank_account_id",
    "status",
)


def transaction_export_rows(
    *,
    user,
    filters: TransactionFilters,
    ordering: str = DEFAULT_ORDERING,
    chunk_size: int = 2000,
) -> Iterator[tuple]:
    """Every one of the user's matching transactions as a tuple of EXPORT_COLUMNS, in `ordering`.

    Memory stays constant whatever the number of rows. Where server-side cursors work (SQLite's
    chunked reads, PostgreSQL without a pooler) the rows stream from one query, so the file is
    one snapshot even while a sync writes. Behind PgBouncer in transaction pooling
    (DISABLE_SERVER_SIDE_CURSORS: iterator() would read every row at once) they are read
    `chunk_size` per query, each page after the last row's key exactly as the feed's cursor
    pages (transactions_after); in autocommit each page then reads the rows as they are, so a
    row a sync moves across pages meanwhile may come twice or not at all, as in the feed. No
    model instances: at 250,000 rows they would cost more than the CSV itself.
    """
    queryset = transactions_filter(Transaction.objects.filter(user=user), filters)
    if not db_connection.settings_dict.get("DISABLE_SERVER_SIDE_CURSORS"):
        ordered = transactions_after(queryset, None, ordering).values_list(*EXPORT_COLUMNS)
        return ordered.iterator(chunk_size=chunk_size)
    id_at, date_at, amount_at = (
        EXPORT_COLUMNS.index(name) for name in ("id", "booking_date", "amount")
    )

    def pages() -> Iterator[tuple]:
        cursor = None
        while True:
            page = transactions_after(queryset, cursor, ordering).values_list(*EXPORT_COLUMNS)
            rows = list(page[:chunk_size])
            yield from rows
            if len(rows) < chunk_size:
                return
            last = rows[-1]
            del rows  # one page in memory at a time
            cursor = FeedCursor(
                id=last[id_at],
                booking_date=last[date_at],
                amount=abs(last[amount_at]),
                ordering=ordering,
            )

    return pages()


def transaction_oldest_written_since(*, accounts, since: datetime) -> datetime | None:
    """The oldest booking time among the rows of `accounts` inserted or updated at `since` or
    later (None: none): the days a sync attempt that died before saving its counts touched."""
    return (
        Transaction.objects.filter(account__in=accounts, updated_at__gte=since)
        .aggregate(oldest=Min("booking_date"))
        .get("oldest")
    )


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


def _month_key(day: date) -> str:
    return f"{day:%Y-%m}"


def _months_between(date_from: date, date_to: date) -> list[tuple[int, int]]:
    months, year, month = [], date_from.year, date_from.month
    while (year, month) <= (date_to.year, date_to.month):
        months.append((year, month))
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return months


def _by_month(
    by_day: list[dict], *, date_from: date, date_to: date, history_start: date | None, today: date
) -> tuple[list[dict], dict]:
    """Local months of the range with completeness, and averages over the complete ones."""
    totals: dict[str, dict] = {}
    for item in by_day:
        month = totals.setdefault(
            _month_key(item["date"]), {"income": ZERO, "spending": ZERO, "count": 0, "days": 0}
        )
        month["income"] += item["income"]
        month["spending"] += item["spending"]
        month["count"] += item["count"]
        month["days"] += 1
    rows = []
    for year, number in _months_between(date_from, date_to):
        first = date(year, number, 1)
        last = date(year, number, calendar.monthrange(year, number)[1])
        key = _month_key(first)
        values = totals.get(key, {"income": ZERO, "spending": ZERO, "count": 0, "days": 0})
        complete = (
            date_from <= first
            and last <= date_to
            and last < today
            and history_start is not None
            and history_start < first
        )
        rows.append(
            {
                "month": key,
                "income": values["income"],
                "spending": values["spending"],
                "net": values["income"] - values["spending"],
                "count": values["count"],
                "days_with_data": values["days"],
                "days_in_month": last.day,
                "complete": complete,
            }
        )
    complete_rows = [row for row in rows if row["complete"]]
    average: dict[str, int | Decimal | None] = {
        "months": len(complete_rows),
        "income": None,
        "spending": None,
        "net": None,
    }
    if complete_rows:
        n = Decimal(len(complete_rows))
        for name in ("income", "spending", "net"):
            total = sum((row[name] for row in complete_rows), ZERO)
            average[name] = (total / n).quantize(Decimal("0.01"), ROUND_HALF_UP)
    return rows, average


def transaction_summary(
    *, user, date_from: date, date_to: date, today: date | None = None
) -> list[dict]:
    """Income, spending and net per currency, by category, local day and local month.

    `by_month` marks partial months (`complete: false`) and `monthly_average` averages only the
    complete ones, so neither the first month of history nor the current one counts as a month.
    """
    today = today or user_today(user)
    history_start = TransactionAggregate.objects.filter(user=user).aggregate(first=Min("date"))[
        "first"
    ]
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
                "category_code": item["category__code"],
                "category_name_en": item["category__name_en"],
                "category_name_ru": item["category__name_ru"],
                "category_kind": item["category__kind"],
                "currency": item["currency"],
                "income": item["income_sum"],
                "spending": item["spending_sum"],
                "net": item["income_sum"] - item["spending_sum"],
                "count": item["count"],
            }
        )
    for day in by_day.order_by("currency", "date"):
        currencies[day["currency"]]["by_day"].append(
            {
                "date": day["date"],
                "currency": day["currency"],
                "income": day["income_sum"],
                "spending": day["spending_sum"],
                "net": day["income_sum"] - day["spending_sum"],
                "count": day["count"],
            }
        )
    result = []
    for currency in sorted(currencies):
        summary = currencies[currency]
        summary["by_category"].sort(
            key=lambda row: (-row["spending"], -row["income"], row["category_code"])
        )
        by_month, monthly_average = _by_month(
            summary["by_day"],
            date_from=date_from,
            date_to=date_to,
            history_start=history_start,
            today=today,
        )
        # Every row with money names its currency (issue 24), as the group does.
        for row in (*by_month, monthly_average):
            row["currency"] = currency
        result.append(
            {
                "currency": currency,
                "income": summary["income"],
                "spending": summary["spending"],
                "net": summary["income"] - summary["spending"],
                "count": summary["count"],
                "by_category": summary["by_category"],
                "by_day": summary["by_day"],
                "by_month": by_month,
                "monthly_average": monthly_average,
            }
        )
    return result
