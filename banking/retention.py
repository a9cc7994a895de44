"""Retention of balance snapshots: after N days, one reading a day per account (the last of
each UTC day), the rest deleted in short batches. Recent readings all stay.

A sync stores one reading per account; hourly syncs make 24 a day. The balance history a chart
draws needs one a day, so older days keep their last. Read per chunk of accounts over the
(account, as_of) index, deleted by primary key (audit.retention).
"""

import logging
from datetime import UTC, datetime, time, timedelta

from django.utils import timezone

from audit.retention import chunks, delete_ids, keyset_ids, utc_day
from banking.models import Account, BalanceSnapshot

logger = logging.getLogger(__name__)

ACCOUNTS_PER_READ = 500
# A daily run reads the readings that crossed the cutoff in the last week only (older days were
# thinned by earlier runs: one reading a day, read again for nothing); `full` reads them all.
LOOKBACK_DAYS = 7


def balance_snapshots_thin(
    *, older_than_days: int, batch_size: int, full: bool = False, now: datetime | None = None
) -> int:
    """Keep the last reading of each UTC day per account among readings older than the cutoff
    (by the bank's `as_of`; the last LOOKBACK_DAYS before it unless `full`); delete the others;
    the count."""
    if older_than_days < 1 or batch_size < 1:
        raise ValueError("older_than_days and batch_size must be positive")
    cutoff = (now or timezone.now()) - timedelta(days=older_than_days)
    window = {"as_of__lt": cutoff}
    if not full:
        # From the start of a UTC day: a day is always judged on all its readings.
        since = utc_day(cutoff - timedelta(days=LOOKBACK_DAYS))
        window["as_of__gte"] = datetime.combine(since, time(0), tzinfo=UTC)
    deleted = 0
    for account_ids in keyset_ids(Account.objects.all(), size=ACCOUNTS_PER_READ):
        rows = (
            BalanceSnapshot.objects.filter(account_id__in=account_ids, **window)
            .order_by("account_id", "-as_of", "-id")
            .values_list("id", "account_id", "as_of")
        )
        doomed = []
        days_kept: set[tuple[int, object]] = set()
        for snapshot_id, account_id, as_of in rows:
            day = (account_id, utc_day(as_of))
            if day in days_kept:
                doomed.append(snapshot_id)
            else:
                days_kept.add(day)
        for ids in chunks(doomed, batch_size):
            deleted += delete_ids(BalanceSnapshot, ids)
    if deleted:
        logger.info("balance snapshots: thinned %d older than %s", deleted, cutoff.isoformat())
    return deleted
