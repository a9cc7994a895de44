"""banking.ingestion: a transaction's stored row read from the model (columns, clips), the writer's
COPY and ORM paths storing the same rows, and a batch partly stored by a concurrent writer."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import connection as db_connection
from django.db import models
from django.db import transaction as db_transaction

from banking.categorization import category_cache_clear
from banking.clients.types import BankTransaction
from banking.ingestion import rows
from banking.ingestion.transactions import (
    TransactionWriter,
    WriteCounts,
    builtin_categoriser,
    transaction_models,
    transactions_copy,
    transactions_upsert,
)
from banking.models import Transaction
from banking.tests.factories import make_account
from fintrack.core.db import commit_without_wal_wait

postgresql_only = pytest.mark.skipif(
    db_connection.vendor != "postgresql", reason="COPY and synchronous_commit are PostgreSQL's"
)
WHEN = datetime(2025, 11, 20, 12, 30, tzinfo=UTC)


def _bank_tx(tx_id: str, amount: str = "-100.00", **changes) -> BankTransaction:
    values = {
        "account_id": "acc-1",
        "transaction_id": tx_id,
        "amount": Decimal(amount),
        "currency": "RUB",
        "status": "booked",
        "booking_date": WHEN,
        "value_date": WHEN,
        "description": "Пятёрочка",
        "bank_transaction_code": "IssuedDebitTransfer",
        "merchant_name": "Пятёрочка",
        "merchant_category": "Supermarkets",
        "mcc": "5411",
        "counterparty": "",
        "raw": {"transactionId": tx_id, "amount": {"amount": amount.lstrip("-")}},
    }
    values.update(changes)
    return BankTransaction(**values)


# --- The row, read from the model ----------------------------------------------------------------


def test_copy_columns_are_every_concrete_column_of_the_model_but_the_id():
    model_columns = [
        field.column for field in Transaction._meta.concrete_fields if not field.primary_key
    ]

    assert sorted(rows.COPY_COLUMNS) == sorted(model_columns)
    assert len(rows.COPY_COLUMNS) == len(set(rows.COPY_COLUMNS))
    # The row's fields are the model's attribute names, in the order COPY gets them.
    attnames = {field.column: field.attname for field in Transaction._meta.concrete_fields}
    assert tuple(attnames[column] for column in rows.COPY_COLUMNS) == rows.TransactionRow._fields


def test_a_column_the_model_gains_and_the_row_lacks_is_refused():
    label = models.CharField(max_length=8)
    label.set_attributes_from_name("label")

    with pytest.raises(ImproperlyConfigured, match=r"missing \['label'\]"):
        rows.copy_columns([*Transaction._meta.concrete_fields, label])


def test_compared_and_update_fields_are_model_fields_and_leave_the_users_note_alone():
    names = {field.name for field in Transaction._meta.concrete_fields}

    assert set(rows.COMPARED_FIELDS) <= names
    assert set(rows.UPDATE_FIELDS) <= names
    assert "note" not in rows.UPDATE_FIELDS
    assert rows.BankValues._fields == rows.COMPARED_FIELDS


def test_every_text_is_clipped_at_its_columns_max_length():
    long = "x" * 1000
    values = rows.bank_values(
        _bank_tx(
            "long",
            currency=long,
            status=long,
            description=long,
            merchant_name=long,
            merchant_category=long,
            mcc=long,
            counterparty=long,
            bank_transaction_code=long,
        )
    )

    for name in rows.COMPARED_FIELDS:
        value = getattr(values, name)
        if isinstance(value, str):
            max_length = Transaction._meta.get_field(name).max_length
            assert len(value) == (max_length or 1000), name


def test_a_widened_column_widens_the_clip(monkeypatch):
    monkeypatch.setattr(Transaction._meta.get_field("merchant_name"), "max_length", 300)
    monkeypatch.setattr(Transaction._meta.get_field("mcc"), "max_length", 6)

    normalise = rows.bank_values_normaliser()
    values = normalise(_bank_tx("wide", merchant_name="m" * 400, mcc="1234567"))

    assert (len(values.merchant_name), values.mcc) == (300, "123456")
    assert len(rows.bank_values(_bank_tx("x", merchant_name="m" * 400)).merchant_name) == 255


def test_a_text_that_gains_a_max_length_needs_a_clip_rule(monkeypatch):
    monkeypatch.setattr(Transaction._meta.get_field("description"), "max_length", 500)

    with pytest.raises(ImproperlyConfigured, match="description"):
        rows.bank_values_normaliser()


def test_each_field_of_the_row_comes_from_its_namesake():
    bank_tx = BankTransaction(
        account_id="acc-9",
        transaction_id="tx-9",
        amount=Decimal("-12.345"),
        currency="",
        status="pending",
        booking_date=WHEN,
        value_date=WHEN + timedelta(days=1),
        description="description text",
        bank_transaction_code="code",
        merchant_name="merchant",
        merchant_category="merchant category",
        mcc="1234",
        counterparty="counterparty",
        raw={"transactionId": "tx-9"},
    )
    now = WHEN + timedelta(days=7)
    build = rows.row_builder(user_id=7, account_id=8, bank_code="abank", now=now)

    values = rows.bank_values(bank_tx)
    row = build(bank_tx, values, (42, "user_rule"), b"{}")

    assert values._asdict() == {
        "amount": Decimal("-12.34"),
        "currency": "RUB",  # the model's default for a missing one
        "booking_date": WHEN,
        "value_date": WHEN + timedelta(days=1),
        "status": "pending",
        "description": "description text",
        "merchant_name": "merchant",
        "merchant_category": "merchant category",
        "mcc": "1234",
        "counterparty": "counterparty",
        "bank_transaction_code": "code",
    }
    assert row._asdict() == {
        "user_id": 7,
        "account_id": 8,
        "bank_code": "abank",
        "bank_transaction_id": "tx-9",
        **values._asdict(),
        "category_id": 42,
        "category_source": "user_rule",
        "note": "",
        "is_own_transfer": False,
        "transfer_pair_id": None,
        "raw_json": b"{}",
        "created_at": now,
        "updated_at": now,
    }


def test_the_builtin_categoriser_reads_the_values_by_name(db):
    values = rows.bank_values(_bank_tx("a"))

    assert builtin_categoriser(values) == builtin_categoriser(
        values._replace(counterparty="anything", status="pending")
    )
    assert builtin_categoriser(values)[1] == "bank_rule"


# --- Writing: COPY = ORM, a batch partly stored already ------------------------------------------

_TRICKY = [
    _bank_tx(
        "t\\1\t",
        "-1234.5",
        description='Tab\there, "quotes", back\\slash,\nnew line, \\N, emoji 🏪',
        merchant_name="Кофе\r\nХауз",
        counterparty="ООО «Ромашка»",
        raw={"nested": {"list": [1, None, "x\ty", 2.5]}, "text": 'a"b\\c', "none": None},
    ),
    _bank_tx("t2", "15000.00", status="pending", value_date=None, mcc="", merchant_category=""),
    _bank_tx("t3", "-0.01", currency="USD", bank_transaction_code="", description=""),
]
_COMPARED = [
    field.attname
    for field in Transaction._meta.concrete_fields
    if field.attname not in ("id", "account_id", "created_at", "updated_at")
]


def _stored(account) -> dict[str, tuple]:
    return {
        row[0]: row[1:]
        for row in Transaction.objects.filter(account=account).values_list(
            "bank_transaction_id", "amount", "category__code"
        )
    }


@postgresql_only
@pytest.mark.django_db
def test_copy_path_stores_the_same_rows_as_the_orm_upsert(user):
    copied = make_account(user=user)
    upserted = make_account(user=user)
    category_cache_clear()  # the COPY path must fill it before its COPY holds the connection

    with db_transaction.atomic():
        transactions_copy(account=copied, bank_transactions=_TRICKY)
    transactions_upsert(transaction_models(account=upserted, bank_transactions=_TRICKY))

    def stored_rows(account):
        return list(
            Transaction.objects.filter(account=account)
            .order_by("bank_transaction_id")
            .values_list(*_COMPARED)
        )

    assert len(stored_rows(copied)) == 3
    assert stored_rows(copied) == stored_rows(upserted)
    stamps = Transaction.objects.filter(account=copied).values_list("created_at", "updated_at")
    assert all(created is not None and created == updated for created, updated in stamps)


@postgresql_only
@pytest.mark.django_db
def test_a_first_syncs_batch_partly_stored_by_a_concurrent_writer_is_upserted_exactly(user):
    account = make_account(user=user)
    counts = WriteCounts()
    writer = TransactionWriter(account=account, counts=counts)  # the account had no rows then
    transactions_upsert(transaction_models(account=account, bank_transactions=[_bank_tx("a")]))

    writer.add([_bank_tx("a"), _bank_tx("b")])
    writer.flush()

    assert (counts.added, counts.updated, counts.unchanged) == (1, 0, 1)
    assert sorted(_stored(account)) == ["a", "b"]


@postgresql_only
@pytest.mark.django_db
def test_a_first_syncs_row_read_again_is_copied_as_last_read(user):
    """A first sync's batch is COPYed; a row read again on a later page (changed meanwhile) is
    stored as last read, and everything as the ORM path stores it."""
    copied, upserted = make_account(user=user), make_account(user=user)
    counts = WriteCounts()
    writer = TransactionWriter(account=copied, counts=counts, batch_rows=1000)
    first = [_bank_tx("a"), _bank_tx("b", "250.00", description="Зарплата", mcc="")]
    again = [_bank_tx("b", "260.00", description="Зарплата", mcc=""), _bank_tx("c", "-5.50")]

    writer.add(first)
    writer.add(again)
    writer.flush()
    transactions_upsert(transaction_models(account=upserted, bank_transactions=[first[0], *again]))

    def stored_rows(account):
        return list(
            Transaction.objects.filter(account=account)
            .order_by("bank_transaction_id")
            .values_list(*_COMPARED, "raw_json")
        )

    assert (counts.added, counts.updated, counts.unchanged) == (3, 0, 0)
    amount = _COMPARED.index("amount")
    assert [row[amount] for row in stored_rows(copied)] == [
        Decimal("-100.00"),
        Decimal("260.00"),
        Decimal("-5.50"),
    ]
    assert stored_rows(copied) == stored_rows(upserted)


@postgresql_only
@pytest.mark.django_db
def test_rows_newer_than_the_stored_ones_are_upserted_not_copied(user):
    """An account with stored rows: a batch reaching them takes the lookup + upsert path, even
    with some of its rows older than every stored one."""
    account = make_account(user=user)
    transactions_upsert(
        transaction_models(account=account, bank_transactions=[_bank_tx("stored", "-1.00")])
    )
    counts = WriteCounts()
    writer = TransactionWriter(account=account, counts=counts)

    writer.add(
        [
            _bank_tx("stored", "-2.00"),  # changed at the bank
            _bank_tx("older", "-3.00", booking_date=WHEN - timedelta(days=3)),
            _bank_tx("newer", "-4.00", booking_date=WHEN + timedelta(days=1)),
        ]
    )
    writer.flush()

    assert (counts.added, counts.updated, counts.unchanged) == (2, 1, 0)
    assert dict(
        Transaction.objects.filter(account=account).values_list("bank_transaction_id", "amount")
    ) == {"stored": Decimal("-2.00"), "older": Decimal("-3.00"), "newer": Decimal("-4.00")}


@pytest.mark.django_db
def test_stored_pending_rows_not_listed_again_in_the_window_are_removed(user):
    account = make_account(user=user)
    old, recent = WHEN - timedelta(days=10), WHEN - timedelta(days=1)
    transactions_upsert(
        transaction_models(
            account=account,
            bank_transactions=[
                _bank_tx("old-pending", status="pending", booking_date=old),
                _bank_tx("recent-pending", status="pending", booking_date=recent),
                _bank_tx("listed-pending", status="pending", booking_date=recent),
            ],
        )
    )
    counts = WriteCounts()
    writer = TransactionWriter(account=account, counts=counts)

    writer.add([_bank_tx("listed-pending", status="pending", booking_date=recent)])
    assert writer.oldest_pending == old
    assert writer.stored_count(window_start=recent) == 2  # recent-pending is about to go
    writer.remove_replaced_pending(window_start=recent)

    assert sorted(_stored(account)) == ["listed-pending", "old-pending"]
    assert (counts.removed, counts.unchanged, counts.changed_since) == (1, 1, recent)


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_commit_without_wal_wait_changes_only_a_transaction_the_caller_owns():
    def setting() -> str:
        with db_connection.cursor() as cursor:
            cursor.execute("SHOW synchronous_commit")
            return cursor.fetchone()[0]

    with db_transaction.atomic():
        commit_without_wal_wait()
        owned = setting()
    with db_transaction.atomic():
        with db_transaction.atomic():
            commit_without_wal_wait()
            nested = setting()
        outer = setting()

    assert (owned, nested, outer, setting()) == ("off", "on", "on", "on")


@pytest.mark.django_db
def test_a_later_syncs_writer_skips_the_oldest_row_probe_and_looks_its_rows_up(
    user, django_assert_num_queries
):
    """An account read whole before (a watermark) is read again from its newest rows, all
    stored but the few new: the writer makes no probe of the oldest stored row (two queries to
    start: the pending rows and the user's rules), and a batch, even one older than every
    stored row, takes the lookup path and is stored exactly."""
    account = make_account(user=user)
    transactions_upsert(
        transaction_models(account=account, bank_transactions=[_bank_tx("stored", "-1.00")])
    )
    account.transactions_synced_through = WHEN
    account.save(update_fields=["transactions_synced_through"])
    counts = WriteCounts()

    with django_assert_num_queries(2):
        writer = TransactionWriter(account=account, counts=counts)
    writer.add(
        [
            _bank_tx("stored", "-1.00"),
            _bank_tx("older", "-3.00", booking_date=WHEN - timedelta(days=3)),
        ]
    )
    writer.flush()
    writer.add([_bank_tx("oldest", "-5.00", booking_date=WHEN - timedelta(days=9))])
    writer.flush()

    assert (counts.added, counts.updated, counts.unchanged) == (2, 0, 1)
    assert dict(
        Transaction.objects.filter(account=account).values_list("bank_transaction_id", "amount")
    ) == {"stored": Decimal("-1.00"), "older": Decimal("-3.00"), "oldest": Decimal("-5.00")}
