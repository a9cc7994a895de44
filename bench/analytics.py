"""Benchmark 5: analytics recomputation for a user with 1 year of history versus one with 10
years, with the very same recent activity (same per-day seeds for the overlapping days).

The synthetic rows get live-style booking times (bench/live_ties.py: most of a day's card rows
tied on one instant, SPEC §17) before aggregates and snapshots are computed. Target (issue 25):
10 years / 1 year ≤ 1.2.

    .venv/bin/python bench/analytics.py [--runs 7]
"""

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench import common
from bench.live_ties import tie_booking_times

ACCOUNTS = 2
PER_DAY = 8.0
TARGET = 1.2


def main(runs: int) -> None:
    from analytics.services import analytics_recompute

    common.migrate()
    common.wipe()
    today = common.bench_now().date()
    started = time.perf_counter()
    users = {}
    counts = {}
    ties = {}
    for name, days in (("1 year", 365), ("10 years", 3650)):
        user, count = common.synthetic_user(
            f"history-{days}@bench.local",
            accounts=ACCOUNTS,
            days=days,
            per_day=PER_DAY,
            today=today,
        )
        ties[name] = tie_booking_times(user)
        common.refresh_derived(user, today=today)
        users[name], counts[name] = user, count
    common.vacuum_analyze()
    print(f"data: {counts} in {time.perf_counter() - started:.0f}s", flush=True)

    seconds = {name: [] for name in users}
    for _ in range(runs):
        for name, user in users.items():  # interleaved, so noise hits both
            elapsed, _snapshot = common.timed(
                lambda u=user: analytics_recompute(user=u, today=today)
            )
            seconds[name].append(elapsed * 1000)
    short, long = common.stats(seconds["1 year"]), common.stats(seconds["10 years"])
    ratio = long["median"] / short["median"]
    lines = [
        f"users: {counts['1 year']} transactions over 1 year vs {counts['10 years']} over 10 years "
        f"({ACCOUNTS} accounts, same recent days)",
        f"live-style ties: {ties['1 year']['tied_rows']} / {ties['10 years']['tied_rows']} card "
        f"rows at their day's batch instant (largest group {ties['10 years']['largest_group']})",
        f"analytics_recompute, 1 year:   {common.fmt(short, ' ms', 1)}",
        f"analytics_recompute, 10 years: {common.fmt(long, ' ms', 1)}",
        f"ratio (medians): {ratio:.3f}",
    ]
    targets = [common.target("5. recompute 10 years / 1 year (medians)", ratio, at_most=TARGET)]
    common.report(
        "analytics",
        "5. Analytics recomputation: 1 year vs 10 years of history",
        lines,
        targets,
        {
            "transactions": counts,
            "ties": ties,
            "one_year_ms": short,
            "ten_years_ms": long,
            "ratio": ratio,
        },
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    main(parser.parse_args().runs)
