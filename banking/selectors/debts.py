"""The user's debts (active loans and credit cards) and the nearest payment across them."""

from collections import defaultdict
from decimal import Decimal

from django.db.models import F

from banking.models import ProductAgreement
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
    """What is still owed: the stored remaining balance, else the linked account's balance."""
    if agreement.remaining_balance is not None:
        return abs(agreement.remaining_balance)
    account = agreement.linked_account
    if account is not None and account.current_balance is not None:
        return abs(account.current_balance)
    return None


def debt_totals(debts: list[ProductAgreement]) -> list[dict]:
    """Per currency: total remaining, total monthly payment and the number of debts."""
    totals: dict[str, dict] = defaultdict(
        lambda: {"remaining": Decimal("0.00"), "monthly_payment": Decimal("0.00"), "count": 0}
    )
    for debt in debts:
        total = totals[debt.currency]
        total["remaining"] += debt_remaining(debt) or 0
        total["monthly_payment"] += debt.monthly_payment or 0
        total["count"] += 1
    return [{"currency": currency, **totals[currency]} for currency in sorted(totals)]


def debt_next_payment(*, user, today) -> ProductAgreement | None:
    """The debt whose next payment is the nearest on or after today (None when none is known)."""
    return (
        ProductAgreement.objects.filter(
            user=user,
            status="active",
            product_type__in=DEBT_PRODUCT_TYPES,
            next_payment_date__gte=today,
        )
        .order_by("next_payment_date", "-next_payment_amount", "id")
        .first()
    )
