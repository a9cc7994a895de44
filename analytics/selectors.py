"""Analytics reads: every query scoped to one user and, for history, to a bounded date window."""

import functools
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from decimal import Decimal
from typing import TypedDict

from django.db import connection
from django.db.models import Count, OuterRef, Q, Subquery, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from analytics.models import AnalyticsSnapshot, RecomputeRequest
from banking.models import (
    SPENDABLE_ACCOUNT_TYPES,
    Account,
    AccountSummary,
    BalanceSnapshot,
    BankConnection,
    ProductAgreement,
    Transaction,
    TransactionAggregate,
    TransactionStatus,
)
from consents.models import Consent, ConsentKind, ConsentStatus

# Statuses that moved money (or will): declined and refunded rows are not cash flow.
_MONEY_STATUSES = (TransactionStatus.BOOKED, TransactionStatus.PENDING)
DEBT_PRODUCT_TYPES = ("loan", "credit_card")
CENT = Decimal("0.01")


class TransactionWindowRow(TypedDict):
    """A money-moving transaction as the analytics computation reads it."""

    id: int
    account_id: int
    bank_code: str
    amount: Decimal
    currency: str
    booking_date: datetime
    description: str
    counterparty: str
    merchant_name: str
    is_own_transfer: bool
    category__code: str | None


class AggregateDayRow(TypedDict):
    """One day's income and spending of one category and currency."""

    date: date
    currency: str
    income: Decimal
    spending: Decimal
    category__code: str
    category__is_essential: bool


class DashboardSnapshotRow(TypedDict):
    """The newest snapshot's head and its dashboard summary as ready-made JSON text (with the
    snapshot version it was made at), without the decoded summary or the breakdown."""

    id: int
    created_at: datetime
    data_fresh_as_of: datetime | None
    currency: str
    summary_json: str | None
    summary_json_version: str | None


class DashboardAccountRow(TypedDict):
    """An active account with its balance, for the main screen."""

    id: int
    bank_code: str
    account_type: str
    masked_number: str
    nickname: str
    currency: str
    current_balance: Decimal | None
    balance_as_of: datetime | None


class DashboardConnectionRow(TypedDict):
    """A bank connection's status (with its reason and retry time), freshness, and whether and
    until when its account and product consents are authorised."""

    bank_code: str
    status: str
    status_reason: str
    next_retry_at: datetime | None
    last_success_at: datetime | None
    last_sync_at: datetime | None
    last_error: str
    account_consent_authorised: bool
    account_consent_expires_at: datetime | None
    product_consent_authorised: bool
    product_consent_expires_at: datetime | None


class DashboardTotalsRow(TypedDict):
    """Per-currency totals maintained by the sync."""

    currency: str
    spendable_total: Decimal
    savings_total: Decimal
    debt_total: Decimal
    updated_at: datetime


class RecentTransactionRow(TypedDict):
    """A transaction in the main screen's recent list."""

    id: int
    account_id: int
    bank_code: str
    amount: Decimal
    currency: str
    booking_date: datetime
    status: str
    description: str
    merchant_name: str
    is_own_transfer: bool
    category__code: str | None
    category__name_en: str | None
    category__name_ru: str | None


class TopCategoryRow(TypedDict):
    """A category's spending total in one currency (two decimal places)."""

    category__code: str
    category__name_en: str
    category__name_ru: str
    currency: str
    total: Decimal


class CategorySpendingRow(TypedDict):
    """A category's spending total over a window (two decimal places)."""

    category_id: int
    category__code: str
    category__name_en: str
    category__name_ru: str
    category__is_essential: bool
    total: Decimal


def _day_start(day: date, zone: tzinfo | None = None) -> datetime:
    return datetime.combine(day, time.min, tzinfo=zone or timezone.get_current_timezone())


def transaction_window_list(
    *, user, since: date, until: date, zone: tzinfo | None = None
) -> list[TransactionWindowRow]:
    """The user's money-moving transactions booked in local days [since, until], oldest first
    (`zone`: the user's time zone; the server's when not given)."""
    # The ignore: django-stubs types a nullable foreign key's column in values() as non-null.
    return list(
        Transaction.objects.filter(  # type: ignore[arg-type]
            user=user,
            booking_date__gte=_day_start(since, zone),
            booking_date__lt=_day_start(until + timedelta(days=1), zone),
            status__in=_MONEY_STATUSES,
        )
        .order_by("booking_date", "id")
        .values(
            "id",
            "account_id",
            "bank_code",
            "amount",
            "currency",
            "booking_date",
            "description",
            "counterparty",
            "merchant_name",
            "is_own_transfer",
            "category__code",
        )
    )


def transaction_newest_at(*, user) -> datetime | None:
    """When the user's newest stored transaction was booked (any status, any account)."""
    return (
        Transaction.objects.filter(user=user)
        .order_by("-booking_date")
        .values_list("booking_date", flat=True)
        .first()
    )


def account_oldest_booking(*, account_ids: list[int]) -> dict[int, datetime]:
    """The oldest stored booking time of each of these accounts that has rows (one query: an
    ordered LIMIT 1 per account, tx_account_feed walked backwards)."""
    oldest = Subquery(
        Transaction.objects.filter(account_id=OuterRef("pk"))
        .order_by("booking_date", "id")
        .values("booking_date")[:1]
    )
    rows = (
        Account.objects.filter(pk__in=account_ids)
        .annotate(oldest=oldest)
        .values_list("pk", "oldest")
    )
    return {pk: booked for pk, booked in rows if booked is not None}


def aggregate_window_list(*, user, since: date, until: date) -> list[AggregateDayRow]:
    """Daily income/spending per category of the user in [since, until]."""
    return list(
        TransactionAggregate.objects.filter(user=user, date__gte=since, date__lte=until).values(
            "date", "currency", "income", "spending", "category__code", "category__is_essential"
        )
    )


def account_active_list(*, user) -> list[Account]:
    """The user's accounts listed by their banks at the last successful sync."""
    return list(Account.objects.filter(user=user, is_active=True).order_by("bank_code", "id"))


def agreement_debt_list(*, user) -> list[ProductAgreement]:
    """The user's active loan and credit-card agreements."""
    return list(
        ProductAgreement.objects.filter(
            user=user, status="active", product_type__in=DEBT_PRODUCT_TYPES
        )
        .select_related("linked_account")
        .order_by("next_payment_date", "id")
    )


def agreement_deposit_list(*, user) -> list[ProductAgreement]:
    """The user's active deposits: savings, never spendable money."""
    return list(
        ProductAgreement.objects.filter(user=user, status="active", product_type="deposit")
        .select_related("linked_account")
        .order_by("bank_code", "agreement_id")
    )


def agreement_exists(*, user) -> bool:
    """Whether any sync has stored a product agreement for the user."""
    return ProductAgreement.objects.filter(user=user).exists()


def snapshot_next_payment(*, user) -> dict | None:
    """The next payment stored with the user's newest snapshot (None: no snapshot yet).

    Returns {"next_payment": …, "version": …} so a snapshot with no payment due is told apart
    from none, and one of an older version (analytics.summary.SNAPSHOT_VERSION) from a current
    one."""
    row = (
        AnalyticsSnapshot.objects.filter(user=user)
        .order_by("-created_at", "-id")
        .values("summary")
        .first()
    )
    if row is None:
        return None
    summary = row["summary"] or {}
    return {
        "next_payment": (summary.get("debt") or {}).get("next_payment"),
        "version": summary.get("version"),
    }


def connection_list(*, user) -> list[BankConnection]:
    """The user's bank connections."""
    return list(BankConnection.objects.filter(user=user).order_by("bank_code"))


def snapshot_latest(*, user, with_breakdown: bool = True) -> AnalyticsSnapshot | None:
    """The user's newest snapshot; the heavy breakdown is left out unless asked for."""
    queryset = AnalyticsSnapshot.objects.filter(user=user).order_by("-created_at", "-id")
    if not with_breakdown:
        queryset = queryset.defer("breakdown")
    return queryset.first()


def account_exists(*, user) -> bool:
    """Whether any sync has stored an account for the user."""
    return Account.objects.filter(user=user).exists()


def dashboard_accounts(*, user) -> list[DashboardAccountRow]:
    """Active accounts with balances, as plain rows for the main screen."""
    return list(
        Account.objects.filter(user=user, is_active=True)
        .order_by("bank_code", "id")
        .values(
            "id",
            "bank_code",
            "account_type",
            "masked_number",
            "nickname",
            "currency",
            "current_balance",
            "balance_as_of",
        )
    )


# One query for the newest snapshot's head and ready-made JSON, every bank connection with its
# authorised consents' expiry, and whether a recomputation is scheduled (the debounce marker,
# analytics.models.RecomputeRequest): a row per connection (the snapshot's columns and the
# marker on each), or a single row of the snapshot alone when there is no connection. Plain SQL:
# composing the same read with the ORM (four subqueries) cost more CPU than the rest of the
# request (the dashboard's profile).
_CONSENT = "FROM {consents} AS a WHERE a.user_id = c.user_id AND a.bank_code = c.bank_code"
_DASHBOARD_SQL = """
SELECT s.id, s.created_at, s.data_fresh_as_of, s.currency, s.summary_json, s.summary_json_version,
    c.bank_code, c.status, c.status_reason, c.next_retry_at, c.last_success_at, c.last_sync_at,
    c.last_error,
    EXISTS (SELECT 1 {consent} AND a.kind = %s AND a.status = %s),
    (SELECT a.expires_at {consent} AND a.kind = %s AND a.status = %s LIMIT 1),
    EXISTS (SELECT 1 {consent} AND a.kind = %s AND a.status = %s),
    (SELECT a.expires_at {consent} AND a.kind = %s AND a.status = %s LIMIT 1),
    EXISTS (SELECT 1 FROM {markers} AS m WHERE m.user_id = %s AND m.requested_at >= %s)
FROM (SELECT 1 AS one) AS u
LEFT JOIN (
    SELECT * FROM {snapshots} WHERE user_id = %s ORDER BY created_at DESC, id DESC LIMIT 1
) AS s ON 1 = 1
LEFT JOIN {connections} AS c ON c.user_id = %s
ORDER BY c.bank_code
"""
# On PostgreSQL the same query is the function analytics_dashboard_rows(user, marker_since)
# (migration analytics 0005): PL/pgSQL keeps its plan for the session, where planning the
# statement sent as text took 0.3 of the 0.9 ms the read cost (EXPLAIN: planning 0.33 ms,
# execution 0.09 ms). It stays correct behind PgBouncer in transaction pooling (no prepared
# statement crosses a transaction). A change to this read changes the function by a migration;
# a test compares the two answers (analytics/tests/test_dashboard_rows.py).
_DASHBOARD_FUNCTION_SQL = "SELECT * FROM analytics_dashboard_rows(%s, %s)"


@functools.cache
def _dashboard_sql() -> str:
    quote = connection.ops.quote_name
    return _DASHBOARD_SQL.format(
        consent=_CONSENT.format(consents=quote(Consent._meta.db_table)),
        markers=quote(RecomputeRequest._meta.db_table),
        snapshots=quote(AnalyticsSnapshot._meta.db_table),
        connections=quote(BankConnection._meta.db_table),
    )


def _dashboard_statement(*, user_id: int, marker_since: datetime, inline: bool = False):
    """The dashboard read and its parameters: the function on PostgreSQL, else the query
    (`inline`: the query on PostgreSQL too, for the test that compares the two)."""
    if connection.vendor == "postgresql" and not inline:
        return _DASHBOARD_FUNCTION_SQL, [user_id, marker_since]
    authorised = [str(ConsentStatus.AUTHORIZED)]
    params = [
        *[str(ConsentKind.ACCOUNTS), *authorised] * 2,
        *[str(ConsentKind.PRODUCTS), *authorised] * 2,
        user_id,
        connection.ops.adapt_datetimefield_value(marker_since),
        user_id,
        user_id,
    ]
    return _dashboard_sql(), params


def _moment(value):
    """A timestamp as the ORM gives it (aware): SQLite answers text in UTC."""
    if isinstance(value, str):
        value = parse_datetime(value)
    if value is not None and timezone.is_naive(value):
        value = value.replace(tzinfo=UTC)
    return value


def dashboard_rows(
    *, user, marker_since: datetime
) -> tuple[DashboardSnapshotRow | None, list[DashboardConnectionRow], bool]:
    """The newest snapshot's row (head and ready-made JSON; never the decoded summary nor the
    breakdown) or None, the connection rows, and whether a recomputation is scheduled (a marker
    set at or after `marker_since`), in one query."""
    sql, params = _dashboard_statement(user_id=user.pk, marker_since=marker_since)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    first = rows[0]
    snapshot: DashboardSnapshotRow | None = None
    if first[0] is not None:
        snapshot = {
            "id": first[0],
            "created_at": _moment(first[1]),
            "data_fresh_as_of": _moment(first[2]),
            "currency": first[3],
            "summary_json": first[4],
            "summary_json_version": first[5],
        }
    banks: list[DashboardConnectionRow] = [
        {
            "bank_code": row[6],
            "status": row[7],
            "status_reason": row[8],
            "next_retry_at": _moment(row[9]),
            "last_success_at": _moment(row[10]),
            "last_sync_at": _moment(row[11]),
            "last_error": row[12],
            "account_consent_authorised": bool(row[13]),
            "account_consent_expires_at": _moment(row[14]),
            "product_consent_authorised": bool(row[15]),
            "product_consent_expires_at": _moment(row[16]),
        }
        for row in rows
        if row[6] is not None
    ]
    return snapshot, banks, bool(first[17])


def dashboard_summaries(*, user) -> list[DashboardTotalsRow]:
    """Per-currency totals maintained by the sync."""
    return list(
        AccountSummary.objects.filter(user=user)
        .order_by("currency")
        .values("currency", "spendable_total", "savings_total", "debt_total", "updated_at")
    )


def dashboard_recent_transactions(*, user, limit: int = 10) -> list[RecentTransactionRow]:
    """The user's newest transactions (walks the (user, booking_date, id) index)."""
    # The ignore: django-stubs types a nullable foreign key's column in values() as non-null.
    return list(
        Transaction.objects.filter(user=user)  # type: ignore[arg-type]
        .order_by("-booking_date", "-id")
        .values(
            "id",
            "account_id",
            "bank_code",
            "amount",
            "currency",
            "booking_date",
            "status",
            "description",
            "merchant_name",
            "is_own_transfer",
            "category__code",
            "category__name_en",
            "category__name_ru",
        )[:limit]
    )


def dashboard_top_categories(
    *, user, today: date, days: int = 30, limit: int = 5
) -> list[TopCategoryRow]:
    """Largest spending categories over the last `days` days, from the daily aggregates."""
    rows = list(
        TransactionAggregate.objects.filter(
            user=user, date__gt=today - timedelta(days=days), date__lte=today
        )
        .values("category__code", "category__name_en", "category__name_ru", "currency")
        .annotate(total=Sum("spending"))
        .filter(~Q(total=0))
        .order_by("-total", "category__code")[:limit]
    )
    for row in rows:
        # SQLite sums decimals without their scale; money always has two places.
        row["total"] = Decimal(row["total"]).quantize(CENT)
    return rows


def console_user_get(*, user_id: int):
    """The user a staff console page is about (None when there is no such user)."""
    from django.contrib.auth import get_user_model

    return get_user_model().objects.filter(pk=user_id).first()


def spendable_balance_history(*, user, since: date, until: date, zone: tzinfo) -> dict:
    """End-of-day spendable balance (active checking and card accounts in roubles, as STS
    counts them) of each local day in [since, until]: worked back from the accounts' current
    balances through the money-moving transactions booked after each day; with the balance
    readings the syncs stored over those days (the line's anchors)."""
    accounts = list(
        Account.objects.filter(
            user=user,
            is_active=True,
            account_type__in=SPENDABLE_ACCOUNT_TYPES,
            currency="RUB",
            current_balance__isnull=False,
        ).values("id", "current_balance")
    )
    account_ids = [a["id"] for a in accounts]
    # The filter above leaves out accounts without a balance; the check narrows the type.
    now_total = sum(
        (a["current_balance"] for a in accounts if a["current_balance"] is not None), Decimal("0")
    )
    rows = (
        Transaction.objects.filter(
            account_id__in=account_ids,
            booking_date__gte=_day_start(since, zone),
            status__in=_MONEY_STATUSES,
        )
        .annotate(day=TruncDate("booking_date", tzinfo=zone))
        .values("day")
        .annotate(net=Sum("amount"), count=Count("id"))
        .order_by("day")
    )
    net_by_day = {r["day"]: (Decimal(r["net"]).quantize(CENT), r["count"]) for r in rows}
    # Balance at the end of day d = today's balance - what moved on the days after d.
    after = sum((net for day, (net, _) in net_by_day.items() if day > until), Decimal("0"))
    days = []
    balance = now_total - after
    day = until
    while day >= since:
        net, count = net_by_day.get(day, (Decimal("0.00"), 0))
        days.append({"date": day, "balance": balance, "net": net, "count": count})
        balance -= net
        day -= timedelta(days=1)
    days.reverse()

    readings = list(
        BalanceSnapshot.objects.filter(
            account_id__in=account_ids,
            as_of__gte=_day_start(since, zone),
            as_of__lt=_day_start(until + timedelta(days=1), zone),
        )
        .order_by("as_of", "id")
        .values("account_id", "as_of", "available", "booked")
    )
    latest: dict[int, Decimal] = {}
    by_day: dict[date, dict] = {}
    for reading in readings:
        amount = reading["available"] if reading["available"] is not None else reading["booked"]
        if amount is None:
            continue
        latest[reading["account_id"]] = amount
        if len(latest) == len(account_ids):
            local_day = reading["as_of"].astimezone(zone).date()
            by_day[local_day] = {
                "date": local_day,
                "balance": sum(latest.values(), Decimal("0")),
                "as_of": reading["as_of"],
            }
    return {
        "account_ids": account_ids,
        "current_total": now_total,
        "days": days,
        "readings": [by_day[d] for d in sorted(by_day)],
    }


def category_spending_list(
    *, user, since: date, until: date, currency: str = "RUB"
) -> list[CategorySpendingRow]:
    """Spending per category over local days [since, until] from the daily aggregates (own
    transfers and declined rows are not in them), largest first."""
    rows = list(
        TransactionAggregate.objects.filter(
            user=user, date__gte=since, date__lte=until, currency=currency
        )
        .values(
            "category_id",
            "category__code",
            "category__name_en",
            "category__name_ru",
            "category__is_essential",
        )
        .annotate(total=Sum("spending"))
        .filter(total__gt=0)
        .order_by("-total", "category__code")
    )
    for row in rows:
        row["total"] = Decimal(row["total"]).quantize(CENT)
    return rows
