"""The user's own category rules at sync: before the built-in rules, on the ORM and COPY paths;
a row the user categorised keeps its category when the bank updates it; end to end on the
sandbox, a correction decides the next sync's new rows of that merchant."""

from collections import Counter
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.db import connection as db_connection
from django.db import transaction as db_transaction

from banking.categorization import category_cache_clear, category_id_for
from banking.clients.types import BankTransaction, TransactionPage
from banking.ingestion.rows import bank_values
from banking.ingestion.transactions import (
    TransactionWriter,
    builtin_categoriser,
    categoriser_for,
    transaction_models,
    transactions_copy,
    transactions_upsert,
)
from banking.models import CategoryRule, Transaction, TransactionAggregate
from banking.services.category_rules import category_rule_create, transaction_category_set
from banking.tests.factories import make_account
from sync.reader import PageFetcher, TransactionCounts, account_transactions_sync

postgresql_only = pytest.mark.skipif(
    db_connection.vendor != "postgresql", reason="the COPY path is PostgreSQL's"
)
WHEN = datetime(2025, 11, 20, 12, 30, tzinfo=UTC)


def _bank_tx(tx_id: str, merchant: str = "Пятёрочка", amount: str = "-100.00", **changes):
    values = {
        "account_id": "acc-1",
        "transaction_id": tx_id,
        "amount": Decimal(amount),
        "currency": "RUB",
        "status": "completed",
        "booking_date": WHEN,
        "value_date": WHEN,
        "description": f"{merchant} - Москва",
        "bank_transaction_code": "02",
        "merchant_name": merchant,
        "merchant_category": "grocery",
        "mcc": "5411",
        "counterparty": "",
        "raw": {"transactionId": tx_id},
    }
    values.update(changes)
    return BankTransaction(**values)


class _PagedClient:
    """A bank client serving fixed pages of parsed transactions."""

    def __init__(self, pages: list[list[BankTransaction]]):
        self.pages = pages

    def get_transactions_page(self, *, page: int, **_ignored) -> TransactionPage:
        return TransactionPage(
            transactions=self.pages[page - 1],
            page=page,
            total_pages=None,
            total_records=None,
            has_next=page < len(self.pages),
        )


def _sync_pages(account, pages) -> TransactionCounts:
    counts = TransactionCounts()
    account_transactions_sync(
        client=_PagedClient(pages),
        account=account,
        client_id="team260-1",
        consent_id="consent-1",
        counts=counts,
        fetcher=PageFetcher(lookahead=False),
    )
    return counts


def _stored(account) -> dict[str, tuple]:
    return {
        row[0]: row[1:]
        for row in Transaction.objects.filter(account=account).values_list(
            "bank_transaction_id", "amount", "category__code", "category_source", "note"
        )
    }


def _rule(user, pattern: str, code: str, match_kind: str = "merchant") -> CategoryRule:
    return category_rule_create(
        user=user, match_kind=match_kind, pattern=pattern, category_code=code
    ).rule


@pytest.mark.django_db
def test_a_users_rule_decides_new_rows_before_the_built_in_rules(user):
    account = make_account(user=user)
    _rule(user, "пятерочка", "restaurants")

    counts = _sync_pages(
        account,
        [[_bank_tx("a"), _bank_tx("b", merchant="Магнит"), _bank_tx("c", merchant="ПЯТЁРОЧКА")]],
    )

    assert (counts.added, counts.updated) == (3, 0)
    assert _stored(account) == {
        "a": (Decimal("-100.00"), "restaurants", "user_rule", ""),
        "b": (Decimal("-100.00"), "groceries", "bank_rule", ""),
        "c": (Decimal("-100.00"), "restaurants", "user_rule", ""),
    }


@pytest.mark.django_db
def test_a_description_rule_decides_rows_without_a_merchant(user):
    account = make_account(user=user)
    _rule(user, "Путешествия", "entertainment", match_kind="description")

    _sync_pages(
        account,
        [
            [
                _bank_tx(
                    "trip",
                    merchant="",
                    amount="-45000.00",
                    description="Путешествия",
                    mcc="",
                    merchant_category="",
                )
            ]
        ],
    )

    assert _stored(account)["trip"][1:3] == ("entertainment", "user_rule")


@pytest.mark.django_db
def test_a_row_the_user_categorised_keeps_category_and_note_when_the_bank_updates_it(user):
    account = make_account(user=user)
    _sync_pages(account, [[_bank_tx("a"), _bank_tx("b")]])
    corrected = Transaction.objects.get(account=account, bank_transaction_id="a")
    transaction_category_set(
        user=user, transaction_id=corrected.pk, category_code="health", note="лекарства"
    )
    counts = TransactionCounts()
    writer = TransactionWriter(account=account, counts=counts)

    # The bank changed both rows' amounts: an update, not a new row.
    writer.add([_bank_tx("a", amount="-150.00"), _bank_tx("b", amount="-150.00")])
    writer.flush()

    assert (counts.added, counts.updated, counts.unchanged) == (0, 2, 0)
    assert _stored(account) == {
        "a": (Decimal("-150.00"), "health", "user", "лекарства"),
        "b": (Decimal("-150.00"), "groceries", "bank_rule", ""),
    }


@pytest.mark.django_db
def test_a_row_updated_by_the_bank_into_a_rules_merchant_takes_the_rule(user):
    account = make_account(user=user)
    _sync_pages(account, [[_bank_tx("a", merchant="Магнит")]])
    _rule(user, "пятерочка", "restaurants")

    _sync_pages(account, [[_bank_tx("a", merchant="Пятёрочка")]])

    assert _stored(account)["a"][1:3] == ("restaurants", "user_rule")


@pytest.mark.django_db
def test_the_categoriser_reads_the_users_rules_once_and_no_more_per_row(
    user, django_assert_num_queries
):
    _rule(user, "пятерочка", "restaurants")
    _rule(user, "Путешествия", "entertainment", match_kind="description")
    rows = [bank_values(_bank_tx(f"t{i}", merchant=f"Магазин {i % 50}")) for i in range(2000)]
    category_id_for(description="", mcc="5411", merchant_category="", amount=Decimal("-1"))

    with django_assert_num_queries(1):
        categorise = categoriser_for(user_id=user.pk)
    with django_assert_num_queries(0):
        decided = Counter(categorise(values)[1] for values in rows)
        first = categorise(bank_values(_bank_tx("x")))

    assert decided == {"bank_rule": 2000}
    assert first[1] == "user_rule"


@pytest.mark.django_db
def test_a_user_without_rules_gets_the_built_in_categoriser(user, django_assert_num_queries):
    with django_assert_num_queries(1):
        assert categoriser_for(user_id=user.pk) is builtin_categoriser


@postgresql_only
@pytest.mark.django_db
def test_the_copy_path_applies_the_users_rules_like_the_orm(user):
    copied = make_account(user=user)
    upserted = make_account(user=user)
    _rule(user, "пятерочка", "restaurants")
    category_cache_clear()
    items = [_bank_tx("a"), _bank_tx("b", merchant="Магнит")]
    categorise = categoriser_for(user_id=user.pk)

    with db_transaction.atomic():
        transactions_copy(account=copied, bank_transactions=items, categoriser=categorise)
    transactions_upsert(
        transaction_models(account=upserted, bank_transactions=items, categoriser=categorise)
    )

    assert _stored(copied) == _stored(upserted)
    assert _stored(copied)["a"][1:] == ("restaurants", "user_rule", "")
    assert _stored(copied)["b"][1:] == ("groceries", "bank_rule", "")


# --- End to end on the live-style sandbox --------------------------------------------------------


def _connect(user, bank_code: str):
    from banking.services.connections import connection_get_or_create
    from consents import services as consent_services
    from consents.models import ConsentKind, ConsentStatus

    for kind in (ConsentKind.ACCOUNTS, ConsentKind.PRODUCTS):
        consent = consent_services.consent_ensure(user=user, bank_code=bank_code, kind=kind)
        if consent.status == ConsentStatus.PENDING:
            consent = consent_services.consent_approve_demo(consent=consent)
        assert consent.status == ConsentStatus.AUTHORIZED
    return connection_get_or_create(user=user, bank_code=bank_code)


def _sync(connection):
    from sync.models import SyncRun, SyncStatus, SyncTrigger
    from sync.services import sync_run_execute

    run = SyncRun.objects.create(
        connection=connection, user_id=connection.user_id, trigger=SyncTrigger.USER
    )
    sync_run_execute(sync_run_id=run.pk)
    run.refresh_from_db()
    assert run.status == SyncStatus.SUCCEEDED, run.error
    return run


def _busy_live_client() -> tuple[str, str]:
    """A sandbox client whose history goes on (not frozen), and its bank with the most rows."""
    from sandbox import clock
    from sandbox.ground_truth import client_bank_truth
    from sandbox.live import persona_of
    from sandbox.volume import data_key

    for number in range(1, 11):
        client_id = f"team260-{number}"
        who = persona_of(data_key(client_id, clock.state().anchor))
        if who.quiet_from is None and who.banks:
            rows = {
                bank: sum(map(len, client_bank_truth(client_id, bank)["transactions"].values()))
                for bank in sorted(who.banks)
            }
            return client_id, max(rows, key=rows.get)
    raise AssertionError("no live sandbox client with an ongoing history")


@pytest.mark.django_db(transaction=True)
def test_a_correction_decides_the_next_syncs_new_rows_of_that_merchant(sandbox_banks, make_user):
    from sandbox import clock

    client_id, bank_code = _busy_live_client()
    user = make_user(email="corrections@example.com", client_id=client_id)
    connection = _connect(user, bank_code)
    _sync(connection)
    purchases = Transaction.objects.filter(user=user, amount__lt=0).exclude(merchant_name="")
    merchant, _count = Counter(purchases.values_list("merchant_name", flat=True)).most_common(1)[0]
    corrected = purchases.filter(merchant_name=merchant).order_by("-booking_date").first()
    builtin_code = corrected.category.code
    target = "entertainment" if builtin_code != "entertainment" else "health"

    same_merchant = Transaction.objects.filter(user=user, merchant_name=merchant)
    counted = same_merchant.filter(amount__lt=0, is_own_transfer=False).exclude(status="declined")
    moved = -sum(counted.exclude(category__code=target).values_list("amount", flat=True))

    def target_spending():
        return sum(
            TransactionAggregate.objects.filter(user=user, category__code=target).values_list(
                "spending", flat=True
            )
        )

    spent_before = target_spending()

    correction = transaction_category_set(
        user=user, transaction_id=corrected.pk, category_code=target, apply_to_similar=True
    )

    assert correction.rule.match_kind == "merchant"
    assert correction.similar_updated == same_merchant.count() - 1
    assert set(same_merchant.values_list("category__code", "category_source")) == {
        (target, "user"),
        (target, "user_rule"),
    }
    assert target_spending() - spent_before == moved > 0
    newest_id = (
        Transaction.objects.filter(user=user).order_by("-id").values_list("id", flat=True)[0]
    )

    new_rows = Transaction.objects.none()
    for _day in range(14):  # the merchant may skip a day or two
        clock.advance(days=1)
        _sync(connection)
        new_rows = same_merchant.filter(id__gt=newest_id)
        if new_rows.exists():
            break

    assert new_rows.exists(), f"no new {merchant} row within two weeks"
    assert set(new_rows.values_list("category__code", "category_source")) == {(target, "user_rule")}
    corrected.refresh_from_db()
    assert (corrected.category.code, corrected.category_source) == (target, "user")
    # Other merchants' new rows still go through the built-in rules.
    others = Transaction.objects.filter(user=user, id__gt=newest_id).exclude(merchant_name=merchant)
    assert set(others.values_list("category_source", flat=True)) <= {"bank_rule"}
