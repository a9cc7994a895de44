"""Small ORM builders for analytics tests: connections, accounts, transactions, aggregates."""

import itertools
from datetime import date, datetime, time, timedelta
from decimal import Decimal

from django.utils import timezone

from banking.models import (
    Account,
    BankConnection,
    ProductAgreement,
    Transaction,
    TransactionAggregate,
    TransactionCategory,
)

_ids = itertools.count(1)


def at(day: date, hour: int = 12) -> datetime:
    return datetime.combine(day, time(hour), tzinfo=timezone.get_current_timezone())


def category(code: str) -> TransactionCategory:
    return TransactionCategory.objects.get(code=code)


def make_connection(user, bank_code="vbank", *, fresh_at=None, status="ready") -> BankConnection:
    connection, _ = BankConnection.objects.get_or_create(
        user=user,
        bank_code=bank_code,
        defaults={"status": status, "last_success_at": fresh_at or timezone.now()},
    )
    return connection


def make_account(user, account_type="checking", balance="0", *, bank_code="vbank", **extra):
    connection = make_connection(user, bank_code)
    n = next(_ids)
    return Account.objects.create(
        user=user,
        connection=connection,
        bank_code=bank_code,
        bank_account_id=f"acc-{n}",
        masked_number=f"****{n:04d}",
        account_type=account_type,
        current_balance=Decimal(balance),
        balance_as_of=timezone.now(),
        **extra,
    )


def make_tx(account, day: date, amount, description="", **extra) -> Transaction:
    return Transaction.objects.create(
        user=account.user,
        account=account,
        bank_code=account.bank_code,
        bank_transaction_id=f"tx-{next(_ids)}",
        amount=Decimal(str(amount)),
        booking_date=at(day),
        description=description,
        **extra,
    )


def make_aggregate(user, day: date, code: str, *, income="0", spending="0"):
    return TransactionAggregate.objects.create(
        user=user,
        date=day,
        category=category(code),
        income=Decimal(income),
        spending=Decimal(spending),
        transaction_count=1,
    )


def make_loan(user, *, agreement_id="agr-1", remaining="100000", monthly="10000", **extra):
    connection = make_connection(user, extra.pop("bank_code", "vbank"))
    return ProductAgreement.objects.create(
        user=user,
        connection=connection,
        bank_code=connection.bank_code,
        agreement_id=agreement_id,
        product_type=extra.pop("product_type", "loan"),
        remaining_balance=Decimal(remaining) if remaining is not None else None,
        monthly_payment=Decimal(monthly) if monthly is not None else None,
        **extra,
    )


def months_before(day: date, months: int, on_day: int) -> date:
    """The date `on_day` of the month `months` before `day`'s month."""
    year, month = day.year, day.month - months
    while month < 1:
        year, month = year - 1, month + 12
    return date(year, month, on_day)


def days(start: date, count: int) -> list[date]:
    return [start + timedelta(days=i) for i in range(count)]


def build_household(user, *, months=range(1, 6), year=2026):
    """A salary on the 25th, rent on the 15th, a loan paid in five debits on days 1-5 (through
    June), 10000 moved to savings on the 26th, and the matching daily aggregates."""
    checking = make_account(user, "checking", "50000.00", nickname="Main")
    savings = make_account(user, "savings", "100000.00", nickname="Savings")
    loan_account = make_account(user, "loan", "200000.00", nickname="Loan")
    make_loan(
        user,
        agreement_id="agr-77",
        remaining="210000",
        monthly="15000",
        linked_account=loan_account,
        product_name="Экспресс кредит",
        next_payment_date=date(year, 7, 1),
        next_payment_amount=Decimal("15000"),
        next_payment_source="history",
    )
    for month in months:
        make_tx(checking, date(year, month, 25), "100000", "💼 Зарплата",
                counterparty="ООО Работодатель", category=category("salary"))  # fmt: skip
        make_tx(checking, date(year, month, 15), "-20000", "🏠 ЖКХ/Аренда",
                category=category("utilities"))  # fmt: skip
        make_tx(checking, date(year, month, 26), "-10000", "Перевод между своими счетами",
                is_own_transfer=True)  # fmt: skip
        make_tx(savings, date(year, month, 26), "10000", "Перевод между своими счетами",
                is_own_transfer=True)  # fmt: skip
        make_aggregate(user, date(year, month, 25), "salary", income="100000")
        make_aggregate(user, date(year, month, 15), "utilities", spending="20000")
        make_aggregate(user, date(year, month, 3), "loan_payments", spending="15000")
        make_aggregate(user, date(year, month, 8), "groceries", spending="20000")
        make_aggregate(user, date(year, month, 9), "restaurants", spending="10000")
    for month in [*months, max(months) + 1]:
        for day in range(1, 6):
            make_tx(checking, date(year, month, day), "-3000", "Платеж по кредиту №agr-77",
                    category=category("loan_payments"))  # fmt: skip
    return {"checking": checking, "savings": savings, "loan_account": loan_account}
