"""Recurring flows: salary, business income, loan instalments, bills and subscriptions.

Transactions of one bounded window are grouped by who is on the other side and by amount; within a
group, debits a few days apart are one occurrence (a loan instalment is paid in k equal parts on
consecutive days, e.g. days 1..k of each month). Regular intervals between occurrences give the
cadence (weekly, biweekly, semimonthly on two days of the month, monthly); the median occurrence
total is the typical amount.

Credits are one occurrence per day. A main-income group that fits no regular cadence but arrives
often (a sole trader's receipts every 1-6 days in varying amounts, odd jobs every few days) is an
"irregular" stream: next expected date = last + median gap, typical amount = median receipt.
Deposit interest, refunds from merchants and cash-back are recurring credits but never main
income. A flow not seen for two cycles has lapsed (`active` False).
"""

import itertools
import math
import re
import statistics
from calendar import monthrange
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal

LOAN_PAYMENT_RE = re.compile(r"платеж\s+по\s+кредиту\s*№\s*(\S+)", re.IGNORECASE)
SALARY_RE = re.compile(r"зарплат|salary|аванс", re.IGNORECASE)
BILL_RE = re.compile(r"жкх|жку|аренд|rent|utilit|коммунал", re.IGNORECASE)
PENSION_RE = re.compile(r"пенси|pension", re.IGNORECASE)
BUSINESS_RE = re.compile(r"бизнес|business|выручк|эквайринг", re.IGNORECASE)
INTEREST_RE = re.compile(r"процент|interest|капитализац", re.IGNORECASE)
CASHBACK_RE = re.compile(r"кешб|кэшб|cashback|cash-back|бонус", re.IGNORECASE)
REFUND_RE = re.compile(r"возврат|refund", re.IGNORECASE)
# A bare "Доход" ("income") credit is the live sandbox's salary / pension / odd-jobs description.
GENERIC_INCOME_RE = re.compile(r"^\s*доход\s*$", re.IGNORECASE)
TRAVEL_RE = re.compile(r"путешеств|travel|авиабилет", re.IGNORECASE)
BILL_CATEGORIES = frozenset({"utilities"})
# Kinds of income that are the client's main income (the STS horizon runs to them).
MAIN_INCOME_KINDS = frozenset({"salary", "pension", "business", "income"})
# Irregular main income: at least this many receipts with a median gap of at most this many days.
IRREGULAR_MIN_OCCURRENCES = 4
IRREGULAR_MAX_MEDIAN_GAP = 20
# A flow not seen for this many cycles (plus the tolerance) has lapsed.
LAPSED_CYCLES = 2
# Debits or credits within this many days of the first one are one occurrence (days 1-5 -> 4).
OCCURRENCE_SPAN_DAYS = 4
# Amounts within this ratio of the smallest in a group are the same flow (rent varies +-10%).
AMOUNT_BAND_RATIO = Decimal("1.25")
# (name, nominal days, lowest and highest median interval, tolerance for one interval)
CADENCES = (
    ("weekly", 7, 6, 8, 2),
    ("biweekly", 14, 12, 16, 3),
    ("semimonthly", 15, 13, 17, 3),
    ("monthly", 30, 25, 35, 5),
)
MAX_OUTFLOW_AMOUNT_VARIATION = 0.2  # rent and utilities (bills by name or category)
# Any other recurring debit (telecom, subscriptions) is a bill only at a stable amount: a
# merchant where one shops about monthly for similar sums (a marketplace, a café) is not one.
MAX_SUBSCRIPTION_AMOUNT_VARIATION = 0.02
MIN_REGULARITY = 0.6
# A subscription is one merchant charging one amount on one cadence: nearly every interval on
# the cadence, and its amount band nearly all of the merchant's debits over the months it spans.
# A café visited weekly for varying sums has bands of similar sums too, and a few of them can
# fall a month apart by chance; that is not a subscription.
SUBSCRIPTION_MIN_REGULARITY = 0.8
SUBSCRIPTION_MIN_SHARE_OF_MERCHANT = 0.8
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
    bank_code: str = ""


@dataclass
class Occurrence:
    start: date
    total: Decimal
    count: int
    end: date | None = None  # the day of its last part


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
    pending_amount: Decimal = Decimal("0")  # unpaid rest of an occurrence in progress
    pending_parts: list[tuple[date, Decimal]] = field(default_factory=list)  # its days
    parts: int = 1  # equal parts an occurrence is paid in, on consecutive days
    month_days: tuple[int, ...] = ()  # semimonthly: the days of the month
    bank_code: str = ""
    # Irregular income: the date STS may count on it (last + the upper quartile of the gaps at
    # least as long as the wait so far), later than the expected one (last + median gap)
    # because half the receipts come later than that.
    reliable_date: date | None = None
    # The first date expected after the last occurrence (next_expected_date skips missed ones).
    due_after_last: date | None = None
    tolerance_days: int = 0
    overdue: bool = False  # due_after_last + tolerance is behind today
    active: bool = True  # False: not seen for two cycles (lapsed)
    expected_count: int = 0
    on_time_count: int = 0
    history: list[Occurrence] = field(default_factory=list, repr=False)

    @property
    def is_main_income(self) -> bool:
        return self.direction == "income" and self.kind in MAIN_INCOME_KINDS

    def monthly_amount(self) -> Decimal:
        """The flow converted to a month (weekly x 52/12, biweekly x 26/12)."""
        factor = {
            "weekly": Decimal(52) / 12,
            "biweekly": Decimal(26) / 12,
            "semimonthly": Decimal(2),
        }.get(self.cadence)
        if factor is None and self.cadence == "irregular":
            factor = Decimal("30.4375") / max(1, self.cadence_days)
        factor = factor or Decimal(1)
        return (self.typical_amount * factor).quantize(Decimal("0.01"))

    def events(self, *, start: date, end: date) -> list[tuple[date, Decimal]]:
        """Expected (date, amount) in [start, end]: the pending parts of an occurrence in
        progress on their days (an overdue rest once, on `start`), then each occurrence split
        into its parts on consecutive days."""
        result: list[tuple[date, Decimal]] = []
        overdue = sum((a for d, a in self.pending_parts if d < start), Decimal("0"))
        if overdue > 0:
            result.append((start, overdue))
        result.extend((d, a) for d, a in self.pending_parts if start <= d <= end)
        parts = max(1, self.parts)
        part = (self.typical_amount / parts).quantize(Decimal("0.01"))
        day = self.next_expected_date
        step = 0
        while day <= end:
            for index in range(parts):
                amount = part if index < parts - 1 else self.typical_amount - part * (parts - 1)
                part_day = day + timedelta(days=index)
                if start <= part_day <= end:
                    result.append((part_day, amount))
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
            "cadence_days": self.cadence_days,
            "typical_amount": self.typical_amount,
            "monthly_amount": self.monthly_amount(),
            "typical_day": self.typical_day,
            "occurrences": self.occurrences,
            "first_date": self.first_date,
            "last_date": self.last_date,
            "next_expected_date": self.next_expected_date,
            "pending_amount": self.pending_amount,
            "pending_parts": [{"date": d, "amount": a} for d, a in self.pending_parts],
            "parts": self.parts,
            "month_days": list(self.month_days),
            "bank_code": self.bank_code,
            "due_after_last": self.due_after_last,
            "reliable_date": self.reliable_date,
            "overdue": self.overdue,
            "active": self.active,
            "main_income": self.is_main_income,
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
    if flow.cadence == "semimonthly" and flow.month_days:
        found, month = [], 0
        while len(found) < steps:
            for day in flow.month_days:
                candidate = _month_day(anchor.year, anchor.month + month, day)
                if candidate > anchor:
                    found.append(candidate)
            month += 1
        return sorted(found)[steps - 1]
    return anchor + timedelta(days=flow.cadence_days * steps)


def _month_day_clusters(days: list[int], spread: int = 3) -> tuple[int, ...] | None:
    """The days of the month occurrences fall on, when they form at most two tight clusters."""
    clusters: list[list[int]] = []
    for day in sorted(days):
        if clusters and day - clusters[-1][0] <= spread:
            clusters[-1].append(day)
        else:
            clusters.append([day])
    if len(clusters) != 2:
        return None
    return tuple(int(statistics.median(c)) for c in clusters)


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


def _occurrences(txs: list[TxRecord], span: int = OCCURRENCE_SPAN_DAYS) -> list[Occurrence]:
    result: list[Occurrence] = []
    for tx in sorted(txs, key=lambda t: t.day):
        if result and (tx.day - result[-1].start).days <= span:
            result[-1].total += abs(tx.amount)
            result[-1].count += 1
            result[-1].end = tx.day
        else:
            result.append(Occurrence(start=tx.day, total=abs(tx.amount), count=1, end=tx.day))
    return result


def _cadence(intervals: list[int], occurrences: list[Occurrence]) -> tuple[str, int, int] | None:
    median = statistics.median(intervals)
    # Two fixed days of the month (the 3rd and the 18th) are semimonthly, not every 14 days.
    if 12 <= median <= 17 and _month_day_clusters([o.start.day for o in occurrences]):
        return "semimonthly", 15, 3
    for name, nominal, low, high, tolerance in CADENCES:
        if name != "semimonthly" and low <= median <= high:
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
        if INTEREST_RE.search(text) or sample.category_code == "interest":
            return "interest"
        if CASHBACK_RE.search(text) or sample.category_code == "cashback":
            return "cashback"
        if REFUND_RE.search(text) or sample.merchant_name:
            return "refund"  # a credit from a merchant is money back, not income
        if BUSINESS_RE.search(text):
            return "business"
        if PENSION_RE.search(text):
            return "pension"
        if (
            sample.category_code == "salary"
            or SALARY_RE.search(text)
            or GENERIC_INCOME_RE.match(sample.description or "")
        ):
            return "salary"
        return "income"
    if agreement_id or sample.category_code == "loan_payments":
        return "loan_instalment"
    if sample.category_code in BILL_CATEGORIES or BILL_RE.search(text):
        return "bill"
    return "subscription"


def _flow_label(key: str, direction: str, sample: TxRecord) -> str:
    label = sample.description or sample.counterparty or sample.merchant_name or key
    if sample.counterparty and direction == "income":
        label = f"{sample.description} ({sample.counterparty})".strip()
    return label


def _finish(flow: RecurringFlow, *, today: date, tolerance: int) -> RecurringFlow:
    """Next expected date (missed cycles skipped), overdue and lapsed flags, on-time counts."""
    last = flow.last_date
    flow.tolerance_days = tolerance
    flow.due_after_last = _advance(last, flow, 1)
    step = 1
    flow.next_expected_date = flow.due_after_last
    while flow.next_expected_date < today:
        # Overdue: assume this one was missed and the next comes on the following cycle.
        step += 1
        flow.next_expected_date = _advance(last, flow, step)
    flow.overdue = flow.due_after_last + timedelta(days=tolerance) < today
    lapse_limit = _advance(last, flow, LAPSED_CYCLES) + timedelta(days=tolerance)
    flow.active = not (lapse_limit < today and not flow.pending_parts)
    _count_on_time(flow, today=today, tolerance=tolerance)
    return flow


def _irregular_flow(key: str, txs: list[TxRecord], *, today: date) -> RecurringFlow | None:
    """A main income arriving every few days in varying amounts (a sole trader's receipts)."""
    occurrences = _occurrences(txs, span=0)
    if len(occurrences) < IRREGULAR_MIN_OCCURRENCES:
        return None
    gaps = [(b.start - a.start).days for a, b in itertools.pairwise(occurrences)]
    median_gap = statistics.median(gaps)
    if median_gap > IRREGULAR_MAX_MEDIAN_GAP:
        return None
    step = max(1, round(median_gap))
    amounts = [o.total for o in occurrences]
    typical = statistics.median(amounts).quantize(Decimal("0.01"))
    variation = _variation(amounts)
    gap_variation = _variation([Decimal(g) for g in gaps])
    volume = min(1.0, len(occurrences) / 12)
    # Irregular by nature: confidence from how many receipts and how even the gaps are.
    confidence = round(0.5 + 0.25 * volume + 0.15 * max(0.0, 1 - gap_variation), 2)
    sample = txs[-1]
    flow = RecurringFlow(
        key=key,
        direction="income",
        kind=_kind("income", "", sample),
        label=_flow_label(key, "income", sample),
        cadence="irregular",
        cadence_days=step,
        typical_amount=typical,
        typical_day=None,
        occurrences=len(occurrences),
        first_date=occurrences[0].start,
        last_date=occurrences[-1].start,
        next_expected_date=occurrences[-1].start,
        confidence=confidence,
        amount_variation=variation,
        regularity=max(0.0, 1 - gap_variation),
        bank_code=sample.bank_code,
        history=occurrences,
    )
    # Late once the longest gap seen has passed.
    _finish(flow, today=today, tolerance=max(gaps) - step)
    # Counted on from the upper quartile of the gaps at least as long as the wait so far: no
    # receipt since the last one rules the shorter ones out (all of them, once past every gap).
    waited = (today - flow.last_date).days
    basis = [g for g in gaps if g >= waited] or gaps
    upper = statistics.quantiles(basis, n=4)[2] if len(basis) >= 2 else basis[0]
    flow.reliable_date = max(
        flow.next_expected_date, flow.last_date + timedelta(days=max(step, math.ceil(upper)))
    )
    return flow


def _flow_from(
    key: str, agreement_id: str, txs: list[TxRecord], *, today: date
) -> RecurringFlow | None:
    direction = "income" if txs[0].amount > 0 else "outflow"
    # Credits are one occurrence a day; debits a few days apart are parts of one payment.
    occurrences = _occurrences(txs, span=OCCURRENCE_SPAN_DAYS if direction == "outflow" else 0)
    is_loan = bool(agreement_id)
    intervals = [(b.start - a.start).days for a, b in itertools.pairwise(occurrences)]
    # One month of a loan is enough: its description says it is an instalment.
    cadence = (
        _cadence(intervals, occurrences) if intervals else (("monthly", 30, 5) if is_loan else None)
    )
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
    in_progress = (
        direction == "outflow"
        and (today - last.start).days <= OCCURRENCE_SPAN_DAYS
        and len(occurrences) > 1
    )
    complete = occurrences[:-1] if in_progress else occurrences
    typical = statistics.median([o.total for o in complete]).quantize(Decimal("0.01"))
    variation = _variation([o.total for o in complete])
    if direction == "outflow" and not is_loan:
        is_bill = _kind(direction, agreement_id, txs[-1]) == "bill"
        limit = MAX_OUTFLOW_AMOUNT_VARIATION if is_bill else MAX_SUBSCRIPTION_AMOUNT_VARIATION
        if variation > limit or len(complete) < 3:
            return None
    typical_day = (
        int(statistics.median([o.start.day for o in occurrences])) if name == "monthly" else None
    )
    month_days = ()
    if name == "semimonthly":
        month_days = _month_day_clusters([o.start.day for o in occurrences]) or ()
    parts = max(1, round(statistics.median([o.count for o in complete]))) if is_loan else 1
    sample = txs[-1]
    stability = max(0.0, 1 - variation / 0.5)
    volume = min(1.0, (len(occurrences) - 1) / 3)
    confidence = round(0.4 * regularity + 0.3 * stability + 0.3 * volume, 2)
    flow = RecurringFlow(
        key=key,
        direction=direction,
        kind=_kind(direction, agreement_id, sample),
        label=_flow_label(key, direction, sample),
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
        parts=parts,
        month_days=month_days,
        bank_code=sample.bank_code,
        history=occurrences,
    )
    if direction == "outflow" and in_progress and last.total < typical:
        flow.pending_amount = typical - last.total
        # The unpaid parts fall on the days after the last part seen, one part a day.
        remaining = max(1, parts - last.count)
        part = (flow.pending_amount / remaining).quantize(Decimal("0.01"))
        for index in range(remaining):
            amount = part if index < remaining - 1 else flow.pending_amount - part * index
            flow.pending_parts.append((last.end + timedelta(days=index + 1), amount))
    return _finish(flow, today=today, tolerance=tolerance)


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


def _stable_subscription(
    flow: RecurringFlow, *, band: list[TxRecord], merchant_debits: list[TxRecord]
) -> bool:
    """Merchant, amount and cadence all stable: the band's amounts already vary at most
    MAX_SUBSCRIPTION_AMOUNT_VARIATION; its intervals must also keep to the cadence, and the band
    must be nearly all of the merchant's debits between its first and last occurrence."""
    if flow.regularity < SUBSCRIPTION_MIN_REGULARITY:
        return False
    spanned = sum(1 for tx in merchant_debits if flow.first_date <= tx.day <= flow.last_date)
    in_band = sum(1 for tx in band if flow.first_date <= tx.day <= flow.last_date)
    return in_band >= SUBSCRIPTION_MIN_SHARE_OF_MERCHANT * spanned


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
        base_key = f"{direction}:{name}"
        if direction == "income" and _kind("income", "", txs[-1]) in MAIN_INCOME_KINDS:
            # A main income is one stream whatever its amounts: regular first, else irregular.
            flow = _flow_from(base_key, "", txs, today=today) or _irregular_flow(
                base_key, txs, today=today
            )
            if flow is not None:
                flows.append(flow)
                continue
        bands = [txs] if agreement_id else _amount_bands(txs)
        for index, band in enumerate(bands):
            key = base_key + (f"#{index}" if len(bands) > 1 else "")
            flow = _flow_from(key, agreement_id, band, today=today)
            if flow is None:
                continue
            if flow.kind == "subscription" and not _stable_subscription(
                flow, band=band, merchant_debits=txs
            ):
                continue
            flows.append(flow)
    flows.sort(key=lambda f: (f.direction, f.next_expected_date, -f.typical_amount))
    return flows
