"""The user's debts: active loans and credit cards, what is still owed on each, totals.

Reads of banking's agreements and of the outstanding amounts banking stores after each sync
(banking.services.agreements); the /api/debts endpoints that serve them are analytics'
(analytics.apis), which reads banking through these selectors.
"""

from collections import defaultdict
from decimal import Decimal

from django.db.models import F

from banking.models import DEBT_ACCOUNT_TYPES, OutstandingSource, PaymentStatus, ProductAgreement
from banking.services.agreements import DEBT_PRODUCT_TYPES


def debt_list(*, user) -> list[ProductAgreement]:
    """Active loans and credit cards of the user, with the linked account loaded."""
    return list(
        ProductAgreement.objects.filter(
            user=user, status="active", product_type__in=DEBT_PRODUCT_TYPES
        )
        .select_related("linked_account")
        .order_by(F("next_payment_date").asc(nulls_last=True), "bank_code", "id")
    )


def debt_remaining(agreement: ProductAgreement) -> Decimal | None:
    """What is still owed: as refreshed after the sync (loan account or estimate; None when
    unknown), else a loan account's balance. Never a checking balance (SPEC §7.3)."""
    if agreement.outstanding_source:
        return None if agreement.outstanding is None else abs(agreement.outstanding)
    account = agreement.linked_account
    if (
        account is not None
        and account.account_type in DEBT_ACCOUNT_TYPES
        and account.current_balance is not None
    ):
        return abs(account.current_balance)
    if agreement.remaining_balance is not None:
        return abs(agreement.remaining_balance)
    return None


def debt_remaining_source(agreement: ProductAgreement) -> str:
    """loan_account | estimate | unknown: how `debt_remaining` knows."""
    if agreement.outstanding_source:
        return agreement.outstanding_source
    return (
        OutstandingSource.UNKNOWN
        if debt_remaining(agreement) is None
        else OutstandingSource.LOAN_ACCOUNT
    )


def debt_totals(debts: list[ProductAgreement]) -> list[dict]:
    """Per currency: total remaining (known + estimated), of it estimated, the debts whose
    balance is unknown, total monthly payment and the number of debts."""
    totals: dict[str, dict] = defaultdict(
        lambda: {
            "remaining": Decimal("0.00"),
            "estimated": Decimal("0.00"),
            "unknown_count": 0,
            "monthly_payment": Decimal("0.00"),
            "count": 0,
        }
    )
    for debt in debts:
        total = totals[debt.currency]
        remaining = debt_remaining(debt)
        total["remaining"] += remaining or 0
        if remaining is None:
            total["unknown_count"] += 1
        elif debt_remaining_source(debt) == OutstandingSource.ESTIMATE:
            total["estimated"] += remaining
        if debt.payment_status != PaymentStatus.REPAID:
            total["monthly_payment"] += debt.monthly_payment or 0
        total["count"] += 1
    return [{"currency": currency, **totals[currency]} for currency in sorted(totals)]
