"""Live-style data (SPEC §17), produced from each client's persona (`sandbox.personas`).

Accounts: one checking account per bank with the same `acc-NNNN` id at every bank of a client
(ids repeat across banks), a real loan account (`455…`) only where a loan links one. No deposit
accounts: deposits show only as agreements and monthly interest credits. Transactions: status
`completed`, codes `01`/`02`, `counterparty: null`, card purchases `<Merchant> - <City>` with a
merchant object; most of a day's card rows share one booking instant (ties). A day's rows depend
only on (data key, bank, account, day), so the past never changes when the clock moves, and the
money truth can read future days from the very same function.
"""

import random
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache

from sandbox import catalog
from sandbox.generator import (
    DAY_US,
    DataKey,
    History,
    Record,
    Served,
    day_start_us,
    signed,
    to_us,
)
from sandbox.layout import Account, Agreement, BankLayout
from sandbox.personas import Card, Deposit, Loan, Persona, client_number, persona

LOAN_ACCOUNT_INDEX = 7
OWN_TRANSFER = "Перевод между своими счетами"
LOAN_PAYMENT = "Платеж по кредиту №{agreement_id}"
EXTRA_OPENING = 10000_00
# Kinds of generated rows (Record.kind) the money truth groups by.
MAIN_INCOME_KINDS = frozenset({"salary", "business", "pension", "irregular"})


def persona_of(key: DataKey) -> Persona:
    number = client_number(key.client_id) or 1
    extra = max(key.checking_accounts - 1, 0)  # the knob counts checking accounts per bank
    return persona(key.seed, key.client_id, number, key.anchor, key.months, extra)


def account_id_for(number: int, index: int) -> str:
    """`acc-NNNN`: the same id at every bank of one client (SPEC §17)."""
    return f"acc-{number * 10 + index:04d}"


def parse_account_id(account_id: str) -> tuple[int, int] | None:
    """`acc-NNNN` → (client number, index); None when not numeric."""
    digits = account_id[4:] if account_id.startswith("acc-") else ""
    if not digits.isdigit() or len(digits) < 2:
        return None
    value = int(digits)
    return value // 10, value % 10


@dataclass(frozen=True)
class LiveBank:
    """One bank's view of a persona: its accounts and the agreements it serves."""

    layout: BankLayout
    links: dict  # agreement id → ("checking", account) | ("loan", Loan) | None


def _digits(rng: random.Random, n: int) -> str:
    return "".join(str(rng.randrange(10)) for _ in range(n))


def _hex(rng: random.Random, n: int) -> str:
    return f"{rng.getrandbits(4 * n):0{n}x}"


@lru_cache(maxsize=1024)
def live_bank(key: DataKey, bank: str) -> LiveBank:
    """Accounts and agreements of the key's client at `bank` (empty if not a client there)."""
    who = persona_of(key)
    if bank not in who.banks:
        return LiveBank(BankLayout((), ()), {})
    rng = random.Random(f"{key.seed}:{key.client_id}:{bank}:live-layout")
    holder = who.full_name

    def checking(index: int, opening: int) -> Account:
        card = (f"card-{_hex(rng, 12)}", f"****{_digits(rng, 4)}", rng.choice(catalog.CARD_NAMES))
        return Account(
            account_id=account_id_for(who.number, index),
            bank=bank,
            client_id=key.client_id,
            subtype="Checking",
            identification="40817810" + _digits(rng, 12),
            opening_date=who.history_start,
            opening_balance=opening,
            holder=holder,
            card=card,
            city=who.city,
            index=index,
        )

    accounts = [checking(0, who.opening[bank])]
    accounts += [checking(i, EXTRA_OPENING) for i in range(1, min(who.extra_checking, 6) + 1)]
    main = accounts[0]
    links: dict = {}
    agreements: list[Agreement] = []
    for loan in who.loans:
        if loan.bank != bank:
            continue
        number = None
        if loan.link == "loan_account":
            number = "455" + _hex(rng, 15)
            accounts.append(
                Account(
                    account_id=account_id_for(who.number, LOAN_ACCOUNT_INDEX),
                    bank=bank,
                    client_id=key.client_id,
                    subtype="Loan",
                    identification=number,
                    opening_date=loan.start.date(),
                    opening_balance=0,
                    holder=holder,
                    city=who.city,
                    index=LOAN_ACCOUNT_INDEX,
                )
            )
            links[loan.agreement_id] = ("loan", loan)
        elif loan.link == "checking":
            number = main.identification
            links[loan.agreement_id] = ("checking", main)
        else:
            links[loan.agreement_id] = None
        if not loan.served:
            continue
        end = loan.start + timedelta(days=30 * loan.term_months) if loan.end_date_given else None
        agreements.append(
            Agreement(
                loan.agreement_id,
                loan.product_id,
                loan.product_name,
                "loan",
                loan.rate,
                loan.principal / 100,
                loan.status,
                loan.start,
                end,
                number,
                None,
            )
        )
    for deposit in who.deposits:
        if deposit.bank != bank:
            continue
        number = main.identification if deposit.link == "checking" else None
        links[deposit.agreement_id] = ("checking", main) if number else None
        agreements.append(
            Agreement(
                deposit.agreement_id,
                deposit.product_id,
                deposit.product_name,
                "deposit",
                deposit.rate,
                deposit.amount / 100,
                "active",
                deposit.start,
                None,
                number,
                None,
            )
        )
    for card in who.cards:
        if card.bank != bank:
            continue
        links[card.agreement_id] = None
        agreements.append(
            Agreement(
                card.agreement_id,
                card.product_id,
                card.product_name,
                "card",
                card.rate,
                card.limit / 100,
                "active",
                card.start,
                None,
                None,
                None,
            )
        )
    agreements.sort(key=lambda agreement: agreement.start, reverse=True)
    return LiveBank(BankLayout(tuple(accounts), tuple(agreements)), links)


def bank_layout(key: DataKey, bank: str) -> BankLayout:
    return live_bank(key, bank).layout


# --- when things happen -------------------------------------------------------------------------


def _month_days(day: date) -> int:
    following = date(day.year + day.month // 12, day.month % 12 + 1, 1)
    return (following - timedelta(days=1)).day


def on_day_of_month(wanted: int, day: date) -> bool:
    """True on day `wanted` of each month, or on its last day when the month is shorter."""
    return day.day == min(wanted, _month_days(day))


@lru_cache(maxsize=256)
def gap_dates(seed: int, client_id: str, stream: str, first: date, low: int, high: int):
    """Dates of an income arriving every `low`..`high` days from `first` (20 years ahead)."""
    rng = random.Random(f"{seed}:{client_id}:{stream}:gaps")
    dates = []
    day = first + timedelta(days=rng.randrange(0, high))
    end = first + timedelta(days=365 * 20)
    while day < end:
        dates.append(day)
        day += timedelta(days=rng.randrange(low, high + 1))
    return frozenset(dates)


def loan_payments_made(loan: Loan, before: date) -> int:
    """Monthly payments of `loan` whose every part was debited before `before`."""
    if loan.repaid_on is not None and before > loan.repaid_on:
        before = loan.repaid_on
    # Payment k falls in month start+k, its last part on day `parts`.
    index = before.year * 12 + before.month - 1
    start_index = loan.start.year * 12 + loan.start.month - 1
    made = index - start_index - 1  # payments of months strictly before `before`'s month
    if before.day > loan.parts:
        made += 1
    return max(0, min(made, loan.term_months))


def loan_outstanding(loan: Loan, today: date) -> int:
    """Principal still owed at the start of `today` (0 once repaid), kopecks."""
    if loan.repaid_on is not None and today > loan.repaid_on:
        return 0
    return loan.balance_after(loan_payments_made(loan, today))


def _repayment(loan: Loan) -> int:
    return loan.balance_after(loan_payments_made(loan, loan.repaid_on))


# --- a day's rows ---------------------------------------------------------------------------------


def _spending_rate(key: DataKey, who: Persona, bank: str, index: int) -> tuple[float, tuple]:
    spending = who.spending_at(bank)
    mix = spending.mix if spending else who.spending[0].mix
    per_day = spending.per_day if spending and index == 0 else 0.0
    if index > 0:
        per_day = (who.spending[0].per_day if who.spending else 1.0) * 0.5
    if key.volume is not None:
        per_day = max(key.volume - 40, key.volume * 0.5) / 365
    return per_day, mix


def extra_account_funding(key: DataKey, who: Persona, bank: str, index: int) -> int:
    """What the primary checking moves to an extra checking account on day 1 of each month."""
    from sandbox.personas import mean_purchase

    per_day, mix = _spending_rate(key, who, bank, index)
    return round(per_day * mean_purchase(mix) * 30.4375)


@lru_cache(maxsize=400_000)
def day_records(
    key: DataKey, bank: str, index: int, day: date, quiet: bool = True
) -> tuple[Record, ...]:
    """The rows of account `index` at `bank` booked on UTC `day`, newest first (ties kept).

    With `quiet=False` a frozen client's days are produced anyway: the life the banks stopped
    showing (the money truth's view of what is still scheduled).
    """
    who = persona_of(key)
    if bank not in who.banks or day < who.history_start:
        return ()
    if quiet and who.quiet_from is not None and day >= who.quiet_from:
        return ()
    if index > who.extra_checking and index != 0:
        return ()
    rng = random.Random(f"{key.seed}:{key.client_id}:{bank}:{index}:{day.isoformat()}")
    base = day_start_us(day)
    batch = base + rng.randrange(14 * 3600, 24 * 3600) * 1_000_000 + rng.randrange(1, 10**6)
    items: list[tuple] = []  # (booked_us, amount, credit, info, merchant, card, kind, reference)

    def at(hour_from: int, hour_to: int) -> int:
        return (
            base
            + rng.randrange(hour_from * 3600, hour_to * 3600) * 1_000_000
            + rng.randrange(1, 10**6)
        )

    def purchase(kind: str, low: int, high: int, *, tied: float = 0.7, credit=False, ref=""):
        merchant = rng.choice(catalog.LIVE_MERCHANTS_BY_KIND[kind])
        amount = rng.randrange(low, high)
        booked = batch if rng.random() < tied else at(6, 24)
        info = f"{catalog.LIVE_MERCHANTS[merchant][1]} - {who.city}"
        items.append(
            (
                booked,
                amount,
                credit,
                info,
                merchant,
                True,
                "refund" if credit else "everyday",
                ref or kind,
            )
        )

    if index == 0:
        for income in who.incomes:
            if income.bank != bank or day < income.first:
                continue
            if income.gap is not None:
                if day not in gap_dates(
                    key.seed, key.client_id, income.stream, income.first, *income.gap
                ):
                    continue
            elif not any(on_day_of_month(d, day) for d in income.days):
                continue
            amount = rng.randrange(income.low, income.high + 1)
            items.append(
                (at(4, 12), amount, True, income.description, -1, False, income.kind, income.stream)
            )
        for loan in who.loans:
            if loan.paid_from != bank:
                continue
            info = LOAN_PAYMENT.format(agreement_id=loan.agreement_id)
            if loan.repaid_on == day:
                items.append(
                    (
                        at(9, 12),
                        _repayment(loan),
                        False,
                        info,
                        -1,
                        False,
                        "loan_repayment",
                        loan.agreement_id,
                    )
                )
            elif loan.payment_number(day) is not None and day.day <= loan.parts:
                amount = loan.part_amounts()[day.day - 1]
                items.append(
                    (at(3, 9), amount, False, info, -1, False, "loan_instalment", loan.agreement_id)
                )
        for deposit in who.deposits:
            if deposit.bank == bank and _interest_due(deposit, day):
                info = catalog.LIVE_DEPOSIT_INTEREST.format(agreement_id=deposit.agreement_id)
                items.append(
                    (
                        at(0, 3),
                        deposit.monthly_interest,
                        True,
                        info,
                        -1,
                        False,
                        "interest",
                        deposit.agreement_id,
                    )
                )
        for bill in who.bills:
            if bill.bank != bank or not on_day_of_month(bill.day, day):
                continue
            if bill.merchant >= 0:
                name = catalog.LIVE_MERCHANTS[bill.merchant][1]
                items.append(
                    (
                        batch,
                        bill.amount,
                        False,
                        f"{name} - {who.city}",
                        bill.merchant,
                        True,
                        "bill",
                        bill.kind,
                    )
                )
            else:
                items.append(
                    (at(8, 14), bill.amount, False, bill.description, -1, False, "bill", bill.kind)
                )
        for transfer in who.transfers:
            if not on_day_of_month(transfer.day, day):
                continue
            moment = base + (10 * 3600 + hash_minutes(key, transfer)) * 1_000_000
            if transfer.from_bank == bank:
                items.append(
                    (
                        moment,
                        transfer.amount,
                        False,
                        OWN_TRANSFER,
                        -1,
                        False,
                        "own_transfer",
                        transfer.to_bank,
                    )
                )
            if transfer.to_bank == bank:
                items.append(
                    (
                        moment + 90_000_000,
                        transfer.amount,
                        True,
                        OWN_TRANSFER,
                        -1,
                        False,
                        "own_transfer",
                        transfer.from_bank,
                    )
                )
        if day.day == 1:
            for extra in range(1, who.extra_checking + 1):
                amount = extra_account_funding(key, who, bank, extra)
                items.append(
                    (
                        base + 3600 * 1_000_000 + extra,
                        amount,
                        False,
                        OWN_TRANSFER,
                        -1,
                        False,
                        "own_transfer",
                        f"{bank}:{extra}",
                    )
                )
    elif day.day == 1:
        amount = extra_account_funding(key, who, bank, index)
        items.append(
            (
                base + 3600 * 1_000_000 + index + 50,
                amount,
                True,
                OWN_TRANSFER,
                -1,
                False,
                "own_transfer",
                f"{bank}:0",
            )
        )

    per_day, mix = _spending_rate(key, who, bank, index)
    if per_day > 0:
        rate = per_day * rng.uniform(0.5, 1.5)
        count = int(rate) + (rng.random() < rate - int(rate))
        for _ in range(count):
            roll = rng.random()
            for kind, share, low, high in mix:  # noqa: B007 (the row the roll lands on)
                roll -= share
                if roll < 0:
                    break
            purchase(kind, low, high)
    spending = who.spending_at(bank) if index == 0 else None
    if spending is not None:
        if spending.weekly is not None and day.weekday() == spending.weekly[0]:
            _weekday, merchant, low, high = spending.weekly
            name = catalog.LIVE_MERCHANTS[merchant][1]
            items.append(
                (
                    batch,
                    rng.randrange(low, high),
                    False,
                    f"{name} - {who.city}",
                    merchant,
                    True,
                    "everyday",
                    "weekly_restaurant",
                )
            )
        if spending.travel_every and rng.random() < 1 / spending.travel_every:
            items.append(
                (
                    at(6, 20),
                    rng.randrange(*spending.travel),
                    False,
                    catalog.LIVE_TRAVEL,
                    -1,
                    True,
                    "travel",
                    "travel",
                )
            )
        if rng.random() < 1 / 45:
            purchase("online_retail", 500_00, 4000_00, tied=0.0, credit=True, ref="refund")

    number = parse_account_id(account_id_for(who.number, index))[0] * 10 + index
    digit = catalog.BANKS[bank]["digit"]
    records = [
        Record(
            transaction_id=f"tx-{digit}{number:04d}-{day:%Y%m%d}-{position}",
            booked_us=booked,
            posted_us=booked,
            amount=amount,
            is_credit=credit,
            information=info,
            code="02" if credit else "01",
            merchant=merchant,
            counterparty=None,
            status="completed",
            with_card=card,
            kind=kind,
            reference=reference,
        )
        for position, (booked, amount, credit, info, merchant, card, kind, reference) in enumerate(
            items, start=1
        )
    ]
    # Newest first by booking time only: tied rows keep no particular order (SPEC §17).
    records.sort(key=lambda r: r.booked_us, reverse=True)
    return tuple(records)


def hash_minutes(key: DataKey, transfer) -> int:
    """A stable minute of the day for a monthly own transfer."""
    rng = random.Random(f"{key.seed}:{key.client_id}:{transfer.from_bank}:{transfer.to_bank}")
    return rng.randrange(0, 8 * 3600)


def _interest_due(deposit: Deposit, day: date) -> bool:
    return day > deposit.start.date() + timedelta(days=20) and on_day_of_month(
        deposit.interest_day, day
    )


# --- served history and balances --------------------------------------------------------------


@lru_cache(maxsize=256)
def _settled_prefix(key: DataKey, bank: str, index: int, today: date):
    """Every row booked before `today`, newest first, and their signed sum."""
    who = persona_of(key)
    records: list[Record] = []
    day = today - timedelta(days=1)
    while day >= who.history_start:
        records.extend(day_records(key, bank, index, day))
        day -= timedelta(days=1)
    return tuple(records), sum(signed(r) for r in records)


def history(key: DataKey, account: Account, now: datetime) -> History:
    """The account's rows visible at `now`, newest first (all settled: no pending in live data)."""
    if account.subtype != "Checking":
        return History([], (), 0)
    today = now.astimezone(UTC).date()
    prefix, total = _settled_prefix(key, account.bank, account.index, today)
    now_us = to_us(now)
    recent = [
        Served(record, False)
        for record in day_records(key, account.bank, account.index, today)
        if record.booked_us <= now_us
    ]
    return History(recent, prefix, total + sum(signed(s.record) for s in recent))


def balance(key: DataKey, account: Account, now: datetime) -> int:
    """Checking: opening plus every served row. Loan account: the loan's outstanding principal."""
    if account.subtype == "Loan":
        for kind_and_item in live_bank(key, account.bank).links.values():
            if kind_and_item and kind_and_item[0] == "loan":
                return loan_outstanding(kind_and_item[1], now.astimezone(UTC).date())
        return 0
    return account.opening_balance + history(key, account, now).total


def agreement_account_balance(key: DataKey, bank: str, agreement_id: str, now: datetime):
    """The detail call's `account_balance` (kopecks): the linked account's balance, or None.

    Where `account_number` points at the checking account, that is the checking balance — money
    the client has, not what the agreement owes or holds (SPEC §7.3, §17).
    """
    link = live_bank(key, bank).links.get(agreement_id)
    if link is None:
        return None
    kind, item = link
    if kind == "loan":
        return loan_outstanding(item, now.astimezone(UTC).date())
    return balance(key, item, now)


def find_account(key_for, bank: str, account_id: str):
    """(account, key) of `account_id` at `bank`, None if unknown; `key_for(client_id)` → key."""
    from django.conf import settings

    parsed = parse_account_id(account_id)
    if parsed is None:
        return None
    number, _index = parsed
    if number < 1:
        return None
    client_id = f"{settings.BANK_TEAM_ID}-{number}"
    key = key_for(client_id)
    for account in bank_layout(key, bank).accounts:
        if account.account_id == account_id:
            return account, key
    return None


def day_us_range(day: date) -> tuple[int, int]:
    start = day_start_us(day)
    return start, start + DAY_US


__all__ = ["Card", "Deposit", "Loan"]
