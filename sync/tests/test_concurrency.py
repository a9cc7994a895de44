"""Concurrency: many sync requests at once start one run; a redelivered task duplicates nothing.

Threads use their own database connections (transactional tests). On PostgreSQL they really run
at once; SQLite has one writer and its in-memory test database locks whole tables, so there the
requests take turns through a lock, which still drives every request through the lock-by-
constraint path.
"""

import threading
from collections import Counter
from contextlib import nullcontext
from unittest import mock

import pytest
from django.db import connection as db_connection
from django.db import connections
from rest_framework.test import APIClient

from banking.models import Account, BalanceSnapshot, BankConnection, ProductAgreement, Transaction
from banking.tests.factories import client_id_give
from sync import tasks
from sync.models import SyncRun, SyncStatus, SyncTrigger
from sync.tests.ground_truth import assert_equals_ground_truth
from sync.tests.test_sandbox_sync import _connected
from users.services import token_pair_for

pytestmark = pytest.mark.django_db(transaction=True)


def _real_concurrency() -> bool:
    return db_connection.vendor == "postgresql"


def _in_threads(count: int, target) -> tuple[list, list]:
    """Run `target()` in `count` threads released together; (results, errors)."""
    barrier = threading.Barrier(count)
    turn = nullcontext() if _real_concurrency() else threading.Lock()
    results, errors = [], []

    def body():
        try:
            barrier.wait()
            with turn:
                results.append(target())
        except BaseException as exc:  # collected: a thread's failure must fail the test
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=body) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads), "a thread hung"
    return results, errors


def test_ten_concurrent_sync_requests_for_one_connection_start_exactly_one_run(user):
    from fintrack.celery import app
    from sync.tests import fakebank

    fakebank.authorised_consents(user, products=False)
    connection = BankConnection.objects.create(user=user, bank_code="vbank", client_id="team260-1")
    token = token_pair_for(user)["access"]

    def request():
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
        response = client.post("/api/banks/vbank/sync")
        return response.status_code, response.json()

    saved = app.conf.task_always_eager
    app.conf.task_always_eager = False
    try:
        with mock.patch("sync.tasks.connection_sync.delay") as delay:
            results, errors = _in_threads(10, request)
    finally:
        app.conf.task_always_eager = saved

    assert errors == []
    assert Counter(status for status, _ in results) == {202: 1, 409: 9}
    run_ids = {
        body["sync_run_id"] if status == 202 else body["extra"]["sync_run_id"]
        for status, body in results
    }
    assert len(run_ids) == 1
    assert {body["code"] for status, body in results if status == 409} == {"sync_already_running"}
    assert SyncRun.objects.filter(connection=connection).count() == 1
    assert delay.call_count == 1
    assert delay.call_args.args == (run_ids.pop(),)


class WorkerLost(BaseException):
    """A worker killed mid-run (BaseException: no `except Exception` in the service catches it)."""


def _row_counts(user) -> dict[str, int]:
    return {
        "accounts": Account.objects.filter(user=user).count(),
        "transactions": Transaction.objects.filter(user=user).count(),
        "agreements": ProductAgreement.objects.filter(user=user).count(),
    }


def _truth_counts(truth: dict) -> dict[str, int]:
    return {
        "accounts": len(truth["accounts"]),
        "transactions": sum(len(items) for items in truth["transactions"].values()),
        "agreements": len(truth["agreements"]),
    }


def _one_snapshot_per_account(run: SyncRun) -> None:
    per_account = Counter(
        BalanceSnapshot.objects.filter(sync_run=run).values_list("account_id", flat=True)
    )
    assert set(per_account.values()) == {1}, per_account
    assert len(per_account) == run.accounts_count


def test_task_redelivered_after_a_worker_died_mid_run_duplicates_nothing(
    sandbox_banks, user, settings
):
    settings.SYNC_PAGE_LIMIT = 20  # several pages per account, so the crash is mid-history
    # One pass: the crash is to come mid-history, not between a progressive sync's phases.
    settings.FIRST_SYNC_RECENT_DAYS = 0
    settings.SYNC_WRITE_BATCH_ROWS = 20  # …and one write per page
    connection = _connected(user, "abank")
    run = SyncRun.objects.create(
        connection=connection, user_id=connection.user_id, trigger=SyncTrigger.USER
    )
    from banking.ingestion.transactions import TransactionWriter

    real_write = TransactionWriter._write
    pages_written = []

    def dying_write(writer, by_id):
        if len(pages_written) == 3:
            raise WorkerLost()
        pages_written.append(len(by_id))
        return real_write(writer, by_id)

    message_id = "message-of-the-dead-worker"
    with (
        mock.patch.object(TransactionWriter, "_write", dying_write),
        pytest.raises(WorkerLost),
    ):
        tasks.connection_sync.apply(args=[run.pk], task_id=message_id, throw=True)
    run.refresh_from_db()
    assert run.status == SyncStatus.RUNNING  # the broker still holds the unacked message
    # What the three writes before the crash stored (accounts may be read two at a time).
    assert Transaction.objects.filter(user=user).count() == sum(pages_written) > 0

    # A stray copy (another message id) finds the run claimed and leaves it alone …
    tasks.connection_sync.apply(args=[run.pk])
    run.refresh_from_db()
    assert (run.status, run.attempts) == (SyncStatus.RUNNING, 1)
    # … the same message redelivered to another worker takes it over …
    tasks.connection_sync.apply(args=[run.pk], task_id=message_id)
    tasks.connection_sync.apply(args=[run.pk], task_id=message_id)  # …and, once done, no more

    run.refresh_from_db()
    assert run.status == SyncStatus.SUCCEEDED, run.error
    assert run.attempts == 2
    truth = assert_equals_ground_truth(user=user, bank_code="abank")
    assert _row_counts(user) == _truth_counts(truth)
    _one_snapshot_per_account(run)


def test_the_same_task_run_by_two_workers_at_once_duplicates_nothing(sandbox_banks, user, settings):
    if not _real_concurrency():
        pytest.skip("two workers at once need PostgreSQL (SQLite has one writer)")
    settings.SYNC_PAGE_LIMIT = 50
    connection = _connected(user, "vbank")
    run = SyncRun.objects.create(
        connection=connection, user_id=connection.user_id, trigger=SyncTrigger.USER
    )

    _results, errors = _in_threads(2, lambda: tasks.connection_sync.apply(args=[run.pk]))

    assert errors == []
    run.refresh_from_db()
    assert run.status == SyncStatus.SUCCEEDED, run.error
    truth = assert_equals_ground_truth(user=user, bank_code="vbank")
    assert _row_counts(user) == _truth_counts(truth)
    _one_snapshot_per_account(run)
    connection.refresh_from_db()
    assert connection.status == "ready"


def _bank_consents(bank_code: str, client_id: str) -> Counter:
    from sandbox.models import AccountConsent

    return Counter(
        AccountConsent.objects.filter(bank=bank_code, client_id=client_id).values_list(
            "status", flat=True
        )
    )


def test_connect_racing_another_connect_keeps_one_consent_and_withdraws_the_other(
    sandbox_banks, user
):
    """The other request stores its consent while ours is at the bank (any database)."""
    from banking.clients.base import BankClient
    from consents import services as consent_services
    from consents.models import Consent, ConsentKind, ConsentStatus

    client_id_give(user=user, client_id="team260-1", bank_codes=["vbank"])
    real_request = BankClient.request_account_consent
    winners = []

    def request_while_another_connect_finishes(self, **kwargs):
        result = real_request(self, **kwargs)
        if not winners:  # the concurrent connect: it asked first and stores first
            with mock.patch.object(BankClient, "request_account_consent", real_request):
                winners.append(consent_services.consent_ensure(user=user, bank_code="vbank"))
        return result

    with mock.patch.object(
        BankClient, "request_account_consent", request_while_another_connect_finishes
    ):
        consent = consent_services.consent_ensure(user=user, bank_code="vbank")

    assert consent.pk == winners[0].pk
    assert consent.status == ConsentStatus.AUTHORIZED
    live = Consent.objects.filter(
        user=user, kind=ConsentKind.ACCOUNTS, status__in=["pending", "authorized"]
    )
    assert list(live.values_list("pk", flat=True)) == [consent.pk]
    assert Consent.objects.filter(user=user).count() == 1
    # At the bank: ours was revoked, the winner's is the only one still granting access.
    assert _bank_consents("vbank", "team260-1") == {"active": 1, "revoked": 1}


def test_two_concurrent_connects_leave_one_live_consent_here_and_at_the_bank(sandbox_banks, user):
    if not _real_concurrency():
        pytest.skip("needs PostgreSQL: both requests must be at the bank at the same time")
    from banking.clients.base import BankClient
    from consents import services as consent_services
    from consents.models import Consent

    client_id_give(user=user, client_id="team260-1", bank_codes=["vbank"])
    real_request = BankClient.request_account_consent
    both_at_the_bank = threading.Barrier(2)

    def request_together(self, **kwargs):
        result = real_request(self, **kwargs)
        both_at_the_bank.wait(timeout=30)  # neither stores before both have asked the bank
        return result

    with mock.patch.object(BankClient, "request_account_consent", request_together):
        results, errors = _in_threads(
            2, lambda: consent_services.consent_ensure(user=user, bank_code="vbank").pk
        )

    assert errors == []
    assert len(set(results)) == 1
    assert Consent.objects.filter(user=user, status="authorized").count() == 1
    assert _bank_consents("vbank", "team260-1") == {"active": 1, "revoked": 1}
