"""Save-to-Spend: what can be spent until the next income without missing an obligation.

Horizon H = days until the next expected income, capped at 31. The spendable balance is simulated
day by day over H: obligations due before the income are subtracted on their dates, the income is
added only on its date. STS for the period = the lowest point - reserve; per day = max(0, STS) / H.
"""

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_DOWN, Decimal

HORIZON_CAP_DAYS = 31
CENT = Decimal("0.01")


@dataclass(frozen=True)
class Obligation:
    """A committed outflow: a loan payment or a detected recurring bill."""

    day: date
    amount: Decimal  # positive
    label: str
    source: str  # "agreement" | "recurring"
    reference: str = ""

    def as_dict(self) -> dict:
        return {
            "date": self.day,
            "amount": self.amount,
            "label": self.label,
            "source": self.source,
            "reference": self.reference,
        }


@dataclass(frozen=True)
class ExpectedIncome:
    """The next expected income the horizon runs to."""

    day: date
    amount: Decimal
    label: str
    confidence: float


def reserve_compute(
    *, essential_monthly: Decimal, floor: Decimal, share: Decimal
) -> dict[str, Decimal | str]:
    """Reserve = max(floor, share x typical monthly essential spending), with how it was set."""
    from_share = (share * essential_monthly).quantize(CENT)
    amount, basis = (from_share, "share") if from_share > floor else (floor, "floor")
    return {
        "amount": amount,
        "basis": basis,
        "floor": floor,
        "share": share,
        "essential_monthly": essential_monthly,
        "share_amount": from_share,
    }


def _confidence(
    *, income: ExpectedIncome | None, stale_hours: float | None, has_balances: bool
) -> dict:
    factors = []
    value = 1.0
    if not has_balances:
        factors.append({"factor": "no_spendable_accounts", "multiplier": 0.3})
        value *= 0.3
    if stale_hours is None:
        factors.append({"factor": "never_synced", "multiplier": 0.3})
        value *= 0.3
    elif stale_hours > 72:
        factors.append({"factor": "data_older_than_3_days", "multiplier": 0.5})
        value *= 0.5
    elif stale_hours > 24:
        factors.append({"factor": "data_older_than_1_day", "multiplier": 0.8})
        value *= 0.8
    if income is None:
        factors.append({"factor": "no_income_detected", "multiplier": 0.5})
        value *= 0.5
    elif income.confidence < 0.8:
        factors.append({"factor": "income_irregular", "multiplier": income.confidence})
        value *= income.confidence
    value = round(value, 2)
    level = "high" if value >= 0.75 else "medium" if value >= 0.4 else "low"
    return {"value": value, "level": level, "factors": factors}


def sts_compute(
    *,
    today: date,
    balances: list[dict],
    obligations: list[Obligation],
    income: ExpectedIncome | None,
    reserve: dict,
    stale_hours: float | None = None,
) -> dict:
    """Every term of Save-to-Spend: balances, obligations, horizon, daily path, low point, STS."""
    start_balance = sum((b["amount"] for b in balances), Decimal("0"))
    if income is not None:
        horizon = max(0, min((income.day - today).days, HORIZON_CAP_DAYS))
        income_in_horizon = (income.day - today).days <= HORIZON_CAP_DAYS
    else:
        horizon, income_in_horizon = HORIZON_CAP_DAYS, False
    income_day = income.day if income is not None and income_in_horizon else None
    horizon_end = today + timedelta(days=horizon)

    # Only outflows due before the income count; overdue ones are due today.
    counted = sorted(
        (o for o in obligations if max(o.day, today) <= horizon_end),
        key=lambda o: (o.day, o.label),
    )
    counted = [o for o in counted if income_day is None or max(o.day, today) < income_day]
    balance = start_balance
    path = []
    low_amount, low_day = start_balance, today
    for offset in range(horizon + 1):
        day = today + timedelta(days=offset)
        outflow = sum((o.amount for o in counted if max(o.day, today) == day), Decimal("0"))
        inflow = income.amount if income_day is not None and day == income_day else Decimal("0")
        balance = balance - outflow + inflow
        path.append({"date": day, "outflow": outflow, "inflow": inflow, "balance": balance})
        if balance < low_amount:
            low_amount, low_day = balance, day
    days_left = max(1, horizon)
    sts_period = low_amount - reserve["amount"]
    sts_daily = (max(Decimal("0"), sts_period) / days_left).quantize(CENT, rounding=ROUND_DOWN)
    if sts_period < 0:
        status = "shortfall"
    elif income is None:
        status = "no_income"
    else:
        status = "ok"
    return {
        "status": status,
        "sts_period": sts_period,
        "sts_daily": sts_daily,
        "shortfall": -sts_period if sts_period < 0 else Decimal("0"),
        "horizon_days": horizon,
        "days_left": days_left,
        "horizon_end": horizon_end,
        "income_detected": income is not None,
        "next_income": (
            {
                "date": income.day,
                "amount": income.amount,
                "label": income.label,
                "confidence": income.confidence,
                "within_horizon": income_in_horizon,
            }
            if income is not None
            else None
        ),
        "spendable_balance": start_balance,
        "balances": balances,
        "obligations": [o.as_dict() for o in counted],
        "obligations_total": sum((o.amount for o in counted), Decimal("0")),
        "reserve": reserve,
        "low_point": {"amount": low_amount, "date": low_day},
        "path": path,
        "confidence": _confidence(
            income=income, stale_hours=stale_hours, has_balances=bool(balances)
        ),
        "explanation": _explain(status, horizon, income is not None),
    }


def _explain(status: str, horizon: int, has_income: bool) -> str:
    if not has_income:
        return (
            f"No regular income detected: the next {horizon} days are covered from current "
            "balances alone."
        )
    if status == "shortfall":
        return "Obligations before the next income exceed the balance above the reserve."
    return f"Spendable until the next income in {horizon} days after obligations and the reserve."
