"""Benchmarks 1 and 2: a heavy client's full sync against a bare fetch of the same pages, then a
second sync with nothing new.

Heavy client: 3 banks × 4 checking accounts × ~20,000 transactions (6 years at ~3,400 a year),
plus the layout's savings, loan and deposit accounts. The sandbox is served over real HTTP
(`run_sandbox`), its clock frozen so the second sync has nothing new. The bare fetch uses plain
`requests` for the very same URLs (accounts, balances, every transaction page, products,
agreements) and discards the bodies. Its transaction pages are the ones the sync reads: the
reader's page plan (`sync.reader.PagePlan`, fed the raw `bookingDateTime` strings) begins a page
at or before the tied rows the page before ended in (SPEC §17), so its pages are not a plain grid
of 100. The grid of 100 is fetched too, as a reference (what the ratio was measured against
before the plan; on tied data it misses rows). Each sync runs in a child process (its peak RSS is
the worker's memory), the three banks one after another.

    .venv/bin/python bench/sync_full.py [--runs 3]
"""

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench import common

CHILD_TIMEOUT = 900
CALLS_CONSTANT_PER_BANK = 3  # accounts list, agreements list, one agreement detail or catalogue


def child(user_id: int) -> None:
    """Sync every connection of the user, one after another; print a JSON line of figures."""
    import json

    from banking.models import BankConnection

    pks = list(
        BankConnection.objects.filter(user_id=user_id).order_by("pk").values_list("pk", flat=True)
    )
    started = time.perf_counter()
    runs = [common.sync_now(pk) for pk in pks]
    seconds = time.perf_counter() - started
    print(
        json.dumps(
            {
                "seconds": seconds,
                "peak_rss_mb": common.peak_rss_mb(),
                "statuses": [run.status for run in runs],
                "errors": [run.error for run in runs if run.error],
                "added": sum(run.transactions_added for run in runs),
                "updated": sum(run.transactions_updated for run in runs),
                "unchanged": sum(run.transactions_unchanged for run in runs),
                "bank_calls": sum(run.bank_calls for run in runs),
                "accounts": sum(run.accounts_count for run in runs),
            }
        )
    )


def main(runs: int) -> None:
    from django.conf import settings

    from banking.models import Transaction

    common.migrate()
    common.wipe()
    now = common.bench_now()
    bare_runs, grid_runs, full_runs, second_runs = [], [], [], []
    limit = settings.SYNC_PAGE_LIMIT
    with common.sandbox_server():
        for number in range(runs):
            common.wipe()
            common.sandbox_clock_freeze(now)
            user = common.make_user("heavy@bench.local", client_id=common.HEAVY_CLIENT)
            common.connect_banks(user)
            plans = common.bare_fetch_plan(user)
            if number == 0:  # the sandbox generates and caches the history on first read
                common.bare_fetch(plans, page_limit=limit)
            # The two bare fetches in turn, each first in every other run (shared machine).
            if number % 2:
                bare = common.bare_fetch(plans, page_limit=limit, planned=True)
                grid = common.bare_fetch(plans, page_limit=limit)
            else:
                grid = common.bare_fetch(plans, page_limit=limit)
                bare = common.bare_fetch(plans, page_limit=limit, planned=True)
            full = common.run_child([__file__, "--child", str(user.pk)], timeout=CHILD_TIMEOUT)
            second = common.run_child([__file__, "--child", str(user.pk)], timeout=CHILD_TIMEOUT)
            stored = Transaction.objects.filter(user=user).count()
            for result in (full, second):
                if set(result["statuses"]) != {"succeeded"}:
                    raise RuntimeError(f"sync failed: {result['errors']}")
            if not stored == bare["transactions"] == grid["transactions"]:
                raise RuntimeError(f"stored {stored} transactions, the bank served {bare}")
            bare_runs.append(bare)
            grid_runs.append(grid)
            full_runs.append(full)
            second_runs.append(second)
            print(
                f"run {number + 1}/{runs}: bare {bare['seconds']:.1f}s ({bare['calls']} calls), "
                f"grid {grid['seconds']:.1f}s ({grid['calls']} calls), "
                f"full sync {full['seconds']:.1f}s ({full['bank_calls']} calls, "
                f"{full['added']} added, {full['peak_rss_mb']:.0f} MB), "
                f"second {second['seconds']:.2f}s ({second['bank_calls']} calls)",
                flush=True,
            )

    ratio = common.stats(
        [f["seconds"] / b["seconds"] for f, b in zip(full_runs, bare_runs, strict=True)]
    )
    bare_s = common.stats([b["seconds"] for b in bare_runs])
    grid_s = common.stats([g["seconds"] for g in grid_runs])
    grid_ratio = common.stats(
        [f["seconds"] / g["seconds"] for f, g in zip(full_runs, grid_runs, strict=True)]
    )
    full_s = common.stats([f["seconds"] for f in full_runs])
    rate = common.stats([f["added"] / f["seconds"] for f in full_runs])
    rss = common.stats([f["peak_rss_mb"] for f in full_runs])
    second_s = common.stats([s["seconds"] for s in second_runs])
    second_share = common.stats(
        [s["seconds"] / f["seconds"] for s, f in zip(second_runs, full_runs, strict=True)]
    )
    accounts = second_runs[-1]["accounts"]
    second_calls = max(s["bank_calls"] for s in second_runs)
    allowed_calls = 2 * accounts + CALLS_CONSTANT_PER_BANK * len(common.BANK_CODES)
    lines = [
        f"heavy client {common.HEAVY_CLIENT}: {accounts} accounts at 3 banks, "
        f"{full_runs[-1]['added']} transactions "
        f"({common.HEAVY_PER_YEAR}/year per checking account, {common.HEAVY_MONTHS} months)",
        f"bare fetch (requests, same pages): {common.fmt(bare_s, ' s', 2)}, "
        f"{bare_runs[-1]['calls']} calls",
        f"bare fetch, plain grid of {limit}:    {common.fmt(grid_s, ' s', 2)}, "
        f"{grid_runs[-1]['calls']} calls (reference: misses tied rows)",
        f"full sync (3 banks in turn):       {common.fmt(full_s, ' s', 2)}, "
        f"{full_runs[-1]['bank_calls']} bank calls",
        f"full sync / bare fetch:            {common.fmt(ratio, '×', 2)}",
        f"full sync / grid bare fetch:       {common.fmt(grid_ratio, '×', 2)}",
        f"transactions stored per second:    {common.fmt(rate, '', 0)}",
        f"sync process peak RSS:             {common.fmt(rss, ' MB', 0)}",
        f"second sync (nothing new):         {common.fmt(second_s, ' s', 2)}, "
        f"{second_calls} bank calls for {accounts} accounts",
        f"second sync / full sync:           {common.fmt(second_share, '', 4)}",
        f"second sync changed: added {sum(s['added'] for s in second_runs)}, "
        f"updated {sum(s['updated'] for s in second_runs)}",
    ]
    targets = [
        common.target("1. full sync / bare fetch (median)", ratio["median"], at_most=1.1),
        common.target("1. sync peak RSS MB (max)", rss["max"], at_most=300),
        common.target("2. second sync / full sync (median)", second_share["median"], at_most=0.02),
        common.target(
            f"2. second sync bank calls (≤ 2×{accounts} accounts + {allowed_calls - 2 * accounts})",
            second_calls,
            at_most=allowed_calls,
        ),
    ]
    common.report(
        "sync_full",
        "1–2. Heavy client: full sync vs bare fetch; second sync",
        lines,
        targets,
        {
            "bare_seconds": bare_s,
            "grid_seconds": grid_s,
            "grid_ratio": grid_ratio,
            "full_seconds": full_s,
            "ratio": ratio,
            "transactions_per_second": rate,
            "peak_rss_mb": rss,
            "second_seconds": second_s,
            "second_share": second_share,
            "second_calls": second_calls,
            "accounts": accounts,
            "raw": {"bare": bare_runs, "grid": grid_runs, "full": full_runs, "second": second_runs},
        },
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.child:
        child(arguments.child)
    else:
        main(arguments.runs)
