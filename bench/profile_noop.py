"""Where benchmark 2's no-op sync spends its time, step by step (not part of bin/bench).

Same setup as benchmark 2: the heavy client's three banks synced in full in a child process, then
the no-op second sync, also a fresh child each time, the three banks in turn. Each no-op child
times the sync's steps by wrapping them (wall time summed over calls; a step run on a worker
thread is summed apart, marked [threads], so it can exceed the sync's wall time). With
`--vacuum` a `VACUUM ANALYZE` runs between the full sync and the timed no-ops: what a table
autovacuum has reached looks like (see bench/README.md: on these machines autovacuum is off).

    .venv/bin/python bench/profile_noop.py [--runs 3] [--vacuum]
"""

import argparse
import collections
import functools
import importlib
import json
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench import common, sync_full

CHILD_TIMEOUT = 900
# (module, function or Class.method): the steps timed in the no-op child.
STEPS = (
    ("sync.services", "_SyncExecution._transactions"),
    ("sync.services", "_SyncExecution._balances_read"),
    ("sync.services", "_SyncExecution._agreements"),
    ("sync.services", "_SyncExecution._finalize"),
    ("banking.ingestion.accounts", "accounts_store"),
    ("banking.ingestion.accounts", "balances_store"),
    ("banking.services.money", "money_refresh_after_sync"),
    ("banking.services.agreements", "agreement_payments_refresh"),
    ("sync.reader", "account_transactions_sync"),
    ("banking.ingestion.transactions", "TransactionWriter.__init__"),
    ("banking.ingestion.transactions", "TransactionWriter._write"),
    ("banking.ingestion.transactions", "TransactionWriter.stored_count"),
)


def _timed_steps() -> dict[str, float]:
    """Wrap STEPS (and the names other modules imported them under); their summed seconds."""
    spent: dict[str, float] = collections.defaultdict(float)
    for module_name, name in STEPS:
        module = importlib.import_module(module_name)
        owner_name, _, attribute = name.rpartition(".")
        owner = getattr(module, owner_name) if owner_name else module
        original = getattr(owner, attribute)

        def timed(*args, _original=original, _name=name, **kwargs):
            started = time.perf_counter()
            try:
                return _original(*args, **kwargs)
            finally:
                worker = threading.current_thread() is not threading.main_thread()
                spent[_name + (" [threads]" if worker else "")] += time.perf_counter() - started

        setattr(owner, attribute, functools.wraps(original)(timed))
        if not owner_name:  # `from module import name` elsewhere
            for other in list(sys.modules.values()):
                if getattr(other, attribute, None) is original:
                    setattr(other, attribute, owner.__dict__[attribute])
    return spent


def child(user_id: int) -> None:
    """Benchmark 2's sync of every connection of the user (sync_full), its steps timed; a JSON
    line."""
    spent = _timed_steps()
    figures = sync_full.sync_user(user_id)
    print(json.dumps({**figures, "steps": dict(spent)}))


def main(runs: int, vacuum: bool) -> None:
    common.migrate()
    common.wipe()
    with common.sandbox_server():
        user, full = sync_full.heavy_user_fully_synced(timeout=CHILD_TIMEOUT)
        print(f"full sync {full['seconds']:.2f} s, {full['bank_calls']} calls")
        if vacuum:
            seconds, _ = common.timed(common.vacuum_analyze)
            print(f"VACUUM ANALYZE {seconds:.2f} s")
        results = [
            common.run_child([__file__, "--child", str(user.pk)], timeout=CHILD_TIMEOUT)
            for _ in range(runs)
        ]
    for number, result in enumerate(results, 1):
        print(
            f"no-op {number}: {result['seconds']:.3f} s, {result['bank_calls']} calls, "
            f"added {result['added']}, updated {result['updated']}"
        )
    print("steps, ms (median of the runs):")
    names = sorted({name for result in results for name in result["steps"]})
    medians = {
        name: common.stats([result["steps"].get(name, 0.0) * 1000 for result in results])["median"]
        for name in names
    }
    for name, median in sorted(medians.items(), key=lambda item: -item[1]):
        print(f"  {median:8.1f}  {name}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--vacuum", action="store_true", help="VACUUM ANALYZE before the no-ops")
    arguments = parser.parse_args()
    if arguments.child is not None:
        child(arguments.child)
    else:
        main(arguments.runs, arguments.vacuum)
