"""The snapshot pipeline: read bounded windows, detect recurring flows, compute STS, health, debt
and forecast, and store them as one AnalyticsSnapshot with every input in its breakdown.

Days and months are the user's local ones (`User.time_zone`, default Europe/Moscow). One list of
obligations (loan instalment parts from the agreements' schedules, instalments of loans whose
agreement is not served, recurring bills) feeds Save-to-Spend, the forecast and the one next
payment every endpoint shows.
"""

import statistics
from calendar import monthrange
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.conf import settings
from django.utils import timezone

from analytics import selectors
from analytics.debt import debt_compute
from analytics.forecast import forecast_compute
from analytics.health import (
    health_score,
    indicator_bills_on_time,
    indicator_credit_utilisation,
    indicator_debt_load,
    indicator_debt_service,
    indicator_income_regularity,
    indicator_liquid_buffer,
    indicator_regular_saving,
    indicator_savings_trend,
    indicator_spend_vs_income,
)
from analytics.history import history_labels_apply, history_state
from analytics.models import AnalyticsSnapshot
from analytics.recurring import (
    LOAN_PAYMENT_RE,
    TRAVEL_RE,
    RecurringFlow,
    TxRecord,
    _group_name,
    recurring_detect,
)
from analytics.sts import (
    ExpectedIncome,
    Obligation,
    reserve_compute,
    sts_compute,
)
from analytics.summary import SNAPSHOT_VERSION, jsonable, summary_build, summary_json_text
from banking.models import SAVINGS_ACCOUNT_TYPES, SPENDABLE_ACCOUNT_TYPES

BASE_CURRENCY = "RUB"
HISTORY_MONTHS = 6  # complete months read; with the current one the window is at most ~186 days
SAVINGS_TREND_DAYS = 90
VARIABLE_SPENDING_DAYS = 90
MIN_INCOME_CONFIDENCE = 0.5
OBLIGATION_DAYS = 60  # obligations listed ahead (the horizon uses at most 31 of them)
NEXT_PAYMENT_WEEK_DAYS = 7
# A month with data on fewer days than this (the first, partial month of history) is not averaged.
PARTIAL_MONTH_SLACK_DAYS = 3
EVERYDAY_MONTHS = 3
STOPPED_PAYMENT_STATUSES = frozenset({"stopped", "repaid"})
DEFAULT_TIME_ZONE = "Europe/Moscow"
CENT = Decimal("0.01")
UPPER_BOUND_Z = Decimal("1.645")  # one-sided 95 % for the everyday spending rate
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
    while month < 1:
        year, month = year - 1, month + 12
    return date(year, month, min(day.day, monthrange(year, month)[1]))


def user_zone(user) -> ZoneInfo:
    """The user's time zone (C's `User.time_zone`), Europe/Moscow when unset or unknown."""
    try:
        from fintrack.core.localtime import user_zone as zone_of_user

        return zone_of_user(user)
    except ImportError:  # pragma: no cover - before the local-time module exists
        return ZoneInfo(getattr(user, "time_zone", "") or DEFAULT_TIME_ZONE)


def _local_day(moment: datetime, zone: ZoneInfo) -> date:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(zone).date()


def _first_complete_month(first_day: date | None, window_start: date) -> date | None:
    """The first month whose data is whole: the month history starts in counts only when the
    first row is within its first few days (or the window cut it, not the history)."""
    if first_day is None:
        return None
    month = _month_start(first_day)
    if first_day <= window_start or (first_day - month).days < PARTIAL_MONTH_SLACK_DAYS:
        return month
    return _add_months(month, 1)


def _monthly_figures(
    aggregates: list[selectors.AggregateDayRow], *, today: date, first_complete: date | None = None
) -> list[dict]:
    """Income, spending and essential spending of each complete month with data, oldest first
    (the current month and a partial first month of history left out)."""
    current = _month_start(today)
    months: dict[date, dict] = {}
    for row in aggregates:
        if row["currency"] != BASE_CURRENCY:
            continue
        month = _month_start(row["date"])
        if month >= current or (first_complete is not None and month < first_complete):
            continue
        bucket = months.setdefault(month, {"month": month, "income": ZERO, "spending": ZERO})
        bucket.setdefault("essential", ZERO)
        bucket["income"] += row["income"]
        bucket["spending"] += row["spending"]
        if row["category__is_essential"]:
            bucket["essential"] += row["spending"]
    return [months[m] for m in sorted(months)]


def _spending_since(
    aggregates: list[selectors.AggregateDayRow], *, since: date, essential_only: bool
) -> Decimal:
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


def everyday_spending_estimate(
    *,
    records: list[TxRecord],
    recurring_names: dict[str, list[tuple[Decimal, Decimal]]],
    today: date,
    first_complete: date | None,
    first_day: date | None,
    last_complete: date | None = None,
) -> dict:
    """Usual everyday spending per day: card and other day-to-day debits, without own
    transfers, loan instalments, recurring bills and travel-like debits, over the last three
    complete local months: the higher of the costliest month's rate and the upper 95% bound of
    the daily mean. With no complete month yet: the days seen so far (at least 14) average."""
    current = _month_start(today)
    per_month: dict[date, Decimal] = {}
    per_day: dict[date, Decimal] = {}
    since_first = ZERO
    for tx in records:
        if tx.amount >= 0 or tx.day > today:
            continue
        text = f"{tx.description} {tx.category_code}"
        if LOAN_PAYMENT_RE.search(tx.description or "") or TRAVEL_RE.search(text):
            continue
        if tx.category_code in ("travel", "loan_payments"):
            continue
        band = recurring_names.get(_group_name(tx)[0])
        if band and any(low <= -tx.amount <= high for low, high in band):
            continue
        month = _month_start(tx.day)
        if tx.day < today:
            since_first += -tx.amount
        if month >= current or (first_complete is not None and month < first_complete):
            continue
        if last_complete is not None and month > last_complete:
            continue
        per_month[month] = per_month.get(month, ZERO) + (-tx.amount)
        per_day[tx.day] = per_day.get(tx.day, ZERO) + (-tx.amount)
    months = sorted(per_month)[-EVERYDAY_MONTHS:]
    if months:
        daily_by_month = [
            (per_month[m] / monthrange(m.year, m.month)[1]).quantize(CENT) for m in months
        ]
        # Cautious: the highest of the last complete months, so STS never counts on a
        # thriftier month than the client has had lately, and never below the upper bound
        # of the daily mean (one-sided 95 %: mean + 1.645 standard errors over those days):
        # three months of purchases say the usual rate only to within about a tenth.
        days = [
            per_day.get(m + timedelta(days=offset), ZERO)
            for m in months
            for offset in range(monthrange(m.year, m.month)[1])
        ]
        mean = sum(days, ZERO) / len(days)
        spread = Decimal(statistics.pstdev(float(d) for d in days))
        upper = (mean + UPPER_BOUND_Z * spread / Decimal(len(days)).sqrt()).quantize(CENT)
        daily = max(max(daily_by_month), upper)
        return {
            "daily": daily,
            "basis": "upper_bound_of_complete_months",
            "median_daily": statistics.median(daily_by_month).quantize(CENT),
            "highest_month_daily": max(daily_by_month),
            "upper_bound_daily": upper,
            "months": [
                {"month": m, "total": per_month[m], "per_day": d}
                for m, d in zip(months, daily_by_month, strict=True)
            ],
            "explanation": (
                f"Everyday spending per day of the last {len(months)} complete local months "
                "(card and day-to-day debits; own transfers, loan instalments, recurring bills "
                "and travel left out): the higher of the costliest month's daily rate and the "
                "upper 95% bound of the daily mean."
            ),
        }
    days = (today - first_day).days if first_day else 0
    if days >= 14:
        daily = (since_first / days).quantize(CENT)
        return {
            "daily": daily,
            "basis": "days_seen",
            "months": [],
            "explanation": f"No complete month yet: everyday spending of the {days} days seen.",
        }
    return {
        "daily": ZERO,
        "basis": "not_enough_history",
        "months": [],
        "explanation": "Fewer than 14 days of history: everyday spending is not estimated.",
    }


def _schedule_rows(agreement, *, today: date) -> list[tuple[date, Decimal]]:
    """Upcoming instalment parts of an agreement's schedule (dates >= today)."""
    rows = []
    for row in agreement.payment_schedule or []:
        try:
            day = date.fromisoformat(str(row.get("date"))[:10])
            amount = Decimal(str(row.get("amount")))
        except (TypeError, ValueError, ArithmeticError, AttributeError):
            continue
        if day >= today and amount > 0:
            rows.append((day, amount))
    if not rows and not agreement.payment_schedule and agreement.next_payment_date:
        # No schedule stored: the agreement's own next payment, when it is still ahead.
        amount = agreement.next_payment_amount or agreement.monthly_payment
        if agreement.next_payment_date >= today and amount:
            rows.append((agreement.next_payment_date, amount))
    return sorted(rows)


def obligations_build(
    *, today: date, end: date, agreements, outflow_flows: list[RecurringFlow]
) -> tuple[list[Obligation], list[dict]]:
    """Every obligation due in [today, end]: instalment parts of the served loans (their
    schedule, plus parts of an instalment in progress the schedule does not hold), instalments
    of loans whose agreement is not served (from the detected flow, parts included) and
    recurring bills. An overdue part counts once, today. Returns (obligations, excluded)."""
    result: list[Obligation] = []
    excluded: list[dict] = []
    flows_by_agreement = {f.agreement_id: f for f in outflow_flows if f.agreement_id}
    served: set[str] = set()
    for agreement in agreements:
        if agreement.product_type != "loan":
            continue
        served.add(agreement.agreement_id)
        label = agreement.product_name or f"Loan {agreement.agreement_id}"
        status = getattr(agreement, "payment_status", "") or ""
        if status in STOPPED_PAYMENT_STATUSES:
            excluded.append(
                {
                    "agreement_id": agreement.agreement_id,
                    "bank_code": agreement.bank_code,
                    "label": label,
                    "payment_status": status,
                    "reason": getattr(agreement, "payment_status_note", "")
                    or f"Instalments {status}: not counted as an obligation.",
                }
            )
            continue
        common = {
            "label": label,
            "reference": agreement.agreement_id,
            "kind": "loan_instalment",
            "bank_code": agreement.bank_code,
            "agreement_id": agreement.agreement_id,
            "debt_id": agreement.id,
            "schedule_source": agreement.next_payment_source or "",
        }
        rows = _schedule_rows(agreement, today=today)
        first_row = rows[0][0] if rows else None
        flow = flows_by_agreement.get(agreement.agreement_id)
        if flow is not None and not rows and not agreement.payment_schedule and flow.active:
            # No schedule at all: the instalments seen in the history, parts on their days.
            rows = flow.events(start=today, end=end)
        elif flow is not None:
            # Parts of an instalment in progress that the schedule does not hold yet (it
            # starts later): on their days; an overdue rest once, today.
            overdue = sum((a for d, a in flow.pending_parts if d < today), ZERO)
            pending = [(today, overdue)] if overdue > 0 else []
            pending += [(d, a) for d, a in flow.pending_parts if d >= today]
            for day, amount in pending:
                if first_row is None or day < first_row:
                    result.append(
                        Obligation(
                            day=day,
                            amount=amount,
                            source="history",
                            overdue=day == today and overdue > 0,
                            **common,
                        )
                    )
        for day, amount in rows:
            if day <= end:
                result.append(Obligation(day=day, amount=amount, source="agreement", **common))
    for flow in outflow_flows:
        if not flow.active:
            continue
        if flow.agreement_id and flow.agreement_id in served:
            continue
        is_loan = flow.kind == "loan_instalment"
        for day, amount in flow.events(start=today, end=end):
            result.append(
                Obligation(
                    day=day,
                    amount=amount,
                    label=flow.label,
                    source="history" if is_loan else "recurring",
                    reference=flow.agreement_id or flow.key,
                    kind="loan_instalment" if is_loan else "bill",
                    bank_code=flow.bank_code,
                    agreement_id=flow.agreement_id,
                )
            )
    return sorted(result, key=lambda o: (o.day, o.label)), excluded


def next_payment_build(*, today: date, obligations: list[Obligation]) -> dict | None:
    """THE next payment: the nearest due date >= today, everything due that day, the total of
    the next 7 days and the items behind it."""
    upcoming = [o for o in obligations if o.day >= today]
    if not upcoming:
        return None
    first = min(o.day for o in upcoming)
    items = [o for o in upcoming if o.day == first]
    week_end = today + timedelta(days=NEXT_PAYMENT_WEEK_DAYS - 1)
    week = [o for o in upcoming if o.day <= week_end]
    head = max(items, key=lambda o: (o.kind == "loan_instalment", o.amount))
    return {
        "date": first,
        "amount": sum((o.amount for o in items), ZERO),
        "due_in_7_days": sum((o.amount for o in week), ZERO),
        "due_in_7_days_until": week_end,
        "items": [
            {
                "label": o.label,
                "amount": o.amount,
                "date": o.day,
                "kind": o.kind,
                "source": o.source,
                "schedule_source": o.schedule_source,
                "bank_code": o.bank_code,
                "agreement_id": o.agreement_id,
                "debt_id": o.debt_id,
            }
            for o in items
        ],
        # The main item, for screens that show one line (compatible with the old shape).
        "agreement_id": head.agreement_id,
        "debt_id": head.debt_id,
        "name": head.label,
        "bank_code": head.bank_code,
        "overdue": False,
        "source": head.schedule_source or head.source,
    }


def _main_income(
    *, flows: list[RecurringFlow], today: date, newest_row_day: date | None
) -> tuple[ExpectedIncome | None, list[dict], list[RecurringFlow]]:
    """The next main income (salary, pension, business; never interest, refunds or own
    transfers) and the reasons STS should assume none until it arrives."""
    reasons: list[dict] = []
    main = [
        f for f in flows if f.is_main_income and f.active and f.confidence >= MIN_INCOME_CONFIDENCE
    ]
    if not main:
        return None, reasons, main
    on_time = [f for f in main if not f.overdue]
    for flow in main:
        if flow.overdue:
            reasons.append(
                {
                    "code": "income_overdue",
                    "multiplier": 0.5,
                    "message": f"{flow.label} was expected on {flow.due_after_last.isoformat()} "
                    f"and has not arrived ({flow.tolerance_days} days' grace passed): no income "
                    "is assumed until it does.",
                    "stream": flow.key,
                }
            )
    if newest_row_day is not None:
        gap = (today - newest_row_day).days
        usual = min(f.cadence_days + f.tolerance_days for f in main)
        if gap > usual:
            reasons.append(
                {
                    "code": "no_recent_rows",
                    "multiplier": 0.5,
                    "message": f"No bank has shown a transaction for {gap} days, longer than the "
                    f"income's usual gap of {usual} days: the history may have stopped, so no "
                    "income is assumed until it arrives.",
                    "days": gap,
                }
            )
            return None, reasons, main
    if not on_time:
        return None, reasons, main

    def counted_on(flow: RecurringFlow) -> date:
        # An irregular income is counted on from its reliable date (recurring._irregular_flow).
        # One due today and not in yet is expected today (the horizon is then today alone).
        return max(flow.reliable_date or flow.next_expected_date, today)

    first_day = min(counted_on(f) for f in on_time)
    same_day = [f for f in on_time if counted_on(f) == first_day]
    for flow in same_day:
        if flow.cadence == "irregular":
            reasons.append(
                {
                    "code": "income_irregular",
                    "multiplier": 0.8,
                    "message": f"{flow.label} arrives irregularly (every {flow.cadence_days} days "
                    f"on median, last on {flow.last_date.isoformat()}): expected about "
                    f"{flow.next_expected_date.isoformat()}, counted on from "
                    f"{first_day.isoformat()} (the upper quartile of the gaps as long as the "
                    "wait so far).",
                    "stream": flow.key,
                }
            )
    return (
        ExpectedIncome(
            day=first_day,
            amount=sum((f.typical_amount for f in same_day), ZERO),
            label=", ".join(f.label for f in same_day),
            confidence=min(f.confidence for f in same_day),
            cadence=",".join(sorted({f.cadence for f in same_day})),
        ),
        reasons,
        main,
    )


def savings_build(*, accounts, deposits) -> dict:
    """Deposits (their principal = the invested sum) and savings accounts not behind a deposit:
    savings, shown apart from spendable money and never added to it."""
    items = []
    linked = set()
    for deposit in deposits:
        account = deposit.linked_account if deposit.linked_account_id else None
        if account is not None and account.account_type in SAVINGS_ACCOUNT_TYPES:
            linked.add(account.id)
        amount = deposit.principal
        source = "agreement.principal"
        if amount is None and account is not None and account.account_type in SAVINGS_ACCOUNT_TYPES:
            amount, source = account.current_balance, "deposit_account_balance"
        items.append(
            {
                "kind": "deposit",
                "bank_code": deposit.bank_code,
                "agreement_id": deposit.agreement_id,
                "name": deposit.product_name,
                "amount": amount or ZERO,
                "interest_rate": deposit.interest_rate,
                "start_date": deposit.start_date,
                "source": source,
            }
        )
    for account in accounts:
        if account.account_type not in SAVINGS_ACCOUNT_TYPES or account.id in linked:
            continue
        if account.currency != BASE_CURRENCY:
            continue
        items.append(
            {
                "kind": "savings_account",
                "bank_code": account.bank_code,
                "agreement_id": "",
                "account_id": account.id,
                "name": account.nickname or account.masked_number,
                "amount": account.current_balance or ZERO,
                "interest_rate": None,
                "start_date": account.opening_date,
                "source": "account_balance",
            }
        )
    return {
        "total": sum((i["amount"] for i in items), ZERO),
        "items": items,
        "note": "Deposits count once, at their invested sum; savings are not spendable money.",
    }


def _savings_figures(
    *,
    today: date,
    accounts,
    transactions: list[selectors.TransactionWindowRow],
    savings: dict,
    zone: ZoneInfo,
) -> dict:
    savings_accounts = [a for a in accounts if a.account_type in SAVINGS_ACCOUNT_TYPES]
    savings_ids = {a.id for a in savings_accounts}
    now = savings["total"]
    since = today - timedelta(days=SAVINGS_TREND_DAYS)
    net_recent = ZERO
    saved_months: dict[date, Decimal] = {}
    for tx in transactions:
        if tx["account_id"] not in savings_ids:
            continue
        day = _local_day(tx["booking_date"], zone)
        if day > since:
            net_recent += tx["amount"]
        if tx["is_own_transfer"]:
            month = _month_start(day)
            saved_months[month] = saved_months.get(month, ZERO) + tx["amount"]
    opened = [a.opening_date for a in savings_accounts if a.opening_date]
    for item in savings["items"]:
        start = item.get("start_date")
        if item["kind"] != "deposit" or start is None:
            continue
        start_day = _local_day(start, zone) if isinstance(start, datetime) else start
        opened.append(start_day)
        if start_day > since:
            net_recent += item["amount"]  # a deposit opened in the window is money saved
        month = _month_start(start_day)
        saved_months[month] = saved_months.get(month, ZERO) + item["amount"]
    window_months = [_month_start(today, back) for back in range(HISTORY_MONTHS, 0, -1)]
    if opened:
        window_months = [m for m in window_months if m >= _month_start(min(opened))]
    has_savings = bool(savings["items"])
    return {
        "has_savings": has_savings,
        "now": now,
        "before": now - net_recent,
        "months": len(window_months) if has_savings else 0,
        "months_saved": sum(1 for m in window_months if saved_months.get(m, ZERO) > 0),
    }


def snapshot_compute(*, user, today: date | None = None) -> AnalyticsSnapshot:
    """Compute every figure from bounded windows of the user's data and store a snapshot."""
    zone = user_zone(user)
    now = timezone.now()
    local_now = now.astimezone(zone)
    real_today = local_now.date()
    today = today or real_today
    # Today's everyday spending still to come: the rest of the local day (all of it for a
    # day that is not the real today).
    elapsed = (local_now - local_now.replace(hour=0, minute=0, second=0, microsecond=0)).seconds
    today_share = 1 - elapsed / 86400 if today == real_today else 1.0
    window_start = _month_start(today, HISTORY_MONTHS)
    transactions = selectors.transaction_window_list(
        user=user, since=window_start, until=today, zone=zone
    )
    aggregates = selectors.aggregate_window_list(user=user, since=window_start, until=today)
    accounts = selectors.account_active_list(user=user)
    agreements = selectors.agreement_debt_list(user=user)
    deposits = selectors.agreement_deposit_list(user=user)
    connections = selectors.connection_list(user=user)
    newest_at = selectors.transaction_newest_at(user=user)
    newest_row_day = _local_day(newest_at, zone) if newest_at else None

    records = [
        TxRecord(
            day=_local_day(tx["booking_date"], zone),
            amount=tx["amount"],
            description=tx["description"],
            counterparty=tx["counterparty"],
            merchant_name=tx["merchant_name"],
            category_code=tx["category__code"] or "",
            bank_code=tx.get("bank_code") or "",
        )
        for tx in transactions
        if not tx["is_own_transfer"] and tx["currency"] == BASE_CURRENCY
    ]
    first_day = min((r.day for r in records), default=None)
    first_complete = _first_complete_month(first_day, window_start)
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
    months = _monthly_figures(aggregates, today=today, first_complete=first_complete)
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
    obligations, obligations_excluded = obligations_build(
        today=today,
        end=today + timedelta(days=OBLIGATION_DAYS),
        agreements=agreements,
        outflow_flows=outflows,
    )
    next_payment = next_payment_build(today=today, obligations=obligations)
    next_income, reasons, main_flows = _main_income(
        flows=incomes, today=today, newest_row_day=newest_row_day
    )
    # Debits of a recurring bill (its merchant, its amount give or take 5 %) are not everyday.
    recurring_names: dict[str, list[tuple[Decimal, Decimal]]] = {}
    for flow in outflows:
        part = flow.typical_amount / max(1, flow.parts)
        recurring_names.setdefault(flow.key.split("#")[0].split(":", 1)[1], []).append(
            (part * Decimal("0.95"), flow.typical_amount * Decimal("1.05"))
        )
    # A month whose rows stop before its last few days (a frozen history) is not a whole one.
    last_complete = None
    if newest_row_day is not None:
        month_end = _add_months(_month_start(newest_row_day), 1) - timedelta(days=1)
        last_complete = _month_start(newest_row_day)
        if (month_end - newest_row_day).days >= PARTIAL_MONTH_SLACK_DAYS:
            last_complete = _add_months(last_complete, -1)
    everyday = everyday_spending_estimate(
        records=records,
        recurring_names=recurring_names,
        today=today,
        first_complete=first_complete,
        first_day=first_day,
        last_complete=last_complete,
    )
    sts = sts_compute(
        today=today,
        balances=balances,
        obligations=obligations,
        income=next_income,
        reserve=reserve,
        stale_hours=stale_hours,
        everyday={**everyday, "today_share": round(today_share, 4)},
        reasons=reasons,
    )
    sts["obligations_excluded"] = obligations_excluded
    sts["main_income_streams"] = [
        {
            "key": f.key,
            "label": f.label,
            "kind": f.kind,
            "cadence": f.cadence,
            "cadence_days": f.cadence_days,
            "typical_amount": f.typical_amount,
            "last_date": f.last_date,
            "next_expected_date": f.next_expected_date,
            "overdue": f.overdue,
        }
        for f in main_flows
    ]
    debt = debt_compute(
        today=today, accounts=accounts, agreements=agreements, loan_flows=loan_flows
    )
    savings_total = savings_build(accounts=accounts, deposits=deposits)

    # Health indicators.
    income_3m = sum((m["income"] for m in recent), ZERO)
    spending_3m = sum((m["spending"] for m in recent), ZERO)
    monthly_income = (income_3m / len(recent)).quantize(CENT) if recent else ZERO
    savings = _savings_figures(
        today=today,
        accounts=accounts,
        transactions=transactions,
        savings=savings_total,
        zone=zone,
    )
    spendable_total = sum((b["amount"] for b in balances), ZERO)
    liquid = spendable_total + savings_total["total"]
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
        indicator_debt_load(
            total_debt=debt["total_debt"],
            annual_income=monthly_income * 12,
            liquid_assets=liquid,
        ),
    ]
    health = health_score(indicators)

    # Forecast: two paths from one list of events, with the same everyday spending as STS.
    forecast_end = today + timedelta(days=29)
    events = [
        {"date": o.day, "amount": -o.amount, "kind": "obligation", "label": o.label}
        for o in obligations
        if o.day <= forecast_end
    ]
    income_events = []
    for flow in main_flows:
        if flow.overdue:
            continue
        for day, amount in flow.events(start=today, end=forecast_end):
            income_events.append(
                {"date": day, "amount": amount, "kind": "income", "label": flow.label}
            )
    forecast = forecast_compute(
        today=today,
        start_balance=sts["spendable_balance"],
        events=events,
        income_events=income_events,
        daily_variable_spending=everyday["daily"],
        today_share=Decimal(str(round(today_share, 4))),
    )

    breakdown = {
        "version": SNAPSHOT_VERSION,
        "state": "ready",
        "today": today,
        "time_zone": str(zone),
        "currency": BASE_CURRENCY,
        "window": {"since": window_start, "until": today, "first_complete_month": first_complete},
        "sts": sts,
        "next_payment": next_payment,
        "obligations": [o.as_dict() for o in obligations],
        "savings": savings_total,
        "health": health,
        "debt": debt,
        "forecast": forecast,
        "recurring": [f.as_dict() for f in flows],
        "monthly": months,
        "freshness": {
            "data_fresh_as_of": data_fresh_as_of,
            "stale_hours": round(stale_hours, 1) if stale_hours is not None else None,
            "newest_transaction_at": newest_at,
            "days_since_newest_transaction": (today - newest_row_day).days
            if newest_row_day
            else None,
            "reasons": reasons,
            "banks": [
                {"bank_code": c.bank_code, "status": c.status, "last_success_at": c.last_success_at}
                for c in connections
            ],
        },
    }
    summary = summary_build(
        user=user,
        today=today,
        sts=sts,
        health=health,
        debt=debt,
        next_payment=next_payment,
        savings=savings_total,
        currency=BASE_CURRENCY,
    )
    # Whether every bank's history is stored; while one loads, its figures say what they rest on.
    breakdown = jsonable(breakdown)
    history_labels_apply(
        history=history_state(accounts=accounts, connections=connections, zone=zone),
        today=today,
        window_start=window_start,
        summary=summary,
        breakdown=breakdown,
    )
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
        next_payment_date=(next_payment or {}).get("date"),
        next_payment_amount=(next_payment or {}).get("amount"),
        breakdown=breakdown,
        summary=summary,
        # The dashboard serves this text as it is (analytics.dashboard), never re-rendered.
        summary_json=summary_json_text(summary),
        summary_json_version=summary.get("version"),
        data_fresh_as_of=data_fresh_as_of,
    )
