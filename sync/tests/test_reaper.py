"""The reaper and the claim: runs a lost message or a dead worker left active heal by themselves.

Unit tests against a bank faked with `responses`; the fault itself (a lost message, a worker
killed mid-run, a terminated database backend) is reproduced by putting the run in the state
the fault leaves it in, or, for the backend, by terminating it on PostgreSQL.
"""

from datetime import timedelta

import pytest
import responses
from django.db import OperationalError
from django.db import connection as db_connection
from django.utils import timezone

from banking.models import BankConnection, ConnectionStatus
from sync import reaper
from sync.models import SyncRun, SyncStatus, SyncStep
from sync.services import connection_sync_start, sync_run_execute
from sync.tests import fakebank as fb
from sync.tests.test_services import T0


@pytest.fixture
def connection(db, user, settings):
    fb.bank_settings(settings)
    settings.BANK_MAX_RETRIES = 0
    fb.authorised_consents(user)
    return BankConnection.objects.create(
        user=user, bank_code="vbank", status=ConnectionStatus.READY, client_id="team260-1"
    )


@pytest.fixture
def sent(monkeypatch):
    """Run ids the reaper sent a task message for (the messages themselves go nowhere)."""
    ids: list[int] = []
    monkeypatch.setattr(reaper, "sync_run_send", lambda *, sync_run_id: ids.append(sync_run_id))
    return ids


def _aged(run: SyncRun, **fields) -> SyncRun:
    SyncRun.objects.filter(pk=run.pk).update(**fields)
    run.refresh_from_db()
    return run


def _run(connection, **fields) -> SyncRun:
    return _aged(
        SyncRun.objects.create(connection=connection, user_id=connection.user_id), **fields
    )


def test_a_queued_run_whose_message_was_lost_is_sent_again_once_per_period(
    connection, sent, settings
):
    settings.SYNC_QUEUED_STALE_SECONDS = 300
    now = timezone.now()
    lost = _run(connection, created_at=now - timedelta(seconds=301))

    first = reaper.sync_runs_reap(now=now)
    second = reaper.sync_runs_reap(now=now + timedelta(seconds=60))

    assert first.resent == [lost.pk]
    assert second.resent == []  # the heartbeat written on resend holds it for a period
    assert sent == [lost.pk]
    lost.refresh_from_db()
    assert lost.status == SyncStatus.QUEUED


def test_a_fresh_queued_run_and_one_waiting_for_its_retry_are_left_alone(
    connection, sent, settings
):
    settings.SYNC_QUEUED_STALE_SECONDS = 300
    now = timezone.now()
    _run(connection, created_at=now - timedelta(seconds=30))
    other = BankConnection.objects.create(user=connection.user, bank_code="abank")
    _run(
        other,
        created_at=now - timedelta(hours=1),
        next_retry_at=now + timedelta(seconds=200),  # the task's own retry is still due
    )

    result = reaper.sync_runs_reap(now=now)

    assert result.as_dict() == {"resent": [], "requeued": [], "failed": []}
    assert sent == []


def test_a_running_run_whose_worker_stopped_beating_goes_back_to_the_queue(
    connection, sent, settings
):
    settings.SYNC_HEARTBEAT_TIMEOUT_SECONDS = 180
    settings.SYNC_RUN_MAX_ATTEMPTS = 3
    now = timezone.now()
    dead = _run(
        connection,
        status=SyncStatus.RUNNING,
        step=SyncStep.TRANSACTIONS,
        attempts=1,
        started_at=now - timedelta(minutes=10),
        heartbeat_at=now - timedelta(seconds=181),
    )
    alive_connection = BankConnection.objects.create(user=connection.user, bank_code="abank")
    alive = _run(
        alive_connection,
        status=SyncStatus.RUNNING,
        attempts=1,
        started_at=now - timedelta(minutes=10),
        heartbeat_at=now - timedelta(seconds=20),
    )

    result = reaper.sync_runs_reap(now=now)

    assert result.requeued == [dead.pk]
    assert sent == [dead.pk]
    dead.refresh_from_db()
    alive.refresh_from_db()
    assert (dead.status, dead.step) == (SyncStatus.QUEUED, SyncStep.QUEUED)
    assert alive.status == SyncStatus.RUNNING


def test_a_run_out_of_attempts_fails_as_worker_lost_and_frees_its_bank(connection, sent, settings):
    settings.SYNC_HEARTBEAT_TIMEOUT_SECONDS = 180
    settings.SYNC_RUN_MAX_ATTEMPTS = 2
    now = timezone.now()
    dead = _run(
        connection,
        status=SyncStatus.RUNNING,
        attempts=2,
        started_at=now - timedelta(minutes=20),
        heartbeat_at=now - timedelta(minutes=5),
    )

    result = reaper.sync_runs_reap(now=now)

    assert result.failed == [dead.pk]
    assert sent == []
    dead.refresh_from_db()
    connection.refresh_from_db()
    assert (dead.status, dead.error_code) == (SyncStatus.FAILED, "worker_lost")
    assert connection.status == ConnectionStatus.ERROR
    _run_again, created = connection_sync_start(connection=connection, trigger="user")
    assert created is True  # the lock is free again


def test_a_duplicate_message_for_a_claimed_run_does_nothing(connection):
    claimed = _run(connection, status=SyncStatus.RUNNING, attempts=1, heartbeat_at=timezone.now())

    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        returned = sync_run_execute(sync_run_id=claimed.pk)
        assert len(mock.calls) == 0  # no bank call: another worker holds the run

    claimed.refresh_from_db()
    assert returned.pk == claimed.pk
    assert (claimed.status, claimed.attempts) == (SyncStatus.RUNNING, 1)


def test_a_requeued_run_is_claimed_and_finished_by_the_next_worker(connection):
    run = _run(connection, status=SyncStatus.QUEUED, attempts=1)

    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        fb.add_accounts_and_balances(mock)
        fb.add_page(mock, [fb.tx("tx-1", T0)], page=1, has_next=False)
        fb.add_products(mock)
        fb.add_agreements(mock)
        sync_run_execute(sync_run_id=run.pk)

    run.refresh_from_db()
    assert run.status == SyncStatus.SUCCEEDED, run.error
    assert run.attempts == 2
    assert run.heartbeat_at is not None


def test_a_bank_outage_puts_the_run_back_in_the_queue_until_its_retry(connection, monkeypatch):
    run = _run(connection)

    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.get(f"{fb.BASE}/accounts", status=503)
        from banking.clients.errors import BankUnavailableError

        with pytest.raises(BankUnavailableError):
            sync_run_execute(sync_run_id=run.pk, retry_allowed=True)

    run.refresh_from_db()
    assert (run.status, run.step) == (SyncStatus.QUEUED, SyncStep.QUEUED)
    assert run.error.startswith("Bank unavailable, will retry")


def test_a_failure_is_recorded_on_a_fresh_connection_when_the_first_write_fails(
    connection, monkeypatch
):
    from sync import services

    run = _run(connection)
    original = services._SyncExecution._record_failure
    calls = {"n": 0}

    def flaky(self, **kwargs):
        calls["n"] += 1
        if calls["n"] == 1:
            raise OperationalError("terminating connection due to administrator command")
        return original(self, **kwargs)

    monkeypatch.setattr(services._SyncExecution, "_record_failure", flaky)
    closed = []
    monkeypatch.setattr(db_connection, "close", lambda: closed.append(True))

    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.get(f"{fb.BASE}/accounts", status=400, json={"error": "bad"})
        sync_run_execute(sync_run_id=run.pk)

    run.refresh_from_db()
    assert calls["n"] == 2
    assert closed == [True]
    assert run.status == SyncStatus.FAILED


def test_a_committed_run_stays_succeeded_when_the_analytics_request_fails(connection, monkeypatch):
    from sync import services

    def broker_down(**kwargs):
        raise ConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    monkeypatch.setattr(services, "analytics_recompute_request", broker_down)
    run = _run(connection)

    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        fb.add_accounts_and_balances(mock)
        fb.add_page(mock, [fb.tx("tx-1", T0)], page=1, has_next=False)
        fb.add_products(mock)
        fb.add_agreements(mock)
        sync_run_execute(sync_run_id=run.pk)

    run.refresh_from_db()
    assert run.status == SyncStatus.SUCCEEDED, run.error


@pytest.mark.django_db(transaction=True)
def test_a_terminated_backend_mid_run_still_records_the_failure(user, settings):
    """PostgreSQL: the worker's own backend is killed while the run fails; it reconnects."""
    if db_connection.vendor != "postgresql":
        pytest.skip("backend termination is a PostgreSQL fault")
    fb.bank_settings(settings)
    settings.BANK_MAX_RETRIES = 0
    fb.authorised_consents(user)
    connection = BankConnection.objects.create(
        user=user, bank_code="vbank", status=ConnectionStatus.READY, client_id="team260-1"
    )
    run = _run(connection)

    from sync import services

    original = services._SyncExecution._record_failure
    killed = {"done": False}

    def kill_then_record(self, **kwargs):
        if not killed["done"]:
            killed["done"] = True
            pid = db_connection.connection.info.backend_pid
            import psycopg

            params = db_connection.get_connection_params()
            with psycopg.connect(**params, autocommit=True) as other:
                other.execute("SELECT pg_terminate_backend(%s)", [pid])
        return original(self, **kwargs)

    services_patch = pytest.MonkeyPatch()
    services_patch.setattr(services._SyncExecution, "_record_failure", kill_then_record)
    try:
        with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
            mock.get(f"{fb.BASE}/accounts", status=400, json={"error": "bad"})
            sync_run_execute(sync_run_id=run.pk)
    finally:
        services_patch.undo()

    run.refresh_from_db()
    assert killed["done"] is True
    assert run.status == SyncStatus.FAILED


def test_a_database_error_mid_run_puts_the_run_back_in_the_queue_and_resends_it(
    connection, monkeypatch, settings
):
    from sync import services

    settings.SYNC_RUN_MAX_ATTEMPTS = 3
    resent: list[int] = []
    monkeypatch.setattr(
        services, "sync_run_send", lambda *, sync_run_id: resent.append(sync_run_id)
    )

    def database_gone(self, **kwargs):
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(services._SyncExecution, "_run_steps", database_gone)
    monkeypatch.setattr(db_connection, "close", lambda: None)
    run = _run(connection)

    sync_run_execute(sync_run_id=run.pk)

    run.refresh_from_db()
    assert (run.status, run.step, run.attempts) == (SyncStatus.QUEUED, SyncStep.QUEUED, 1)
    assert run.error.startswith("Database connection lost")
    assert resent == [run.pk]


def test_a_run_that_keeps_losing_the_database_fails_as_database_unavailable(
    connection, monkeypatch, settings
):
    from sync import services

    settings.SYNC_RUN_MAX_ATTEMPTS = 1

    def database_gone(self, **kwargs):
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(services._SyncExecution, "_run_steps", database_gone)
    monkeypatch.setattr(db_connection, "close", lambda: None)
    run = _run(connection)

    sync_run_execute(sync_run_id=run.pk)

    run.refresh_from_db()
    assert (run.status, run.error_code) == (SyncStatus.FAILED, "database_unavailable")
