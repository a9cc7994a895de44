"""Aggregates rebuilt without a race: syncs of one user finishing together (PostgreSQL).

Each sync's finalize rebuilds the user's aggregates (delete the days, insert them again from the
transactions). Two of them overlapping used to collide on `aggregate_unique_day_category` (the
second one's DELETE cannot see the rows the first one inserts and has not committed yet): about
one run in ten failed when onboarding started three banks at once. The rebuild now takes turns
per user (banking.services.transactions.user_aggregates_lock); these tests run the rebuilds
really at once — threads with their own connections, then real worker processes syncing three
sandbox banks of one user — and check nothing fails and the aggregates are exactly those of one
fresh rebuild. SQLite runs one writer at a time: nothing to race there, so they are skipped.
"""

import os
import threading
import time
from datetime import timedelta
from decimal import Decimal

import pytest
from django.conf import settings
from django.db import connections, transaction

from banking.models import TransactionAggregate
from banking.services.money import money_refresh_after_sync
from banking.services.transactions import transaction_aggregates_recompute
from banking.tests.factories import make_account, make_transaction
from fintrack.core.localtime import user_today

ON_POSTGRESQL = settings.DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"
BROKER_URL = os.environ.get("CELERY_BROKER_URL", "")
# Rounds of three syncs at once on real workers; the old rebuild failed in about one in ten
# syncs, so 12 rounds (36 syncs) show it.
WORKER_ROUNDS = int(os.environ.get("AGGREGATES_RACE_ROUNDS", "12"))

pytestmark = [
    pytest.mark.skipif(
        not ON_POSTGRESQL,
        reason="needs PostgreSQL: SQLite runs one writer at a time, so rebuilds never overlap",
    ),
    pytest.mark.django_db(transaction=True),
]


@pytest.fixture
def categories():
    """Transactional tests flush tables, the migration-seeded categories too: seed them again."""
    from banking.categories import categories_seed
    from banking.categorization import category_cache_clear

    categories_seed()
    category_cache_clear()
    yield
    category_cache_clear()


def aggregate_rows(user) -> list[tuple]:
    """The user's aggregates, every column that counts, in a stable order."""
    return sorted(
        TransactionAggregate.objects.filter(user=user).values_list(
            "date", "category_id", "currency", "income", "spending", "transaction_count"
        )
    )


def assert_equals_a_fresh_rebuild(user) -> None:
    """The stored aggregates are exactly what one rebuild from all transactions writes."""
    stored = aggregate_rows(user)
    transaction_aggregates_recompute(user=user, since_date=None)
    assert stored == aggregate_rows(user)
    assert stored, "nothing was aggregated: the test proves nothing"


def _in_threads(count: int, target) -> list[BaseException]:
    """Run target(index) in `count` threads released together; the errors they raised."""
    barrier = threading.Barrier(count)
    errors: list[BaseException] = []

    def body(index: int) -> None:
        try:
            barrier.wait()
            target(index)
        except BaseException as exc:  # collected: a thread's failure must fail the test
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=body, args=(index,)) for index in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads), "a thread hung"
    return errors


def test_concurrent_finalizes_of_one_user_rebuild_as_if_one_after_the_other(categories, user):
    """Three "finalizes" at once, each storing a row of its bank and refreshing the money data
    inside one transaction held a little longer (as the sync's is, for the run and audit rows)."""
    today = user_today(user)
    accounts = [make_account(user=user, bank_code=code) for code in ("vbank", "abank", "sbank")]
    for offset in range(10):
        for number, account in enumerate(accounts):
            day = today - timedelta(days=offset)
            make_transaction(account=account, amount=f"-{100 + number}.00", booking_date=day,
                             description="🏪 Продукты")  # fmt: skip
            make_transaction(account=account, amount="2500.00", booking_date=day,
                             description="💼 Зарплата")  # fmt: skip
    money_refresh_after_sync(user=user, since_date=None)

    def finalize(index: int, round_number: int) -> None:
        with transaction.atomic():
            make_transaction(
                account=accounts[index],
                amount=Decimal(f"-{round_number + 1}.{index + 1:02d}"),
                booking_date=today - timedelta(days=index),
                description="🚌 Транспорт",
            )
            money_refresh_after_sync(user=user, since_date=today - timedelta(days=2))
            time.sleep(0.05)

    for round_number in range(8):
        errors = _in_threads(3, lambda index, n=round_number: finalize(index, n))
        assert errors == [], errors
        assert_equals_a_fresh_rebuild(user)


@pytest.mark.broker
@pytest.mark.skipif(
    not BROKER_URL.startswith("redis://"), reason="needs CELERY_BROKER_URL=redis://…"
)
def test_three_banks_of_one_user_synced_at_once_by_two_worker_processes(sandbox_banks, user):
    """Onboarding's case on real processes: two prefork workers (two pool processes each) sync
    one user's three sandbox banks at once, round after round; no run fails, and the aggregates
    are those of one fresh rebuild."""
    from fintrack.tests.celery_workers import (
        celery_worker,
        tasks_through_the_broker,
        worker_environment,
    )
    from sync.models import SyncRun, SyncStatus, SyncTrigger
    from sync.services import connection_sync_start
    from sync.tests.test_sandbox_sync import _connected

    connections_ = [_connected(user, code) for code in ("vbank", "abank", "sbank")]
    environment = worker_environment(
        broker_url=BROKER_URL,
        BANK_RETRY_BACKOFF_SECONDS="0.001",
        BANK_RETRY_MAX_SLEEP_SECONDS="0.01",
        LOG_LEVEL="WARNING",
        **{
            f"{code.upper()}_BASE_URL": config["base_url"] for code, config in sandbox_banks.items()
        },
    )
    with (
        tasks_through_the_broker(),
        celery_worker(name="race1", environment=environment) as first,
        celery_worker(name="race2", environment=environment) as second,
    ):
        finished = []
        for _round in range(WORKER_ROUNDS):
            runs = [
                connection_sync_start(connection=c, trigger=SyncTrigger.USER)[0]
                for c in connections_
            ]
            deadline = time.monotonic() + 180
            pending = {run.pk for run in runs}
            while pending and time.monotonic() < deadline:
                time.sleep(0.2)
                pending = set(
                    SyncRun.objects.filter(pk__in=pending)
                    .exclude(status__in=(SyncStatus.SUCCEEDED, SyncStatus.FAILED))
                    .values_list("pk", flat=True)
                )
            assert not pending, (
                f"runs {pending} did not finish:\n{first.log()[-3000:]}\n{second.log()[-3000:]}"
            )
            finished += SyncRun.objects.filter(pk__in=[run.pk for run in runs])
        assert first.alive() and second.alive()

    failures = [
        (run.pk, run.connection_id, run.error) for run in finished if run.status != "succeeded"
    ]
    assert failures == [], failures
    assert len(finished) == 3 * WORKER_ROUNDS
    assert_equals_a_fresh_rebuild(user)
