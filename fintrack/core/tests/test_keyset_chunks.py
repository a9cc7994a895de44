"""Keyset-chunked reads (fintrack.core.db.keyset_chunks and the two exports built on keyset
pages): the same rows in the same order as QuerySet.iterator() gave, ties and NULLs included, one
chunk per query, and one snapshot across the chunks inside a REPEATABLE READ transaction. Run on
SQLite, PostgreSQL and behind PgBouncer (bin/test-behind-pgbouncer) alike."""

import itertools
import threading
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection

from banking.categories import categories_seed
from banking.categorization import category_cache_clear
from banking.filters import ORDERINGS, TransactionFilters, transactions_after, transactions_filter
from banking.models import ProductAgreement, Transaction
from banking.selectors.transactions import EXPORT_COLUMNS, transaction_export_rows
from banking.tests.factories import at, make_account, make_agreement, make_transaction
from fintrack.core.db import keyset_chunks
from users.data_export import TRANSACTION_FIELDS, _one_snapshot, _streamed

TIED_ROWS = 3000
# Few distinct booking times and amounts: most rows tie with their neighbours on the sort key,
# and every chunk boundary below falls inside a run of equal keys.
MOMENTS = 7
AMOUNTS = ("-5.00", "5.00", "-12.30", "100.00", "-0.01")


def _tied_history(user, *, rows: int = TIED_ROWS) -> None:
    account = make_account(user=user)
    other = make_account(user=user, bank_code="abank")
    template = make_transaction(account=account, amount="-1.00", booking_date=at("2025-03-01"))
    start = at("2025-03-01")
    Transaction.objects.bulk_create(
        [
            Transaction(
                user_id=user.pk,
                account=account if n % 3 else other,
                bank_code="vbank" if n % 3 else "abank",
                bank_transaction_id=f"tied-{n}",
                amount=Decimal(AMOUNTS[n % len(AMOUNTS)]),
                currency="RUB",
                booking_date=start + timedelta(hours=n % MOMENTS),
                description=f"Row {n}",
                category_id=template.category_id,
            )
            # Not in id order of their keys: ids and booking times are shuffled against each other.
            for n in sorted(range(rows), key=lambda n: (n * 7919) % rows)
        ],
        batch_size=1000,
    )


@pytest.fixture
def behind_pgbouncer(monkeypatch):
    """The CSV export's keyset path, as behind PgBouncer (no server-side cursors)."""
    from django.db import connection as db_connection

    monkeypatch.setitem(db_connection.settings_dict, "DISABLE_SERVER_SIDE_CURSORS", True)


def _old_export_rows(*, user, filters: TransactionFilters, ordering: str) -> list[tuple]:
    """transaction_export_rows as it was: one ordered query read through iterator()."""
    queryset = transactions_filter(Transaction.objects.filter(user=user), filters)
    queryset = transactions_after(queryset, None, ordering)
    return list(queryset.values_list(*EXPORT_COLUMNS).iterator(chunk_size=2000))


@pytest.mark.django_db
@pytest.mark.parametrize("ordering", ORDERINGS)
def test_the_csv_rows_are_the_iterators_rows_in_its_order_across_tied_keys(
    make_user, behind_pgbouncer, ordering
):
    anna = make_user(email="anna@example.com")
    _tied_history(anna)
    bob = make_user(email="bob@example.com")
    _tied_history(bob, rows=50)
    filters = TransactionFilters()

    old = _old_export_rows(user=anna, filters=filters, ordering=ordering)
    # 97 rows a page: 31 pages, each boundary inside a run of ties; and pages as in production.
    for chunk_size in (97, 2000):
        new = list(
            transaction_export_rows(
                user=anna, filters=filters, ordering=ordering, chunk_size=chunk_size
            )
        )
        assert len(new) == TIED_ROWS + 1
        assert new == old


@pytest.mark.django_db
def test_the_csv_rows_keep_the_filters_across_pages(make_user, behind_pgbouncer):
    anna = make_user(email="anna@example.com")
    _tied_history(anna)
    filters = TransactionFilters(bank_code="vbank", direction="out", amount_min=Decimal("1"))

    old = _old_export_rows(user=anna, filters=filters, ordering="-amount")
    new = list(
        transaction_export_rows(user=anna, filters=filters, ordering="-amount", chunk_size=50)
    )

    assert new == old
    assert new and all(row[9] == "vbank" and row[2] <= -1 for row in new)


@pytest.mark.django_db
def test_the_data_exports_rows_are_the_iterators_rows_in_its_order(make_user):
    anna = make_user(email="anna@example.com")
    _tied_history(anna)
    queryset = (
        Transaction.objects.filter(user=anna)
        .order_by("booking_date", "id")
        .values(*TRANSACTION_FIELDS)
    )

    old = list(queryset.iterator(chunk_size=2000))
    with _one_snapshot():
        new = list(_streamed(queryset))

    assert len(new) == TIED_ROWS + 1
    assert new == old


@pytest.mark.django_db
@pytest.mark.parametrize(
    "key_fields",
    [
        ("bank_code", "-start_date", "id"),  # the data export's agreements
        ("start_date", "id"),
        ("-start_date", "-id"),
        ("start_date", "-id"),
    ],
)
def test_null_keys_sort_where_the_backend_puts_them(make_user, key_fields):
    anna = make_user(email="anna@example.com")
    for n in range(23):
        make_agreement(
            user=anna,
            bank_code=("vbank", "abank")[n % 2],
            start_date=at("2025-01-01") + timedelta(days=n % 4),
        )
    # A third of them with no start date, between and around the dated ones by id.
    ProductAgreement.objects.filter(
        pk__in=[a.pk for a in ProductAgreement.objects.all()][::3]
    ).update(start_date=None)
    queryset = ProductAgreement.objects.filter(user=anna).values("id", "bank_code", "start_date")

    old = list(queryset.order_by(*key_fields))
    chunks = list(keyset_chunks(queryset, key_fields=key_fields, chunk_size=2))

    assert [row for chunk in chunks for row in chunk] == old
    assert {len(chunk) for chunk in chunks[:-1]} == {2}
    assert any(row["start_date"] is None for row in old)


@pytest.mark.django_db
@pytest.mark.parametrize("rows, queries", [(0, 1), (9, 2), (10, 3), (11, 3)])
def test_one_query_per_chunk_and_none_for_an_empty_rest_after_a_short_chunk(
    make_user, django_assert_num_queries, rows, queries
):
    anna = make_user(email="anna@example.com")
    account = make_account(user=anna)
    for _ in range(rows):
        make_transaction(account=account, amount="-1.00", booking_date=at("2025-03-01"))
    queryset = Transaction.objects.filter(user=anna).values_list("id", "booking_date")

    with django_assert_num_queries(queries) as captured:
        chunks = list(keyset_chunks(queryset, key_fields=("-booking_date", "-id"), chunk_size=5))

    assert [len(chunk) for chunk in chunks] == [5] * (rows // 5) + ([rows % 5] if rows % 5 else [])
    assert all("LIMIT 5" in query["sql"] for query in captured.captured_queries)


@pytest.mark.django_db
@pytest.mark.parametrize("rows, queries", [(0, 1), (9, 2), (10, 3), (11, 3)])
def test_the_csv_reads_one_query_per_page(
    make_user, django_assert_num_queries, behind_pgbouncer, rows, queries
):
    """Behind PgBouncer (no server-side cursors) the CSV is read in keyset pages."""
    anna = make_user(email="anna@example.com")
    if rows:
        _tied_history(anna, rows=rows - 1)  # and its first row, the template

    with django_assert_num_queries(queries):
        exported = list(
            transaction_export_rows(user=anna, filters=TransactionFilters(), chunk_size=5)
        )

    assert len(exported) == rows


@pytest.mark.django_db
def test_model_instances_and_flat_ids_are_read_by_their_keys(make_user):
    anna = make_user(email="anna@example.com")
    _tied_history(anna, rows=40)
    queryset = Transaction.objects.filter(user=anna)

    instances = itertools.chain.from_iterable(
        keyset_chunks(queryset.only("id", "amount"), key_fields=("amount", "pk"), chunk_size=3)
    )
    ids = itertools.chain.from_iterable(
        keyset_chunks(queryset.values_list("id", flat=True), key_fields=("-id",), chunk_size=7)
    )

    assert [row.pk for row in instances] == list(
        queryset.order_by("amount", "pk").values_list("pk", flat=True)
    )
    assert list(ids) == list(queryset.order_by("-id").values_list("id", flat=True))


@pytest.mark.django_db
@pytest.mark.parametrize(
    "make_queryset, key_fields, message",
    [
        (lambda: Transaction.objects.values("id"), ("booking_date",), "primary key"),
        (lambda: Transaction.objects.values("id"), ("booking_date", "id"), "key fields"),
        (lambda: Transaction.objects.all()[:5], ("id",), "whole queryset"),
        (lambda: Transaction.objects.all(), ("category__code", "id"), "not a field"),
        (lambda: Transaction.objects.all(), ("user", "id"), None),
    ],
)
def test_keys_that_cannot_page_are_refused_before_any_query(make_queryset, key_fields, message):
    if message is None:  # a foreign key by name pages by its column
        assert list(keyset_chunks(make_queryset(), key_fields=key_fields, chunk_size=5)) == []
        return
    with pytest.raises(ValueError, match=message):
        next(keyset_chunks(make_queryset(), key_fields=key_fields, chunk_size=5))


@pytest.mark.django_db(transaction=True)
def test_chunks_inside_one_snapshot_see_no_write_committed_between_them(make_user):
    """A sync committing between two chunks of the data export changes nothing it reads: the
    chunks are separate queries of one REPEATABLE READ transaction (one snapshot), as the
    server-side cursor's one query was."""
    if connection.vendor != "postgresql":
        pytest.skip("REPEATABLE READ across connections: PostgreSQL")
    categories_seed()  # transactional tests flush the migration-seeded categories
    category_cache_clear()
    anna = make_user(email="anna@example.com")
    account = make_account(user=anna)
    for n in range(30):
        make_transaction(
            account=account, amount=f"-{n + 1}.00", booking_date=at("2025-03-01", n % 5)
        )
    queryset = Transaction.objects.filter(user=anna).values("id", "booking_date")
    before = list(queryset.order_by("booking_date", "id").values_list("id", flat=True))

    def sync_meanwhile() -> None:
        from django.db import connection as own

        try:
            make_transaction(account=account, amount="-99.00", booking_date=at("2025-03-02"))
            Transaction.objects.filter(pk=before[-1]).delete()
        finally:
            own.close()

    read = []
    with _one_snapshot():
        chunks = keyset_chunks(queryset, key_fields=("booking_date", "id"), chunk_size=10)
        read += next(chunks)
        writer = threading.Thread(target=sync_meanwhile)
        writer.start()
        writer.join()
        read += itertools.chain.from_iterable(chunks)

    assert [row["id"] for row in read] == before
    # The write did commit: a read after the snapshot sees it.
    assert Transaction.objects.filter(user=anna).count() == len(before)
    assert not Transaction.objects.filter(pk=before[-1]).exists()
