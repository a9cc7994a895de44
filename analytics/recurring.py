"""Recurring flows: salary, side income, loan instalments, bills and subscriptions.

Transactions of one bounded window are grouped by who is on the other side and by amount; within a
group, debits or credits a few days apart are one occurrence (the sandbox pays a loan instalment as
five equal debits on days 1-5 of each month). Regular intervals between occurrences give the
cadence; the median occurrence total is the typical amount.
"""

import itertools
import re
import statistics
from calendar import monthrange
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal

LOAN_PAYMENT_RE = re.compile(r"платеж\s+по\s+кредиту\s*№\s*(\S+)", re.IGNORECASE)
SALARY_RE = re.compile(r"зарплат|salary|аванс", re.IGNORECASE)
BILL_RE = re.compile(r"жкх|аренд|rent|utilit|коммунал", re.IGNORECASE)
BILL_CATEGORIES = frozenset({"utilities"})
# Debits or credits within this many days of the first one are one occurrence (days 1-5 -> 4).
OCCURRENCE_SPAN_DAYS = 4
# Amounts within this ratio of the smallest in a group are the same flow (rent varies +-10%).
AMOUNT_BAND_RATIO = Decimal("1.25")
# (name, nominal days, lowest and highest median interval, tolerance for one interval)
CADENCES = (
    ("weekly", 7, 6, 8, 2),
    ("biweekly", 14, 12, 16, 3),
    ("monthly", 30, 25, 35, 5),
)
MAX_OUTFLOW_AMOUNT_VARIATION = 0.2
MIN_REGULARITY = 0.6
_DIGITS_RE = re.compile(r"\d+")
_SPACES_RE = re.compile(r"\s+")


@dataclass(frozen=True)
class TxRecord:
    """The part of a transaction that recurring detection reads; `amount` is signed."""

    day: date
    amount: Decimal
    description: str = ""
    counterparty: str = ""
    merchant_name: str = ""
    category_code: str = ""


@dataclass
class Occurrence:
    start: date
    total: Decimal
    count: int


@dataclass
class RecurringFlow:
    """One detected recurring income or outflow with its cadence and next expected date."""

    key: str
    direction: str  # "income" | "outflow"
    kind: str  # salary | income | loan_instalment | bill | subscription
    label: str
    cadence: str
    cadence_days: int
    typical_amount: Decimal
    typical_day: int | None
    occurrences: int
    first_date: date
    last_date: date
    next_expected_date: date
    confidence: float
    amount_variation: float
    regularity: float
    agreement_id: str = ""
    pending_amount: Decimal = Decimal("0")  # unpaid rest of an occurrence in progress, due today
    expected_count: int = 0
    on_time_count: int = 0
    history: list[Occurrence] = field(default_factory=list, repr=False)

    def monthly_amount(self) -> Decimal:
        """The flow converted to a month (weekly x 52/12, biweekly x 26/12)."""
        factor = {"weekly": Decimal(52) / 12, "biweekly": Decimal(26) / 12}.get(self.cadence, 1)
        return (self.typical_amount * factor).quantize(Decimal("0.01"))

    def events(self, *, start: date, end: date) -> list[tuple[date, Decimal]]:
        """Expected (date, amount) occurrences in [start, end], the pending rest first."""
        result: list[tuple[date, Decimal]] = []
        if self.pending_amount > 0:
            result.append((start, self.pending_amount))
        day = self.next_expected_date
        step = 0
        while day <= end:
            if day >= start:
                result.append((day, self.typical_amount))
            step += 1
            day = _advance(self.next_expected_date, self, step)
        return result

    def as_dict(self) -> dict:
        return {
            "key": self.key,
            "direction": self.direction,
            "kind": self.kind,
            "label": self.label,
            "cadence": self.cadence,
            "typical_amount": self.typical_amount,
            "monthly_amount": self.monthly_amount(),
            "typical_day": self.typical_day,
            "occurrences": self.occurrences,
            "first_date": self.first_date,
            "last_date": self.last_date,
            "next_expected_date": self.next_expected_date,
            "pending_amount": self.pending_amount,
            "confidence": self.confidence,
            "amount_variation": round(self.amount_variation, 3),
            "regularity": round(self.regularity, 3),
            "agreement_id": self.agreement_id,
            "expected_count": self.expected_count,
            "on_time_count": self.on_time_count,
        }


def _month_day(year: int, month: int, day: int) -> date:
    while month > 12:
        year, month = year + 1, month - 12
    return date(year, month, min(day, monthrange(year, month)[1]))


def _advance(anchor: date, flow: RecurringFlow, steps: int) -> date:
    if flow.cadence == "monthly":
        day = flow.typical_day or anchor.day
        return _month_day(anchor.year, anchor.month + steps, day)
    return anchor + timedelta(days=flow.cadence_days * steps)


def _normalise(text: str) -> str:
    text = _DIGITS_RE.sub("#", text.strip().lower())
    return _SPACES_RE.sub(" ", text)


def _group_name(tx: TxRecord) -> tuple[str, str]:
    """(grouping name, agreement id) for one transaction."""
    match = LOAN_PAYMENT_RE.search(tx.description or "")
    if match:
        return f"loan:{match.group(1)}", match.group(1)
    name = tx.counterparty or tx.merchant_name or tx.description or "?"
    return _normalise(name) + "|" + _normalise(tx.description or ""), ""


def _amount_bands(txs: list[TxRecord]) -> list[list[TxRecord]]:
    """Split a group into bands of similar amounts (a rent and a one-off repair are different)."""
    bands: list[list[TxRecord]] = []
    for tx in sorted(txs, key=lambda t: abs(t.amount)):
        if bands and abs(tx.amount) <= abs(bands[-1][0].amount) * AMOUNT_BAND_RATIO:
            bands[-1].append(tx)
        else:
            bands.append([tx])
    return bands


def _occurrences(txs: list[TxRecord]) -> list[Occurrence]:
    result: list[Occurrence] = []
    for tx in sorted(txs, key=lambda t: t.day):
        if result and (tx.day - result[-1].start).days <= OCCURRENCE_SPAN_DAYS:
            result[-1].total += abs(tx.amount)
            result[-1].count += 1
        else:
            result.append(Occurrence(start=tx.day, total=abs(tx.amount), count=1))
    return result


def _cadence(intervals: list[int]) -> tuple[str, int, int] | None:
    median = statistics.median(intervals)
    for name, nominal, low, high, tolerance in CADENCES:
        if low <= median <= high:
            return name, nominal, tolerance
    return None


def _variation(values: list[Decimal]) -> float:
    mean = statistics.fmean(float(v) for v in values)
    if len(values) < 2 or mean == 0:
        return 0.0
    return statistics.pstdev(float(v) for v in values) / mean


def _kind(direction: str, agreement_id: str, sample: TxRecord) -> str:
    text = f"{sample.description} {sample.counterparty}"
    if direction == "income":
        return "salary" if sample.category_code == "salary" or SALARY_RE.search(text) else "income"
    if agreement_id or sample.category_code == "loan_payments":
        return "loan_instalment"
    if sample.category_code in BILL_CATEGORIES or BILL_RE.search(text):
        return "bill"
    return "subscription"


def _flow_from(
    key: str, agreement_id: str, txs: list[TxRecord], *, today: date
) -> RecurringFlow | None:
    occurrences = _occurrences(txs)
    direction = "income" if txs[0].amount > 0 else "outflow"
    is_loan = bool(agreement_id)
    intervals = [(b.start - a.start).days for a, b in itertools.pairwise(occurrences)]
    # One month of a loan is enough: its description says it is an instalment.
    cadence = _cadence(intervals) if intervals else (("monthly", 30, 5) if is_loan else None)
    if cadence is None:
        return None
    name, nominal, tolerance = cadence
    regularity = (
        sum(abs(i - nominal) <= tolerance for i in intervals) / len(intervals) if intervals else 0.5
    )
    if not is_loan and (len(occurrences) < (2 if direction == "income" else 3)):
        return None
    if not is_loan and regularity < MIN_REGULARITY:
        return None
    # An occurrence still in progress (today inside its span) is not a full one yet.
    last = occurrences[-1]
    in_progress = (today - last.start).days <= OCCURRENCE_SPAN_DAYS and len(occurrences) > 1
    complete = occurrences[:-1] if in_progress else occurrences
    typical = statistics.median([o.total for o in complete]).quantize(Decimal("0.01"))
    variation = _variation([o.total for o in complete])
    if direction == "outflow" and not is_loan and variation > MAX_OUTFLOW_AMOUNT_VARIATION:
        return None
    typical_day = (
        int(statistics.median([o.start.day for o in occurrences])) if name == "monthly" else None
    )
    sample = txs[-1]
    label = sample.description or sample.counterparty or sample.merchant_name or key
    if sample.counterparty and direction == "income":
        label = f"{sample.description} ({sample.counterparty})".strip()
    stability = max(0.0, 1 - variation / 0.5)
    volume = min(1.0, (len(occurrences) - 1) / 3)
    confidence = round(0.4 * regularity + 0.3 * stability + 0.3 * volume, 2)
    flow = RecurringFlow(
        key=key,
        direction=direction,
        kind=_kind(direction, agreement_id, sample),
        label=label,
        cadence=name,
        cadence_days=nominal,
        typical_amount=typical,
        typical_day=typical_day,
        occurrences=len(occurrences),
        first_date=occurrences[0].start,
        last_date=last.start,
        next_expected_date=last.start,
        confidence=confidence,
        amount_variation=variation,
        regularity=regularity,
        agreement_id=agreement_id,
        history=occurrences,
    )
    if direction == "outflow" and in_progress and last.total < typical:
        flow.pending_amount = typical - last.total
    step = 1
    flow.next_expected_date = _advance(last.start, flow, step)
    while flow.next_expected_date < today:
        # Overdue: assume this one was missed and the next comes on the following cycle.
        step += 1
        flow.next_expected_date = _advance(last.start, flow, step)
    _count_on_time(flow, today=today, tolerance=tolerance)
    return flow


def _count_on_time(flow: RecurringFlow, *, today: date, tolerance: int) -> None:
    """For monthly outflows: how many due months since the first had a payment near its day."""
    if flow.direction != "outflow" or flow.cadence != "monthly" or flow.typical_day is None:
        return
    paid = {(o.start.year, o.start.month): o.start for o in flow.history}
    year, month = flow.first_date.year, flow.first_date.month
    while True:
        due = _month_day(year, month, flow.typical_day)
        if due + timedelta(days=tolerance) >= today:
            break
        flow.expected_count += 1
        started = paid.get((year, month))
        if started is not None and abs((started - due).days) <= tolerance:
            flow.on_time_count += 1
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)


def recurring_detect(*, transactions: list[TxRecord], today: date) -> list[RecurringFlow]:
    """Recurring incomes and outflows among the given (own-transfer-free) transactions."""
    groups: dict[tuple[str, str, str], list[TxRecord]] = {}
    for tx in transactions:
        if tx.amount == 0 or tx.day > today:
            continue
        name, agreement_id = _group_name(tx)
        direction = "income" if tx.amount > 0 else "outflow"
        groups.setdefault((direction, name, agreement_id), []).append(tx)
    flows: list[RecurringFlow] = []
    for (direction, name, agreement_id), txs in groups.items():
        bands = [txs] if agreement_id else _amount_bands(txs)
        for index, band in enumerate(bands):
            key = f"{direction}:{name}" + (f"#{index}" if len(bands) > 1 else "")
            flow = _flow_from(key, agreement_id, band, today=today)
            if flow is not None:
                flows.append(flow)
    flows.sort(key=lambda f: (f.direction, f.next_expected_date, -f.typical_amount))
    return flows
