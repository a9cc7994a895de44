"""End to end against the sandbox banks over real HTTP: full, repeat, next-day and faulty syncs."""

import pytest

from banking.models import BankConnection, ConnectionStatus, Transaction
from banking.tests.factories import client_id_of
from consents import services as consent_services
from consents.models import ConsentKind, ConsentStatus
from sync.models import SyncRun, SyncStatus, SyncTrigger
from sync.services import sync_run_execute
from sync.tests.ground_truth import assert_equals_ground_truth

pytestmark = pytest.mark.django_db(transaction=True)


def _connected(user, bank_code: str) -> BankConnection:
    """Both consents authorised (SBank through its demo approval) and the connection row, as the
    demo client a connect proposes where the user has no client yet."""
    from banking.services.connections import (
        connection_demo_client_id_assign,
        connection_get_or_create,
    )

    connection = connection_get_or_create(user=user, bank_code=bank_code)
    if not connection.client_id:
        connection_demo_client_id_assign(connection=connection)
    for kind in (ConsentKind.ACCOUNTS, ConsentKind.PRODUCTS):
        consent = consent_services.consent_ensure(user=user, bank_code=bank_code, kind=kind)
        if consent.status == ConsentStatus.PENDING:
            consent = consent_services.consent_approve_demo(consent=consent)
        assert consent.status == ConsentStatus.AUTHORIZED
    connection.refresh_from_db()
    return connection


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


def _ids(truth: dict) -> set[str]:
    return {item["transactionId"] for items in truth["transactions"].values() for item in items}


def test_second_sync_adds_nothing_and_costs_two_calls_per_account(sandbox_banks, user):
    connection = _connected(user, "vbank")
    first = _sync(connection)
    assert first.status == SyncStatus.SUCCEEDED, first.error
    rows_before = Transaction.objects.filter(user=user).count()

    second = _sync(connection)

    assert second.status == SyncStatus.SUCCEEDED, second.error
    assert second.transactions_added == 0
    assert second.transactions_updated == 0
    assert second.transactions_removed == 0
    assert second.transactions_unchanged > 0
    assert Transaction.objects.filter(user=user).count() == rows_before
    # accounts list + (balances + one transactions page) per account + agreements list.
    assert second.bank_calls == 2 + 2 * second.accounts_count
    assert_equals_ground_truth(user=user, bank_code="vbank")


def test_next_day_sync_adds_exactly_the_new_days_transactions(sandbox_banks, user):
    from sandbox import clock
    from sandbox.ground_truth import client_bank_truth

    connection = _connected(user, "abank")
    assert _sync(connection).status == SyncStatus.SUCCEEDED
    client_id = client_id_of(user=user, bank_code="abank")
    before = _ids(client_bank_truth(client_id, "abank"))
    for _day in range(7):  # a quiet account may have no row on a given day
        clock.advance(days=1)
        after = _ids(client_bank_truth(client_id, "abank"))
        if after - before:
            break
    assert after - before, "the sandbox should serve new transactions within a week"

    run = _sync(connection)

    assert run.status == SyncStatus.SUCCEEDED, run.error
    assert run.transactions_added == len(after - before)
    # Pending rows that posted disappear under their -pending id (replaced by the posted twin).
    assert run.transactions_removed == len(before - after)
    assert_equals_ground_truth(user=user, bank_code="abank")


def test_pending_then_posted_leaves_one_row(sandbox_banks, user, settings):
    from sandbox import clock

    # The live banks send no pending rows (SPEC §17); the examples-style data still does.
    settings.SANDBOX_DATA_STYLE = "examples"
    from sandbox.ground_truth import client_bank_truth
    from sandbox.volume import set_client_volume

    connection = _connected(user, "vbank")
    client_id = client_id_of(user=user, bank_code="vbank")
    set_client_volume(client_id, 2000, history_months=2)  # busy: pending rows
    for _hour in range(72):  # move the sandbox clock to an instant with pending transactions
        if any(i.endswith("-pending") for i in _ids(client_bank_truth(client_id, "vbank"))):
            break
        clock.advance(hours=1)
    assert _sync(connection).status == SyncStatus.SUCCEEDED
    pending = set(
        Transaction.objects.filter(user=user, status="pending").values_list(
            "bank_transaction_id", flat=True
        )
    )
    assert pending, "the sandbox should serve a pending transaction at this instant"
    clock.advance(days=2)  # posting delays stay under 47 h

    run = _sync(connection)

    assert run.status == SyncStatus.SUCCEEDED, run.error
    posted_ids = {pending_id.removesuffix("-pending") for pending_id in pending}
    stored = set(
        Transaction.objects.filter(user=user).values_list("bank_transaction_id", flat=True)
    )
    assert not (pending & stored)
    assert posted_ids <= stored
    assert run.transactions_removed >= len(pending)
    assert _ids(client_bank_truth(client_id, "vbank")) >= posted_ids
    assert_equals_ground_truth(user=user, bank_code="vbank")


def test_5xx_mid_transactions_then_rerun_equals_ground_truth(sandbox_banks, user, settings):
    import re

    import responses

    from banking.models import Account

    settings.SYNC_PAGE_LIMIT = 20  # several pages per account
    connection = _connected(user, "sbank")
    base = sandbox_banks["sbank"]["base_url"]
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        mock.add_passthru(re.compile(rf"{re.escape(base)}/(?!accounts/[^/]+/transactions).*"))
        mock.add_passthru(re.compile(rf"{re.escape(base)}/accounts/[^/]+/transactions\?.*page=1&"))
        mock.add(
            responses.GET,
            re.compile(rf"{re.escape(base)}/accounts/[^/]+/transactions\?.*page=2&.*"),
            body="<html>502 Bad Gateway</html>",
            status=502,
        )
        failed = _sync(connection)

    assert failed.status == SyncStatus.FAILED
    assert failed.error_code == "bank_unavailable"
    assert failed.transactions_added == 20  # page 1 of the first account was written
    assert set(
        Account.objects.filter(connection=connection).values_list(
            "transactions_synced_through", flat=True
        )
    ) == {None}
    connection.refresh_from_db()
    assert connection.status == ConnectionStatus.ERROR
    assert "unavailable" in connection.last_error

    rerun = _sync(connection)

    assert rerun.status == SyncStatus.SUCCEEDED, rerun.error
    assert rerun.transactions_unchanged >= 20
    assert_equals_ground_truth(user=user, bank_code="sbank")
    connection.refresh_from_db()
    assert connection.status == ConnectionStatus.READY
    assert connection.last_error == ""


def test_revoked_consent_moves_connection_to_consent_required(sandbox_banks, user):
    from sandbox import faults

    connection = _connected(user, "vbank")
    assert _sync(connection).status == SyncStatus.SUCCEEDED
    faults.revoke_consents("vbank", client_id=client_id_of(user=user, bank_code="vbank"))

    run = _sync(connection)

    assert run.status == SyncStatus.FAILED
    assert run.error_code == "consent_required"
    connection.refresh_from_db()
    assert (connection.status, connection.status_reason) == (
        ConnectionStatus.CONSENT_REQUIRED,
        "consent_revoked",
    )
    assert "consent" in connection.last_error
    assert (
        consent_services.consent_active(user=user, bank_code="vbank", kind=ConsentKind.ACCOUNTS)
        is None
    )


def test_revoked_product_consent_is_renewed_by_the_next_run(sandbox_banks, user):
    from sandbox import faults

    connection = _connected(user, "vbank")
    first = _sync(connection)
    assert first.agreements_count > 0
    old = consent_services.consent_active(user=user, bank_code="vbank", kind=ConsentKind.PRODUCTS)
    faults.revoke_consents("vbank", consent_id=old.bank_consent_id)

    skipped = _sync(connection)  # the bank refuses agreements: the account data still syncs
    renewed = _sync(connection)

    assert skipped.status == SyncStatus.SUCCEEDED
    old.refresh_from_db()
    assert old.status == ConsentStatus.REVOKED
    assert renewed.status == SyncStatus.SUCCEEDED
    assert renewed.agreements_count == first.agreements_count
    fresh = consent_services.consent_active(user=user, bank_code="vbank", kind=ConsentKind.PRODUCTS)
    assert fresh.pk != old.pk and fresh.bank_consent_id != old.bank_consent_id
    assert_equals_ground_truth(user=user, bank_code="vbank")


def test_demo_approval_of_a_pending_bank_starts_its_first_sync(sandbox_banks, auth_client):
    user = auth_client.user
    connect = auth_client.post("/api/banks/sbank/connect")
    assert connect.status_code == 202, connect.content
    approve_url = connect.json()["action_required"]["approve_demo_url"]
    assert not SyncRun.objects.filter(user=user).exists()

    approved = auth_client.post(approve_url)

    # 202: a worker signs at the bank (eager here); the request, followed, says how it went.
    assert approved.status_code == 202, approved.content
    followed = auth_client.get(approved.json()["status_url"])
    assert followed.status_code == 200, followed.content
    request = followed.json()["connect_request"]
    assert (request["kind"], request["status"], request["outcome"]) == (
        "approve_demo",
        "succeeded",
        "sync_started",
    )
    assert followed.json()["accounts_consent"]["status"] == ConsentStatus.AUTHORIZED
    run = SyncRun.objects.get(user=user)
    assert run.status == SyncStatus.SUCCEEDED, run.error
    assert BankConnection.objects.get(user=user, bank_code="sbank").status == ConnectionStatus.READY
    assert_equals_ground_truth(user=user, bank_code="sbank")


def _run_logs(run: SyncRun):
    from audit.models import RawApiLog

    return RawApiLog.objects.filter(correlation_id=str(run.correlation_id))


def _assert_every_bank_call_logged(run: SyncRun) -> None:
    """A request row and a response row per bank call of the run, paired by exchange id."""
    from django.db.models import Count

    logs = _run_logs(run)
    assert run.bank_calls > 0
    assert logs.filter(direction="response").count() == run.bank_calls
    assert logs.filter(direction="request").count() == run.bank_calls
    pair_sizes = set(
        logs.values("exchange_id").annotate(rows=Count("id")).values_list("rows", flat=True)
    )
    assert pair_sizes == {2}


@pytest.mark.parametrize(
    "failing",
    [
        pytest.param(r"/accounts/[^/]+/transactions\?.*page=2&.*", id="mid-history"),
        pytest.param(r"/accounts/[^/]+/balances(\?.*)?$", id="before-transactions"),
    ],
)
def test_a_failed_run_still_logs_every_bank_call_it_made(sandbox_banks, user, settings, failing):
    import re

    import responses

    settings.SYNC_PAGE_LIMIT = 20  # several pages per account
    connection = _connected(user, "sbank")
    base = re.escape(sandbox_banks["sbank"]["base_url"])
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        mock.add(
            responses.GET,
            re.compile(base + failing),
            body="<html>502 Bad Gateway</html>",
            status=502,
        )
        mock.add_passthru(re.compile(rf"{base}/.*"))
        failed = _sync(connection)

    assert failed.status == SyncStatus.FAILED
    assert failed.error_code == "bank_unavailable"
    _assert_every_bank_call_logged(failed)
    # The call that failed is there with each of its retries.
    bad = _run_logs(failed).filter(direction="response", status_code=502)
    assert bad.count() == settings.BANK_MAX_RETRIES + 1
    assert len({row.endpoint for row in bad}) == 1


def test_a_successful_run_logs_a_request_and_a_response_per_bank_call(sandbox_banks, user):
    connection = _connected(user, "vbank")

    first = _sync(connection)
    second = _sync(connection)

    for run in (first, second):
        assert run.status == SyncStatus.SUCCEEDED, run.error
        _assert_every_bank_call_logged(run)
