"""banking.signals: the apps above hear of changed transactions once the change commits."""

from datetime import date

import pytest
from django.db import transaction

from banking.models import Transaction
from banking.signals import transactions_changed, transactions_changed_on_commit


@pytest.fixture
def heard():
    calls = []

    def receiver(sender, **kwargs):
        calls.append((sender, kwargs))

    transactions_changed.connect(receiver, dispatch_uid="test-heard")
    yield calls
    transactions_changed.disconnect(dispatch_uid="test-heard")


@pytest.mark.django_db
def test_transactions_changed_is_sent_once_the_transaction_commits(
    heard, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True) as callbacks, transaction.atomic():
        transactions_changed_on_commit(sender=Transaction, user_id=7, since_date=date(2025, 11, 2))
        assert heard == []

    assert len(callbacks) == 1
    assert heard == [
        (
            Transaction,
            {"signal": transactions_changed, "user_id": 7, "since_date": date(2025, 11, 2)},
        )
    ]


@pytest.mark.django_db
def test_a_rolled_back_change_is_never_announced(heard, django_capture_on_commit_callbacks):
    with (
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        pytest.raises(RuntimeError),
        transaction.atomic(),
    ):
        transactions_changed_on_commit(sender=Transaction, user_id=7, since_date=None)
        raise RuntimeError("the change failed")

    assert (callbacks, heard) == ([], [])
