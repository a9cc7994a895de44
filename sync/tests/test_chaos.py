"""The chaos sync, shorter for CI: rounds of syncs against the sandbox with faults on at random,
a revoked consent connected again, a malformed body, the clock moving; then a clean round.
Nothing may be lost, duplicated or wrong, and every run's recorded outcome must be explained.
The full version is bench/chaos_sync.py (same engine, more rounds and clients, real processes)."""

import pytest

from bench.chaos_sync import BANK_CODES, chaos_prepare, chaos_run

pytestmark = pytest.mark.django_db(transaction=True)

SEED = 20261127


@pytest.fixture
def chaos_settings(sandbox_banks, settings):
    settings.BANK_TIMEOUT_SECONDS = 0.4  # hangs (0.8 s) outlast it and are retried
    settings.BANK_RETRY_BACKOFF_SECONDS = 0.001
    settings.BANK_RETRY_MAX_SLEEP_SECONDS = 0.01  # Retry-After honoured up to this in tests
    settings.SYNC_PAGE_LIMIT = 50
    return settings


def test_chaos_rounds_lose_duplicate_and_corrupt_nothing(chaos_settings):
    users = chaos_prepare(clients=2, per_year=300, months=3)

    report = chaos_run(users=users, rounds=5, seed=SEED, hang_seconds=0.8)

    print("\n" + "\n".join(report.lines()))
    assert report.lost == []
    assert report.duplicated == []
    assert report.wrong == []
    assert report.wrong_accounts == []
    assert report.wrong_connections == []
    assert report.bad_runs == []
    assert report.race_failures == []  # no internal_error, no IntegrityError
    # The chaos really happened: faults were met, a consent was revoked and connected again.
    assert report.faults_seen["5xx"] > 0
    assert report.faults_seen["429"] > 0
    assert len(report.revoked) == len(report.reconnected) == 1
    assert report.runs_by_outcome["failed:consent_required"] >= 1
    assert report.runs_by_outcome["failed:bank_bad_response"] >= 1
    assert report.transactions_expected == report.transactions_stored > 0
    assert report.syncs_requested == (5 + 1) * 2 * len(BANK_CODES) - 1
