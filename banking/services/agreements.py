"""Loan schedule and next payment: the bank sends neither (SPEC §7.3), so FinTrack computes them.

From history where it exists: the "Платеж по кредиту №<agreement_id>" debits; the monthly payment is
their sum in the latest complete month, the next payment is due on the 1st of the month after the
last observed one. Otherwise an annuity estimate on principal, rate and term, first payment one
month after the start date. Either way the agreement says which (`next_payment_source`).
"""

import calendar
import re
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal

from django.db import transaction as db_transaction
from django.utils import timezone

from banking.models import (
    NextPaymentSource,
    ProductAgreement,
    Transaction,
    TransactionStatus,
    loan_payment_description_q,
)

CENT = Decimal("0.01")
SCHEDULE_LENGTH = 12
DEBT_PRODUCT_TYPES = ("loan", "credit_card")
LOAN_PAYMENT_PATTERN = re.compile(r"Плат[её]ж по кредиту №\s*(\S+)")
# How far back instalments are read: a year and a bit is enough to see the cadence.
HISTORY_LOOKBACK_DAYS = 400


def add_months(day: date, months: int) -> date:
    """The same day `months` later, clamped to the end of a shorter month."""
    month_index = day.month - 1 + months
    year, month = day.year + month_index // 12, month_index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def annuity_payment(*, principal: Decimal, annual_rate_percent: Decimal, months: int) -> Decimal:
    """The equal monthly payment repaying `principal` over `months` at the annual rate, in cents."""
    if months <= 0:
        raise ValueError("months must be positive")
    monthly_rate = Decimal(annual_rate_percent) / Decimal(1200)
    if monthly_rate == 0:
        return (Decimal(principal) / months).quantize(CENT, ROUND_HALF_UP)
    factor = (1 + monthly_rate) ** months
    payment = Decimal(principal) * monthly_rate * factor / (factor - 1)
    return payment.quantize(CENT, ROUND_HALF_UP)


def _schedule(
    *,
    first_date: date,
    payment: Decimal,
    remaining: Decimal,
    annual_rate_percent: Decimal | None,
    count: int,
    skip: int = 0,
) -> list[dict]:
    """Amortise `remaining` with `payment` monthly from `first_date`; rows after `skip` ones."""
    monthly_rate = Decimal(annual_rate_percent or 0) / Decimal(1200)
    rows = []
    index = 0
    while remaining > 0 and len(rows) < count:
        interest = (remaining * monthly_rate).quantize(CENT, ROUND_HALF_UP)
        amount = min(payment, remaining + interest)
        principal_part = amount - interest
        if principal_part <= 0:
            break  # the payment does not even cover the interest: no honest schedule
        remaining = remaining - principal_part
        if index >= skip:
            rows.append(
                {
                    "date": add_months(first_date, index).isoformat(),
                    "amount": str(amount),
                    "principal": str(principal_part),
                    "interest": str(interest),
                    "remaining": str(remaining),
                }
            )
        index += 1
    return rows


@dataclass(frozen=True, slots=True)
class PaymentPlan:
    source: str
    monthly_payment: Decimal | None
    next_date: date | None
    next_amount: Decimal | None
    schedule: list[dict]


NO_PLAN = PaymentPlan("", None, None, None, [])


def term_months_of(agreement: ProductAgreement) -> int | None:
    """The term: as stored, else from the dates (the bank sets end = start + 30 days × months)."""
    if agreement.term_months:
        return agreement.term_months
    if agreement.start_date and agreement.end_date:
        months = round((agreement.end_date - agreement.start_date).days / 30)
        return months or None
    return None


def _remaining_of(agreement: ProductAgreement) -> Decimal | None:
    if agreement.remaining_balance is not None:
        return abs(agreement.remaining_balance)
    if agreement.linked_account_id and agreement.linked_account.current_balance is not None:
        return abs(agreement.linked_account.current_balance)
    return agreement.principal


def plan_from_history(
    agreement: ProductAgreement, monthly_sums: dict[tuple[int, int], Decimal], today: date
) -> PaymentPlan:
    """Monthly payment = the latest complete month's instalments; due the 1st after the last."""
    if not monthly_sums:
        return NO_PLAN
    months = sorted(monthly_sums)
    last = months[-1]
    # The current month may still be filling up (the bank debits over several days).
    basis = months[-2] if len(months) > 1 and last == (today.year, today.month) else last
    monthly = monthly_sums[basis]
    next_date = add_months(date(last[0], last[1], 1), 1)
    remaining = _remaining_of(agreement) or monthly * SCHEDULE_LENGTH
    schedule = _schedule(
        first_date=next_date,
        payment=monthly,
        remaining=remaining,
        annual_rate_percent=agreement.interest_rate,
        count=SCHEDULE_LENGTH,
    )
    return PaymentPlan(NextPaymentSource.HISTORY, monthly, next_date, monthly, schedule)


def plan_from_estimate(agreement: ProductAgreement, today: date) -> PaymentPlan:
    """An annuity on principal, rate and term, first payment a month after the start date."""
    term = term_months_of(agreement)
    if not (agreement.principal and agreement.interest_rate is not None and term):
        return NO_PLAN
    if agreement.start_date is None:
        return NO_PLAN
    principal = Decimal(agreement.principal)
    payment = annuity_payment(
        principal=principal, annual_rate_percent=agreement.interest_rate, months=term
    )
    first_date = add_months(agreement.start_date.astimezone(UTC).date(), 1)
    # Payments already due before today are assumed made; the schedule starts at the next one.
    paid = 0
    while paid < term and add_months(first_date, paid) < today:
        paid += 1
    if paid >= term:
        return PaymentPlan(NextPaymentSource.ESTIMATE, payment, None, None, [])
    schedule = _schedule(
        first_date=first_date,
        payment=payment,
        remaining=principal,
        annual_rate_percent=agreement.interest_rate,
        count=SCHEDULE_LENGTH,
        skip=paid,
    )
    if not schedule:
        return NO_PLAN
    first = schedule[0]
    return PaymentPlan(
        NextPaymentSource.ESTIMATE,
        payment,
        date.fromisoformat(first["date"]),
        Decimal(first["amount"]),
        schedule,
    )


def _instalments_by_agreement(*, user, today: date) -> dict[str, dict[tuple[int, int], Decimal]]:
    since = datetime.combine(today - timedelta(days=HISTORY_LOOKBACK_DAYS), time.min, tzinfo=UTC)
    rows = (
        Transaction.objects.filter(loan_payment_description_q())
        .filter(user=user, booking_date__gte=since, amount__lt=0)
        .exclude(status=TransactionStatus.DECLINED)
        .order_by()
        .values_list("description", "amount", "booking_date")
    )
    sums: dict[str, dict[tuple[int, int], Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    for description, amount, booked_at in rows:
        match = LOAN_PAYMENT_PATTERN.search(description)
        if match:
            booked = booked_at.astimezone(UTC)
            sums[match.group(1).rstrip(".,;")][(booked.year, booked.month)] += -amount
    return sums


def agreement_payments_refresh(*, user, today: date | None = None) -> int:
    """Recompute monthly payment, next payment and schedule of the user's active debts."""
    today = today or timezone.now().astimezone(UTC).date()
    agreements = list(
        ProductAgreement.objects.filter(
            user=user, status="active", product_type__in=DEBT_PRODUCT_TYPES
        ).select_related("linked_account")
    )
    if not agreements:
        return 0
    instalments = _instalments_by_agreement(user=user, today=today)
    for agreement in agreements:
        plan = plan_from_history(agreement, instalments.get(agreement.agreement_id, {}), today)
        if not plan.source:
            plan = plan_from_estimate(agreement, today)
        agreement.next_payment_source = plan.source
        agreement.monthly_payment = plan.monthly_payment
        agreement.next_payment_date = plan.next_date
        agreement.next_payment_amount = plan.next_amount
        agreement.payment_schedule = plan.schedule
    with db_transaction.atomic():
        ProductAgreement.objects.bulk_update(
            agreements,
            [
                "next_payment_source",
                "monthly_payment",
                "next_payment_date",
                "next_payment_amount",
                "payment_schedule",
            ],
        )
    return len(agreements)
