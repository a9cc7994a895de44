"""Benchmark 3: three banks answering after 200 ms each, synced through a real Celery worker at
once versus one after another.

A worker (`celery -A fintrack worker --pool=prefork --concurrency=3`, the production pool: each
sync in its own process, so the CPU part of three syncs is not serialised by one GIL) on the
bench's own Redis database. The sandbox over HTTP with `latency_ms=200` at every bank. The client
is the heavy one at a lighter volume (4 checking accounts per bank, ~800 transactions each over a
year), so one bank is ~50 bank calls ≈ 10 s of pure latency.

    .venv/bin/python bench/sync_celery.py [--runs 3]
"""

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench import common

LATENCY_MS = 200
PER_YEAR = 800
MONTHS = 12
WAIT_SECONDS = 600


def _prepare(now) -> list:
    """A fresh database: the client connected at every bank, then latency switched on."""
    from sandbox import faults
    from sandbox.volume import set_client_volume

    common.wipe()
    common.sandbox_clock_freeze(now)
    set_client_volume(common.HEAVY_CLIENT, PER_YEAR, history_months=MONTHS)
    user = common.make_user("celery@bench.local", client_id=common.HEAVY_CLIENT)
    connections = common.connect_banks(user)
    for bank_code in common.BANK_CODES:
        faults.set_faults(bank_code, latency_ms=LATENCY_MS)
    return connections


def _start(connection):
    from sync.models import SyncTrigger
    from sync.services import connection_sync_start

    run, created = connection_sync_start(connection=connection, trigger=SyncTrigger.USER)
    if not created:
        raise RuntimeError("a sync was already active")
    return run


def _wait(runs: list) -> None:
    from sync.models import SyncRun, SyncStatus

    deadline = time.monotonic() + WAIT_SECONDS
    pks = [run.pk for run in runs]
    while time.monotonic() < deadline:
        statuses = list(SyncRun.objects.filter(pk__in=pks).values_list("status", "error"))
        if all(status in (SyncStatus.SUCCEEDED, SyncStatus.FAILED) for status, _ in statuses):
            failed = [error for status, error in statuses if status == SyncStatus.FAILED]
            if failed:
                raise RuntimeError(f"sync failed: {failed}")
            return
        time.sleep(0.05)
    raise RuntimeError(f"syncs {pks} did not finish within {WAIT_SECONDS} s")


def _worker_ready() -> None:
    from fintrack.celery import app

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if app.control.ping(timeout=1):
            return
    raise RuntimeError("the Celery worker did not answer a ping within 60 s")


def main(runs: int) -> None:
    from sync.models import SyncRun

    common.migrate()
    common.wipe()
    now = common.bench_now()
    worker = [
        os.path.join(os.path.dirname(common.PYTHON), "celery"),
        "-A",
        "fintrack",
        "worker",
        "--pool=prefork",
        "--concurrency=3",
        "--loglevel=WARNING",
        "--without-gossip",
        "--without-mingle",
        "--hostname=bench@%h",
    ]
    sequential, parallel, ratios, calls = [], [], [], []
    with common.sandbox_server(), common.background("celery_worker", worker):
        _worker_ready()
        for number in range(runs):
            connections = _prepare(now)
            each = []
            for connection in connections:
                started = time.perf_counter()
                run = _start(connection)
                _wait([run])
                each.append(time.perf_counter() - started)
            calls.append(sum(SyncRun.objects.values_list("bank_calls", flat=True)))

            connections = _prepare(now)
            started = time.perf_counter()
            _wait([_start(connection) for connection in connections])
            together = time.perf_counter() - started

            sequential.append(sum(each))
            parallel.append(together)
            ratios.append(together / sum(each))
            print(
                f"run {number + 1}/{runs}: one after another "
                f"{' + '.join(f'{s:.1f}' for s in each)} = {sum(each):.1f}s, "
                f"all three through Celery {together:.1f}s, ratio {together / sum(each):.3f}",
                flush=True,
            )
    ratio = common.stats(ratios)
    sequential_s, parallel_s = common.stats(sequential), common.stats(parallel)
    lines = [
        f"latency {LATENCY_MS} ms per bank call at all three banks; "
        f"{calls[-1]} bank calls per full sync of the three banks",
        f"sum of the three synced one after another: {common.fmt(sequential_s, ' s', 1)}",
        f"all three at once through Celery:          {common.fmt(parallel_s, ' s', 1)}",
        f"at once / one after another:               {common.fmt(ratio, '×', 3)}",
        "worker: prefork, concurrency 3, Redis broker (bench db)",
    ]
    targets = [
        common.target("3. Celery parallel / sequential (median)", ratio["median"], at_most=0.45)
    ]
    common.report(
        "sync_celery",
        "3. Three banks with 200 ms latency: Celery in parallel vs one after another",
        lines,
        targets,
        {
            "sequential_seconds": sequential_s,
            "parallel_seconds": parallel_s,
            "ratio": ratio,
            "bank_calls": calls,
        },
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    main(parser.parse_args().runs)
