"""The database keeps each account's count of stored transactions (banking 0017's triggers), and
an incremental sync's completeness check trusts it only when it says what the bank counts.

Every test compares the kept count with a real `count()` of the rows after a write path: the
ORM's inserts and bulk upserts, PostgreSQL's COPY, the pending rows a sync removes, a bulk
DELETE, a user's account deletion, a TRUNCATE. Concurrent writers (PostgreSQL, each thread its
own database connection) must not lose an increment.
"""

import logging
import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection as db_connection
from django.db import connections
from django.db import transaction as db_transaction

from banking.categories import categories_seed
from banking.categorization import category_cache_clear
from banking.clients.types import BankTransaction
from banking.ingestion.transactions import (
    TransactionWriter,
    WriteCounts,
    transaction_count_kept,
    transaction_count_verified,
    transaction_models,
    transactions_copy,
    transactions_upsert,
)
from banking.models import Account, AccountTransactionCount, Transaction, TransactionStatus
from banking.tests.factories import make_account, make_transaction

postgresql_only = pytest.mark.skipif(
    db_connection.vendor != "postgresql", reason="COPY, TRUNCATE and concurrent writers"
)
WHEN = datetime(2025, 11, 20, 12, 30, tzinfo=UTC)


def _bank_tx(tx_id: str, *, hours: int = 0, status: str = "booked") -> BankTransaction:
    return BankTransaction(
        account_id="acc-1",
        transaction_id=tx_id,
        amount=Decimal("-100.00"),
        currency="RUB",
        status=status,
        booking_date=WHEN + timedelta(hours=hours),
        value_date=WHEN,
        description="Пятёрочка",
        bank_transaction_code="IssuedDebitTransfer",
        merchant_name="Пятёрочка",
        merchant_category="Supermarkets",
        mcc="5411",
        counterparty="",
        raw={"transactionId": tx_id},
    )


def _categories_seeded() -> None:
    """For a transactional test: an earlier one's flush took the migration-seeded categories."""
    categories_seed()
    category_cache_clear()


def _kept(account: Account) -> int | None:
    return (
        AccountTransactionCount.objects.filter(account=account)
        .values_list("stored", flat=True)
        .first()
    )


def _counted(account: Account) -> int:
    return Transaction.objects.filter(account=account).count()


@pytest.mark.django_db
def test_the_kept_count_follows_inserts_upserts_and_deletes(user):
    account, other = make_account(user=user), make_account(user=user)
    assert _kept(account) is None and transaction_count_kept(account) == 0

    make_transaction(account=account, amount="-5", booking_date=WHEN)
    transactions_upsert(
        transaction_models(account=account, bank_transactions=[_bank_tx(f"a{i}") for i in range(5)])
    )
    transactions_upsert(
        transaction_models(account=other, bank_transactions=[_bank_tx(f"b{i}") for i in range(3)])
    )
    assert (_kept(account), _kept(other)) == (6, 3)

    # The same ids again, changed: rows updated in place, none added.
    transactions_upsert(
        transaction_models(
            account=account, bank_transactions=[_bank_tx(f"a{i}", hours=1) for i in range(5)]
        )
    )
    assert _kept(account) == _counted(account) == 6

    Transaction.objects.filter(account=account, bank_transaction_id__in=["a0", "a1"]).delete()
    Transaction.objects.filter(account=other).delete()
    assert (_kept(account), _kept(other)) == (_counted(account), _counted(other)) == (4, 0)


@pytest.mark.django_db
def test_a_syncs_writes_and_its_removed_pending_rows_are_counted(user):
    account = make_account(user=user)
    counts = WriteCounts()
    writer = TransactionWriter(account=account, counts=counts, batch_rows=2)
    writer.add([_bank_tx("p1", status="pending"), _bank_tx("p2", status="pending")])
    writer.add([_bank_tx(f"t{i}", hours=-i) for i in range(5)])
    writer.flush()
    assert _kept(account) == _counted(account) == 7

    # The next read lists neither pending row again (their posted twins come under new ids).
    writer = TransactionWriter(account=account, counts=WriteCounts())
    writer.add([_bank_tx("t0"), _bank_tx("posted-1", hours=2)])
    assert writer.stored_count(window_start=None, expected=6) == 6  # p1, p2 about to go
    writer.remove_replaced_pending(window_start=None)
    assert _kept(account) == _counted(account) == 6
    assert not Transaction.objects.filter(account=account, status=TransactionStatus.PENDING)


@postgresql_only
@pytest.mark.django_db
def test_copy_counts_its_rows(user):
    account = make_account(user=user)
    with db_transaction.atomic():
        transactions_copy(account=account, bank_transactions=[_bank_tx(f"c{i}") for i in range(40)])
    assert _kept(account) == _counted(account) == 40


@postgresql_only
@pytest.mark.django_db
def test_a_write_rolled_back_is_not_counted(user):
    account = make_account(user=user)
    with pytest.raises(RuntimeError), db_transaction.atomic():
        transactions_copy(account=account, bank_transactions=[_bank_tx("r1"), _bank_tx("r2")])
        raise RuntimeError("the batch fails")
    assert transaction_count_kept(account) == _counted(account) == 0


@pytest.mark.django_db
def test_deleting_the_user_leaves_no_kept_count(user, make_user):
    from users.deletion import user_delete

    victim = make_user(email="gone@example.com", password="A-strong-pass-2026")
    kept_account, gone_account = make_account(user=user), make_account(user=victim)
    for account in (kept_account, gone_account):
        make_transaction(account=account, amount="-1", booking_date=WHEN)

    user_delete(user=victim, password="A-strong-pass-2026")

    assert not AccountTransactionCount.objects.filter(account_id=gone_account.pk).exists()
    assert _kept(kept_account) == 1


@pytest.mark.django_db
def test_deleting_an_account_deletes_its_count(user):
    account = make_account(user=user)
    make_transaction(account=account, amount="-1", booking_date=WHEN)
    account_id = account.pk
    account.delete()
    assert not AccountTransactionCount.objects.filter(account_id=account_id).exists()


@postgresql_only
@pytest.mark.django_db(transaction=True)  # no deferred key check pending: TRUNCATE refuses one
def test_truncate_empties_the_counts(make_user):
    _categories_seeded()
    user = make_user(email="truncate@example.com", password="A-strong-pass-2026")
    account = make_account(user=user)
    make_transaction(account=account, amount="-1", booking_date=WHEN)
    with db_connection.cursor() as cursor:
        cursor.execute("TRUNCATE transactions")
    assert transaction_count_kept(account) == _counted(account) == 0


@pytest.mark.django_db
def test_a_kept_count_that_differs_from_the_banks_is_checked_and_put_right(user, caplog):
    """Should the kept count ever be wrong (a trigger disabled for a restore), the check counts
    the rows when the kept figure is not the bank's, and corrects it."""
    account = make_account(user=user)
    for i in range(3):
        make_transaction(account=account, amount="-1", booking_date=WHEN + timedelta(hours=i))
    AccountTransactionCount.objects.filter(account=account).update(stored=5)
    writer = TransactionWriter(account=account, counts=WriteCounts())

    with caplog.at_level(logging.WARNING, logger="banking.ingestion.transactions"):
        assert writer.stored_count(window_start=None, expected=4) == 3  # short: re-read

    assert _kept(account) == 3
    assert "kept transaction count 5, 3 stored" in caplog.text


@pytest.mark.django_db
def test_a_missing_kept_count_is_counted_and_stored(user):
    account = make_account(user=user)
    make_transaction(account=account, amount="-1", booking_date=WHEN)
    AccountTransactionCount.objects.filter(account=account).delete()
    assert transaction_count_verified(account) == 1
    assert _kept(account) == 1


@pytest.mark.django_db
def test_without_the_banks_count_the_rows_are_counted(user, django_assert_num_queries):
    account = make_account(user=user)
    make_transaction(account=account, amount="-1", booking_date=WHEN)
    writer = TransactionWriter(account=account, counts=WriteCounts())
    # SAVEPOINT, the kept row locked, the count, RELEASE: the rows themselves were counted.
    with django_assert_num_queries(4) as captured:
        assert writer.stored_count(window_start=None) == 1
    assert any("COUNT(" in query["sql"].upper() for query in captured.captured_queries)


@pytest.mark.django_db
def test_a_kept_count_equal_to_the_banks_is_read_not_counted(user, django_assert_num_queries):
    account = make_account(user=user)
    for i in range(3):
        make_transaction(account=account, amount="-1", booking_date=WHEN + timedelta(hours=i))
    writer = TransactionWriter(account=account, counts=WriteCounts())
    with django_assert_num_queries(1) as captured:
        assert writer.stored_count(window_start=None, expected=3) == 3
    assert "COUNT(" not in captured.captured_queries[0]["sql"].upper()


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_concurrent_writers_of_one_account_lose_no_row_of_the_count(make_user):
    """Four threads, each on its own PostgreSQL connection, insert and delete rows of the same
    account at once: the kept count is the rows' count at the end (the triggers' upsert and
    update wait for each other on the account's count row)."""
    _categories_seeded()
    user = make_user(email="busy@example.com", password="A-strong-pass-2026")
    account = make_account(user=user)
    start = threading.Barrier(4)
    errors: list[BaseException] = []

    def writer(number: int) -> None:
        try:
            start.wait()
            for batch in range(10):
                ids = [f"w{number}-{batch}-{i}" for i in range(20)]
                with db_transaction.atomic():
                    transactions_copy(
                        account=account, bank_transactions=[_bank_tx(tx_id) for tx_id in ids]
                    )
                if batch % 3 == 0:
                    Transaction.objects.filter(
                        account=account, bank_transaction_id__in=ids[:5]
                    ).delete()
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=writer, args=(number,)) for number in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert not errors
    assert _counted(account) == 4 * (10 * 20 - 4 * 5)
    assert _kept(account) == _counted(account)


@pytest.mark.django_db(transaction=True)
def test_the_migration_counts_the_rows_stored_before_it(make_user):
    """banking 0017 on a database that already holds transactions: each account's count is
    taken once the triggers run, and later writes add to it."""
    from django.db.migrations.executor import MigrationExecutor

    _categories_seeded()
    before = ("banking", "0016_bank_circuit_states")
    counted_from = ("banking", "0017_account_transaction_counts")
    executor = MigrationExecutor(db_connection)
    executor.migrate([before])  # the table and its triggers gone
    try:
        user = make_user(email="before@example.com", password="A-strong-pass-2026")
        busy, quiet, empty = (make_account(user=user) for _ in range(3))
        for i in range(4):
            make_transaction(account=busy, amount="-1", booking_date=WHEN + timedelta(hours=i))
        make_transaction(account=quiet, amount="-1", booking_date=WHEN)
    finally:
        executor = MigrationExecutor(db_connection)
        executor.loader.build_graph()
        executor.migrate([counted_from])

    assert (_kept(busy), _kept(quiet), _kept(empty)) == (4, 1, None)
    make_transaction(account=empty, amount="-1", booking_date=WHEN)
    Transaction.objects.filter(account=busy).order_by("id").first().delete()
    assert (_kept(busy), _kept(quiet), _kept(empty)) == (3, 1, 1)
