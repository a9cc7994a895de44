"""Analytics reads: every query scoped to one user and, for history, to a bounded date window."""

from datetime import date, datetime, time, timedelta
from decimal import Decimal

from django.db.models import Q, Sum
from django.utils import timezone

from analytics.models import AnalyticsSnapshot
from banking.models import (
    Account,
    AccountSummary,
    BankConnection,
    ProductAgreement,
    Transaction,
    TransactionAggregate,
    TransactionStatus,
)

# Statuses that moved money (or will): declined and refunded rows are not cash flow.
_MONEY_STATUSES = (TransactionStatus.BOOKED, TransactionStatus.PENDING)
DEBT_PRODUCT_TYPES = ("loan", "credit_card")
CENT = Decimal("0.01")


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=timezone.get_current_timezone())


def transaction_window_list(*, user, since: date, until: date) -> list[dict]:
    """The user's money-moving transactions booked in [since, until], oldest first."""
    return list(
        Transaction.objects.filter(
            user=user,
            booking_date__gte=_day_start(since),
            booking_date__lt=_day_start(until + timedelta(days=1)),
            status__in=_MONEY_STATUSES,
        )
        .order_by("booking_date", "id")
        .values(
            "id",
            "account_id",
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


def aggregate_window_list(*, user, since: date, until: date) -> list[dict]:
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


def connection_list(*, user) -> list[BankConnection]:
    """The user's bank connections."""
    return list(BankConnection.objects.filter(user=user).order_by("bank_code"))


def snapshot_latest(*, user, with_breakdown: bool = True) -> AnalyticsSnapshot | None:
    """The user's newest snapshot; the heavy breakdown is left out unless asked for."""
    queryset = AnalyticsSnapshot.objects.filter(user=user).order_by("-created_at", "-id")
    if not with_breakdown:
        queryset = queryset.defer("breakdown")
    return queryset.first()


def snapshot_latest_summary(*, user) -> dict | None:
    """The newest snapshot's head and dashboard summary as one plain row (no breakdown)."""
    return (
        AnalyticsSnapshot.objects.filter(user=user)
        .order_by("-created_at", "-id")
        .values("id", "created_at", "data_fresh_as_of", "currency", "summary")
        .first()
    )


def account_exists(*, user) -> bool:
    """Whether any sync has stored an account for the user."""
    return Account.objects.filter(user=user).exists()


def dashboard_accounts(*, user) -> list[dict]:
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


def dashboard_connections(*, user) -> list[dict]:
    """Bank connections with status and freshness, as plain rows."""
    return list(
        BankConnection.objects.filter(user=user)
        .order_by("bank_code")
        .values("bank_code", "status", "last_success_at", "last_sync_at", "last_error")
    )


def dashboard_summaries(*, user) -> list[dict]:
    """Per-currency totals maintained by the sync."""
    return list(
        AccountSummary.objects.filter(user=user)
        .order_by("currency")
        .values("currency", "spendable_total", "savings_total", "debt_total", "updated_at")
    )


def dashboard_recent_transactions(*, user, limit: int = 10) -> list[dict]:
    """The user's newest transactions (walks the (user, booking_date, id) index)."""
    return list(
        Transaction.objects.filter(user=user)
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
        )[:limit]
    )


def dashboard_top_categories(*, user, today: date, days: int = 30, limit: int = 5) -> list[dict]:
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
