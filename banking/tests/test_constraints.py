"""Database constraints of the transactions table that Django's model does not declare itself."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.db import IntegrityError, connection, transaction

from banking.models import Transaction
from banking.tests.factories import make_account

postgresql_only = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="the composite key is PostgreSQL's (banking 0010)"
)


def _insert(*, account_id: int, user_id: int) -> None:
    Transaction.objects.create(
        user_id=user_id,
        account_id=account_id,
        bank_code="vbank",
        bank_transaction_id="tx-1",
        amount=Decimal("-10.00"),
        booking_date=datetime(2025, 11, 20, 12, tzinfo=UTC),
    )


def _checked(**ids) -> None:
    """Insert, then run the deferred checks now (they would run at COMMIT)."""
    with transaction.atomic():
        _insert(**ids)
        connection.check_constraints(table_names=["transactions"])


@postgresql_only
@pytest.mark.django_db
def test_a_row_of_its_accounts_user_is_accepted(user):
    account = make_account(user=user)

    _checked(account_id=account.pk, user_id=user.pk)

    assert Transaction.objects.filter(account=account, user=user).count() == 1


@postgresql_only
@pytest.mark.django_db
def test_a_row_whose_user_is_not_its_accounts_user_is_refused(user, make_user):
    account = make_account(user=user)
    stranger = make_user(email="stranger@example.com")

    with pytest.raises(IntegrityError, match="transactions_account_user_fk"):
        _checked(account_id=account.pk, user_id=stranger.pk)

    assert not Transaction.objects.exists()


@postgresql_only
@pytest.mark.django_db
def test_a_row_of_a_missing_account_is_refused(user):
    account = make_account(user=user)

    with pytest.raises(IntegrityError, match="transactions_account_user_fk"):
        _checked(account_id=account.pk + 1000, user_id=user.pk)


@postgresql_only
@pytest.mark.django_db
def test_one_foreign_key_checks_account_and_user():
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid = 'transactions'::regclass AND contype = 'f'"
        )
        keys = {
            name: definition
            for name, definition in cursor.fetchall()
            if "account_id" in definition or "user_id" in definition
        }

    assert keys == {
        "transactions_account_user_fk": "FOREIGN KEY (account_id, user_id) "
        "REFERENCES accounts(id, user_id) DEFERRABLE INITIALLY DEFERRED"
    }


@pytest.mark.django_db
def test_deleting_an_account_still_deletes_its_rows(user):
    account = make_account(user=user)
    _insert(account_id=account.pk, user_id=user.pk)

    account.delete()

    assert not Transaction.objects.exists()
