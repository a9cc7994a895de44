"""Account services: per-currency totals after a sync (a balances refresh run: sync.services)."""

from django.db import transaction as db_transaction
from django.db.models import Count, Sum

from banking.models import (
    DEBT_ACCOUNT_TYPES,
    SAVINGS_ACCOUNT_TYPES,
    SPENDABLE_ACCOUNT_TYPES,
    Account,
    AccountSummary,
)


def account_summaries_refresh(*, user) -> list[AccountSummary]:
    """Recompute the user's spendable, savings and debt totals per currency (active accounts)."""
    grouped = (
        Account.objects.filter(user=user, is_active=True)
        .values("currency", "account_type")
        .annotate(total=Sum("current_balance"), count=Count("id"))
        .order_by()
    )
    by_currency: dict[str, AccountSummary] = {}
    for item in grouped:
        summary = by_currency.setdefault(
            item["currency"], AccountSummary(user=user, currency=item["currency"])
        )
        total = item["total"] or 0
        summary.accounts_count += item["count"]
        if item["account_type"] in SPENDABLE_ACCOUNT_TYPES:
            summary.spendable_total += total
        elif item["account_type"] in SAVINGS_ACCOUNT_TYPES:
            summary.savings_total += total
        elif item["account_type"] in DEBT_ACCOUNT_TYPES:
            # The bank reports a loan's balance as a positive "Credit": it is what is owed.
            summary.debt_total += abs(total)
    summaries = list(by_currency.values())
    with db_transaction.atomic():
        AccountSummary.objects.filter(user=user).exclude(currency__in=by_currency).delete()
        if summaries:
            AccountSummary.objects.bulk_create(
                summaries,
                update_conflicts=True,
                unique_fields=["user", "currency"],
                update_fields=["spendable_total", "savings_total", "debt_total", "accounts_count"],
            )
    return sorted(summaries, key=lambda summary: summary.currency)
