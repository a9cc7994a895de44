"""Plain functions creating banking rows for tests (shared by every app's tests: keep it stable)."""

import itertools
from datetime import UTC, date, datetime, time
from decimal import Decimal

from banking.categorization import category_id_for
from banking.models import (
    Account,
    AccountType,
    BalanceSnapshot,
    BankConnection,
    BankProduct,
    ConnectionStatus,
    ProductAgreement,
    Transaction,
    TransactionCategory,
    TransactionStatus,
)

_sequence = itertools.count(1)


def at(day: date | str, hour: int = 12) -> datetime:
    """An aware UTC datetime on `day` (a date or "YYYY-MM-DD") at `hour`:00."""
    if isinstance(day, str):
        day = date.fromisoformat(day)
    return datetime.combine(day, time(hour=hour), tzinfo=UTC)


def make_connection(
    *,
    user,
    bank_code: str = "vbank",
    status: str = ConnectionStatus.READY,
    client_id: str | None = None,
) -> BankConnection:
    """The user's connection to `bank_code` (created once; later calls return it). A connected
    bank has a client: `client_id`, else the demo client a connect would have proposed ("" for
    a connection with none)."""
    from banking.services.connections import demo_client_id_propose

    existing = BankConnection.objects.filter(user=user, bank_code=bank_code).first()
    if existing is not None:
        return existing
    is_demo = client_id is None
    if client_id is None:
        client_id = demo_client_id_propose(bank_code=bank_code, user=user) or f"client-{user.pk}"
    return BankConnection.objects.create(
        user=user,
        bank_code=bank_code,
        status=status,
        client_id=client_id,
        client_id_is_demo=is_demo and bool(client_id),
    )


def client_id_give(
    *, user, client_id: str, bank_codes=None, is_demo: bool = True, take_over: bool = True
) -> list[BankConnection]:
    """Make `user` the bank client `client_id` at each of `bank_codes` (default: every configured
    bank), as connecting would: the connections (created not_connected where missing). Rows are
    written directly (no audit event; the unique constraint still holds). `is_demo`: a demo
    client FinTrack proposed (self-signable). `take_over`: another test user holding that client
    there loses it first (a test picking a sandbox persona by number need not know who
    registered before)."""
    from django.conf import settings

    connections = []
    for bank_code in bank_codes or list(settings.BANKS):
        if take_over:
            BankConnection.objects.filter(bank_code=bank_code, client_id=client_id).exclude(
                user=user
            ).update(client_id="", client_id_is_demo=False)
        connection, _ = BankConnection.objects.update_or_create(
            user=user,
            bank_code=bank_code,
            defaults={"client_id": client_id, "client_id_is_demo": is_demo},
        )
        connections.append(connection)
    return connections


def client_id_of(*, user, bank_code: str = "vbank") -> str:
    """Who `user` is at `bank_code`: the connection's client id ("" without one)."""
    connection = BankConnection.objects.filter(user=user, bank_code=bank_code).first()
    return connection.client_id if connection else ""


def make_account(
    *,
    user,
    bank_code: str = "vbank",
    account_type: str = AccountType.CHECKING,
    currency: str = "RUB",
    balance: Decimal | str | None = "1000.00",
    balance_as_of: datetime | None = None,
    is_active: bool = True,
    bank_account_id: str | None = None,
    identification: str | None = None,
    connection: BankConnection | None = None,
) -> Account:
    """An account of `user` at `bank_code` with its current balance."""
    number = next(_sequence)
    connection = connection or make_connection(user=user, bank_code=bank_code)
    identification = identification or f"40817810{number:012d}"
    return Account.objects.create(
        user=user,
        connection=connection,
        bank_code=bank_code,
        bank_account_id=bank_account_id or f"acc-{number}",
        identification=identification,
        masked_number=f"**** {identification[-4:]}",
        account_type=account_type,
        bank_subtype=str(account_type).title(),
        bank_status="Enabled",
        currency=currency,
        is_active=is_active,
        current_balance=Decimal(balance) if balance is not None else None,
        balance_as_of=balance_as_of or (at("2025-11-25") if balance is not None else None),
    )


def make_snapshot(
    *, account: Account, available: Decimal | str, as_of: datetime, booked=None
) -> BalanceSnapshot:
    """One balance reading of `account`."""
    return BalanceSnapshot.objects.create(
        account=account,
        available=Decimal(available),
        booked=Decimal(booked if booked is not None else available),
        currency=account.currency,
        as_of=as_of,
    )


def category(code: str) -> TransactionCategory:
    """The seeded category with `code`."""
    return TransactionCategory.objects.get(code=code)


def make_transaction(
    *,
    account: Account,
    amount: Decimal | str,
    booking_date: datetime | date | str,
    description: str = "",
    status: str = TransactionStatus.BOOKED,
    merchant_name: str = "",
    merchant_category: str = "",
    mcc: str = "",
    counterparty: str = "",
    category_code: str | None = None,
    currency: str | None = None,
    bank_transaction_id: str | None = None,
) -> Transaction:
    """A transaction on `account`, categorised like the sync does unless category_code is given."""
    amount = Decimal(amount)
    if not isinstance(booking_date, datetime):
        booking_date = at(booking_date)
    if category_code is not None:
        category_id = category(category_code).id
    else:
        category_id = category_id_for(
            description=description, mcc=mcc, merchant_category=merchant_category, amount=amount
        )
    return Transaction.objects.create(
        user_id=account.user_id,
        account=account,
        bank_code=account.bank_code,
        bank_transaction_id=bank_transaction_id or f"tx-{next(_sequence)}",
        amount=amount,
        currency=currency or account.currency,
        booking_date=booking_date,
        value_date=booking_date,
        status=status,
        description=description,
        merchant_name=merchant_name,
        merchant_category=merchant_category,
        mcc=mcc,
        counterparty=counterparty,
        category_id=category_id,
    )


def make_agreement(
    *,
    user,
    bank_code: str = "vbank",
    product_type: str = "loan",
    agreement_id: str | None = None,
    principal: Decimal | str | None = "100000.00",
    interest_rate: Decimal | str | None = "12.000",
    term_months: int | None = 12,
    start_date: datetime | None = None,
    linked_account: Account | None = None,
    remaining_balance: Decimal | str | None = None,
    status: str = "active",
    product_name: str = "Потребительский кредит 12%",
) -> ProductAgreement:
    """A product agreement (a loan by default: 100000 at 12% for 12 months)."""
    return ProductAgreement.objects.create(
        user=user,
        connection=make_connection(user=user, bank_code=bank_code),
        bank_code=bank_code,
        agreement_id=agreement_id or f"agr-{next(_sequence):012x}",
        product_id="prod-51e2aa6f0c17",
        product_type=product_type,
        product_name=product_name,
        principal=Decimal(principal) if principal is not None else None,
        interest_rate=Decimal(interest_rate) if interest_rate is not None else None,
        term_months=term_months,
        start_date=start_date or at("2025-01-15"),
        linked_account=linked_account,
        account_number=linked_account.identification if linked_account else "",
        remaining_balance=Decimal(remaining_balance) if remaining_balance is not None else None,
        status=status,
    )


def make_product(
    *,
    bank_code: str = "vbank",
    product_id: str | None = None,
    product_type: str = "loan",
    name: str = "Потребительский кредит 12.9%",
    interest_rate: Decimal | str | None = "12.90",
    fetched_at: datetime | None = None,
) -> BankProduct:
    """A catalogue entry of `bank_code`."""
    return BankProduct.objects.create(
        bank_code=bank_code,
        product_id=product_id or f"prod-{next(_sequence):012x}",
        product_type=product_type,
        name=name,
        interest_rate=Decimal(interest_rate) if interest_rate is not None else None,
        fetched_at=fetched_at or at("2025-11-25"),
    )
