"""The connection budget: what one process may open, enforced at start-up and held by a real
sync; DATABASE_POOLER=pgbouncer configures Django for transaction pooling."""

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection as default_connection

from fintrack.settings import db_connections_per_process

ROOT = Path(__file__).resolve().parents[2]


def settings_in_a_new_process(**env: str) -> subprocess.CompletedProcess:
    """Load the settings in a fresh interpreter with `env` (start-up is what enforces)."""
    script = (
        "import json, django; from django.conf import settings; django.setup(); "
        "db = settings.DATABASES['default']; print(json.dumps({"
        "'per_process': settings.DATABASE_CONNECTIONS_PER_PROCESS, "
        "'no_server_side_cursors': db.get('DISABLE_SERVER_SIDE_CURSORS', False), "
        "'prepare_threshold': db.get('OPTIONS', {}).get('prepare_threshold', 'unset')}))"
    )
    base = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("SYNC_", "DATABASE_")) and key != "FINTRACK_ENV"
    }
    return subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env={**base, "DJANGO_SETTINGS_MODULE": "fintrack.settings", **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_per_process_figure_counts_each_threads_connection():
    # main + each account read at once + its page read-ahead + the raw-log writer
    assert db_connections_per_process(parallel_accounts=2, prefetch_pages=True) == 6
    assert db_connections_per_process(parallel_accounts=2, prefetch_pages=False) == 4
    assert db_connections_per_process(parallel_accounts=0, prefetch_pages=True) == 4
    assert settings.DATABASE_CONNECTIONS_PER_PROCESS <= (
        settings.DATABASE_MAX_CONNECTIONS_PER_PROCESS
    )


def test_start_up_refuses_a_process_that_would_open_more_than_allowed():
    refused = settings_in_a_new_process(
        SYNC_PARALLEL_ACCOUNTS="4", DATABASE_MAX_CONNECTIONS_PER_PROCESS="8"
    )
    assert refused.returncode != 0
    assert "ImproperlyConfigured" in refused.stderr
    assert "may open 10 database connections" in refused.stderr

    allowed = settings_in_a_new_process(SYNC_PARALLEL_ACCOUNTS="4", SYNC_PREFETCH_PAGES="false")
    assert allowed.returncode == 0, allowed.stderr
    assert json.loads(allowed.stdout)["per_process"] == 6


def test_behind_pgbouncer_no_server_side_cursor_and_no_prepared_statement():
    behind = settings_in_a_new_process(
        DATABASE_URL="postgres://fintrack@127.0.0.1:6432/fintrack", DATABASE_POOLER="pgbouncer"
    )
    assert behind.returncode == 0, behind.stderr
    assert json.loads(behind.stdout) == {
        "per_process": 6,
        "no_server_side_cursors": True,
        "prepare_threshold": None,
    }
    direct = settings_in_a_new_process(DATABASE_URL="postgres://fintrack@127.0.0.1:5432/fintrack")
    assert json.loads(direct.stdout)["no_server_side_cursors"] is False

    unknown = settings_in_a_new_process(DATABASE_POOLER="pgpool")
    assert unknown.returncode != 0 and "DATABASE_POOLER" in unknown.stderr


@pytest.mark.skipif(
    default_connection.vendor != "postgresql", reason="threads get connections on PostgreSQL"
)
@pytest.mark.django_db(transaction=True)
def test_a_sync_with_every_thread_on_opens_no_more_than_the_budget(
    sandbox_banks, make_user, settings, monkeypatch
):
    """Count the connections the sync's own threads hold at once (the live server's request
    threads, the bank emulator here, are not the sync's and are left out)."""
    from django.db.backends.postgresql.base import DatabaseWrapper

    from banking.tests.factories import client_id_give
    from consents import services as consent_services
    from consents.models import ConsentKind, ConsentStatus
    from sync.models import SyncRun, SyncStatus, SyncTrigger
    from sync.services import sync_run_execute

    settings.SYNC_PARALLEL_ACCOUNTS = 2
    settings.SYNC_PREFETCH_PAGES = True
    settings.SYNC_PAGE_LIMIT = 5  # many pages: the read-ahead threads have work
    settings.SYNC_WRITE_BATCH_ROWS = 10  # and the raw-log writer too
    open_now: dict[int, str] = {}
    peak = {"count": 0, "threads": set()}
    lock = threading.Lock()
    original_connect, original_close = DatabaseWrapper.connect, DatabaseWrapper.close

    def sync_thread() -> bool:
        name = threading.current_thread().name
        return name == "MainThread" or name.startswith(("sync", "raw-log"))

    def connect(self):
        original_connect(self)
        if sync_thread():
            with lock:
                open_now[id(self)] = threading.current_thread().name
                if len(open_now) > peak["count"]:
                    peak["count"] = len(open_now)
                    peak["threads"] = set(open_now.values())

    def close(self):
        with lock:
            open_now.pop(id(self), None)
        original_close(self)

    monkeypatch.setattr(DatabaseWrapper, "connect", connect)
    monkeypatch.setattr(DatabaseWrapper, "close", close)
    user = make_user(email="budget@example.com")
    (connection,) = client_id_give(user=user, client_id="team260-1", bank_codes=["vbank"])
    for kind in (ConsentKind.ACCOUNTS, ConsentKind.PRODUCTS):
        consent = consent_services.consent_ensure(user=user, bank_code="vbank", kind=kind)
        if consent.status == ConsentStatus.PENDING:
            consent = consent_services.consent_approve_demo(consent=consent)
    with lock:
        open_now.clear()
        open_now[id(default_connection)] = "MainThread"  # the test's own, held throughout
    run = SyncRun.objects.create(connection=connection, user=user, trigger=SyncTrigger.USER)

    sync_run_execute(sync_run_id=run.pk)

    run.refresh_from_db()
    assert run.status == SyncStatus.SUCCEEDED, run.error
    assert run.accounts_count >= 2
    budget = db_connections_per_process(parallel_accounts=2, prefetch_pages=True)
    assert 2 < peak["count"] <= budget, peak
