"""Benchmark 2's no-op sync, two versions of the code compared on one setup (not part of bin/bench).

One full sync of the heavy client (as benchmark 2), then no-op syncs from two checkouts in turn,
ABAB… then BABA… so drift in the machine's load falls on both alike. For each: the wall time,
the sync process's own CPU time (its threads together) and the sandbox bank's CPU time over the
same no-op. A change that shortens the no-op shows as a lower median wall time; one that only
saves work shows as lower CPU, which is what a saturated 2-core machine turns into wall time.

    git worktree add /tmp/base <commit>     # the code to compare with
    .venv/bin/python bench/ab_noop.py --base /tmp/base [--rounds 8]

Both checkouts run with this checkout's virtualenv, working directory and database; their
migrations must agree.
"""

import argparse
import json
import os
import resource
import sys

# A child runs the checkout it is given: its modules first on the path (its bench.common sets
# Django up from there).
sys.path.insert(
    0,
    os.path.abspath(sys.argv[2])
    if len(sys.argv) > 2 and sys.argv[1] == "--child"
    else os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
)

from bench import common, sync_full

CHILD_TIMEOUT = 900


def child(tree: str, user_id: int) -> None:
    """One no-op sync of every connection of the user, with `tree`'s code; a JSON line."""
    assert common.__file__.startswith(tree), (common.__file__, tree)
    before = resource.getrusage(resource.RUSAGE_SELF)
    figures = sync_full.sync_user(user_id)
    after = resource.getrusage(resource.RUSAGE_SELF)
    figures["cpu"] = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    print(json.dumps(figures))


def _process_cpu(pid: int) -> float:
    """CPU seconds of process `pid` so far (user + system, every thread)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _noop(tree: str, user_id: int) -> dict:
    return common.run_child(
        [os.path.abspath(__file__), "--child", tree, str(user_id)], timeout=CHILD_TIMEOUT
    )


def main(base: str, rounds: int) -> None:
    trees = {"base": os.path.abspath(base), "this": str(common.ROOT)}
    results: dict[str, list[dict]] = {name: [] for name in trees}
    common.migrate()
    common.wipe()
    with common.sandbox_server() as sandbox:
        user, full = sync_full.heavy_user_fully_synced(timeout=CHILD_TIMEOUT)
        print(f"full sync {full['seconds']:.2f} s, {full['bank_calls']} calls", flush=True)
        for number in range(rounds):
            order = list(trees) if number % 2 == 0 else list(reversed(trees))
            for name in order:
                sandbox_before = _process_cpu(sandbox.pid)
                result = _noop(trees[name], user.pk)
                result["sandbox_cpu"] = _process_cpu(sandbox.pid) - sandbox_before
                if result["added"] or result["updated"]:
                    raise RuntimeError(f"{name}'s no-op changed rows: {result}")
                results[name].append(result)
    for name, tree in trees.items():
        runs = results[name]
        wall = common.stats([run["seconds"] for run in runs])
        cpu = common.stats([run["cpu"] for run in runs])
        bank = common.stats([run["sandbox_cpu"] for run in runs])
        print(
            f"{name:5} {tree}: no-op {common.fmt(wall, ' s', 3)}, "
            f"sync CPU {common.fmt(cpu, ' s', 3)}, sandbox CPU {common.fmt(bank, ' s', 3)}, "
            f"no-op / full {wall['median'] / full['seconds']:.4f}"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--base", help="the other checkout (a git worktree)")
    parser.add_argument("--rounds", type=int, default=8)
    arguments = parser.parse_args()
    if arguments.child is not None:
        child(arguments.child[0], int(arguments.child[1]))
    elif not arguments.base:
        parser.error("--base is required")
    else:
        main(arguments.base, arguments.rounds)
