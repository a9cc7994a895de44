"""Per-step outcomes (issue 21): an optional step (products catalogue, agreements) that fails
leaves the run `partial` with the step's error, everything else stored and the connection `ready`
with a warning; only the failed step is retried, alone.

Before: a 500 on the agreements route raised out of the run, which the task retried whole (every
account, balance and transaction page again) for minutes and then ended `error`.
"""

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import responses
from django.urls import get_resolver

from banking.models import Account, BankConnection, ConnectionStatus, ProductAgreement, Transaction
from sync import tasks
from sync.models import OptionalStep, SyncKind, SyncRun, SyncStatus, SyncTrigger
from sync.services import failed_steps_retry_start, sync_run_execute
from sync.tests import fakebank as fb

T0 = datetime(2025, 11, 20, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)
AGREEMENTS_URL = f"{fb.BASE}/product-agreements"
EXAMPLES = Path("/work/shared/bank-api/examples")  # as banking/tests/test_clients.py
AGREEMENT = fb.loan_agreement("455d5d7a74bb3be416")


@pytest.fixture
def connection(db, user, settings):
    fb.bank_settings(settings)
    settings.BANK_MAX_RETRIES = 0
    settings.SYNC_STEP_RETRY_SECONDS = 120
    fb.authorised_consents(user)
    return BankConnection.objects.create(user=user, bank_code="vbank", client_id="team260-1")


@pytest.fixture
def sent(monkeypatch):
    """Tasks the sync sends through fintrack.core.tasks.enqueue: (task name, args, countdown)."""
    calls: list[tuple[str, tuple, float | None]] = []

    def record(task, *args, countdown=None, **kwargs):
        calls.append((task.name, args, countdown))
        return True

    monkeypatch.setattr("sync.services.enqueue", record)
    return calls


def _execute(connection, *, kind=SyncKind.FULL, retry_allowed=True) -> SyncRun:
    run = SyncRun.objects.create(connection=connection, user_id=connection.user_id, kind=kind)
    sync_run_execute(sync_run_id=run.pk, retry_allowed=retry_allowed)
    run.refresh_from_db()
    return run


def _add_agreements(mock) -> None:
    """The agreements list with one active loan, and its detail call (its rate and balance)."""
    fb.add_agreements(mock, [AGREEMENT])
    detail = json.loads((EXAMPLES / "product_agreement_detail.json").read_text())
    mock.add(responses.GET, f"{AGREEMENTS_URL}/{AGREEMENT['agreement_id']}", json=detail)


def _paths(mock) -> list[str]:
    return [call.request.url.split("?")[0].removeprefix(fb.BASE) for call in mock.calls]


def _first_sync_with_failing_agreements(connection, *, status=500) -> SyncRun:
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        fb.add_accounts_and_balances(mock)
        fb.add_page(mock, [fb.tx("tx-2", T0), fb.tx("tx-1", T0 - DAY)], page=1, has_next=False)
        fb.add_products(mock)
        mock.add(responses.GET, AGREEMENTS_URL, body="Internal Server Error", status=status)
        # retry_allowed, as the task runs it: a failing optional step must not retry the run.
        return _execute(connection, retry_allowed=True)


def test_a_500_on_agreements_leaves_the_run_partial_with_the_rest_stored(
    connection, sent, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        run = _first_sync_with_failing_agreements(connection)

    assert run.status == SyncStatus.PARTIAL
    assert run.attempts == 1  # not requeued for the task to retry the whole run
    assert run.error_code == "partial"
    assert "product agreements" in run.error and "retried in a few minutes" in run.error
    assert run.step_errors == [
        {
            "step": "agreements",
            "code": "bank_unavailable",
            "error": run.step_errors[0]["error"],
            "status_code": 500,
            "retryable": True,
            "retry_after": None,
        }
    ]
    assert (run.accounts_count, run.balances_count, run.transactions_added) == (1, 1, 2)
    assert set(Transaction.objects.values_list("bank_transaction_id", flat=True)) == {
        "tx-1",
        "tx-2",
    }
    account = Account.objects.get(bank_account_id=fb.ACCOUNT_ID)
    assert account.transactions_synced_through == T0  # complete: the watermark moved
    connection.refresh_from_db()
    assert connection.status == ConnectionStatus.READY
    assert connection.last_error == run.error
    assert connection.last_success_at == run.finished_at
    # One retry of the failed step alone, a little later (jittered in [base/2, base]).
    assert [(name, args) for name, args, _ in sent] == [("sync.failed_steps_retry", (run.pk,))]
    assert 60 <= sent[0][2] <= 120


def test_the_step_retry_reads_agreements_only_and_clears_the_warning(
    connection, sent, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        partial = _first_sync_with_failing_agreements(connection)
    connection.refresh_from_db()
    fresh_before = connection.last_success_at

    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        _add_agreements(mock)
        retry = failed_steps_retry_start(sync_run_id=partial.pk)
        sync_run_execute(sync_run_id=retry.pk)
        calls = _paths(mock)

    retry.refresh_from_db()
    assert (retry.kind, retry.trigger) == (SyncKind.AGREEMENTS, SyncTrigger.STEP_RETRY)
    assert retry.status == SyncStatus.SUCCEEDED, retry.error
    # The agreements list and the loan's detail: no account, balance or transaction read again.
    assert calls == ["/product-agreements", f"/product-agreements/{AGREEMENT['agreement_id']}"]
    assert retry.bank_calls == 2
    assert (retry.agreements_count, retry.step_errors) == (1, [])
    assert ProductAgreement.objects.get().agreement_id == AGREEMENT["agreement_id"]
    connection.refresh_from_db()
    assert connection.status == ConnectionStatus.READY
    assert connection.last_error == ""
    # Transactions were not read: the data is as fresh as the run that read them.
    assert connection.last_success_at == fresh_before
    assert len(sent) == 1  # a step retry does not schedule another: the next full sync does


def test_a_step_retry_that_fails_again_keeps_the_warning_and_schedules_nothing(
    connection, sent, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        partial = _first_sync_with_failing_agreements(connection)
        with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
            mock.add(responses.GET, AGREEMENTS_URL, body="Bad Gateway", status=502)
            retry = failed_steps_retry_start(sync_run_id=partial.pk)
            sync_run_execute(sync_run_id=retry.pk, retry_allowed=True)

    retry.refresh_from_db()
    assert retry.status == SyncStatus.PARTIAL
    assert [e["step"] for e in retry.step_errors] == ["agreements"]
    assert "the next sync tries again" in retry.error
    connection.refresh_from_db()
    assert connection.status == ConnectionStatus.READY
    assert connection.last_error == retry.error
    assert [name for name, _args, _countdown in sent] == ["sync.failed_steps_retry"]


def test_the_next_full_sync_reads_the_overlap_window_and_the_agreements(connection, sent):
    _first_sync_with_failing_agreements(connection)

    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        fb.add_accounts_and_balances(mock)
        fb.add_page(
            mock,
            [fb.tx("tx-3", T0 + DAY), fb.tx("tx-2", T0), fb.tx("tx-0", T0 - 5 * DAY)],
            page=1,
            has_next=True,
        )
        _add_agreements(mock)
        run = _execute(connection)
        calls = _paths(mock)

    assert run.status == SyncStatus.SUCCEEDED, run.error
    # One page (the overlap window reached), the catalogue still fresh, the agreements read.
    assert calls == [
        "/accounts",
        f"/accounts/{fb.ACCOUNT_ID}/balances",
        f"/accounts/{fb.ACCOUNT_ID}/transactions",
        "/product-agreements",
        f"/product-agreements/{AGREEMENT['agreement_id']}",
    ]
    assert (run.transactions_added, run.agreements_count) == (2, 1)


def test_a_failing_catalogue_is_a_step_error_and_agreements_still_come(connection, sent):
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        fb.add_accounts_and_balances(mock)
        fb.add_page(mock, [fb.tx("tx-1", T0)], page=1, has_next=False)
        mock.add(responses.GET, f"{fb.BASE}/products", body="Service Unavailable", status=503)
        _add_agreements(mock)
        run = _execute(connection)

    assert run.status == SyncStatus.PARTIAL
    assert [(e["step"], e["code"]) for e in run.step_errors] == [
        (OptionalStep.PRODUCTS, "bank_unavailable")
    ]
    assert "products catalogue" in run.error
    assert run.agreements_count == 1
    assert Transaction.objects.count() == 1


def test_a_refused_agreements_call_is_not_retried_soon(
    connection, sent, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        run = _first_sync_with_failing_agreements(connection, status=400)

    assert run.status == SyncStatus.PARTIAL
    assert [(e["code"], e["retryable"]) for e in run.step_errors] == [("bank_rejected", False)]
    assert "the next sync tries again" in run.error
    assert sent == []
    assert failed_steps_retry_start(sync_run_id=run.pk) is None


@pytest.mark.parametrize("what", ["newer_run", "connection_not_ready", "gone"])
def test_no_step_retry_when_something_newer_happened(connection, sent, what):
    partial = _first_sync_with_failing_agreements(connection)
    if what == "newer_run":
        SyncRun.objects.create(
            connection=connection, user_id=connection.user_id, status=SyncStatus.SUCCEEDED
        )
    elif what == "connection_not_ready":
        BankConnection.objects.filter(pk=connection.pk).update(
            status=ConnectionStatus.CONSENT_PENDING
        )
    else:
        SyncRun.objects.filter(pk=partial.pk).delete()

    assert tasks.failed_steps_retry(partial.pk) is None
    assert not SyncRun.objects.filter(kind=SyncKind.AGREEMENTS).exists()


# --- End to end: the sandbox over real HTTP, its agreements route answering 500 ----------------


def _connected(user, bank_code: str) -> BankConnection:
    from banking.services.connections import connection_get_or_create
    from consents import services as consent_services
    from consents.models import ConsentKind, ConsentStatus

    connection = connection_get_or_create(user=user, bank_code=bank_code)
    # Client 1 (a salary and a mortgage) has agreements at VBank.
    BankConnection.objects.filter(pk=connection.pk).update(client_id="team260-1")
    connection.refresh_from_db()
    for kind in (ConsentKind.ACCOUNTS, ConsentKind.PRODUCTS):
        consent = consent_services.consent_ensure(user=user, bank_code=bank_code, kind=kind)
        if consent.status == ConsentStatus.PENDING:
            consent = consent_services.consent_approve_demo(consent=consent)
        assert consent.status == ConsentStatus.AUTHORIZED
    return connection


@pytest.fixture
def agreements_route_failing(monkeypatch):
    """The sandbox's agreements list answers a plain 500 while `state["failing"]` is true."""
    from django.http import HttpResponse

    from sandbox.views import products

    state = {"failing": True, "calls": 0}
    original = products.agreement_list

    def agreement_list(request, *args, **kwargs):
        state["calls"] += 1
        if state["failing"]:
            return HttpResponse("Internal Server Error", status=500, content_type="text/plain")
        return original(request, *args, **kwargs)

    patched = 0
    for pattern in _url_patterns(get_resolver()):
        if getattr(pattern, "callback", None) is original:
            monkeypatch.setattr(pattern, "callback", agreement_list)
            patched += 1
    assert patched, "the sandbox's agreements route was not found"
    return state


def _url_patterns(resolver):
    for pattern in resolver.url_patterns:
        if hasattr(pattern, "url_patterns"):
            yield from _url_patterns(pattern)
        else:
            yield pattern


@pytest.mark.django_db(transaction=True)
def test_sandbox_agreements_500_partial_run_then_agreements_alone(
    sandbox_banks, user, settings, monkeypatch, agreements_route_failing
):
    from audit.models import RawApiLog
    from sandbox.ground_truth import client_bank_truth
    from sync.tests.ground_truth import assert_equals_ground_truth

    settings.BANK_MAX_RETRIES = 1
    scheduled: list[tuple] = []
    monkeypatch.setattr(
        "sync.services.enqueue",
        lambda task, *args, countdown=None: scheduled.append((task.name, args)) or True,
    )
    connection = _connected(user, "vbank")

    first = _execute(connection)

    assert first.status == SyncStatus.PARTIAL, first.error
    assert [(e["step"], e["status_code"]) for e in first.step_errors] == [("agreements", 500)]
    assert agreements_route_failing["calls"] >= 1
    truth = client_bank_truth(connection.client_id, "vbank")
    assert truth["agreements"], "this client has agreements at VBank"
    served = sum(len(items) for items in truth["transactions"].values())
    assert first.transactions_added == served
    assert first.accounts_count == len(truth["accounts"])
    assert not ProductAgreement.objects.filter(connection=connection).exists()
    connection.refresh_from_db()
    assert connection.status == ConnectionStatus.READY
    assert "product agreements" in connection.last_error
    assert scheduled == [("sync.failed_steps_retry", (first.pk,))]

    agreements_route_failing["failing"] = False
    retry_id = tasks.failed_steps_retry(first.pk)

    retry = SyncRun.objects.get(pk=retry_id)
    assert (retry.kind, retry.status) == (SyncKind.AGREEMENTS, SyncStatus.SUCCEEDED), retry.error
    assert retry.agreements_count == len(truth["agreements"])
    # Only the agreements list and their detail calls: no account, balance or page read again.
    endpoints = list(
        RawApiLog.objects.filter(correlation_id=str(retry.correlation_id)).values_list(
            "endpoint", flat=True
        )
    )
    assert endpoints and all("/product-agreements" in e.split("?")[0] for e in endpoints)
    assert Transaction.objects.filter(user=user).count() == served
    assert_equals_ground_truth(user=user, bank_code="vbank")
    connection.refresh_from_db()
    assert (connection.status, connection.last_error) == (ConnectionStatus.READY, "")


def test_the_api_and_the_console_show_which_optional_step_failed(
    connection, sent, auth_client, admin_client, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        run = _first_sync_with_failing_agreements(connection)

    detail = auth_client.get(f"/api/sync-runs/{run.pk}").json()
    listed = auth_client.get("/api/sync-runs").json()
    assert detail["status"] == "partial"
    assert [
        (e["step"], e["code"], e["status_code"], e["retryable"]) for e in detail["step_errors"]
    ] == [("agreements", "bank_unavailable", 500, True)]
    assert [r["step_errors"] for r in listed if r["id"] == run.pk] == [detail["step_errors"]]

    page = admin_client.get(f"/admin/sync/syncrun/{run.pk}/change/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "Optional steps not done" in html and "bank_unavailable" in html
