"""The snapshot pipeline: read bounded windows, detect recurring flows, compute STS, health, debt
and forecast, and store them as one AnalyticsSnapshot with every input in its breakdown."""

import statistics
from calendar import monthrange
from datetime import date, timedelta
from decimal import Decimal

from django.conf import settings
from django.utils import timezone

from analytics import selectors
from analytics.debt import debt_compute
from analytics.forecast import forecast_compute
from analytics.health import (
    health_score,
    indicator_bills_on_time,
    indicator_credit_utilisation,
    indicator_debt_service,
    indicator_income_regularity,
    indicator_liquid_buffer,
    indicator_regular_saving,
    indicator_savings_trend,
    indicator_spend_vs_income,
)
from analytics.models import AnalyticsSnapshot
from analytics.recurring import RecurringFlow, TxRecord, recurring_detect
from analytics.sts import (
    HORIZON_CAP_DAYS,
    ExpectedIncome,
    Obligation,
    reserve_compute,
    sts_compute,
)
from analytics.summary import jsonable, summary_build
from banking.models import SAVINGS_ACCOUNT_TYPES, SPENDABLE_ACCOUNT_TYPES

BASE_CURRENCY = "RUB"
HISTORY_MONTHS = 6  # complete months read; with the current one the window is at most ~186 days
SAVINGS_TREND_DAYS = 90
VARIABLE_SPENDING_DAYS = 90
MIN_INCOME_CONFIDENCE = 0.5
CENT = Decimal("0.01")
ZERO = Decimal("0")


def _month_start(day: date, back: int = 0) -> date:
    year, month = day.year, day.month - back
    while month < 1:
        year, month = year - 1, month + 12
    return date(year, month, 1)


def _add_months(day: date, months: int) -> date:
    year, month = day.year, day.month + months
    while month > 12:
        year, month = year + 1, month - 12
    return date(year, month, min(day.day, monthrange(year, month)[1]))


def _monthly_figures(aggregates: list[dict], *, today: date) -> list[dict]:
    """Income, spending and essential spending of each complete month with data, oldest first."""
    current = _month_start(today)
    months: dict[date, dict] = {}
    for row in aggregates:
        if row["currency"] != BASE_CURRENCY:
            continue
        month = _month_start(row["date"])
        if month >= current:
            continue
        bucket = months.setdefault(month, {"month": month, "income": ZERO, "spending": ZERO})
        bucket.setdefault("essential", ZERO)
        bucket["income"] += row["income"]
        bucket["spending"] += row["spending"]
        if row["category__is_essential"]:
            bucket["essential"] += row["spending"]
    return [months[m] for m in sorted(months)]


def _spending_since(aggregates: list[dict], *, since: date, essential_only: bool) -> Decimal:
    return sum(
        (
            r["spending"]
            for r in aggregates
            if r["currency"] == BASE_CURRENCY
            and r["date"] > since
            and (r["category__is_essential"] or not essential_only)
        ),
        ZERO,
    )


def _obligations(
    *, today: date, end: date, agreements, outflow_flows: list[RecurringFlow]
) -> list[Obligation]:
    """Loan payments from the agreements, then recurring outflows not already covered by one."""
    result: list[Obligation] = []
    scheduled: set[str] = set()
    for agreement in agreements:
        if agreement.product_type != "loan" or agreement.next_payment_date is None:
            continue
        amount = agreement.next_payment_amount or agreement.monthly_payment
        if not amount:
            continue
        scheduled.add(agreement.agreement_id)
        label = agreement.product_name or f"Loan {agreement.agreement_id}"
        months = 0
        day = agreement.next_payment_date
        while max(day, today) <= end:
            result.append(
                Obligation(
                    day=max(day, today),
                    amount=amount if months == 0 else (agreement.monthly_payment or amount),
                    label=label,
                    source="agreement",
                    reference=agreement.agreement_id,
                )
            )
            months += 1
            day = _add_months(agreement.next_payment_date, months)
    for flow in outflow_flows:
        if flow.agreement_id and flow.agreement_id in scheduled:
            # The agreement schedules whole months from the 1st after the last one seen; the
            # unpaid rest of an instalment still being debited (days 1-5) is due now.
            if flow.pending_amount > 0:
                result.append(
                    Obligation(
                        day=today,
                        amount=flow.pending_amount,
                        label=f"{flow.label} (rest of this month)",
                        source="recurring",
                        reference=flow.key,
                    )
                )
            continue
        for day, amount in flow.events(start=today, end=end):
            result.append(
                Obligation(
                    day=day, amount=amount, label=flow.label, source="recurring", reference=flow.key
                )
            )
    return sorted(result, key=lambda o: (o.day, o.label))


def _next_income(flows: list[RecurringFlow]) -> ExpectedIncome | None:
    reliable = [f for f in flows if f.confidence >= MIN_INCOME_CONFIDENCE]
    if not reliable:
        return None
    first_day = min(f.next_expected_date for f in reliable)
    same_day = [f for f in reliable if f.next_expected_date == first_day]
    return ExpectedIncome(
        day=first_day,
        amount=sum((f.typical_amount for f in same_day), ZERO),
        label=", ".join(f.label for f in same_day),
        confidence=min(f.confidence for f in same_day),
    )


def _savings_figures(*, today: date, accounts, transactions: list[dict]) -> dict:
    savings = [a for a in accounts if a.account_type in SAVINGS_ACCOUNT_TYPES]
    savings_ids = {a.id for a in savings}
    now = sum((a.current_balance or ZERO for a in savings), ZERO)
    since = today - timedelta(days=SAVINGS_TREND_DAYS)
    net_recent = ZERO
    saved_months: dict[date, Decimal] = {}
    for tx in transactions:
        if tx["account_id"] not in savings_ids:
            continue
        if tx["booking_date"].date() > since:
            net_recent += tx["amount"]
        if tx["is_own_transfer"]:
            month = _month_start(tx["booking_date"].date())
            saved_months[month] = saved_months.get(month, ZERO) + tx["amount"]
    window_months = [_month_start(today, back) for back in range(HISTORY_MONTHS, 0, -1)]
    opened = [a.opening_date for a in savings if a.opening_date]
    if opened:
        window_months = [m for m in window_months if m >= _month_start(min(opened))]
    return {
        "has_savings": bool(savings),
        "now": now,
        "before": now - net_recent,
        "months": len(window_months) if savings else 0,
        "months_saved": sum(1 for m in window_months if saved_months.get(m, ZERO) > 0),
    }


def snapshot_compute(*, user, today: date | None = None) -> AnalyticsSnapshot:
    """Compute every figure from bounded windows of the user's data and store a snapshot."""
    today = today or timezone.localdate()
    now = timezone.now()
    window_start = _month_start(today, HISTORY_MONTHS)
    transactions = selectors.transaction_window_list(user=user, since=window_start, until=today)
    aggregates = selectors.aggregate_window_list(user=user, since=window_start, until=today)
    accounts = selectors.account_active_list(user=user)
    agreements = selectors.agreement_debt_list(user=user)
    connections = selectors.connection_list(user=user)

    records = [
        TxRecord(
            day=tx["booking_date"].date(),
            amount=tx["amount"],
            description=tx["description"],
            counterparty=tx["counterparty"],
            merchant_name=tx["merchant_name"],
            category_code=tx["category__code"] or "",
        )
        for tx in transactions
        if not tx["is_own_transfer"] and tx["currency"] == BASE_CURRENCY
    ]
    flows = recurring_detect(transactions=records, today=today)
    incomes = [f for f in flows if f.direction == "income"]
    outflows = [f for f in flows if f.direction == "outflow"]
    loan_flows = [f for f in outflows if f.kind == "loan_instalment"]

    spendable = [
        a
        for a in accounts
        if a.account_type in SPENDABLE_ACCOUNT_TYPES
        and a.currency == BASE_CURRENCY
        and a.current_balance is not None
    ]
    balances = [
        {
            "account_id": a.id,
            "bank_code": a.bank_code,
            "label": a.nickname or a.masked_number or a.bank_account_id,
            "amount": a.current_balance,
            "as_of": a.balance_as_of,
        }
        for a in spendable
    ]
    months = _monthly_figures(aggregates, today=today)
    recent = months[-3:]
    if recent:
        essential_monthly = statistics.median([m["essential"] for m in recent]).quantize(CENT)
    else:
        # No complete month yet: the trailing 30 days stand in for one.
        essential_monthly = _spending_since(
            aggregates, since=today - timedelta(days=30), essential_only=True
        )
    reserve = reserve_compute(
        essential_monthly=essential_monthly,
        floor=Decimal(settings.STS_RESERVE_FLOOR),
        share=Decimal(settings.STS_RESERVE_SHARE),
    )
    fresh = [c.last_success_at for c in connections if c.last_success_at is not None]
    data_fresh_as_of = min(fresh) if fresh else None
    stale_hours = (now - data_fresh_as_of).total_seconds() / 3600 if data_fresh_as_of else None
    horizon_end = today + timedelta(days=HORIZON_CAP_DAYS)
    obligations = _obligations(
        today=today, end=horizon_end, agreements=agreements, outflow_flows=outflows
    )
    next_income = _next_income(incomes)
    sts = sts_compute(
        today=today,
        balances=balances,
        obligations=obligations,
        income=next_income,
        reserve=reserve,
        stale_hours=stale_hours,
    )
    debt = debt_compute(
        today=today, accounts=accounts, agreements=agreements, loan_flows=loan_flows
    )

    # Health indicators.
    income_3m = sum((m["income"] for m in recent), ZERO)
    spending_3m = sum((m["spending"] for m in recent), ZERO)
    monthly_income = (income_3m / len(recent)).quantize(CENT) if recent else ZERO
    savings = _savings_figures(today=today, accounts=accounts, transactions=transactions)
    liquid_types = SPENDABLE_ACCOUNT_TYPES | SAVINGS_ACCOUNT_TYPES
    liquid = sum(
        (
            a.current_balance or ZERO
            for a in accounts
            if a.currency == BASE_CURRENCY and a.account_type in liquid_types
        ),
        ZERO,
    )
    monthly_outflows = [f for f in outflows if f.cadence == "monthly"]
    indicators = [
        indicator_spend_vs_income(income=income_3m, spending=spending_3m, months=len(recent)),
        indicator_bills_on_time(
            expected=sum(f.expected_count for f in monthly_outflows),
            on_time=sum(f.on_time_count for f in monthly_outflows),
        ),
        indicator_liquid_buffer(liquid=liquid, essential_monthly=essential_monthly),
        indicator_savings_trend(
            savings_now=savings["now"],
            savings_before=savings["before"],
            days=SAVINGS_TREND_DAYS,
            has_savings=savings["has_savings"],
        ),
        indicator_debt_service(
            monthly_debt_service=debt["monthly_debt_service"], monthly_income=monthly_income
        ),
        indicator_credit_utilisation(card_debt=debt["card_debt"], card_limit=debt["card_limit"]),
        indicator_income_regularity(monthly_incomes=[m["income"] for m in months]),
        indicator_regular_saving(months_saved=savings["months_saved"], months=savings["months"]),
    ]
    health = health_score(indicators)

    # Forecast: everyday spending = last 90 days' spending less what recurring outflows explain.
    spending_90d = _spending_since(
        aggregates, since=today - timedelta(days=VARIABLE_SPENDING_DAYS), essential_only=False
    )
    recurring_90d = sum((f.monthly_amount() for f in outflows), ZERO) * 3
    daily_variable = (max(ZERO, spending_90d - recurring_90d) / VARIABLE_SPENDING_DAYS).quantize(
        CENT
    )
    forecast_end = today + timedelta(days=29)
    events = [
        {"date": o.day, "amount": -o.amount, "kind": "obligation", "label": o.label}
        for o in obligations
        if o.day <= forecast_end
    ]
    for flow in incomes:
        if flow.confidence < MIN_INCOME_CONFIDENCE:
            continue
        for day, amount in flow.events(start=today, end=forecast_end):
            events.append({"date": day, "amount": amount, "kind": "income", "label": flow.label})
    forecast = forecast_compute(
        today=today,
        start_balance=sts["spendable_balance"],
        events=events,
        daily_variable_spending=daily_variable,
    )

    breakdown = {
        "version": 1,
        "state": "ready",
        "today": today,
        "currency": BASE_CURRENCY,
        "window": {"since": window_start, "until": today},
        "sts": sts,
        "health": health,
        "debt": debt,
        "forecast": forecast,
        "recurring": [f.as_dict() for f in flows],
        "monthly": months,
        "freshness": {
            "data_fresh_as_of": data_fresh_as_of,
            "stale_hours": round(stale_hours, 1) if stale_hours is not None else None,
            "banks": [
                {"bank_code": c.bank_code, "status": c.status, "last_success_at": c.last_success_at}
                for c in connections
            ],
        },
    }
    summary = summary_build(user=user, today=today, sts=sts, health=health, debt=debt)
    next_payment = debt["next_payment"] or {}
    return AnalyticsSnapshot.objects.create(
        user=user,
        currency=BASE_CURRENCY,
        sts_amount=sts["sts_period"],
        sts_daily=sts["sts_daily"],
        sts_status=sts["status"],
        health_score=health["score"],
        health_band=health["band"],
        total_debt=debt["total_debt"],
        monthly_debt_service=debt["monthly_debt_service"],
        next_payment_date=next_payment.get("date"),
        next_payment_amount=next_payment.get("amount"),
        breakdown=jsonable(breakdown),
        summary=summary,
        data_fresh_as_of=data_fresh_as_of,
    )
