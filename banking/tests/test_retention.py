"""Balance snapshot retention: after N days, the last reading of each day per account."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from banking.models import BalanceSnapshot
from banking.retention import balance_snapshots_thin
from banking.tasks import balance_snapshots_thin_task
from banking.tests.factories import make_account

NOW = datetime(2026, 6, 30, 12, tzinfo=UTC)


def reading(account, at: datetime) -> BalanceSnapshot:
    return BalanceSnapshot.objects.create(
        account=account, available=Decimal(at.hour), currency="RUB", as_of=at
    )


def day_at(days_ago: int, hour: int) -> datetime:
    day = (NOW - timedelta(days=days_ago)).date()
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC)


@pytest.mark.django_db
def test_old_days_keep_their_last_reading_and_recent_ones_all(user):
    first = make_account(user=user, bank_account_id="acc-1")
    second = make_account(user=user, bank_account_id="acc-2")
    for account in (first, second):
        for days_ago in (31, 32, 33, 3):
            for hour in (1, 12, 23):
                reading(account, day_at(days_ago, hour))

    deleted = balance_snapshots_thin(older_than_days=30, batch_size=3, now=NOW)

    assert deleted == 2 * 3 * 2  # two readings of each old day, per account
    for account in (first, second):
        kept = sorted(
            BalanceSnapshot.objects.filter(account=account).values_list("as_of", flat=True)
        )
        old = [at for at in kept if at < NOW - timedelta(days=30)]
        assert old == [day_at(days_ago, 23) for days_ago in (33, 32, 31)]
        assert len(kept) - len(old) == 3  # the recent day untouched


@pytest.mark.django_db
def test_a_daily_run_reads_the_last_week_only_and_full_reads_everything(user):
    account = make_account(user=user)
    for hour in (1, 23):
        reading(account, day_at(60, hour))  # older than the cutoff by a month: left to `full`
        reading(account, day_at(33, hour))

    assert balance_snapshots_thin(older_than_days=30, batch_size=10, now=NOW) == 1
    assert BalanceSnapshot.objects.count() == 3
    assert balance_snapshots_thin(older_than_days=30, batch_size=10, full=True, now=NOW) == 1
    assert sorted(BalanceSnapshot.objects.values_list("as_of", flat=True)) == [
        day_at(60, 23),
        day_at(33, 23),
    ]


@pytest.mark.django_db
def test_the_task_reads_the_setting(user, settings):
    account = make_account(user=user)
    now = datetime.now(UTC)
    for hour in (1, 2, 3):
        reading(account, (now - timedelta(days=33)).replace(hour=hour))
    settings.BALANCE_SNAPSHOT_DAILY_AFTER_DAYS = 0
    assert balance_snapshots_thin_task() == 0
    settings.BALANCE_SNAPSHOT_DAILY_AFTER_DAYS = 30
    assert balance_snapshots_thin_task() == 2
