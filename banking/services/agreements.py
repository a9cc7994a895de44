"""Loans and credit cards: outstanding, payment status and the schedule of upcoming debits.

The banks send no schedule, no monthly payment and, mostly, no balance (SPEC §7.3, §17), so
FinTrack works them out from what it sees and says how:

* **Outstanding** — the balance of the linked *loan* account (`loan_account`, exact); else an
  `estimate`: the principal amortised month by month from the start at the rate, minus the
  instalments ("Платеж по кредиту №<agreement_id>") seen each month, the months before the
  history assumed paid at the annuity (term known) or the observed monthly amount; else
  `unknown` (credit cards: the bank does not report the card balance). A checking balance is
  never a debt. A single debit much larger than the usual instalment that covers the estimated
  balance means the loan was repaid early: outstanding 0, status `repaid`.
* **Matching** — an instalment debited at bank X belongs to the agreement with that id at X;
  only when X has none and exactly one other bank has one does it go there (a loan paid from
  another bank's account). Ids repeat across banks (SPEC §17).
* **Schedule** — each part of a split instalment on its own day, as the history shows it
  (k equal debits on days 1..k → k rows a month), from today on; the first row is the next
  payment. Days are the user's local days.
* **Stopped** — no instalment for more than one cycle after the expected day: flagged, and the
  schedule holds only the next expected instalment, once.
"""

import calendar
import re
import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.db import transaction as db_transaction
from django.utils import timezone

from banking.models import (
    DEBT_ACCOUNT_TYPES,
    NextPaymentSource,
    OutstandingSource,
    PaymentStatus,
    ProductAgreement,
    Transaction,
    TransactionStatus,
    loan_payment_description_q,
)

CENT = Decimal("0.01")
SCHEDULE_LENGTH = 12  # months of upcoming instalments
DEBT_PRODUCT_TYPES = ("loan", "credit_card")
LOAN_PAYMENT_PATTERN = re.compile(r"Плат[её]ж по кредиту №\s*(\S+)")
# How far back instalments are read: a year and a bit is enough to see the cadence.
HISTORY_LOOKBACK_DAYS = 400
DEFAULT_TIME_ZONE = "Europe/Moscow"
CREDIT_CARD_ID_PREFIX = "card-cred-"
CREDIT_CARD_NAME_PREFIX = "Кредитная карта"
# A debit this many times the usual month's instalments is a lump sum, not an instalment.
LUMP_SUM_FACTOR = Decimal(2)
# A lump sum covering this share of the estimated balance (and no instalment after it) repaid
# the loan: the estimate itself may be a few per cent off.
REPAID_SHARE = Decimal("0.9")
CARD_BALANCE_UNKNOWN = "the bank does not report the card balance"


def agreement_type_of(agreement_id: str, product_type: str, product_name: str) -> str:
    """The agreement's kind: live banks type credit cards `card` like debit cards (SPEC §17);
    `card-cred-…` ids and `Кредитная карта "…"` names tell them apart."""
    kind = product_type or ""
    if kind == "credit_card":
        return kind
    if kind in ("card", "") and (
        (agreement_id or "").startswith(CREDIT_CARD_ID_PREFIX)
        or (product_name or "").strip().startswith(CREDIT_CARD_NAME_PREFIX)
    ):
        return "credit_card"
    return kind


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


def user_time_zone(user) -> ZoneInfo:
    """The user's zone (`User.time_zone`, Europe/Moscow when absent or unknown)."""
    name = getattr(user, "time_zone", "") or DEFAULT_TIME_ZONE
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo(DEFAULT_TIME_ZONE)


def _month_index(day: date) -> int:
    return day.year * 12 + day.month - 1


def _month_day(index: int, day: int) -> date:
    year, month = index // 12, index % 12 + 1
    return date(year, month, min(day, calendar.monthrange(year, month)[1]))


def _money(value: Decimal) -> str:
    return f"{value:,.2f}"


def _rate_text(rate: Decimal) -> str:
    return f"{rate.normalize():f}"


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
    rows: list[dict] = []
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


def plan_from_estimate(agreement: ProductAgreement, today: date) -> PaymentPlan:
    """No instalment seen: an annuity on principal, rate and term, a month after the start."""
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


# --- Instalment history ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Instalment:
    """One "Платеж по кредиту №…" debit: the user's local day, the amount (positive), the bank."""

    day: date
    amount: Decimal
    bank_code: str


def _instalment_rows(*, user, today: date, tz: ZoneInfo) -> list[tuple[str, Instalment]]:
    """(agreement id, instalment) of the user's instalment debits of the last 400 days."""
    since = datetime.combine(today - timedelta(days=HISTORY_LOOKBACK_DAYS), time.min, tzinfo=UTC)
    rows = (
        Transaction.objects.filter(loan_payment_description_q())
        .filter(user=user, booking_date__gte=since, amount__lt=0)
        .exclude(status=TransactionStatus.DECLINED)
        .order_by()
        .values_list("bank_code", "description", "amount", "booking_date")
    )
    result = []
    for bank_code, description, amount, booked_at in rows:
        match = LOAN_PAYMENT_PATTERN.search(description)
        if match:
            day = booked_at.astimezone(tz).date()
            result.append((match.group(1).rstrip(".,;"), Instalment(day, -amount, bank_code)))
    return result


def instalments_match(
    rows: list[tuple[str, Instalment]], agreement_keys: set[tuple[str, str]]
) -> tuple[dict[tuple[str, str], list[Instalment]], dict[tuple[str, str], list[Instalment]]]:
    """(matched per (bank, agreement id), unmatched per (debiting bank, id)) — SPEC §17.

    A debit at bank X is the instalment of X's agreement with that id; if X has none and exactly
    one other bank has one, it is that one's (paid from another bank's account)."""
    banks_of: dict[str, set[str]] = defaultdict(set)
    for bank_code, agreement_id in agreement_keys:
        banks_of[agreement_id].add(bank_code)
    matched: dict[tuple[str, str], list[Instalment]] = defaultdict(list)
    unmatched: dict[tuple[str, str], list[Instalment]] = defaultdict(list)
    for agreement_id, instalment in rows:
        if (instalment.bank_code, agreement_id) in agreement_keys:
            matched[(instalment.bank_code, agreement_id)].append(instalment)
        elif len(banks_of.get(agreement_id, ())) == 1:
            (bank_code,) = banks_of[agreement_id]
            matched[(bank_code, agreement_id)].append(instalment)
        else:
            unmatched[(instalment.bank_code, agreement_id)].append(instalment)
    for items in (*matched.values(), *unmatched.values()):
        items.sort(key=lambda i: (i.day, i.amount))
    return dict(matched), dict(unmatched)


@dataclass(slots=True)
class History:
    """One loan's instalments by local month, its lump sums apart, and the split pattern."""

    months: dict[int, list[Instalment]]  # month index → debits (lump sums included)
    lumps: list[Instalment]
    monthly: Decimal | None = None  # the pattern month's total
    parts: list[tuple[int, Decimal]] = field(default_factory=list)  # (day of month, amount)
    last_regular: date | None = None

    @property
    def seen(self) -> bool:
        return bool(self.months)


def history_of(instalments: list[Instalment], today: date) -> History:
    """The split pattern: the parts (days of month, amounts) of the latest complete month."""
    months: dict[int, list[Instalment]] = defaultdict(list)
    for item in instalments:
        months[_month_index(item.day)].append(item)
    if not months:
        return History({}, [])
    usual = statistics.median(
        sum((i.amount for i in items), Decimal(0)) for items in months.values()
    )
    lumps = [i for i in instalments if len(months) > 1 and i.amount > usual * LUMP_SUM_FACTOR]
    regular: dict[int, list[Instalment]] = defaultdict(list)
    for index, items in months.items():
        for item in items:
            if item not in lumps:
                regular[index].append(item)
    history = History(dict(months), lumps)
    if not regular:
        return history
    current = _month_index(today)
    ordered = sorted(regular)
    # The current month may still be filling up: the pattern is the latest month before it,
    # unless this month already has as many parts as that one.
    basis = ordered[-1]
    if basis == current and len(ordered) > 1:
        previous = ordered[-2]
        if len(regular[current]) < len(regular[previous]):
            basis = previous
    items = sorted(regular[basis], key=lambda i: (i.day, -i.amount))
    history.parts = [(i.day.day, i.amount) for i in items]
    history.monthly = sum((i.amount for i in items), Decimal(0))
    history.last_regular = max(i.day for items in regular.values() for i in items)
    return history


# --- Outstanding -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Outstanding:
    amount: Decimal | None
    source: str
    basis: str
    repaid_on: date | None = None
    lump: Decimal | None = None


def _loan_account_balance(agreement: ProductAgreement) -> tuple[Decimal | None, str]:
    account = agreement.linked_account if agreement.linked_account_id else None
    if (
        account is not None
        and account.account_type in DEBT_ACCOUNT_TYPES
        and account.current_balance is not None
    ):
        label = account.masked_number or account.bank_account_id
        return abs(account.current_balance), f"balance of the loan account {label}"
    if agreement.remaining_balance is not None:
        # agreements_sync stores it from a loan account only (never a checking account).
        return abs(agreement.remaining_balance), "balance of the loan account the bank reports"
    return None, ""


def outstanding_estimate(agreement: ProductAgreement, history: History, today: date) -> Outstanding:
    """Principal amortised monthly at the rate minus the instalments seen (or assumed before the
    history begins); a lump sum that covers the balance repays it."""
    if not agreement.principal or agreement.start_date is None:
        return Outstanding(None, OutstandingSource.UNKNOWN, "principal or start date unknown")
    principal = Decimal(agreement.principal)
    start = agreement.start_date.astimezone(UTC).date()  # the bank's own date
    rate = agreement.interest_rate
    monthly_rate = Decimal(rate or 0) / Decimal(1200)
    term = term_months_of(agreement)
    current = _month_index(today)
    first_seen = min(history.months) if history.seen else None
    assumed_payment = None
    if term and rate is not None:
        assumed_payment = annuity_payment(
            principal=principal, annual_rate_percent=rate, months=term
        )
    elif history.monthly:
        assumed_payment = history.monthly
    if first_seen is None and assumed_payment is None:
        return Outstanding(
            None, OutstandingSource.UNKNOWN, "no instalment seen and the term is unknown"
        )
    # Owed at the start of today: today's instalment debits count from tomorrow (a lump sum
    # at once). The current month counts once its instalment is complete.
    this_month = [i for i in history.months.get(current, []) if i.day < today or i in history.lumps]
    debits = {**history.months, current: this_month}
    this_month_paid = sum((i.amount for i in this_month), Decimal(0))
    last = current - 1
    if this_month and (
        (history.monthly and this_month_paid >= history.monthly)
        or any(i in history.lumps for i in this_month)
    ):
        last = current
    balance = principal
    seen = assumed = 0
    end = _month_index(start) + term if term else None
    for index in range(_month_index(start) + 1, last + 1):
        if end is not None and index > end:
            break
        if first_seen is None or index < first_seen:
            paid = assumed_payment or Decimal(0)
            assumed += 1
        else:
            paid = sum((i.amount for i in debits.get(index, [])), Decimal(0))
            seen += 1 if paid else 0
        interest = (balance * monthly_rate).quantize(CENT, ROUND_HALF_UP)
        due = balance + interest
        lumps = [i for i in debits.get(index, []) if i in history.lumps]
        later = [
            i
            for items in history.months.values()
            for i in items
            if lumps and i.day > lumps[-1].day and i not in history.lumps
        ]
        if lumps and paid >= due * REPAID_SHARE and not later:
            return Outstanding(
                Decimal("0.00"),
                OutstandingSource.ESTIMATE,
                f"repaid early: a lump sum of {_money(lumps[-1].amount)} on "
                f"{lumps[-1].day.isoformat()} covered the estimated balance of {_money(due)}",
                repaid_on=lumps[-1].day,
                lump=lumps[-1].amount,
            )
        balance = max(due - paid, Decimal(0))
        if balance == 0:
            break
    monthly = history.monthly or assumed_payment
    rate_text = (
        f"at {_rate_text(rate)} %" if rate is not None else "rate unknown (interest ignored)"
    )
    basis = (
        f"principal {_money(principal)} from {start.isoformat()} {rate_text}, "
        f"{seen + assumed} monthly instalments of {_money(monthly or Decimal(0))} seen or assumed"
    )
    if assumed:
        basis += f" ({assumed} before the history assumed paid)"
    return Outstanding(balance.quantize(CENT), OutstandingSource.ESTIMATE, basis[:255])


def outstanding_of(agreement: ProductAgreement, history: History, today: date) -> Outstanding:
    """Loan account balance, else the estimate; a credit card's balance is unknown."""
    amount, basis = _loan_account_balance(agreement)
    if amount is not None:
        return Outstanding(amount.quantize(CENT), OutstandingSource.LOAN_ACCOUNT, basis)
    if agreement.product_type == "credit_card":
        return Outstanding(None, OutstandingSource.UNKNOWN, CARD_BALANCE_UNKNOWN)
    return outstanding_estimate(agreement, history, today)


# --- Schedule ----------------------------------------------------------------------------------


def _pattern_rows(
    *,
    history: History,
    today: date,
    balance: Decimal | None,
    annual_rate_percent: Decimal | None,
    first_month: int,
    seen_in_first: int,
    months: int,
    last_month: int | None,
) -> list[dict]:
    """Each part of each month's instalment on its own day, from `first_month` on, dates ≥ today.

    In `first_month`, the parts already debited (`seen_in_first`) are skipped. With a known
    balance, interest is charged on a month's first part and the last payment is trimmed."""
    monthly_rate = Decimal(annual_rate_percent or 0) / Decimal(1200)
    rows: list[dict] = []
    remaining = balance
    count = len(history.parts)
    for index in range(first_month, first_month + months):
        if last_month is not None and index > last_month:
            break
        if remaining is not None and remaining <= 0:
            break
        interest = (
            (remaining * monthly_rate).quantize(CENT, ROUND_HALF_UP)
            if remaining is not None
            else None
        )
        skip = seen_in_first if index == first_month else 0
        for number, (day_of_month, amount) in enumerate(history.parts, start=1):
            if remaining is not None and remaining <= 0:
                break
            day = _month_day(index, day_of_month)
            charged = interest if number == 1 else Decimal(0)
            if remaining is not None:
                remaining_due = remaining + (charged or 0)
                amount = min(amount, remaining_due)
                principal_part = amount - (charged or 0)
                remaining = remaining - principal_part
            if number <= skip or day < today:
                continue
            rows.append(
                {
                    "date": day.isoformat(),
                    "amount": str(amount),
                    "principal": None if remaining is None else str(principal_part),
                    "interest": None if charged is None else str(charged),
                    "remaining": None if remaining is None else str(remaining.quantize(CENT)),
                    "part": number,
                    "parts": count,
                }
            )
    return rows


@dataclass(slots=True)
class LoanState:
    outstanding: Outstanding
    status: str = ""
    note: str = ""
    plan: PaymentPlan = NO_PLAN


def loan_state(agreement: ProductAgreement, history: History, today: date) -> LoanState:
    """Outstanding, payment status and the plan of upcoming debits of one loan."""
    outstanding = outstanding_of(agreement, history, today)
    state = LoanState(outstanding)
    if outstanding.repaid_on is not None and outstanding.lump is not None:  # set together
        state.status = PaymentStatus.REPAID
        state.note = (
            f"repaid early on {outstanding.repaid_on.isoformat()} "
            f"(a lump sum of {_money(outstanding.lump)}); the bank still lists it as "
            f"{agreement.status}"
        )
        return state
    if outstanding.amount is not None and outstanding.amount == 0:
        state.status = PaymentStatus.REPAID
        state.note = "nothing left to repay"
        return state
    if not history.parts or history.last_regular is None:  # set together by history_of
        state.plan = plan_from_estimate(agreement, today)
        return state
    current = _month_index(today)
    term = term_months_of(agreement)
    start_index = (
        _month_index(agreement.start_date.astimezone(UTC).date())
        if (agreement.start_date)
        else None
    )
    last_month = start_index + term if start_index is not None and term else None
    balance = outstanding.amount
    rate = agreement.interest_rate
    last = history.last_regular
    expected = _month_day(_month_index(last) + 1, history.parts[0][0])
    if today > add_months(expected, 1):
        state.status = PaymentStatus.STOPPED
        state.note = f"no payment seen since {last.isoformat()}: possibly repaid or paid elsewhere"
        # Only the next expected instalment, once: never every missed month.
        first = current if _month_day(current, history.parts[-1][0]) >= today else current + 1
        rows = _pattern_rows(
            history=history,
            today=today,
            balance=balance,
            annual_rate_percent=rate,
            first_month=first,
            seen_in_first=0,
            months=1,
            last_month=last_month,
        )
    else:
        state.status = PaymentStatus.REGULAR
        seen_now = len([i for i in history.months.get(current, []) if i not in history.lumps])
        first = current
        if seen_now >= len(history.parts) or (start_index is not None and current <= start_index):
            first, seen_now = current + 1, 0
        rows = _pattern_rows(
            history=history,
            today=today,
            balance=balance,
            annual_rate_percent=rate,
            first_month=first,
            seen_in_first=seen_now,
            months=SCHEDULE_LENGTH + (1 if first == current else 0),
            last_month=last_month,
        )
    state.plan = PaymentPlan(
        NextPaymentSource.HISTORY,
        history.monthly,
        date.fromisoformat(rows[0]["date"]) if rows else None,
        Decimal(rows[0]["amount"]) if rows else None,
        rows,
    )
    return state


# What agreement_payments_refresh computes (from the agreement and its matched instalments).
_PAYMENT_FIELDS = [
    "outstanding",
    "outstanding_source",
    "outstanding_basis",
    "payment_status",
    "payment_status_note",
    "last_payment_date",
    "next_payment_source",
    "monthly_payment",
    "next_payment_date",
    "next_payment_amount",
    "payment_schedule",
]


def agreement_payments_refresh(*, user, today: date | None = None) -> int:
    """Recompute outstanding, payment status, next payment and schedule of the active debts."""
    tz = user_time_zone(user)
    today = today or timezone.now().astimezone(tz).date()
    agreements = list(
        ProductAgreement.objects.filter(
            user=user, status="active", product_type__in=DEBT_PRODUCT_TYPES
        ).select_related("linked_account")
    )
    if not agreements:
        return 0
    keys = set(ProductAgreement.objects.filter(user=user).values_list("bank_code", "agreement_id"))
    matched, _unmatched = instalments_match(_instalment_rows(user=user, today=today, tz=tz), keys)
    changed = []
    for agreement in agreements:
        before = [getattr(agreement, name) for name in _PAYMENT_FIELDS]
        instalments = matched.get((agreement.bank_code, agreement.agreement_id), [])
        history = history_of(instalments, today)
        state = loan_state(agreement, history, today)
        agreement.outstanding = state.outstanding.amount
        agreement.outstanding_source = state.outstanding.source
        agreement.outstanding_basis = state.outstanding.basis[:255]
        agreement.payment_status = state.status if agreement.product_type == "loan" else ""
        agreement.payment_status_note = state.note[:255]
        agreement.last_payment_date = max((i.day for i in instalments), default=None)
        agreement.next_payment_source = state.plan.source
        agreement.monthly_payment = state.plan.monthly_payment
        agreement.next_payment_date = state.plan.next_date
        agreement.next_payment_amount = state.plan.next_amount
        agreement.payment_schedule = state.plan.schedule
        if [getattr(agreement, name) for name in _PAYMENT_FIELDS] != before:
            changed.append(agreement)
    if changed:  # a sync that brought nothing new changes nothing here (no UPDATE at all)
        with db_transaction.atomic():
            ProductAgreement.objects.bulk_update(changed, _PAYMENT_FIELDS)
    return len(agreements)
