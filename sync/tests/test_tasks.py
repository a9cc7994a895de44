"""The Celery side: the one-active-run lock, retries with backoff, redelivery, the beat fan-out."""

import threading
from datetime import UTC, datetime, timedelta

import pytest
import responses
from django.db import connection as db_connection
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from banking.models import BankConnection, ConnectionStatus
from consents.models import Consent, ConsentKind, ConsentStatus
from sync import tasks
from sync.models import SyncRun, SyncStatus, SyncTrigger
from sync.services import connection_sync_start
from sync.tests import fakebank as fb


@pytest.fixture
def connection(db, user, settings):
    fb.bank_settings(settings)
    settings.BANK_MAX_RETRIES = 0
    fb.authorised_consents(user, products=False)
    return BankConnection.objects.create(user=user, bank_code="vbank", client_id="team260-1")


def test_repeated_sync_start_creates_one_run_and_enqueues_it_once(
    connection, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        results = [
            connection_sync_start(connection=connection, trigger=SyncTrigger.USER)
            for _ in range(10)
        ]

    runs = {run.pk for run, _created in results}
    assert len(runs) == 1
    assert [created for _run, created in results] == [True] + [False] * 9
    assert SyncRun.objects.filter(connection=connection).count() == 1
    assert len(callbacks) == 1


def test_a_finished_run_frees_the_lock_for_the_next_one(connection):
    first, _ = connection_sync_start(connection=connection, trigger=SyncTrigger.USER)
    SyncRun.objects.filter(pk=first.pk).update(status=SyncStatus.SUCCEEDED)

    second, created = connection_sync_start(connection=connection, trigger=SyncTrigger.USER)

    assert created is True
    assert second.pk != first.pk


@pytest.mark.django_db(transaction=True)
def test_concurrent_sync_requests_from_threads_produce_one_run(user, settings):
    if db_connection.vendor != "postgresql":
        pytest.skip("threads need a database with real concurrent connections (PostgreSQL)")
    settings.CELERY_TASK_ALWAYS_EAGER = False
    connection = BankConnection.objects.create(user=user, bank_code="vbank")
    barrier = threading.Barrier(10)
    results, errors = [], []

    def start():
        from django.db import connections

        try:
            barrier.wait()
            with_mocked_delay = connection_sync_start
            results.append(with_mocked_delay(connection=connection, trigger=SyncTrigger.USER))
        except Exception as exc:  # collected: a thread's failure must fail the test
            errors.append(exc)
        finally:
            connections.close_all()

    from unittest import mock

    with mock.patch("sync.tasks.connection_sync.delay"):
        threads = [threading.Thread(target=start) for _ in range(10)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    assert errors == []
    assert len({run.pk for run, _ in results}) == 1
    assert sum(created for _, created in results) == 1
    assert SyncRun.objects.filter(connection=connection).count() == 1


def test_task_retries_an_unavailable_bank_then_succeeds(connection):
    run, _ = connection_sync_start(connection=connection, trigger=SyncTrigger.USER)
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        mock.add(responses.GET, f"{fb.BASE}/accounts", status=503, body="")
        fb.add_accounts_and_balances(mock)
        fb.add_page(
            mock, [fb.tx("tx-1", datetime(2025, 11, 20, tzinfo=UTC))], page=1, has_next=False
        )
        fb.add_products(mock)
        tasks.connection_sync.apply(args=[run.pk])

    run.refresh_from_db()
    assert run.status == SyncStatus.SUCCEEDED, run.error
    assert run.attempts == 2
    assert run.transactions_added == 1
    assert run.error == ""


@pytest.mark.parametrize("max_retries", [5, 1])
def test_task_fails_the_run_once_retries_are_exhausted(connection, settings, max_retries):
    # Read when the task runs: a changed setting takes effect without a re-import.
    settings.SYNC_TASK_MAX_RETRIES = max_retries
    run, _ = connection_sync_start(connection=connection, trigger=SyncTrigger.USER)
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        mock.add(responses.GET, f"{fb.BASE}/accounts", status=502, body="<html></html>")
        tasks.connection_sync.apply(args=[run.pk])
        assert len(mock.calls) == max_retries + 1

    run.refresh_from_db()
    assert run.status == SyncStatus.FAILED
    assert run.error_code == "bank_unavailable"
    assert run.attempts == max_retries + 1
    connection.refresh_from_db()
    assert connection.status == ConnectionStatus.ERROR


def test_redelivered_task_of_a_finished_run_does_nothing(connection):
    run, _ = connection_sync_start(connection=connection, trigger=SyncTrigger.USER)
    SyncRun.objects.filter(pk=run.pk).update(status=SyncStatus.SUCCEEDED, attempts=1)

    with responses.RequestsMock(assert_all_requests_are_fired=True):
        tasks.connection_sync.apply(args=[run.pk])  # any bank call would raise here
        tasks.connection_sync.apply(args=[999_999])  # a deleted run: quietly nothing

    run.refresh_from_db()
    assert (run.status, run.attempts) == (SyncStatus.SUCCEEDED, 1)


def test_retry_countdown_backs_off_honours_retry_after_and_is_capped(settings):
    settings.SYNC_RETRY_BASE_SECONDS, settings.SYNC_RETRY_MAX_SECONDS = 15, 600
    first = tasks.retry_countdown(retries=0, retry_after=None)
    later = tasks.retry_countdown(retries=3, retry_after=None)

    assert 7.5 <= first <= 15
    assert 60 <= later <= 120
    assert tasks.retry_countdown(retries=0, retry_after=120) >= 120
    assert tasks.retry_countdown(retries=30, retry_after=None) <= 600
    settings.SYNC_RETRY_MAX_SECONDS = 30
    assert tasks.retry_countdown(retries=0, retry_after=120) == 30


def _connection(make_user, bank_code, *, status, last_sync_minutes_ago, consent_status):
    user = make_user()
    connection = BankConnection.objects.create(user=user, bank_code=bank_code, status=status)
    if last_sync_minutes_ago is not None:
        BankConnection.objects.filter(pk=connection.pk).update(
            last_sync_at=timezone.now() - timedelta(minutes=last_sync_minutes_ago)
        )
    if consent_status:
        Consent.objects.create(
            user=user,
            bank_code=bank_code,
            kind=ConsentKind.ACCOUNTS,
            bank_consent_id="consent-x" if consent_status == ConsentStatus.AUTHORIZED else "",
            status=consent_status,
        )
    return connection


def test_beat_fan_out_starts_due_connections_and_skips_the_others(db, make_user, settings):
    settings.SYNC_MIN_INTERVAL_MINUTES = 30
    authorised = ConsentStatus.AUTHORIZED
    due_ready = _connection(make_user, "vbank", status=ConnectionStatus.READY,
                            last_sync_minutes_ago=90, consent_status=authorised)  # fmt: skip
    due_error = _connection(make_user, "abank", status=ConnectionStatus.ERROR,
                            last_sync_minutes_ago=None, consent_status=authorised)  # fmt: skip
    _connection(make_user, "sbank", status=ConnectionStatus.READY,
                last_sync_minutes_ago=5, consent_status=authorised)  # fmt: skip
    _connection(make_user, "sbank", status=ConnectionStatus.CONSENT_PENDING,
                last_sync_minutes_ago=None, consent_status=ConsentStatus.PENDING)  # fmt: skip
    _connection(make_user, "vbank", status=ConnectionStatus.READY,
                last_sync_minutes_ago=120, consent_status=ConsentStatus.REVOKED)  # fmt: skip
    running = _connection(make_user, "abank", status=ConnectionStatus.SYNC_IN_PROGRESS,
                          last_sync_minutes_ago=120, consent_status=authorised)  # fmt: skip
    SyncRun.objects.create(connection=running, user_id=running.user_id)

    # Eager here: each chunk runs at once, at its slot it checks which connections are due now
    # (the one synced 5 minutes ago is a candidate for later in the interval, not due now).
    tasks.sync_all_due()

    scheduled = SyncRun.objects.filter(trigger=SyncTrigger.SCHEDULE)
    assert set(scheduled.values_list("connection_id", flat=True)) == {due_ready.pk, due_error.pk}
    tasks.sync_all_due()  # a run created within the interval makes them not due
    assert scheduled.count() == 2


def test_default_periodic_task_is_created_with_interval_and_expiry_once(db, settings):
    import importlib

    from django.apps import apps

    migration = importlib.import_module(
        "sync.migrations.0003_run_skipped_items_and_default_schedule"
    )
    PeriodicTask.objects.filter(name=migration.PERIODIC_TASK_NAME).delete()
    settings.SYNC_PERIODIC_MINUTES = 45

    migration.create_default_schedule(apps, None)
    task = PeriodicTask.objects.get(name="sync all connected banks")
    task.enabled = False  # an operator pauses it in the admin
    task.save()
    migration.create_default_schedule(apps, None)  # running it again changes nothing

    task.refresh_from_db()
    assert task.task == "sync.sync_all_due"
    assert task.enabled is False
    assert (task.interval.every, task.interval.period) == (45, "minutes")
    assert task.expire_seconds == 45 * 60
    assert PeriodicTask.objects.filter(name="sync all connected banks").count() == 1
