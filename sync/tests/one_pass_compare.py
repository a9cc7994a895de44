"""One comparison of a progressive first sync with a one-pass sync of the same bank data.

Shared by sync/tests/test_progressive_first_sync.py and bench/first_figures.py (benchmark 10), so
both check the same thing: the stored rows (every column the bank and the rules set) and the
analytics snapshot of both data sets computed at one instant, without what must differ (database
ids, the times rows were written, each sync's freshness).
"""

import hashlib
from collections.abc import Iterator
from datetime import datetime
from unittest import mock

# What the bank and the categorisation rules made of each row; ids of our own left out.
ROW_FIELDS = (
    "bank_code",
    "account__bank_account_id",
    "bank_transaction_id",
    "amount",
    "currency",
    "booking_date",
    "value_date",
    "status",
    "description",
    "merchant_name",
    "merchant_category",
    "mcc",
    "counterparty",
    "bank_transaction_code",
    "category__code",
    "category_source",
    "is_own_transfer",
)


def stored_rows(user) -> Iterator[tuple]:
    """Every stored transaction of the user as ROW_FIELDS, in one order (streamed)."""
    from banking.models import Transaction

    return (
        Transaction.objects.filter(user=user)
        .order_by("bank_code", "account__bank_account_id", "bank_transaction_id")
        .values_list(*ROW_FIELDS)
        .iterator(chunk_size=5000)
    )


def rows_digest(user) -> tuple[int, str]:
    """(count, sha256) of `stored_rows`: equal exactly when the stored rows are."""
    digest = hashlib.sha256()
    count = 0
    for row in stored_rows(user):
        digest.update(repr(row).encode())
        count += 1
    return count, digest.hexdigest()


def comparable(value):
    """A snapshot's JSON without database ids (two users' rows have different ones) and the times
    rows were written (`updated_at` of the totals)."""
    if isinstance(value, dict):
        return {
            key: comparable(item)
            for key, item in value.items()
            if key != "updated_at"
            and not ((key == "id" or key.endswith("_id")) and isinstance(item, int | None))
        }
    if isinstance(value, list):
        return [comparable(item) for item in value]
    return value


def figures(user, at: datetime) -> dict:
    """The snapshot of the user's data computed at one instant (the time of day changes the rest
    of today's spending), without ids and freshness (when each sync finished)."""
    from analytics.services import analytics_recompute

    with mock.patch("analytics.compute.timezone.now", return_value=at):
        snapshot = analytics_recompute(user=user)
    breakdown = dict(snapshot.breakdown)
    breakdown.pop("freshness", None)
    return comparable({"summary": snapshot.summary, "breakdown": breakdown})


def differences(got, expected, path: str = "") -> list[str]:
    """Where two JSON values differ, one readable line each ([] when equal)."""
    if isinstance(got, dict) and isinstance(expected, dict):
        return [
            difference
            for key in sorted(set(got) | set(expected))
            for difference in differences(got.get(key), expected.get(key), f"{path}.{key}")
        ]
    if isinstance(got, list) and isinstance(expected, list) and len(got) == len(expected):
        return [
            difference
            for index, (a, b) in enumerate(zip(got, expected, strict=True))
            for difference in differences(a, b, f"{path}[{index}]")
        ]
    return [] if got == expected else [f"{path}: {got!r} != {expected!r}"[:300]]


def one_pass_problems(runs, *, stored: int, bank_total: int | None = None) -> list[str]:
    """Why first-sync `runs` (SyncRun rows, one per bank) are not a real one-pass full sync of
    everything the banks hold, or [] when they are: each a full first read in one pass that
    succeeded and called its bank, the rows stored exactly those the runs added (a row stored
    before them would be stored and not added), and, when known, the banks' own count
    (totalRecords). A run's `unchanged` rows are not a sign of rows stored before it: a bank
    that shows a row of a tie group on two pages (SPEC §17) makes a first read meet it again in
    a later write batch, unchanged."""
    from sync.models import SyncKind, SyncPhase, SyncStatus

    problems = [] if runs else ["no sync run"]
    for run in runs:
        where = f"run {run.pk} ({run.connection.bank_code})"
        if run.kind != SyncKind.FULL or run.phase != SyncPhase.ONE_PASS:
            problems.append(f"{where} is kind {run.kind}, phase {run.phase}, not a one-pass read")
        if run.status != SyncStatus.SUCCEEDED:
            problems.append(f"{where} ended {run.status}: {run.error[:200]}")
        if run.bank_calls <= run.accounts_count:
            problems.append(
                f"{where} made {run.bank_calls} bank call(s) for {run.accounts_count} account(s)"
            )
    added = sum(run.transactions_added for run in runs)
    if added != stored:
        problems.append(f"the runs added {added} rows but {stored} are stored")
    if bank_total is not None and stored != bank_total:
        problems.append(f"{stored} rows stored, the banks count {bank_total} (totalRecords)")
    return problems
