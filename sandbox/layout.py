"""Who banks where: each client's accounts and product agreements, derived from the seed."""

import random
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from functools import lru_cache

from django.conf import settings

from sandbox import catalog


@dataclass(frozen=True)
class LoanPayment:
    """Five equal debits on days 1–5 of every month after the loan started."""

    agreement_id: str
    first_month: tuple[int, int]
    instalment: int  # kopecks, one fifth of the monthly payment


@dataclass(frozen=True)
class Account:
    """One account of a client at one bank; amounts in kopecks."""

    account_id: str
    bank: str
    client_id: str
    subtype: str  # Checking | Savings | Deposit | Loan
    identification: str
    opening_date: date
    opening_balance: int
    holder: str
    default_volume: int = 0  # transactions per year when no override applies
    salary: int = 0
    salary_day: int = 0
    employer: str = ""
    rent: int = 0
    rent_day: int = 0
    card: tuple[str, str, str] | None = None  # cardId, cardNumber, cardName
    loan_payments: tuple[LoanPayment, ...] = ()
    city: str = ""  # live style: where the client lives (merchant and location cities)
    index: int = 0  # live style: the account's index within the client's accounts at its bank

    @property
    def has_history(self) -> bool:
        return self.subtype in ("Checking", "Savings")


@dataclass(frozen=True)
class Agreement:
    """A product agreement; the balance of its linked account is `account_balance` kopecks."""

    agreement_id: str
    product_id: str
    product_name: str
    product_type: str
    interest_rate: float
    amount: float
    status: str
    start: datetime
    end: datetime | None
    account_number: str | None
    account_balance: int | None


@dataclass(frozen=True)
class BankLayout:
    accounts: tuple[Account, ...]
    agreements: tuple[Agreement, ...]


@dataclass(frozen=True)
class ClientLayout:
    client_id: str
    number: int
    full_name: str
    banks: dict[str, BankLayout] = field(hash=False)


def client_ids() -> list[str]:
    """All clients the sandbox banks know: `<team>-1 … <team>-N`."""
    team = settings.BANK_TEAM_ID
    return [f"{team}-{n}" for n in range(1, settings.SANDBOX_CLIENT_COUNT + 1)]


def client_number(client_id: str) -> int | None:
    """The N of `<team>-N` if that client exists, else None.

    Live style (the default): every N ≥ 1 exists. Examples style: 1 … SANDBOX_CLIENT_COUNT.
    """
    if settings.SANDBOX_DATA_STYLE == "live":
        from sandbox.personas import client_number as live_client_number

        return live_client_number(client_id)
    prefix = f"{settings.BANK_TEAM_ID}-"
    if not client_id.startswith(prefix) or not client_id[len(prefix) :].isdigit():
        return None
    number = int(client_id[len(prefix) :])
    return number if 1 <= number <= settings.SANDBOX_CLIENT_COUNT else None


def _digits(rng: random.Random, n: int) -> str:
    return "".join(str(rng.randrange(10)) for _ in range(n))


def _hex(rng: random.Random, n: int) -> str:
    return f"{rng.getrandbits(4 * n):0{n}x}"


def _naive(day: date, rng: random.Random) -> datetime:
    moment = time(
        rng.randrange(8, 21), rng.randrange(60), rng.randrange(60), rng.randrange(1, 10**6)
    )
    return datetime.combine(day, moment)


def _annuity_kopecks(amount: float, rate: float, months: int) -> int:
    monthly_rate = rate / 1200
    payment = amount * monthly_rate / (1 - (1 + monthly_rate) ** -months)
    return round(payment * 100)


def _product(bank: str, product_type: str, rng: random.Random) -> tuple:
    return rng.choice([p for p in catalog.PRODUCTS[bank] if p[1] == product_type])


@lru_cache(maxsize=256)
def client_layout(
    seed: int, client_id: str, anchor: date, months: int, checking_accounts: int = 0
) -> ClientLayout:
    """Accounts and agreements of one client at every bank (deterministic, cached)."""
    number = client_number(client_id) or 0
    rng = random.Random(f"{seed}:{client_id}:layout")
    full_name = (
        f"{rng.choice(catalog.LAST_NAMES)} {rng.choice(catalog.FIRST_NAMES)} "
        f"{rng.choice(catalog.PATRONYMICS)} ({settings.BANK_TEAM_ID})"
    )
    roll = rng.random()
    if number == 1 or roll < 0.55:
        banks = list(catalog.BANK_CODES)
    elif roll < 0.9:
        banks = sorted(rng.sample(catalog.BANK_CODES, 2), key=catalog.BANK_CODES.index)
    else:
        banks = [rng.choice(catalog.BANK_CODES)]
    primary = banks[0] if number == 1 else rng.choice(banks)
    layouts = {}
    for bank in banks:
        bank_rng = random.Random(f"{seed}:{client_id}:{bank}:layout")
        layouts[bank] = _bank_layout(
            bank_rng, bank, client_id, number, full_name, anchor, months, bank == primary
        )
        if checking_accounts > 1:
            layouts[bank] = _with_checking_accounts(
                layouts[bank], seed, checking_accounts, anchor, months
            )
    return ClientLayout(client_id=client_id, number=number, full_name=full_name, banks=layouts)


def _bank_layout(rng, bank, client_id, number, holder, anchor, months, primary) -> BankLayout:
    prefix = f"acc-{catalog.BANKS[bank]['digit']}{number:04d}"
    history_start = anchor - timedelta(days=round(months * 30.44) + rng.randrange(0, 21))
    agreements: list[Agreement] = []
    linked: list[Account] = []
    payments: list[LoanPayment] = []
    forced = number == 1 and bank == "vbank"

    def add_linked(subtype: str, number_prefix: str, opened: date, balance: int) -> str:
        identification = number_prefix + _hex(rng, 15)
        linked.append(
            Account(
                account_id=f"{prefix}{len(linked) + 2}",
                bank=bank,
                client_id=client_id,
                subtype=subtype,
                identification=identification,
                opening_date=opened,
                opening_balance=balance,
                holder=holder,
            )
        )
        return identification

    if forced or rng.random() < 0.45:  # a loan, paid from the checking account
        product = _product(bank, "loan", rng)
        amount = float(rng.randrange(max(product[5], 100000), min(product[6] // 2, 600000), 10000))
        start = _naive(anchor - timedelta(days=rng.randrange(40, 600)), rng)
        term = product[7]
        elapsed = (anchor.year - start.year) * 12 + anchor.month - start.month
        outstanding = round(amount * 100 * max(0.05, 1 - elapsed / term))
        agreement_id = f"agr-{_hex(rng, 12)}"
        account_number = add_linked("Loan", "455", start.date(), outstanding)
        instalment = _annuity_kopecks(amount, product[4], term) // 5
        first = (start.year + start.month // 12, start.month % 12 + 1)
        payments.append(LoanPayment(agreement_id, first, instalment))
        end = start + timedelta(days=30 * term)
        agreements.append(
            Agreement(agreement_id, product[0], product[2], "loan", product[4], amount,
                      "active", start, end, account_number, outstanding)
        )  # fmt: skip
    if forced or rng.random() < 0.4:  # a deposit, balance = invested sum
        product = _product(bank, "deposit", rng)
        amount = float(rng.randrange(product[5], product[5] * 6, 5000))
        start = _naive(anchor - timedelta(days=rng.randrange(10, 170)), rng)
        account_number = add_linked("Deposit", "423", start.date(), round(amount * 100))
        agreements.append(
            Agreement(f"agr-{_hex(rng, 12)}", product[0], product[2], "deposit", product[4],
                      amount, "active", start, start + timedelta(days=30 * product[7]),
                      account_number, round(amount * 100))
        )  # fmt: skip
    if forced or rng.random() < 0.3:  # a credit card, balance = amount used
        product = _product(bank, "credit_card", rng)
        limit = float(rng.randrange(50000, product[6] + 1, 10000))
        start = _naive(anchor - timedelta(days=rng.randrange(30, 500)), rng)
        used = round(limit * 100 * rng.uniform(0, 0.6))
        account_number = add_linked("Loan", "455", start.date(), used)
        agreements.append(
            Agreement(f"agr-{_hex(rng, 12)}", product[0], product[2], "credit_card",
                      product[4], limit, "active", start, None, account_number, used)
        )  # fmt: skip
    if rng.random() < 0.15:  # a closed deposit: its account is gone from the account list
        product = _product(bank, "deposit", rng)
        start = _naive(anchor - timedelta(days=rng.randrange(400, 700)), rng)
        agreements.append(
            Agreement(f"agr-{_hex(rng, 12)}", product[0], product[2], "deposit", product[4],
                      float(product[5]), "closed", start, start + timedelta(days=30 * product[7]),
                      "423" + _hex(rng, 15), None)
        )  # fmt: skip

    card = (f"card-{_hex(rng, 12)}", f"****{_digits(rng, 4)}", rng.choice(catalog.CARD_NAMES))
    checking = Account(
        account_id=f"{prefix}0",
        bank=bank,
        client_id=client_id,
        subtype="Checking",
        identification="40817810" + _digits(rng, 12),
        opening_date=history_start,
        opening_balance=rng.randrange(20000, 300000) * 100 + rng.randrange(100),
        holder=holder,
        default_volume=rng.randrange(70, 301),
        # Outside the primary bank, a part-time salary covers any loan paid there.
        salary=rng.randrange(60000, 180000) * 100
        if primary
        else 8 * sum(payment.instalment for payment in payments),
        salary_day=rng.randrange(1, 29),
        employer=rng.choice(catalog.EMPLOYERS),
        rent=rng.randrange(15000, 45000) * 100 if primary else 0,
        rent_day=rng.randrange(6, 29),
        card=card,
        loan_payments=tuple(payments),
    )
    accounts = [checking]
    if forced or rng.random() < 0.3:
        accounts.append(
            Account(
                account_id=f"{prefix}1",
                bank=bank,
                client_id=client_id,
                subtype="Savings",
                identification="42301810" + _digits(rng, 12),
                opening_date=history_start + timedelta(days=rng.randrange(0, 90)),
                opening_balance=rng.randrange(10000, 500000) * 100,
                holder=holder,
            )
        )
    accounts.extend(linked)
    agreements.sort(key=lambda agreement: agreement.start, reverse=True)
    return BankLayout(accounts=tuple(accounts), agreements=tuple(agreements))


def _with_checking_accounts(
    layout: BankLayout, seed: int, wanted: int, anchor: date, months: int
) -> BankLayout:
    """A heavy client's extra checking accounts (benchmarks), drawn from their own RNG so the
    layout's other accounts stay exactly as without the knob."""
    first = layout.accounts[0]
    rng = random.Random(f"{seed}:{first.client_id}:{first.bank}:extra-checking")
    history_start = anchor - timedelta(days=round(months * 30.44))
    prefix = first.account_id[:-1]
    extra = []
    have = sum(1 for account in layout.accounts if account.subtype == "Checking")
    after = 1 + max(int(account.account_id[len(prefix) :]) for account in layout.accounts)
    # Account ids end in one index digit (`_find_account` parses them), so at most index 9.
    for index in range(after, min(after + max(wanted - have, 0), 10)):
        extra.append(
            Account(
                account_id=f"{prefix}{index}",
                bank=first.bank,
                client_id=first.client_id,
                subtype="Checking",
                identification="40817810" + _digits(rng, 12),
                opening_date=history_start,
                opening_balance=rng.randrange(20000, 300000) * 100,
                holder=first.holder,
                default_volume=rng.randrange(70, 301),
                card=(
                    f"card-{_hex(rng, 12)}",
                    f"****{_digits(rng, 4)}",
                    rng.choice(catalog.CARD_NAMES),
                ),
            )
        )
    return BankLayout(accounts=layout.accounts + tuple(extra), agreements=layout.agreements)


def bank_layout(
    seed: int, client_id: str, bank: str, anchor: date, months: int, checking_accounts: int = 0
) -> BankLayout:
    """The client's accounts and agreements at one bank (empty if not a client there)."""
    layout = client_layout(seed, client_id, anchor, months, checking_accounts)
    return layout.banks.get(bank, BankLayout((), ()))


def parse_account_id(account_id: str) -> tuple[int, str] | None:
    """`acc-<digits>` → (bank digit, client number + index digits); None when not numeric."""
    if not account_id.startswith("acc-") or not account_id[4:].isdigit():
        return None
    return int(account_id[4]), account_id[5:]
