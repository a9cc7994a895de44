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

The sync keeps FinTrack's own rate limit per bank (BANK_RATE_LIMIT_PER_SECOND: 100 calls a second
in the embedded default, slots spaced for 90 with the headroom), which a bare `requests` loop
knows nothing of. Where the sandbox answers faster than that (a quiet machine: ~5 ms a page), the
sync is bound by the limit, not by its own work, and a ratio against an unpaced loop measures the
limit. So benchmark 1 is the full sync against the same bare fetch **paced by the same limiter**
(each call takes its slot from the same shared schedule first): the fastest any client may fetch
those pages under that limit. Beside it, for what the sync's own work costs: the same sync with the
limit off (BANK_RATE_LIMIT_PER_SECOND=0, a second user synced from scratch) against the unpaced
bare fetch, and the configured sync against the unpaced one.

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

    print(json.dumps(sync_user(user_id)))


def sync_user(user_id: int) -> dict:
    """Sync every connection of the user, one after another, here; the figures of the runs."""
    from banking.models import BankConnection

    pks = list(
        BankConnection.objects.filter(user_id=user_id).order_by("pk").values_list("pk", flat=True)
    )
    started = time.perf_counter()
    runs = [common.sync_now(pk) for pk in pks]
    seconds = time.perf_counter() - started
    return {
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


def heavy_user_fully_synced(*, timeout: float = CHILD_TIMEOUT) -> tuple:
    """Benchmark 2's setup, inside `common.sandbox_server()`: the sandbox clock frozen, the
    heavy client's user connected at the three banks, the history generated (a bare fetch: the
    sandbox caches it on first read), then one full sync in a child; (the user, its figures)."""
    from django.conf import settings

    common.sandbox_clock_freeze(common.bench_now())
    user = common.make_user("heavy@bench.local", client_id=common.HEAVY_CLIENT)
    common.connect_banks(user)
    common.bare_fetch(common.bare_fetch_plan(user), page_limit=settings.SYNC_PAGE_LIMIT)
    full = common.run_child([__file__, "--child", str(user.pk)], timeout=timeout)
    return user, full


def main(runs: int) -> None:
    from django.conf import settings

    from banking.models import Transaction

    common.migrate()
    common.wipe()
    now = common.bench_now()
    bare_runs, paced_runs, grid_runs, full_runs, second_runs, free_runs = [], [], [], [], [], []
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
            # The bare fetches in turn, a different one first in each run (shared machine).
            kinds = {
                "bare": {"planned": True},
                "paced": {"planned": True, "paced": True},
                "grid": {},
            }
            order = list(kinds)[number % 3 :] + list(kinds)[: number % 3]
            fetched = {
                name: common.bare_fetch(plans, page_limit=limit, **kinds[name]) for name in order
            }
            bare, paced, grid = fetched["bare"], fetched["paced"], fetched["grid"]
            full = common.run_child([__file__, "--child", str(user.pk)], timeout=CHILD_TIMEOUT)
            second = common.run_child([__file__, "--child", str(user.pk)], timeout=CHILD_TIMEOUT)
            stored = Transaction.objects.filter(user=user).count()
            # The same sync with the limit off, of a second user from scratch.
            common.wipe()
            common.sandbox_clock_freeze(now)
            other = common.make_user("heavy-free@bench.local", client_id=common.HEAVY_CLIENT)
            common.connect_banks(other)
            free = common.run_child(
                [__file__, "--child", str(other.pk)],
                timeout=CHILD_TIMEOUT,
                env={"BANK_RATE_LIMIT_PER_SECOND": "0"},
            )
            for result in (full, second, free):
                if set(result["statuses"]) != {"succeeded"}:
                    raise RuntimeError(f"sync failed: {result['errors']}")
            served = {bare["transactions"], paced["transactions"], grid["transactions"]}
            if {stored, free["added"]} != served:
                raise RuntimeError(f"stored {stored} and {free['added']}, the bank served {bare}")
            bare_runs.append(bare)
            paced_runs.append(paced)
            grid_runs.append(grid)
            full_runs.append(full)
            second_runs.append(second)
            free_runs.append(free)
            print(
                f"run {number + 1}/{runs}: bare {bare['seconds']:.1f}s ({bare['calls']} calls), "
                f"paced {paced['seconds']:.1f}s, grid {grid['seconds']:.1f}s "
                f"({grid['calls']} calls), full sync {full['seconds']:.1f}s "
                f"({full['bank_calls']} calls, {full['added']} added, "
                f"{full['peak_rss_mb']:.0f} MB), second {second['seconds']:.2f}s "
                f"({second['bank_calls']} calls), limit off {free['seconds']:.1f}s",
                flush=True,
            )

    ratio = common.stats(
        [f["seconds"] / p["seconds"] for f, p in zip(full_runs, paced_runs, strict=True)]
    )
    unpaced_ratio = common.stats(
        [f["seconds"] / b["seconds"] for f, b in zip(full_runs, bare_runs, strict=True)]
    )
    free_ratio = common.stats(
        [f["seconds"] / b["seconds"] for f, b in zip(free_runs, bare_runs, strict=True)]
    )
    paced_s = common.stats([p["seconds"] for p in paced_runs])
    free_s = common.stats([f["seconds"] for f in free_runs])
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
        f"  the same, paced by the limiter:  {common.fmt(paced_s, ' s', 2)} "
        f"(BANK_RATE_LIMIT_PER_SECOND {settings.BANK_RATE_LIMIT_PER_SECOND:g}, "
        f"headroom {settings.BANK_RATE_LIMIT_HEADROOM:g})",
        f"bare fetch, plain grid of {limit}:    {common.fmt(grid_s, ' s', 2)}, "
        f"{grid_runs[-1]['calls']} calls (reference: misses tied rows)",
        f"full sync (3 banks in turn):       {common.fmt(full_s, ' s', 2)}, "
        f"{full_runs[-1]['bank_calls']} bank calls",
        f"full sync / paced bare fetch:      {common.fmt(ratio, '×', 2)}",
        f"full sync / unpaced bare fetch:    {common.fmt(unpaced_ratio, '×', 2)}",
        f"full sync, limit off:              {common.fmt(free_s, ' s', 2)}",
        f"  limit off / unpaced bare fetch:  {common.fmt(free_ratio, '×', 2)} "
        "(the sync's own work)",
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
        common.target(
            "1. full sync / bare fetch paced by the same limit (median)",
            ratio["median"],
            at_most=1.1,
        ),
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
            "paced_seconds": paced_s,
            "unpaced_ratio": unpaced_ratio,
            "free_seconds": free_s,
            "free_ratio": free_ratio,
            "transactions_per_second": rate,
            "peak_rss_mb": rss,
            "second_seconds": second_s,
            "second_share": second_share,
            "second_calls": second_calls,
            "accounts": accounts,
            "raw": {
                "bare": bare_runs,
                "paced": paced_runs,
                "grid": grid_runs,
                "full": full_runs,
                "second": second_runs,
                "free": free_runs,
            },
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
