"""The financial lives of the live-style sandbox's clients: who earns, owes and saves what, where.

A persona is the generator's model of one client's money (SPEC §17 data, ANALYTICS-TRUTH.md
terms). The live-style rows (`sandbox.live`) are produced from it, and the ground truth of the
money (`sandbox.ground_truth.client_money_truth`) is computed from it, never from FinTrack.

Clients 1–10 each live one archetype below; any client number above ten lives archetype
((N − 1) mod 10) + 1 with its own amounts, days and banks drawn from the seed, so every client
number is served. Amounts are kopecks (int), dates are UTC calendar days.
"""

import random
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from functools import lru_cache

from django.conf import settings

from sandbox import catalog

MOSCOW = "Europe/Moscow"
NOVOSIBIRSK = "Asia/Novosibirsk"

ARCHETYPES = {
    1: "salaried_mortgage",
    2: "sole_trader",
    3: "saver",
    4: "credit_card_near_limit",
    5: "student",
    6: "pensioner",
    7: "frozen_history",
    8: "loan_repaid",
    9: "loan_paid_from_other_bank",
    10: "own_transfers",
}


@dataclass(frozen=True)
class Income:
    """A stream of credits to the client's checking account at `bank`."""

    stream: str
    kind: str  # salary | business | pension | irregular (main) ; refund (not main)
    description: str
    bank: str
    low: int
    high: int
    days: tuple[int, ...] = ()  # days of the month (clamped to its length) …
    gap: tuple[int, int] | None = None  # … or every gap[0]..gap[1] days
    first: date = date(1970, 1, 1)
    main: bool = True


@dataclass(frozen=True)
class Loan:
    """A loan agreement at `bank`; its instalments are debited from the checking at `paid_from`."""

    agreement_id: str
    bank: str
    product_id: str
    product_name: str
    principal: int
    rate: float
    term_months: int
    start: datetime  # naive UTC, as the banks send start_date
    paid_from: str
    parts: int = 1  # the monthly instalment split in equal debits on days 1..parts
    link: str = "checking"  # checking | none | loan_account: what account_number points at
    served: bool = True  # listed by GET /product-agreements at its bank
    repaid_on: date | None = None  # repaid early by one lump sum that day
    status: str = "active"  # what the bank says (a repaid loan may still say active)
    end_date_given: bool = False

    @property
    def monthly_rate(self) -> float:
        return self.rate / 1200

    @property
    def instalment(self) -> int:
        """The annuity payment of one month, kopecks."""
        r = self.monthly_rate
        return round(self.principal * r / (1 - (1 + r) ** -self.term_months))

    def part_amounts(self) -> list[int]:
        share = self.instalment // self.parts
        return [self.instalment - share * (self.parts - 1)] + [share] * (self.parts - 1)

    def payment_month(self, number: int) -> tuple[int, int]:
        """(year, month) of payment `number` (1-based): the months after the start month."""
        index = self.start.year * 12 + self.start.month - 1 + number
        return index // 12, index % 12 + 1

    def payment_number(self, day: date) -> int | None:
        """Which monthly payment falls in `day`'s month, if any (before repayment and term)."""
        number = (day.year * 12 + day.month) - (self.start.year * 12 + self.start.month)
        if number < 1 or number > self.term_months:
            return None
        if self.repaid_on is not None and day >= self.repaid_on:
            return None
        return number

    def balance_after(self, payments: int) -> int:
        """Principal still owed after `payments` monthly payments (the generator's amortisation).

        Nothing once the term's last payment is made: it settles the kopecks the rounded
        instalments leave over (else a loan paid to the end would still owe them)."""
        if payments >= self.term_months:
            return 0
        if payments >= self.term_months:
            return 0  # the last annuity payment clears the rounding residue too
        balance = self.principal
        for _ in range(payments):
            balance = balance + round(balance * self.monthly_rate) - self.instalment
        return max(balance, 0)


@dataclass(frozen=True)
class Deposit:
    """A deposit: real savings with no deposit account; interest credited to the checking."""

    agreement_id: str
    bank: str
    product_id: str
    product_name: str
    amount: int
    rate: float
    start: datetime
    interest_day: int
    link: str = "none"  # none | checking

    @property
    def monthly_interest(self) -> int:
        return round(self.amount * self.rate / 1200)


@dataclass(frozen=True)
class Card:
    """A card agreement: product_type `card` for debit and credit cards alike (SPEC §17)."""

    agreement_id: str
    bank: str
    product_id: str
    product_name: str
    credit: bool
    limit: int  # the agreement's amount: the credit limit, 0 for debit cards
    rate: float
    used: int  # owed on a credit card today; the banks do not show it
    start: datetime


@dataclass(frozen=True)
class Bill:
    """A recurring debit with a stable amount and cadence (an obligation)."""

    kind: str  # telecom | subscription | utilities | rent
    merchant: int  # index into catalog.LIVE_MERCHANTS, -1 for a plain description
    description: str
    bank: str
    day: int
    amount: int


@dataclass(frozen=True)
class Transfer:
    """A monthly move between the client's own checking accounts at two banks."""

    from_bank: str
    to_bank: str
    day: int
    amount: int


@dataclass(frozen=True)
class Spending:
    """Everyday card purchases at one bank: `per_day` on average, amounts from `mix`."""

    bank: str
    per_day: float
    mix: tuple[tuple[str, float, int, int], ...]  # (kind, share, low, high) kopecks
    weekly: tuple[int, int, int, int] | None = None  # (weekday, merchant, low, high)
    travel_every: int = 0  # a "Путешествия" debit about every N days, 0 for none
    travel: tuple[int, int] = (0, 0)


@dataclass(frozen=True)
class Persona:
    """The generator's whole model of one client's money."""

    client_id: str
    number: int
    archetype: str
    full_name: str
    timezone: str
    city: str
    banks: tuple[str, ...]
    history_start: date
    quiet_from: date | None  # no bank has a row on or after this day (history froze)
    opening: dict[str, int] = field(hash=False)  # checking balance per bank at history start
    incomes: tuple[Income, ...] = ()
    loans: tuple[Loan, ...] = ()
    deposits: tuple[Deposit, ...] = ()
    cards: tuple[Card, ...] = ()
    bills: tuple[Bill, ...] = ()
    transfers: tuple[Transfer, ...] = ()
    spending: tuple[Spending, ...] = ()
    extra_checking: int = 0  # extra checking accounts per bank (benchmark heavy clients)

    def spending_at(self, bank: str) -> Spending | None:
        return next((s for s in self.spending if s.bank == bank), None)


# Everyday mixes: (kind, share, low, high) in roubles; kinds: catalog.LIVE_MERCHANTS_BY_KIND.
_MIX_CITY = (
    ("grocery", 0.42, 250, 3500),
    ("restaurant", 0.16, 400, 3000),
    ("online_retail", 0.16, 300, 6000),
    ("transport", 0.14, 150, 900),
    ("clothing", 0.06, 1500, 9000),
    ("pharmacy", 0.06, 200, 2500),
)
_MIX_FRUGAL = (
    ("grocery", 0.6, 150, 2000),
    ("pharmacy", 0.15, 150, 1800),
    ("transport", 0.15, 60, 400),
    ("online_retail", 0.1, 200, 2500),
)


def _mix(rows) -> tuple:
    return tuple((kind, share, low * 100, high * 100) for kind, share, low, high in rows)


def mean_purchase(mix) -> float:
    """Expected amount of one everyday purchase of the mix, kopecks."""
    return sum(share * (low + high - 1) / 2 for _kind, share, low, high in mix)


def _per_day(budget_month: int, mix) -> float:
    """Purchases a day that spend `budget_month` kopecks a month on average."""
    return max(budget_month / 30.4375 / mean_purchase(mix), 0.05)


def _start(anchor: date, days_back: int, rng: random.Random) -> datetime:
    moment = time(rng.randrange(7, 19), rng.randrange(60), rng.randrange(60), rng.randrange(10**6))
    return datetime.combine(anchor - timedelta(days=days_back), moment)


def _product(bank: str, kind: str, rng: random.Random, name_part: str = "") -> tuple:
    rows = [p for p in catalog.PRODUCTS[bank] if p[1] == kind and name_part in p[2]]
    return rng.choice(rows)


def _roubles(rng: random.Random, low: int, high: int, step: int = 1000) -> int:
    return rng.randrange(low, high + 1, step) * 100


def _card(client_id, bank, rng, anchor, *, credit: bool, limit: int = 0, used: int = 0) -> Card:
    if credit:
        product = _product(bank, "credit_card", rng)
        name = f'Кредитная карта "{rng.choice(catalog.CARD_BRANDS)}"'
        return Card(
            f"card-cred-{client_id}",
            bank,
            product[0],
            name,
            True,
            limit,
            product[4],
            used,
            _start(anchor, rng.randrange(200, 900), rng),
        )
    product = _product(bank, "card", rng)
    name = f'Дебетовая карта "{rng.choice(catalog.CARD_BRANDS)}"'
    return Card(
        f"card-deb-{client_id}",
        bank,
        product[0],
        name,
        False,
        0,
        0.0,
        0,
        _start(anchor, rng.randrange(300, 1500), rng),
    )


def _loan(
    client_id,
    bank,
    rng,
    anchor,
    *,
    kind: str,
    principal: int,
    days_back: int,
    suffix: str,
    **options,
) -> Loan:
    product = _product(bank, "loan", rng, kind)
    return Loan(
        agreement_id=f"loan-{client_id}-{suffix}",
        bank=bank,
        product_id=product[0],
        product_name=product[2],
        principal=principal,
        rate=product[4],
        term_months=options.pop("term_months", product[7]),
        start=_start(anchor, days_back, rng),
        paid_from=options.pop("paid_from", bank),
        **options,
    )


def _deposit(client_id, bank, rng, anchor, *, amount: int, suffix: str, link="none") -> Deposit:
    product = _product(bank, "deposit", rng)
    return Deposit(
        f"dep-{client_id}-{suffix}",
        bank,
        product[0],
        product[2],
        amount,
        product[4],
        _start(anchor, rng.randrange(40, 330), rng),
        rng.randrange(1, 29),
        link,
    )


def _bills(bank: str, rng: random.Random, kinds: tuple[str, ...]) -> list[Bill]:
    bills = []
    for kind in kinds:
        low, high = catalog.BILL_AMOUNTS[kind]
        merchant = rng.choice(catalog.LIVE_MERCHANTS_BY_KIND[kind]) if kind != "rent" else -1
        description = "Аренда квартиры" if kind == "rent" else ""
        bills.append(
            Bill(
                kind,
                merchant,
                description,
                bank,
                rng.randrange(3, 28),
                _roubles(rng, low, high, 10),
            )
        )
    return bills


def _suffix(rng: random.Random) -> str:
    return f"{rng.randrange(100, 10000):04d}"


@lru_cache(maxsize=512)
def persona(
    seed: int, client_id: str, number: int, anchor: date, months: int, extra_checking: int = 0
) -> Persona:
    """The model of client `number` (deterministic from the seed; cached)."""
    archetype_number = (number - 1) % 10 + 1 if number >= 1 else 1
    archetype = ARCHETYPES[archetype_number]
    rng = random.Random(f"{seed}:{client_id}:persona")
    full_name = (
        f"{rng.choice(catalog.LAST_NAMES)} {rng.choice(catalog.FIRST_NAMES)} "
        f"{rng.choice(catalog.PATRONYMICS)}"
    )
    history_start = anchor - timedelta(days=round(months * 30.44))
    builder = _ARCHETYPE_BUILDERS[archetype]
    parts = builder(rng, client_id, anchor, history_start)
    banks = parts.pop("banks")
    timezone_name = parts.pop("timezone", MOSCOW)
    city = "Новосибирск" if timezone_name == NOVOSIBIRSK else "Москва"
    quiet_days = parts.pop("quiet_days", 0)
    opening = {bank: _roubles(rng, 15000, 120000, 100) + rng.randrange(100) for bank in banks}
    opening.update(parts.pop("opening", {}))
    _balance_the_budget(parts, banks, rng)
    if parts.get("incomes"):  # a cushion of about one month's income where it arrives
        main = parts["incomes"][0]
        opening[main.bank] = max(opening[main.bank], round(monthly_income(main) / 100) * 100)
    return Persona(
        client_id=client_id,
        number=number,
        archetype=archetype,
        full_name=full_name,
        timezone=timezone_name,
        city=city,
        banks=tuple(b for b in catalog.BANK_CODES if b in banks),
        history_start=history_start,
        quiet_from=anchor - timedelta(days=quiet_days) if quiet_days else None,
        opening=opening,
        extra_checking=extra_checking,
        **{key: tuple(value) for key, value in parts.items()},
    )


def monthly_income(income: Income) -> float:
    """Expected credits of an income stream in an average month, kopecks."""
    mean = (income.low + income.high) / 2
    if income.gap is not None:
        return mean * 30.4375 / ((income.gap[0] + income.gap[1]) / 2)
    return mean * len(income.days)


def monthly_spending(spending: Spending) -> float:
    """Expected everyday card spending at one bank in an average month (travel apart), kopecks."""
    total = spending.per_day * mean_purchase(spending.mix) * 30.4375
    if spending.weekly is not None:
        total += (spending.weekly[2] + spending.weekly[3] - 1) / 2 * 30.4375 / 7
    return total


def _balance_the_budget(parts: dict, banks, rng: random.Random) -> None:
    """Spend at most 88% of income (100% for a card user near the limit), then top up every
    other bank from the main income's bank each month so that no account drifts below zero."""
    incomes, spending = parts.get("incomes", []), parts.get("spending", [])
    loans = [loan for loan in parts.get("loans", []) if loan.status == "active"]
    fixed = sum(loan.instalment for loan in loans if loan.repaid_on is None)
    fixed += sum(bill.amount for bill in parts.get("bills", []))
    income = sum(monthly_income(i) for i in incomes if i.main)
    income += sum(d.monthly_interest for d in parts.get("deposits", []))
    travel = sum(
        (s.travel[0] + s.travel[1]) / 2 * 30.4375 / s.travel_every
        for s in spending
        if s.travel_every
    )
    everyday = sum(monthly_spending(s) for s in spending)
    share = (
        1.0 if any(c.credit and c.used > c.limit * 0.8 for c in parts.get("cards", [])) else 0.88
    )
    room = income * share - fixed - travel
    if everyday > room > 0:
        factor = room / everyday
        spending = [
            Spending(s.bank, s.per_day * factor, s.mix, s.weekly, s.travel_every, s.travel)
            for s in spending
        ]
        parts["spending"] = spending
    if not incomes:
        return
    primary = incomes[0].bank
    flow = dict.fromkeys(banks, 0.0)
    for s in spending:
        flow[s.bank] -= monthly_spending(s)
        if s.travel_every:
            flow[s.bank] -= (s.travel[0] + s.travel[1]) / 2 * 30.4375 / s.travel_every
    for bill in parts.get("bills", []):
        flow[bill.bank] -= bill.amount
    for loan in loans:
        if loan.repaid_on is None:
            flow[loan.paid_from] -= loan.instalment
    for transfer in parts.get("transfers", []):
        flow[transfer.from_bank] -= transfer.amount
        flow[transfer.to_bank] += transfer.amount
    for i in incomes:
        flow[i.bank] += monthly_income(i)
    for deposit in parts.get("deposits", []):
        flow[deposit.bank] += deposit.monthly_interest
    transfers = list(parts.get("transfers", []))
    for bank in banks:
        if bank != primary and flow[bank] < 0:
            amount = round(-flow[bank] * 1.05 / 100) * 100
            transfers.append(Transfer(primary, bank, rng.randrange(2, 27), amount))
    parts["transfers"] = transfers


def _salary(bank, rng, history_start, *, low, high, days=None, description="Доход") -> Income:
    if days is None:
        first = rng.randrange(3, 13)
        days = (first, first + 15)
    base = _roubles(rng, low, high)
    return Income(
        f"salary-{bank}",
        "salary",
        description,
        bank,
        round(base * 0.97),
        round(base * 1.03),
        days=tuple(days),
        first=history_start,
    )


def _everyday(bank, rng, budget, *, mix=_MIX_CITY, weekly=True, travel=0) -> Spending:
    mixed = _mix(mix)
    weekly_visit = None
    if weekly:
        merchant = rng.choice(catalog.LIVE_MERCHANTS_BY_KIND["restaurant"])
        weekly_visit = (rng.randrange(4, 7), merchant, 1200_00, 4500_00)
        budget -= round((1200_00 + 4500_00) / 2 * 30.4375 / 7)
    return Spending(
        bank,
        _per_day(max(budget, 3000_00), mixed),
        mixed,
        weekly_visit,
        travel,
        (25000_00, 120000_00),
    )


def _salaried_mortgage(rng, client_id, anchor, history_start) -> dict:
    salary = _salary("vbank", rng, history_start, low=70000, high=110000)
    mortgage = _loan(
        client_id,
        "vbank",
        rng,
        anchor,
        kind="Ипотека",
        principal=_roubles(rng, 2500000, 6000000, 50000),
        days_back=rng.randrange(700, 1500),
        suffix=_suffix(rng),
        link="loan_account",
        parts=rng.choice((2, 3)),
        end_date_given=True,
    )
    income = (salary.low + salary.high) // 2 * 2
    budget = income - mortgage.instalment - 9000_00
    return {
        "banks": ("vbank", "abank", "sbank"),
        "incomes": [salary],
        "loans": [mortgage],
        "deposits": [
            _deposit(
                client_id,
                "abank",
                rng,
                anchor,
                amount=_roubles(rng, 150000, 400000, 10000),
                suffix=_suffix(rng),
                link="checking",
            )
        ],
        "cards": [
            _card(client_id, "vbank", rng, anchor, credit=False),
            _card(
                client_id,
                "sbank",
                rng,
                anchor,
                credit=True,
                limit=_roubles(rng, 100000, 300000, 10000),
                used=0,
            ),
        ],
        "bills": _bills("vbank", rng, ("telecom", "utilities", "subscription")),
        "spending": [
            _everyday("vbank", rng, round(budget * 0.6), travel=80),
            _everyday("abank", rng, round(budget * 0.15), weekly=False),
            _everyday("sbank", rng, round(budget * 0.1), weekly=False),
        ],
        "opening": {"vbank": _roubles(rng, 90000, 160000, 100)},
    }


def _sole_trader(rng, client_id, anchor, history_start) -> dict:
    business = Income(
        "business-abank",
        "business",
        "Доход от бизнеса",
        "abank",
        4000_00,
        38000_00,
        gap=(1, 6),
        first=history_start,
    )
    consumer = _loan(
        client_id,
        "abank",
        rng,
        anchor,
        kind="",
        principal=_roubles(rng, 300000, 700000, 10000),
        days_back=rng.randrange(120, 500),
        suffix=_suffix(rng),
        link="checking",
        parts=rng.choice((1, 3)),
        term_months=36,
    )
    car = _loan(
        client_id,
        "sbank",
        rng,
        anchor,
        kind="Авто",
        principal=_roubles(rng, 900000, 1600000, 50000),
        days_back=rng.randrange(200, 700),
        suffix=_suffix(rng),
        link="none",
        served=False,
        parts=2,
    )
    monthly = (4000_00 + 38000_00) // 2 * 30.4375 / 3.5
    budget = round(monthly - consumer.instalment - car.instalment - 6000_00)
    return {
        "banks": ("vbank", "abank", "sbank"),
        "timezone": NOVOSIBIRSK,
        "incomes": [business],
        "loans": [consumer, car],
        "cards": [_card(client_id, "abank", rng, anchor, credit=False)],
        "bills": _bills("abank", rng, ("telecom", "rent")),
        "spending": [
            _everyday("abank", rng, round(budget * 0.55), travel=120),
            _everyday("vbank", rng, round(budget * 0.25), weekly=False),
        ],
        "opening": {"sbank": car.instalment * 2, "abank": _roubles(rng, 120000, 200000, 100)},
    }


def _saver(rng, client_id, anchor, history_start) -> dict:
    salary = _salary("vbank", rng, history_start, low=150000, high=260000)
    deposits = [
        _deposit(
            client_id,
            bank,
            rng,
            anchor,
            amount=_roubles(rng, 800000, 4000000, 50000),
            suffix=_suffix(rng),
            link=rng.choice(("none", "checking")),
        )
        for bank in ("vbank",) * 6 + ("sbank",) * 4
    ]
    income = (salary.low + salary.high) // 2 * 2
    return {
        "banks": ("vbank", "sbank"),
        "incomes": [salary],
        "deposits": deposits,
        "cards": [_card(client_id, "vbank", rng, anchor, credit=False)],
        "bills": _bills("vbank", rng, ("telecom", "utilities", "subscription")),
        "spending": [
            _everyday("vbank", rng, round(income * 0.45), travel=60),
            _everyday("sbank", rng, round(income * 0.05), weekly=False),
        ],
    }


def _credit_card_near_limit(rng, client_id, anchor, history_start) -> dict:
    salary = _salary("abank", rng, history_start, low=45000, high=65000)
    limit_a = _roubles(rng, 200000, 300000, 10000)
    limit_s = _roubles(rng, 80000, 150000, 10000)
    loan = _loan(
        client_id,
        "abank",
        rng,
        anchor,
        kind="",
        principal=_roubles(rng, 100000, 200000, 10000),
        days_back=rng.randrange(90, 300),
        suffix=_suffix(rng),
        link="none",
        term_months=24,
    )
    income = (salary.low + salary.high) // 2 * 2
    budget = income - loan.instalment - 4000_00
    return {
        "banks": ("abank", "sbank"),
        "incomes": [salary],
        "loans": [loan],
        "cards": [
            _card(
                client_id,
                "abank",
                rng,
                anchor,
                credit=True,
                limit=limit_a,
                used=round(limit_a * rng.uniform(0.9, 0.97)),
            ),
            _card(
                client_id,
                "sbank",
                rng,
                anchor,
                credit=True,
                limit=limit_s,
                used=round(limit_s * rng.uniform(0.85, 0.95)),
            ),
        ],
        "bills": _bills("abank", rng, ("telecom", "subscription")),
        "spending": [
            _everyday("abank", rng, round(budget * 0.8), travel=0),
            _everyday("sbank", rng, round(budget * 0.15), weekly=False),
        ],
        "opening": {"abank": _roubles(rng, 20000, 40000, 100), "sbank": 3000_00},
    }


def _student(rng, client_id, anchor, history_start) -> dict:
    odd_jobs = Income(
        "irregular-sbank",
        "irregular",
        "Доход",
        "sbank",
        2500_00,
        14000_00,
        gap=(4, 16),
        first=history_start,
    )
    loan = _loan(
        client_id,
        "sbank",
        rng,
        anchor,
        kind="наличными",
        principal=_roubles(rng, 40000, 90000, 5000),
        days_back=rng.randrange(60, 250),
        suffix=_suffix(rng),
        link="checking",
        term_months=18,
    )
    monthly = (2500_00 + 14000_00) // 2 * 30.4375 / 10
    budget = round(monthly - loan.instalment - 500_00)
    return {
        "banks": ("vbank", "sbank"),
        "timezone": NOVOSIBIRSK,
        "incomes": [odd_jobs],
        "loans": [loan],
        "cards": [
            _card(
                client_id,
                "sbank",
                rng,
                anchor,
                credit=True,
                limit=_roubles(rng, 20000, 40000, 5000),
                used=_roubles(rng, 5000, 15000),
            )
        ],
        "bills": _bills("sbank", rng, ("telecom", "subscription")),
        "spending": [
            _everyday("sbank", rng, round(budget * 0.8), mix=_MIX_FRUGAL, weekly=False),
            _everyday("vbank", rng, round(budget * 0.1), mix=_MIX_FRUGAL, weekly=False),
        ],
        "opening": {"sbank": _roubles(rng, 8000, 15000, 100), "vbank": 1500_00},
    }


def _pensioner(rng, client_id, anchor, history_start) -> dict:
    amount = _roubles(rng, 22000, 34000, 100)
    pension = Income(
        "pension-vbank",
        "pension",
        "Доход",
        "vbank",
        amount,
        amount,
        days=(rng.choice((4, 5, 13)),),
        first=history_start,
    )
    return {
        "banks": ("vbank",),
        "incomes": [pension],
        "deposits": [
            _deposit(
                client_id,
                "vbank",
                rng,
                anchor,
                amount=_roubles(rng, 400000, 1200000, 10000),
                suffix=_suffix(rng),
            )
        ],
        "cards": [_card(client_id, "vbank", rng, anchor, credit=False)],
        "bills": _bills("vbank", rng, ("telecom", "utilities")),
        "spending": [_everyday("vbank", rng, round(amount * 0.7), mix=_MIX_FRUGAL, weekly=False)],
        "opening": {"vbank": _roubles(rng, 30000, 60000, 100)},
    }


def _frozen_history(rng, client_id, anchor, history_start) -> dict:
    parts = _salaried_consumer(rng, client_id, anchor, history_start, banks=("vbank", "abank"))
    parts["quiet_days"] = 14
    return parts


def _salaried_consumer(rng, client_id, anchor, history_start, *, banks) -> dict:
    salary = _salary(banks[0], rng, history_start, low=50000, high=90000)
    loan = _loan(
        client_id,
        banks[0],
        rng,
        anchor,
        kind="",
        principal=_roubles(rng, 200000, 500000, 10000),
        days_back=rng.randrange(100, 400),
        suffix=_suffix(rng),
        link=rng.choice(("checking", "none")),
        parts=rng.choice((1, 2)),
        term_months=36,
    )
    income = (salary.low + salary.high) // 2 * 2
    budget = income - loan.instalment - 5000_00
    return {
        "banks": banks,
        "incomes": [salary],
        "loans": [loan],
        "cards": [_card(client_id, banks[0], rng, anchor, credit=False)],
        "bills": _bills(banks[0], rng, ("telecom", "subscription")),
        "spending": [
            _everyday(banks[0], rng, round(budget * 0.7), travel=100),
            _everyday(banks[1], rng, round(budget * 0.2), weekly=False),
        ],
    }


def _loan_repaid(rng, client_id, anchor, history_start) -> dict:
    parts = _salaried_consumer(rng, client_id, anchor, history_start, banks=("vbank", "abank"))
    (loan,) = parts["loans"]
    repaid_on = date(anchor.year, anchor.month, 1) - timedelta(days=rng.randrange(40, 55))
    suffix = loan.agreement_id.rsplit("-", 1)[1]
    old = _loan(
        client_id,
        "abank",
        rng,
        anchor,
        kind="",
        principal=_roubles(rng, 50000, 150000, 10000),
        days_back=900,
        suffix=suffix,
        link="none",
        term_months=12,
        status="closed",
    )
    parts["loans"] = [
        Loan(
            **{**loan.__dict__, "repaid_on": repaid_on, "start": loan.start - timedelta(days=200)}
        ),
        old,
    ]
    return parts


def _loan_paid_from_other_bank(rng, client_id, anchor, history_start) -> dict:
    salary = _salary("abank", rng, history_start, low=60000, high=100000)
    loan = _loan(
        client_id,
        "vbank",
        rng,
        anchor,
        kind="",
        principal=_roubles(rng, 300000, 800000, 10000),
        days_back=rng.randrange(150, 500),
        suffix=_suffix(rng),
        link="checking",
        paid_from="abank",
        term_months=36,
        parts=rng.choice((1, 2)),
    )
    income = (salary.low + salary.high) // 2 * 2
    budget = income - loan.instalment - 5000_00
    return {
        "banks": ("vbank", "abank"),
        "timezone": NOVOSIBIRSK,
        "incomes": [salary],
        "loans": [loan],
        "cards": [_card(client_id, "abank", rng, anchor, credit=False)],
        "bills": _bills("abank", rng, ("telecom", "utilities")),
        "spending": [
            _everyday("abank", rng, round(budget * 0.75), travel=90),
            _everyday("vbank", rng, round(budget * 0.1), weekly=False),
        ],
        "opening": {"vbank": _roubles(rng, 1000, 5000, 100)},
    }


def _own_transfers(rng, client_id, anchor, history_start) -> dict:
    salary = _salary("vbank", rng, history_start, low=80000, high=140000)
    loan = _loan(
        client_id,
        "sbank",
        rng,
        anchor,
        kind="наличными",
        principal=_roubles(rng, 150000, 400000, 10000),
        days_back=rng.randrange(100, 400),
        suffix=_suffix(rng),
        link="checking",
        term_months=18,
        parts=3,
    )
    income = (salary.low + salary.high) // 2 * 2
    budget = income - loan.instalment - 6000_00
    to_sbank = round(budget * 0.55) + loan.instalment
    return {
        "banks": ("vbank", "abank", "sbank"),
        "incomes": [salary],
        "loans": [loan],
        "deposits": [
            _deposit(
                client_id,
                "abank",
                rng,
                anchor,
                amount=_roubles(rng, 100000, 300000, 10000),
                suffix=_suffix(rng),
            )
        ],
        "cards": [_card(client_id, "sbank", rng, anchor, credit=False)],
        "bills": _bills("vbank", rng, ("telecom", "utilities", "subscription")),
        "transfers": [
            Transfer("vbank", "sbank", salary.days[0] + 1, to_sbank),
            Transfer("vbank", "abank", salary.days[1] + 1, 15000_00),
        ],
        "spending": [
            _everyday("sbank", rng, round(budget * 0.55), travel=100),
            _everyday("vbank", rng, round(budget * 0.2), weekly=False),
            _everyday("abank", rng, 12000_00, weekly=False),
        ],
    }


_ARCHETYPE_BUILDERS = {
    "salaried_mortgage": _salaried_mortgage,
    "sole_trader": _sole_trader,
    "saver": _saver,
    "credit_card_near_limit": _credit_card_near_limit,
    "student": _student,
    "pensioner": _pensioner,
    "frozen_history": _frozen_history,
    "loan_repaid": _loan_repaid,
    "loan_paid_from_other_bank": _loan_paid_from_other_bank,
    "own_transfers": _own_transfers,
}


def client_number(client_id: str) -> int | None:
    """The N of `<team>-N` (any N ≥ 1 in the live style), else None."""
    prefix = f"{settings.BANK_TEAM_ID}-"
    if not client_id.startswith(prefix):
        return None
    digits = client_id[len(prefix) :]
    if not digits.isdigit() or len(digits) > 7 or digits.startswith("0"):
        return None
    return int(digits)
