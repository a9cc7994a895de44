"""A run retried after its first attempt stored rows: the derived money data (daily aggregates)
counts those rows too, though the attempt that finishes finds them stored already."""

from datetime import timedelta

import pytest
import responses
from django.utils import timezone

from banking.models import BankConnection, Transaction, TransactionAggregate
from sync import tasks
from sync.models import SyncStatus, SyncTrigger
from sync.services import connection_sync_start
from sync.tests import fakebank as fb


@pytest.fixture
def connection(db, user, settings):
    fb.bank_settings(settings)
    settings.BANK_MAX_RETRIES = 0
    settings.SYNC_WRITE_BATCH_ROWS = 1  # each page's rows committed before the next is asked for
    settings.FIRST_SYNC_RECENT_DAYS = 0
    fb.authorised_consents(user, products=False)
    return BankConnection.objects.create(user=user, bank_code="vbank", client_id="team260-1")


def _old_row() -> dict:
    return fb.tx("tx-old", timezone.now() - timedelta(days=5), amount="250.00")


def _bank(mock, row: dict, *, second_page_fails: bool) -> None:
    """One account: `row` on page 1; page 2 answers 503 first when `second_page_fails`."""
    fb.add_accounts_and_balances(mock)
    fb.add_page(mock, [row], page=1, has_next=True)
    if second_page_fails:
        fb.add_page(mock, [], page=2, has_next=False, status=503)  # the first attempt fails here
    fb.add_page(mock, [], page=2, has_next=False)
    fb.add_products(mock)
    fb.add_agreements(mock)


def test_rows_an_earlier_attempt_stored_are_counted_in_the_days_aggregates(connection):
    run, _ = connection_sync_start(connection=connection, trigger=SyncTrigger.USER)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        _bank(mock, _old_row(), second_page_fails=True)
        tasks.connection_sync.apply(args=[run.pk])

    run.refresh_from_db()
    assert run.status == SyncStatus.SUCCEEDED, run.error
    assert run.attempts == 2
    stored = Transaction.objects.get(bank_transaction_id="tx-old")
    day_spending = sum(
        TransactionAggregate.objects.filter(user=connection.user).values_list("spending", flat=True)
    )
    assert stored.amount < 0
    assert day_spending == -stored.amount


def test_rows_of_an_attempt_that_died_before_saving_its_counts_are_counted_too(connection):
    """A worker killed right after a batch's commit has not saved that batch's counts (they are
    saved about once a second): the next attempt finds the days from the rows themselves."""
    from banking.clients.errors import BankUnavailableError
    from sync.models import SyncRun
    from sync.services import sync_run_execute

    row = _old_row()
    run, _ = connection_sync_start(connection=connection, trigger=SyncTrigger.USER)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        _bank(mock, row, second_page_fails=True)
        with pytest.raises(BankUnavailableError):
            sync_run_execute(sync_run_id=run.pk, retry_allowed=True)
    assert Transaction.objects.filter(bank_transaction_id="tx-old").exists()
    # What a killed worker leaves: the row stored, the run still running, its counts older.
    SyncRun.objects.filter(pk=run.pk).update(
        status=SyncStatus.QUEUED, transactions_added=0, transactions_changed_since=None
    )
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        _bank(mock, row, second_page_fails=False)
        sync_run_execute(sync_run_id=run.pk)

    run.refresh_from_db()
    assert (run.status, run.attempts) == (SyncStatus.SUCCEEDED, 2), run.error
    assert (
        run.transactions_changed_since
        == Transaction.objects.get(bank_transaction_id="tx-old").booking_date
    )
    day_spending = sum(
        TransactionAggregate.objects.filter(user=connection.user).values_list("spending", flat=True)
    )
    assert day_spending == 250
