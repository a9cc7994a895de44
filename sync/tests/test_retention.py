"""Sync run retention: finished runs older than N days go; each connection's latest stays."""

from datetime import UTC, datetime, timedelta

import pytest

from banking.models import BalanceSnapshot
from banking.tests.factories import make_account, make_connection
from sync.models import SyncRun, SyncStatus
from sync.retention import sync_runs_prune
from sync.tasks import runs_prune

NOW = datetime(2026, 6, 30, 12, tzinfo=UTC)


def run(connection, *, days_ago: float, status=SyncStatus.SUCCEEDED) -> SyncRun:
    row = SyncRun.objects.create(connection=connection, user=connection.user, status=status)
    SyncRun.objects.filter(pk=row.pk).update(created_at=NOW - timedelta(days=days_ago))
    return row


@pytest.mark.django_db
def test_old_finished_runs_go_and_each_connections_latest_stays(user):
    vbank = make_connection(user=user, bank_code="vbank")
    abank = make_connection(user=user, bank_code="abank")
    old_vbank = [run(vbank, days_ago=100 + n, status=SyncStatus.FAILED) for n in range(3)]
    recent = run(vbank, days_ago=1)
    abank_old = [run(abank, days_ago=200 + n) for n in range(3)]  # abank synced long ago only
    stuck = run(abank, days_ago=300, status=SyncStatus.RUNNING)  # the reaper's, never pruned

    deleted = sync_runs_prune(older_than_days=90, batch_size=2, now=NOW)

    assert deleted == len(old_vbank) + 2
    assert set(SyncRun.objects.values_list("pk", flat=True)) == {
        recent.pk,
        abank_old[0].pk,
        stuck.pk,
    }


@pytest.mark.django_db
def test_a_balance_reading_of_a_pruned_run_keeps_its_value(user):
    connection = make_connection(user=user)
    account = make_account(user=user, connection=connection)
    old = run(connection, days_ago=120)
    run(connection, days_ago=0)
    reading = BalanceSnapshot.objects.create(
        account=account, sync_run=old, available="10.00", as_of=NOW - timedelta(days=120)
    )

    assert sync_runs_prune(older_than_days=90, batch_size=10, now=NOW) == 1

    reading.refresh_from_db()
    assert reading.sync_run_id is None and str(reading.available) == "10.00"


@pytest.mark.django_db
def test_the_task_reads_the_setting(user, settings):
    connection = make_connection(user=user)
    for days in (400, 401, 402):
        run(connection, days_ago=days)
    settings.SYNC_RUN_RETENTION_DAYS = 0
    assert runs_prune() == 0
    settings.SYNC_RUN_RETENTION_DAYS = 90
    assert runs_prune() == 2
