"""Orchestrator step logic against a bank faked with `responses` (payloads as in the examples)."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import responses

from banking.models import (
    Account,
    BalanceSnapshot,
    BankConnection,
    ConnectionStatus,
    ProductAgreement,
    Transaction,
)
from consents.models import Consent, ConsentKind, ConsentStatus
from sync.models import SyncRun, SyncStatus, SyncStep
from sync.tests import fakebank as fb

DAY = timedelta(days=1)
T0 = datetime(2025, 11, 20, 12, 0, tzinfo=UTC)


@pytest.fixture
def connection(db, user, settings):
    fb.bank_settings(settings)
    settings.BANK_MAX_RETRIES = 0
    fb.authorised_consents(user)
    return BankConnection.objects.create(user=user, bank_code="vbank", client_id="team260-1")


def _first_sync(
    connection, pages: list[list[dict]], *, status: str = SyncStatus.SUCCEEDED
) -> SyncRun:
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        fb.add_accounts_and_balances(mock)
        for number, items in enumerate(pages, start=1):
            fb.add_page(mock, items, page=number, has_next=number < len(pages))
        fb.add_products(mock)
        fb.add_agreements(mock)
        run = fb.run_sync(connection)
    assert run.status == status, run.error
    return run


def _account() -> Account:
    return Account.objects.get(bank_account_id=fb.ACCOUNT_ID)


def test_first_sync_stores_every_page_and_moves_watermark_to_newest_booking(connection, settings):
    settings.FIRST_SYNC_RECENT_DAYS = 0  # one pass (the progressive first sync has its own tests)
    run = _first_sync(
        connection,
        [
            [fb.tx("tx-3", T0), fb.tx("tx-2", T0 - DAY, indicator="Credit", amount="500.00")],
            [fb.tx("tx-1", T0 - 40 * DAY)],
        ],
    )

    assert (run.accounts_count, run.balances_count) == (1, 1)
    assert (run.transactions_added, run.transactions_updated, run.transactions_unchanged) == (
        3,
        0,
        0,
    )
    assert run.step == SyncStep.DONE
    assert run.progress == 100
    # accounts, balances, two pages, the catalogue, the agreements list
    assert run.bank_calls == 6
    amounts = dict(Transaction.objects.values_list("bank_transaction_id", "amount"))
    assert amounts == {
        "tx-3": Decimal("-100.00"),
        "tx-2": Decimal("500.00"),
        "tx-1": Decimal("-100.00"),
    }
    account = _account()
    assert account.transactions_synced_through == T0
    assert account.current_balance == Decimal("121398.37")
    assert account.masked_number == "****4636"
    snapshot = BalanceSnapshot.objects.get()
    assert (snapshot.sync_run_id, snapshot.available) == (run.pk, Decimal("121398.37"))
    connection.refresh_from_db()
    assert connection.status == ConnectionStatus.READY


def test_incremental_sync_stops_at_the_overlap_window_and_counts_changes(connection):
    _first_sync(
        connection,
        [[fb.tx("tx-3", T0), fb.tx("tx-2", T0 - DAY)], [fb.tx("tx-1", T0 - 40 * DAY)]],
    )
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        fb.add_accounts_and_balances(mock, amount="99.00")
        # Page 1 reaches below watermark − 3 days, so page 2 is never requested.
        fb.add_page(
            mock,
            [
                fb.tx("tx-4", T0 + DAY),
                fb.tx("tx-3", T0, information="🚌 Транспорт"),
                fb.tx("tx-2", T0 - DAY),
                fb.tx("tx-0", T0 - 5 * DAY),
            ],
            page=1,
            has_next=True,
        )
        fb.add_agreements(mock)
        run = fb.run_sync(connection)

    assert run.status == SyncStatus.SUCCEEDED, run.error
    assert (run.transactions_added, run.transactions_updated, run.transactions_unchanged) == (
        2,
        1,
        1,
    )
    assert Transaction.objects.get(bank_transaction_id="tx-3").description == "🚌 Транспорт"
    assert Transaction.objects.count() == 5
    assert _account().transactions_synced_through == T0 + DAY
    assert _account().current_balance == Decimal("99.00")
    assert run.bank_calls == 4  # accounts, balances, one page, agreements (catalogue is fresh)


def test_failure_mid_transactions_leaves_watermark_unmoved_and_rerun_adds_no_duplicate(
    connection,
):
    _first_sync(connection, [[fb.tx("tx-1", T0)]])
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        fb.add_accounts_and_balances(mock)
        fb.add_page(
            mock, [fb.tx("tx-3", T0 + 2 * DAY), fb.tx("tx-2", T0 + DAY)], page=1, has_next=True
        )
        fb.add_page(mock, [], page=2, has_next=False, status=502)
        failed = fb.run_sync(connection)

    assert failed.status == SyncStatus.FAILED
    assert failed.error_code == "bank_unavailable"
    assert failed.transactions_added == 2
    assert failed.finished_at is not None
    assert _account().transactions_synced_through == T0
    connection.refresh_from_db()
    assert connection.status == ConnectionStatus.ERROR
    assert "unavailable" in connection.last_error

    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        fb.add_accounts_and_balances(mock)
        fb.add_page(
            mock,
            [fb.tx("tx-3", T0 + 2 * DAY), fb.tx("tx-2", T0 + DAY), fb.tx("tx-1", T0)],
            page=1,
            has_next=False,
        )
        fb.add_agreements(mock)
        rerun = fb.run_sync(connection)

    assert rerun.status == SyncStatus.SUCCEEDED, rerun.error
    assert (rerun.transactions_added, rerun.transactions_unchanged) == (0, 3)
    assert Transaction.objects.count() == 3
    assert _account().transactions_synced_through == T0 + 2 * DAY
    connection.refresh_from_db()
    assert (connection.status, connection.last_error) == (ConnectionStatus.READY, "")


def test_unparseable_items_are_counted_reported_and_never_stored(connection):
    bad = fb.tx("tx-bad", T0)
    bad["amount"]["amount"] = "twelve"
    # Quarantined and retried by the next sync (sync/tests/test_partial_runs.py): partial.
    run = _first_sync(connection, [[fb.tx("tx-1", T0), bad]], status=SyncStatus.PARTIAL)

    assert run.transactions_added == 1
    assert run.transactions_skipped == 1
    assert len(run.warnings) == 1
    assert run.warnings[0]["account"] == fb.ACCOUNT_ID
    assert "tx-bad" in run.warnings[0]["reason"]
    assert list(Transaction.objects.values_list("bank_transaction_id", flat=True)) == ["tx-1"]


def test_pending_rows_are_removed_only_inside_the_scanned_window(connection):
    _first_sync(
        connection,
        [
            [fb.tx("tx-9", T0), fb.tx("p-new", T0 - DAY, status="pending")],
            [fb.tx("p-old", T0 - 30 * DAY, status="pending"), fb.tx("tx-0", T0 - 31 * DAY)],
        ],
    )
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        fb.add_accounts_and_balances(mock)
        # p-new posted as tx-8; the bank then answers an empty page: the scan ends early, at T0−1d.
        fb.add_page(mock, [fb.tx("tx-9", T0), fb.tx("tx-8", T0 - DAY)], page=1, has_next=True)
        fb.add_page(mock, [], page=2, has_next=True)
        fb.add_agreements(mock)
        run = fb.run_sync(connection)

    assert run.status == SyncStatus.SUCCEEDED, run.error
    assert run.transactions_removed == 1
    assert set(Transaction.objects.values_list("bank_transaction_id", flat=True)) == {
        "tx-9",
        "tx-8",
        "p-old",
        "tx-0",
    }


def test_pending_replaced_by_posted_twin_leaves_one_row(connection):
    _first_sync(connection, [[fb.tx("tx-5-pending", T0, status="pending")]])
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        fb.add_accounts_and_balances(mock)
        fb.add_page(mock, [fb.tx("tx-5", T0)], page=1, has_next=False)
        fb.add_agreements(mock)
        run = fb.run_sync(connection)

    assert (run.transactions_added, run.transactions_removed) == (1, 1)
    assert list(Transaction.objects.values_list("bank_transaction_id", "status")) == [
        ("tx-5", "booked")
    ]


def test_consent_rejected_by_bank_fails_run_and_asks_for_consent(connection, user):
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        mock.add(
            responses.GET,
            f"{fb.BASE}/accounts",
            status=403,
            json={"detail": {"error": "CONSENT_REQUIRED", "message": "Требуется согласие клиента"}},
        )
        run = fb.run_sync(connection)

    assert run.status == SyncStatus.FAILED
    assert run.error_code == "consent_required"
    connection.refresh_from_db()
    assert (connection.status, connection.status_reason) == (
        ConnectionStatus.CONSENT_REQUIRED,
        "consent_revoked",
    )
    consent = Consent.objects.get(user=user, kind=ConsentKind.ACCOUNTS)
    assert consent.status != ConsentStatus.AUTHORIZED
    assert Account.objects.count() == 0


def test_terminal_bank_error_fails_run_with_clear_error(connection):
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        mock.add(responses.GET, f"{fb.BASE}/accounts", json=fb.accounts_body())
        mock.add(
            responses.GET,
            f"{fb.BASE}/accounts/{fb.ACCOUNT_ID}/balances",
            status=400,
            json={"detail": "client_id required for interbank requests"},
        )
        run = fb.run_sync(connection)

    assert run.status == SyncStatus.FAILED
    assert run.error_code == "bank_rejected"
    assert "client_id required" in run.error
    connection.refresh_from_db()
    assert connection.status == ConnectionStatus.ERROR
    assert "client_id required" in connection.last_error
    assert BalanceSnapshot.objects.count() == 0


def test_sync_without_consent_fails_without_calling_the_bank(db, user, settings):
    fb.bank_settings(settings)
    connection = BankConnection.objects.create(user=user, bank_code="vbank", client_id="team260-1")
    with responses.RequestsMock(assert_all_requests_are_fired=True):
        run = fb.run_sync(connection)

    assert (run.status, run.error_code, run.bank_calls) == (
        SyncStatus.FAILED,
        "consent_required",
        0,
    )
    connection.refresh_from_db()
    assert (connection.status, connection.status_reason) == (
        ConnectionStatus.CONSENT_REQUIRED,
        "consent_missing",
    )


def test_agreements_take_balance_from_linked_account_and_rate_from_catalogue(connection):
    accounts = fb.accounts_body()
    loan_account = {
        **accounts["data"]["account"][0],
        "accountId": "acc-5121",
        "accountSubType": "Loan",
        "account": [{"schemeName": "RU.CBR.PAN", "identification": "455d5d7a74bb3be416"}],
    }
    accounts["data"]["account"].append(loan_account)
    agreement = fb.loan_agreement("455d5d7a74bb3be416")
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        mock.add(responses.GET, f"{fb.BASE}/accounts", json=accounts)
        mock.add(
            responses.GET, f"{fb.BASE}/accounts/{fb.ACCOUNT_ID}/balances", json=fb.balances_body()
        )
        loan_balance = fb.balances_body("1750000.00")
        for item in loan_balance["data"]["balance"]:
            item["accountId"] = "acc-5121"
        mock.add(responses.GET, f"{fb.BASE}/accounts/acc-5121/balances", json=loan_balance)
        fb.add_page(mock, [], page=1, has_next=False)
        mock.add(
            responses.GET,
            f"{fb.BASE}/accounts/acc-5121/transactions",
            json={"data": {"transaction": []}, "links": {"self": "/x"}, "meta": {}},
        )
        fb.add_products(mock)
        fb.add_agreements(mock, [agreement])
        run = fb.run_sync(connection)

    assert run.status == SyncStatus.SUCCEEDED, run.error
    assert run.agreements_count == 1
    stored = ProductAgreement.objects.get()
    assert stored.linked_account.bank_account_id == "acc-5121"
    assert stored.remaining_balance == Decimal("1750000.00")
    assert stored.interest_rate == Decimal("9.300")
    assert stored.term_months == 240
    assert stored.principal == Decimal("1800000.00")
