"""The ground truth of a live-style client's money, from the generator's own model.

Terms as ../shared/ANALYTICS-TRUTH.md defines them. Everything here is read from the persona
(`sandbox.personas`) and the very rows the generator produces (`sandbox.live.day_records`, future
days included), never from FinTrack's code. Money is a string with two decimals, days are the
client's local calendar days (the persona's time zone).
"""

from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.conf import settings

from sandbox import live
from sandbox.generator import DataKey, Record, to_us
from sandbox.personas import Persona, mean_purchase
from sandbox.render import money

SCHEDULED_DAYS = 60
HORIZON_CAP_DAYS = 31
MAIN_INCOME = live.MAIN_INCOME_KINDS
SCHEDULED_KINDS = MAIN_INCOME | {"interest", "loan_instalment", "bill", "own_transfer"}
OBLIGATION_KINDS = frozenset({"loan_instalment", "bill"})
# Essential spending for the reserve rule: everyday kinds and bill kinds that cannot be skipped.
ESSENTIAL_EVERYDAY = frozenset({"grocery", "pharmacy", "transport"})
ESSENTIAL_BILLS = frozenset({"utilities", "telecom", "rent"})


def _accounts(key: DataKey, who: Persona):
    """(bank, account) of every spendable (checking) account of the client."""
    for bank in who.banks:
        for account in live.bank_layout(key, bank).accounts:
            if account.subtype == "Checking":
                yield bank, account


def _local(us: int, zone: ZoneInfo) -> date:
    return datetime.fromtimestamp(us / 1_000_000, UTC).astimezone(zone).date()


def _served_rows(key: DataKey, who: Persona, now: datetime):
    """(bank, record) of every row the banks serve at `now`."""
    for bank, account in _accounts(key, who):
        history = live.history(key, account, now)
        for served in history.slice(0, len(history)):
            yield bank, served.record


def _future_rows(key: DataKey, who: Persona, now: datetime, days: int):
    """(bank, record) the client's life will produce after `now` over `days` days: a frozen
    client's life goes on although the banks stopped showing it."""
    now_us = to_us(now)
    first = now.astimezone(UTC).date()
    for bank, account in _accounts(key, who):
        for offset in range(days + 1):
            for record in live.day_records(
                key, bank, account.index, first + timedelta(offset), quiet=False
            ):
                if record.booked_us > now_us:
                    yield bank, record


def usual_daily_spending(key: DataKey, who: Persona) -> int:
    """The generator's expected everyday card spending per day over all accounts, kopecks."""
    total = 0.0
    for bank, account in _accounts(key, who):
        per_day, mix = live._spending_rate(key, who, bank, account.index)
        total += per_day * mean_purchase(mix)
        spending = who.spending_at(bank) if account.index == 0 else None
        if spending is not None and spending.weekly is not None:
            total += (spending.weekly[2] + spending.weekly[3] - 1) / 2 / 7
    return round(total)


def essential_monthly(key: DataKey, who: Persona) -> int:
    """Expected monthly essential spending: groceries, pharmacy, transport and essential bills."""
    total = 0.0
    for bank, account in _accounts(key, who):
        per_day, mix = live._spending_rate(key, who, bank, account.index)
        for kind, share, low, high in mix:
            if kind in ESSENTIAL_EVERYDAY:
                total += per_day * share * (low + high - 1) / 2 * 30.4375
    total += sum(bill.amount for bill in who.bills if bill.kind in ESSENTIAL_BILLS)
    return round(total)


def reserve(essential: int) -> dict:
    """FinTrack's documented reserve rule (README, STS_RESERVE_*): max(floor, share × essential)."""
    floor = Decimal(settings.STS_RESERVE_FLOOR)
    share = Decimal(settings.STS_RESERVE_SHARE)
    from_share = (share * Decimal(essential) / 100).quantize(Decimal("0.01"))
    amount = max(floor, from_share)
    return {
        "amount": f"{amount:.2f}",
        "floor": f"{floor:.2f}",
        "share": str(share),
        "essential_monthly": money(essential),
    }


def _event(bank: str, record: Record, zone: ZoneInfo) -> dict:
    return {
        "date": _local(record.booked_us, zone).isoformat(),
        "amount": money(record.amount),
        "direction": "in" if record.is_credit else "out",
        "kind": record.kind,
        "bank": bank,
        "reference": record.reference,
        "description": record.information,
    }


def client_money_truth(client_id: str, *, now: datetime | None = None) -> dict:
    """Everything ANALYTICS-TRUTH.md asks of the sandbox for one client, at the sandbox clock."""
    from sandbox import clock
    from sandbox.volume import data_key

    state = clock.state()
    now = now or state.now
    key = data_key(client_id, state.anchor)
    who = live.persona_of(key)
    zone = ZoneInfo(who.timezone)
    today = now.astimezone(zone).date()
    today_utc = now.astimezone(UTC).date()

    served = list(_served_rows(key, who, now))
    last_payment: dict[tuple[str, str], date] = {}  # (bank, agreement id): ids repeat across banks
    monthly: dict[str, dict] = defaultdict(lambda: defaultdict(int))
    seen_days: dict[str, set] = defaultdict(set)
    for bank, record in served:
        day = _local(record.booked_us, zone)
        month = monthly[f"{day:%Y-%m}"]
        seen_days[f"{day:%Y-%m}"].add(day)
        if record.kind in ("loan_instalment", "loan_repayment"):
            previous = last_payment.get((bank, record.reference))
            last_payment[bank, record.reference] = max(previous or day, day)
        if record.kind == "own_transfer":
            month["own_transfers_in" if record.is_credit else "own_transfers_out"] += record.amount
            continue
        if record.is_credit:
            month["income"] += record.amount
            group = "main_income" if record.kind in MAIN_INCOME else record.kind
            month[f"income_{group}" if group != "main_income" else group] += record.amount
        else:
            month["spending"] += record.amount
            month[f"spending_{record.kind}"] += record.amount

    future = sorted(
        _future_rows(key, who, now, SCHEDULED_DAYS + 1), key=lambda item: item[1].booked_us
    )
    scheduled = [
        _event(bank, record, zone)
        for bank, record in future
        if record.kind in SCHEDULED_KINDS
        and _local(record.booked_us, zone) < today + timedelta(days=SCHEDULED_DAYS)
    ]
    main_dates = [
        date.fromisoformat(event["date"])
        for event in scheduled
        if event["kind"] in MAIN_INCOME and event["direction"] == "in"
    ]
    next_main = min(main_dates) if main_dates else None
    if next_main is not None and (next_main - today).days <= HORIZON_CAP_DAYS:
        horizon_days = max(1, (next_main - today).days)
    else:
        horizon_days = HORIZON_CAP_DAYS
    horizon_end = today + timedelta(days=horizon_days)

    balances = {
        f"{bank}:{account.account_id}": live.balance(key, account, now)
        for bank, account in _accounts(key, who)
    }
    spendable = sum(balances.values())
    daily = usual_daily_spending(key, who)
    flows: dict[date, int] = defaultdict(int)
    for event in scheduled:
        day = date.fromisoformat(event["date"])
        if day < horizon_end and event["kind"] not in MAIN_INCOME:
            flows[day] += Decimal(event["amount"]) * 100 * (1 if event["direction"] == "in" else -1)
    local_now = now.astimezone(zone)
    elapsed = (local_now - local_now.replace(hour=0, minute=0, second=0, microsecond=0)).seconds
    running, low, low_day = spendable, None, today
    for offset in range(horizon_days):
        day = today + timedelta(days=offset)
        spend = daily * (1 - elapsed / 86400) if offset == 0 else daily
        running = running + int(flows[day]) - round(spend)
        if low is None or running < low:
            low, low_day = running, day
    essential = essential_monthly(key, who)
    reserve_rule = reserve(essential)
    safe = max(Decimal(0), Decimal(low) / 100 - Decimal(reserve_rule["amount"]))

    loans = []
    for loan in who.loans:
        outstanding = live.loan_outstanding(loan, today_utc)
        made = live.loan_payments_made(loan, today_utc)
        repaid = (
            loan.repaid_on is not None and loan.repaid_on < today_utc
        ) or made >= loan.term_months
        knowable = loan.link == "loan_account"
        loans.append(
            {
                "bank": loan.bank,
                "agreement_id": loan.agreement_id,
                "product_name": loan.product_name,
                "principal": money(loan.principal),
                "rate": loan.rate,
                "start_date": loan.start.date().isoformat(),
                "term_months": loan.term_months,
                "monthly_instalment": money(loan.instalment),
                "instalment_parts": loan.parts,
                "paid_from_bank": loan.paid_from,
                "payments_made": made,
                "outstanding": money(outstanding),
                "knowable_from_api": knowable,
                "basis": "loan account balance"
                if knowable
                else "not shown by the API: estimate from principal, start, rate and instalments",
                "agreement_served": loan.served,
                "bank_status": loan.status,
                "status": "repaid" if repaid else "active",
                "repaid_on": loan.repaid_on.isoformat() if loan.repaid_on else None,
                "last_payment_date": last_payment[loan.paid_from, loan.agreement_id].isoformat()
                if (loan.paid_from, loan.agreement_id) in last_payment
                else None,
            }
        )
    incomes = []
    for income in who.incomes:
        upcoming = [e["date"] for e in scheduled if e["reference"] == income.stream]
        incomes.append(
            {
                "stream": income.stream,
                "kind": income.kind,
                "description": income.description,
                "bank": income.bank,
                "main": income.main,
                "cadence": {"days_of_month": list(income.days)}
                if income.gap is None
                else {"every_days": list(income.gap)},
                "amount_range": [money(income.low), money(income.high)],
                "next_dates": upcoming[:3],
            }
        )
    months = sorted(monthly)
    return {
        "client_id": client_id,
        "persona": who.archetype,
        "timezone": who.timezone,
        "city": who.city,
        "now": now.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "today": today.isoformat(),
        "banks": list(who.banks),
        "history_stops_at": (who.quiet_from - timedelta(days=1)).isoformat()
        if who.quiet_from
        else None,
        "loans": loans,
        "debt_outstanding": money(sum(live.loan_outstanding(x, today_utc) for x in who.loans)),
        "credit_cards": [
            {
                "bank": c.bank,
                "agreement_id": c.agreement_id,
                "product_name": c.product_name,
                "limit": money(c.limit),
                "rate": c.rate,
                "used": money(c.used),
                "balance_knowable_from_api": False,
            }
            for c in who.cards
            if c.credit
        ],
        "savings": [
            {
                "bank": d.bank,
                "agreement_id": d.agreement_id,
                "product_name": d.product_name,
                "amount": money(d.amount),
                "rate": d.rate,
                "monthly_interest": money(d.monthly_interest),
            }
            for d in who.deposits
        ],
        "savings_total": money(sum(d.amount for d in who.deposits)),
        "income_streams": incomes,
        "scheduled": scheduled,
        "monthly": {
            month: {
                **{name: money(value) for name, value in sorted(monthly[month].items())},
                "days_with_rows": len(seen_days[month]),
                "complete": month not in (months[0], f"{today:%Y-%m}"),
            }
            for month in months
        },
        "spendable_balances": {name: money(value) for name, value in balances.items()},
        "spendable_balance": money(spendable),
        "usual_daily_spending": money(daily),
        "horizon": {
            "start": today.isoformat(),
            "days": horizon_days,
            "next_main_income": next_main.isoformat() if next_main else None,
        },
        "low_point": {"amount": money(low), "date": low_day.isoformat()},
        "reserve": reserve_rule,
        "safe_to_spend": {
            "period": f"{safe:.2f}",
            "per_day": f"{(safe / horizon_days).quantize(Decimal('0.01')):.2f}",
        },
    }
