"""Save-to-Spend: what can be spent until the next main income without missing an obligation.

Terms as ../shared/ANALYTICS-TRUTH.md defines them:
- Horizon H = days from today up to, not including, the day the next main income is expected
  (at least 1); 31 when none is expected within 31 days or the income is overdue / the data stale.
- The spendable balance (checking and card accounts) is simulated day by day over days 0..H-1:
  every obligation due before the income (an overdue one once, today) is subtracted on its day,
  and so is the client's usual everyday spending (today only the part of the day still to come).
- Low point = the lowest end-of-day balance of that path.
- STS for the period = max(0, low point - reserve); per day = STS / H.
So STS never exceeds spendable balance - obligations - reserve.
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
    source: str  # "agreement" | "recurring" | "history"
    reference: str = ""
    kind: str = "loan_instalment"  # loan_instalment | bill
    bank_code: str = ""
    agreement_id: str = ""
    debt_id: int | None = None
    schedule_source: str = ""  # the agreement's next_payment_source (history / estimate)
    overdue: bool = False

    def as_dict(self) -> dict:
        return {
            "date": self.day,
            "amount": self.amount,
            "label": self.label,
            "source": self.source,
            "reference": self.reference,
            "kind": self.kind,
            "bank_code": self.bank_code,
            "agreement_id": self.agreement_id,
            "debt_id": self.debt_id,
            "schedule_source": self.schedule_source,
            "overdue": self.overdue,
        }


@dataclass(frozen=True)
class ExpectedIncome:
    """The next expected income the horizon runs to."""

    day: date
    amount: Decimal
    label: str
    confidence: float
    cadence: str = ""


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
    *,
    income: ExpectedIncome | None,
    stale_hours: float | None,
    has_balances: bool,
    reasons: list[dict],
) -> dict:
    factors = []
    value = 1.0

    def factor(name: str, multiplier: float) -> None:
        nonlocal value
        factors.append({"factor": name, "multiplier": multiplier})
        value *= multiplier

    if not has_balances:
        factor("no_spendable_accounts", 0.3)
    if stale_hours is None:
        factor("never_synced", 0.3)
    elif stale_hours > 72:
        factor("data_older_than_3_days", 0.5)
    elif stale_hours > 24:
        factor("data_older_than_1_day", 0.8)
    for reason in reasons:
        factor(reason["code"], reason.get("multiplier", 0.5))
    if income is None:
        if not any(r["code"] in ASSUMED_NO_INCOME for r in reasons):
            factor("no_income_detected", 0.5)
    elif income.cadence == "irregular":
        factor("income_irregular", min(0.7, income.confidence))
    elif income.confidence < 0.8:
        factor("income_irregular", income.confidence)
    value = round(value, 2)
    level = "high" if value >= 0.75 else "medium" if value >= 0.4 else "low"
    return {"value": value, "level": level, "factors": factors}


# Reasons under which STS assumes no income until it arrives.
ASSUMED_NO_INCOME = frozenset({"income_overdue", "no_recent_rows"})


def sts_compute(
    *,
    today: date,
    balances: list[dict],
    obligations: list[Obligation],
    income: ExpectedIncome | None,
    reserve: dict,
    stale_hours: float | None = None,
    everyday: dict | None = None,
    reasons: list[dict] | None = None,
) -> dict:
    """Every term of Save-to-Spend: balances, obligations, everyday spending, horizon, daily
    path, low point, STS. `everyday` = {"daily", "today_share", "basis"}; `reasons` = why the
    figure is less sure (each {"code", "message"}), e.g. an overdue income."""
    reasons = list(reasons or [])
    everyday = everyday or {"daily": Decimal("0"), "today_share": 1.0, "basis": "none"}
    daily_spend = Decimal(everyday["daily"])
    today_spend = (daily_spend * Decimal(str(everyday.get("today_share", 1.0)))).quantize(CENT)
    start_balance = sum((b["amount"] for b in balances), Decimal("0"))
    if income is not None and (income.day - today).days <= HORIZON_CAP_DAYS:
        horizon = max(1, (income.day - today).days)
        income_in_horizon = True
    else:
        horizon, income_in_horizon = HORIZON_CAP_DAYS, False
    income_day = today + timedelta(days=horizon) if income_in_horizon else None
    horizon_end = today + timedelta(days=horizon)  # exclusive: the income day

    # Obligations due before the income; an overdue one counts once, today.
    counted: list[Obligation] = []
    seen_overdue: set[str] = set()
    for o in sorted(obligations, key=lambda o: (o.day, o.label)):
        if o.day < today:
            key = o.reference or o.label
            if key in seen_overdue:
                continue
            seen_overdue.add(key)
        if max(o.day, today) < horizon_end:
            counted.append(o)
    balance = start_balance
    path = []
    low_amount, low_day = None, today
    for offset in range(horizon):
        day = today + timedelta(days=offset)
        due = sum((o.amount for o in counted if max(o.day, today) == day), Decimal("0"))
        spend = today_spend if offset == 0 else daily_spend
        balance = balance - due - spend
        path.append(
            {
                "date": day,
                "outflow": due + spend,
                "obligations": due,
                "everyday": spend,
                "inflow": Decimal("0"),
                "balance": balance,
            }
        )
        if low_amount is None or balance < low_amount:
            low_amount, low_day = balance, day
    if income_day is not None:
        # Shown for the picture, not part of the low point: the income arrives that day.
        path.append(
            {
                "date": income_day,
                "outflow": Decimal("0"),
                "obligations": Decimal("0"),
                "everyday": Decimal("0"),
                "inflow": income.amount,
                "balance": balance + income.amount,
            }
        )
    low_amount = start_balance if low_amount is None else low_amount
    margin = low_amount - reserve["amount"]
    sts_period = max(Decimal("0"), margin)
    sts_daily = (sts_period / horizon).quantize(CENT, rounding=ROUND_DOWN)
    if margin < 0:
        status = "shortfall"
    elif not income_in_horizon:
        status = "no_income"
    else:
        status = "ok"
    everyday_total = today_spend + daily_spend * (horizon - 1)
    return {
        "status": status,
        "sts_period": sts_period,
        "sts_daily": sts_daily,
        "shortfall": -margin if margin < 0 else Decimal("0"),
        "horizon_days": horizon,
        "days_left": horizon,
        "horizon_end": horizon_end,
        "income_detected": income is not None,
        "income_assumed": income_in_horizon,
        "next_income": (
            {
                "date": income.day,
                "amount": income.amount,
                "label": income.label,
                "confidence": income.confidence,
                "cadence": income.cadence,
                "within_horizon": income_in_horizon,
            }
            if income is not None
            else None
        ),
        "spendable_balance": start_balance,
        "balances": balances,
        "obligations": [o.as_dict() for o in counted],
        "obligations_total": sum((o.amount for o in counted), Decimal("0")),
        "everyday_spending": {
            **everyday,
            "daily": daily_spend,
            "today": today_spend,
            "total": everyday_total,
        },
        "reserve": reserve,
        "low_point": {"amount": low_amount, "date": low_day},
        "formula": "STS = max(0, low point - reserve); per day = STS / horizon days; low point "
        "= min over days 0..H-1 of balance - obligations due so far - everyday spending so far",
        "path": path,
        "reasons": reasons,
        "confidence": _confidence(
            income=income if income_in_horizon else None,
            stale_hours=stale_hours,
            has_balances=bool(balances),
            reasons=reasons,
        ),
        "explanation": _explain(status, horizon, income_in_horizon, reasons),
    }


def _explain(status: str, horizon: int, has_income: bool, reasons: list[dict]) -> str:
    why = " ".join(r["message"] for r in reasons)
    if not has_income:
        text = (
            f"No main income expected within the horizon: the next {horizon} days are covered "
            "from current balances alone, after obligations and everyday spending."
        )
        return f"{text} {why}".strip()
    if status == "shortfall":
        text = (
            "Obligations and everyday spending before the next income exceed the balance "
            "above the reserve."
        )
        return f"{text} {why}".strip()
    text = (
        f"Spendable until the next income in {horizon} days after obligations, everyday "
        "spending and the reserve."
    )
    return f"{text} {why}".strip()
