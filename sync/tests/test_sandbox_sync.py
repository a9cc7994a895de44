"""End to end against the sandbox banks over real HTTP: full, repeat, next-day and faulty syncs."""

import pytest

from banking.models import BankConnection, ConnectionStatus
from consents import services as consent_services
from consents.models import ConsentKind, ConsentStatus
from sync.models import SyncRun, SyncStatus, SyncTrigger
from sync.services import sync_run_execute
from sync.tests.conftest import assert_equals_ground_truth

# serialized_rollback: the seeded categories and schedule survive the flush between tests.
pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def _connected(user, bank_code: str) -> BankConnection:
    """Both consents authorised (SBank through its demo approval) and the connection row."""
    from banking.services.connections import connection_get_or_create

    for kind in (ConsentKind.ACCOUNTS, ConsentKind.PRODUCTS):
        consent = consent_services.consent_ensure(user=user, bank_code=bank_code, kind=kind)
        if consent.status == ConsentStatus.PENDING:
            consent = consent_services.consent_approve_demo(consent=consent)
        assert consent.status == ConsentStatus.AUTHORIZED
    return connection_get_or_create(user=user, bank_code=bank_code)


def _sync(connection) -> SyncRun:
    run = SyncRun.objects.create(
        connection=connection, user_id=connection.user_id, trigger=SyncTrigger.USER
    )
    sync_run_execute(sync_run_id=run.pk)
    run.refresh_from_db()
    return run


@pytest.mark.parametrize("bank_code", ["vbank", "abank", "sbank"])
def test_full_sync_equals_sandbox_ground_truth(sandbox_banks, user, bank_code):
    connection = _connected(user, bank_code)

    run = _sync(connection)

    assert run.status == SyncStatus.SUCCEEDED, run.error
    assert run.progress == 100
    truth = assert_equals_ground_truth(user=user, bank_code=bank_code)
    total = sum(len(items) for items in truth["transactions"].values())
    assert run.transactions_added == total
    assert run.transactions_updated == 0
    assert run.accounts_count == len(truth["accounts"])
    assert run.balances_count == len(truth["accounts"])
    assert run.agreements_count == len(truth["agreements"])
    connection.refresh_from_db()
    assert connection.status == ConnectionStatus.READY
    assert connection.last_success_at == run.finished_at
