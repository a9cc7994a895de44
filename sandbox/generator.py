"""Transaction history: generated day by day from per-day seeds, cached in process memory.

A day's list depends only on (seed, client, bank, account, volume, months, anchor, day), so days
already past never change when the clock moves. Transactions with a posting delay are served as
"pending" (id `<id>-pending`) until the clock passes their posting time, then as their booked twin.
"""

import random
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import NamedTuple

from sandbox import catalog
from sandbox.layout import Account, client_layout

DAY_US = 86_400_000_000
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Posting delays stay under 47 h, so days older than this are always fully posted.
RECENT_DAYS = 3


class Record(NamedTuple):
    """One generated transaction; amounts in kopecks, times in microseconds since the epoch."""

    transaction_id: str
    booked_us: int
    posted_us: int
    amount: int
    is_credit: bool
    information: str
    code: str
    merchant: int  # index into catalog.MERCHANTS, -1 for none
    counterparty: str | None
    status: str  # status once posted
    with_card: bool = False  # live style: paid by card (a `card` object is served)
    kind: str = ""  # live style: what the generator meant it as (the money truth reads it)
    reference: str = ""  # live style: the agreement id, income stream or bill it belongs to


class DataKey(NamedTuple):
    """Everything a client's generated data depends on, apart from the day."""

    seed: int
    client_id: str
    volume: int | None
    months: int
    anchor: date
    checking_accounts: int = 0  # a heavy client's checking accounts per bank (0: the layout's)


def to_us(moment: datetime) -> int:
    return (moment - EPOCH) // timedelta(microseconds=1)


def from_us(us: int) -> datetime:
    return EPOCH + timedelta(microseconds=us)


def day_start_us(day: date) -> int:
    return (day - date(1970, 1, 1)).days * DAY_US


def _account(key: DataKey, bank: str, account_id: str) -> Account:
    layout = client_layout(
        key.seed, key.client_id, key.anchor, key.months, key.checking_accounts
    ).banks[bank]
    return next(a for a in layout.accounts if a.account_id == account_id)


class Transfer(NamedTuple):
    reference: str
    from_bank: str
    to_bank: str
    amount: int
    out_us: int
    in_day: date
    in_us: int


@lru_cache(maxsize=50_000)
def _transfers_on(key: DataKey, day: date) -> tuple[Transfer, ...]:
    """Moves between the client's own checking accounts in two banks started on `day`."""
    layout = client_layout(key.seed, key.client_id, key.anchor, key.months, key.checking_accounts)
    banks = [b for b in catalog.BANK_CODES if b in layout.banks]
    rng = random.Random(f"{key.seed}:{key.client_id}:transfers:{day.isoformat()}")
    if len(banks) < 2 or rng.random() >= 0.1:
        return ()
    from_bank, to_bank = rng.sample(banks, 2)
    starts = [layout.banks[b].accounts[0].opening_date for b in (from_bank, to_bank)]
    if day < max(starts):
        return ()
    amount = rng.randrange(1000, 50000) * 100
    out_us = (
        day_start_us(day) + rng.randrange(8 * 3600, 22 * 3600) * 1_000_000 + rng.randrange(1, 10**6)
    )
    lag = rng.randrange(0, 3)
    in_day = day + timedelta(days=lag)
    in_us = day_start_us(in_day) + rng.randrange(0, DAY_US)
    in_us = max(in_us, out_us + 60_000_000) if lag == 0 else in_us
    in_us = min(in_us, day_start_us(in_day) + DAY_US - 1)
    return (Transfer(f"{day:%Y%m%d}", from_bank, to_bank, amount, out_us, in_day, in_us),)


def _code(rng: random.Random, is_credit: bool) -> str:
    if rng.random() < 0.1:
        return "02" if is_credit else "01"
    return "ReceivedCreditTransfer" if is_credit else "IssuedDebitTransfer"


def _settled_status(rng: random.Random) -> str:
    return "completed" if rng.random() < 0.04 else "Booked"


# description, share of random transactions, amount range in roubles, share paid by card, credit
_MIX = (
    (catalog.GROCERIES, 0.36, (200, 4000), 0.55, False),
    (catalog.TRANSPORT, 0.2, (40, 1200), 0.15, False),
    (catalog.LEISURE, 0.29, (300, 7000), 0.55, False),
    (catalog.SIDE_INCOME, 0.15, (8000, 30000), 0.0, True),
)


def _pick(roll: float) -> tuple:
    for info, share, bounds, card_share, is_credit in _MIX:
        roll -= share
        if roll < 0:
            return info, bounds, card_share, is_credit
    return _MIX[-1][0], _MIX[-1][2], _MIX[-1][3], _MIX[-1][4]


@lru_cache(maxsize=400_000)
def day_records(key: DataKey, bank: str, account_id: str, day: date) -> tuple[Record, ...]:
    """The account's transactions booked on `day`, newest first (deterministic, cached)."""
    account = _account(key, bank, account_id)
    if not account.has_history or day < account.opening_date:
        return ()
    rng = random.Random(f"{key.seed}:{key.client_id}:{bank}:{account_id}:{day.isoformat()}")
    base_us = day_start_us(day)
    items: list[tuple] = []  # (booked_us, delay_us, amount, credit, info, merchant, counterparty)

    def at(hour_from: int, hour_to: int) -> int:
        seconds = rng.randrange(hour_from * 3600, hour_to * 3600)
        return base_us + seconds * 1_000_000 + rng.randrange(1, 10**6)

    bank_name = catalog.BANKS[bank]["name"]
    if account.subtype == "Savings":
        if day.day == 1:
            amount = rng.randrange(200, 3000) * 100 + rng.randrange(100)
            items.append((at(0, 3), 0, amount, True, catalog.INTEREST, -1, bank_name))
    else:
        if account.salary and day.day == account.salary_day:
            amount = round(account.salary * rng.uniform(0.97, 1.03))
            items.append((at(9, 18), 0, amount, True, catalog.SALARY, -1, account.employer))
        if account.rent and day.day == account.rent_day:
            amount = round(account.rent * rng.uniform(0.9, 1.1))
            items.append((at(9, 21), 0, amount, False, catalog.HOUSING, -1, None))
        if day.day <= 5:
            for payment in account.loan_payments:
                if (day.year, day.month) >= payment.first_month:
                    info = catalog.LOAN_PAYMENT.format(agreement_id=payment.agreement_id)
                    items.append((at(6, 10), 0, payment.instalment, False, info, -1, bank_name))
        for lag in range(3):
            for transfer in _transfers_on(key, day - timedelta(days=lag)):
                other = transfer.to_bank if transfer.from_bank == bank else transfer.from_bank
                other_name = f"{account.holder} ({catalog.BANKS[other]['name']})"
                if transfer.from_bank == bank and lag == 0:
                    items.append((transfer.out_us, 0, transfer.amount, False,
                                  catalog.OWN_TRANSFER, -1, other_name))  # fmt: skip
                if transfer.to_bank == bank and transfer.in_day == day:
                    items.append((transfer.in_us, 0, transfer.amount, True,
                                  catalog.OWN_TRANSFER, -1, other_name))  # fmt: skip
        volume = key.volume if key.volume is not None else account.default_volume
        rate = max(volume - 30 - 60 * bool(account.loan_payments), volume * 0.3) / 365
        rate *= rng.uniform(0.5, 1.5)
        count = int(rate) + (rng.random() < rate - int(rate))
        for _ in range(count):
            info, (low, high), card_share, is_credit = _pick(rng.random())
            amount = rng.randrange(low * 100, high * 100)
            merchant, counterparty = -1, None
            if rng.random() < card_share:
                merchant = rng.choice(catalog.MERCHANTS_BY_DESCRIPTION[info])
                counterparty = catalog.MERCHANTS[merchant][1]
            elif is_credit:
                counterparty = rng.choice(catalog.SIDE_PAYERS)
            delay = rng.randrange(3600, 47 * 3600) * 1_000_000 if rng.random() < 0.25 else 0
            items.append((at(7, 24), delay, amount, is_credit, info, merchant, counterparty))
    number = account_id[4:]
    records = [
        Record(
            transaction_id=f"tx-{number}-{day:%Y%m%d}-{index}",
            booked_us=booked,
            posted_us=booked + delay,
            amount=amount,
            is_credit=is_credit,
            information=info,
            code=_code(rng, is_credit),
            merchant=merchant,
            counterparty=counterparty,
            status=_settled_status(rng),
        )
        for index, (booked, delay, amount, is_credit, info, merchant, counterparty) in enumerate(
            items, start=1
        )
    ]
    records.sort(key=lambda r: (r.booked_us, r.transaction_id), reverse=True)
    return tuple(records)


def signed(record: Record) -> int:
    return record.amount if record.is_credit else -record.amount


@lru_cache(maxsize=128)
def _settled_prefix(key: DataKey, bank: str, account_id: str, first_recent: date):
    """Every transaction booked before `first_recent` (all posted), newest first, and their sum."""
    account = _account(key, bank, account_id)
    records: list[Record] = []
    day = first_recent - timedelta(days=1)
    while day >= account.opening_date:
        records.extend(day_records(key, bank, account_id, day))
        day -= timedelta(days=1)
    return tuple(records), sum(signed(r) for r in records)


class Served(NamedTuple):
    record: Record
    pending: bool


class History:
    """An account's transactions as served at one instant: recent ones, then the settled prefix."""

    def __init__(self, recent: list[Served], prefix: tuple[Record, ...], total: int):
        self.recent = recent
        self.prefix = prefix
        self.total = total  # signed sum of every served transaction, kopecks

    def __len__(self) -> int:
        return len(self.recent) + len(self.prefix)

    def slice(self, start: int, stop: int) -> list[Served]:
        head = self.recent[start:stop]
        offset = len(self.recent)
        tail = self.prefix[max(start - offset, 0) : max(stop - offset, 0)]
        return head + [Served(record, False) for record in tail]


def history(key: DataKey, account: Account, now: datetime) -> History:
    """The account's transactions visible at `now`, newest first."""
    if not account.has_history:
        return History([], (), 0)
    now_us = to_us(now)
    today = now.astimezone(UTC).date()
    first_recent = today - timedelta(days=RECENT_DAYS - 1)
    prefix, prefix_total = _settled_prefix(key, account.bank, account.account_id, first_recent)
    recent: list[Served] = []
    for back in range(RECENT_DAYS):
        for record in day_records(key, account.bank, account.account_id, today - timedelta(back)):
            if record.booked_us <= now_us:
                recent.append(Served(record, now_us < record.posted_us))
    total = prefix_total + sum(signed(item.record) for item in recent)
    return History(recent, prefix, total)


def balance(key: DataKey, account: Account, now: datetime) -> int:
    """Opening balance plus every served transaction (kopecks); static for deposit/loan accounts."""
    return account.opening_balance + history(key, account, now).total
