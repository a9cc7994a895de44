"""Benchmark 9: GET /api/transactions/export.csv of a ~250,000-row user, streamed in bounded memory.

The user is the heavy client (`--source sandbox`, the default: team260-1 synced over real HTTP
from the sandbox, ~244,000 live-style rows) or a synthetic user of the same size written with
bulk_create (`--source synthetic`, no sandbox, faster). Each export runs in a fresh child
process through Django's test client (JWT, every middleware, the real view): the child warms up
with a small export, then streams the whole CSV, reading its resident memory (VmRSS) after every
chunk and its peak (VmHWM, reset just before the request) at the end. The peak's growth over the
RSS before the request is the figure; the same is measured for a year's slice (~1/6 of the
rows), which must cost the same if memory is constant, and for the naive way (every row in a
list, the CSV built as one string) to show what streaming saves.

    .venv/bin/python bench/transactions_export.py [--runs 3] [--source sandbox|synthetic] [--reuse]

Own database and Redis:
    BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/fintrack_bench_f \\
    BENCH_REDIS_URL=redis://127.0.0.1:6379/8 .venv/bin/python bench/transactions_export.py
"""

import argparse
import gc
import json
import os
import sys
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench import common

URL = "/api/transactions/export.csv"
EMAIL = "export@bench.local"
CHILD_TIMEOUT = 900
RSS_GROWTH_TARGET_MB = 50


def _status_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def _rss_mb() -> float:
    """This process's resident memory now (VmRSS)."""
    return _status_mb("VmRSS")


def _peak_reset() -> None:
    """Restart the peak-RSS mark (VmHWM) from the current RSS (Linux ≥ 4.0: clear_refs 5).

    Not ru_maxrss: Linux carries a process's maxrss across fork and exec, so a child of a big
    parent (this script after a sync) starts with the parent's peak.
    """
    Path("/proc/self/clear_refs").write_text("5")


def _peak_mb() -> float:
    """The peak RSS since _peak_reset (VmHWM)."""
    return _status_mb("VmHWM")


def child(user_id: int, query: str, mode: str) -> None:
    """One export in this fresh process; prints a JSON line of figures."""
    from django.test import Client

    from banking.filters import TransactionFilters
    from banking.selectors.transactions import transaction_export_rows
    from banking.serializers.transactions import transaction_csv_chunks
    from fintrack.core.localtime import user_zone
    from users.models import User

    user = User.objects.get(pk=user_id)
    client = Client()
    headers = {"HTTP_AUTHORIZATION": f"Bearer {common.access_token(user)}"}
    # Warm-up: imports, the connection, the view's code paths, with a few hundred rows.
    warm = client.get(f"{URL}?amount_min=9000", **headers)
    assert warm.status_code == 200, warm.status_code
    for _chunk in warm.streaming_content:
        pass
    gc.collect()
    _peak_reset()
    rss_before, peak_before = _rss_mb(), _peak_mb()
    rss_max = rss_before
    started = time.perf_counter()
    rows = -1  # the header row
    size = 0
    first_byte = None
    chunks = 0
    if mode == "stream":
        response = client.get(f"{URL}?{query}", **headers)
        if response.status_code != 200 or not response.streaming:
            raise RuntimeError(
                f"export: HTTP {response.status_code}, streaming={response.streaming}"
            )
        for chunk in response.streaming_content:
            if first_byte is None:
                first_byte = time.perf_counter() - started
                if not chunk.startswith("\ufeff".encode()):
                    raise RuntimeError("the CSV does not start with a BOM")
            rows += chunk.count(b"\r\n")
            size += len(chunk)
            chunks += 1
            rss_max = max(rss_max, _rss_mb())
    else:  # "naive": what the export would cost without streaming
        every_row = list(transaction_export_rows(user=user, filters=TransactionFilters()))
        document = b"".join(transaction_csv_chunks(every_row, zone=user_zone(user)))
        rss_max = max(rss_max, _rss_mb())
        first_byte = time.perf_counter() - started
        rows += document.count(b"\r\n")
        size = len(document)
        chunks = 1
    seconds = time.perf_counter() - started
    peak_after = _peak_mb()
    print(
        json.dumps(
            {
                "mode": mode,
                "query": query,
                "rows": rows,
                "bytes": size,
                "chunks": chunks,
                "seconds": seconds,
                "first_byte_seconds": first_byte,
                "rss_before_mb": rss_before,
                "rss_max_sampled_mb": rss_max,
                "peak_before_mb": peak_before,
                "peak_after_mb": peak_after,
                # The kernel's high-water mark: catches a peak between two samples.
                "peak_growth_mb": peak_after - rss_before,
                "sampled_growth_mb": rss_max - rss_before,
            }
        )
    )


FEED_QUERIES = (
    ("default (newest first)", ""),
    ("search=пятёрочка", "search=пятёрочка"),
    ("search, no match", "search=нет-такого"),
    ("merchant_name=пятерочка", "merchant_name=пятерочка"),
    ("ordering=-amount", "ordering=-amount"),
    ("amount_min=1000&amount_max=2000", "amount_min=1000&amount_max=2000"),
)


def _feed_latencies(user, requests: int) -> dict[str, dict]:
    """First-page latency of GET /api/transactions with the new filters (in process)."""
    from django.test import Client

    client = Client()
    headers = {"HTTP_AUTHORIZATION": f"Bearer {common.access_token(user)}"}
    latencies = {}
    for name, query in FEED_QUERIES:
        values = []
        for number in range(requests + 1):
            started = time.perf_counter()
            response = client.get(f"/api/transactions?{query}", **headers)
            elapsed = (time.perf_counter() - started) * 1000
            if response.status_code != 200:
                raise RuntimeError(f"{query}: HTTP {response.status_code}")
            if number:  # the first one warms up
                values.append(elapsed)
        latencies[name] = common.stats(values)
    return latencies


def _build_user(source: str, today):
    from banking.models import Transaction
    from users.models import User

    if source == "synthetic":
        # ~250,000 rows: 6 accounts × 10 years × ~11 a day (the dashboard benchmark's big user).
        user, _count = common.synthetic_user(
            EMAIL, accounts=6, days=3650, per_day=11.3, today=today
        )
        common.refresh_derived(user, today=today)
    else:
        with common.sandbox_server():
            common.sandbox_clock_freeze(common.bench_now())
            user = common.make_user(EMAIL, client_id=common.HEAVY_CLIENT)
            connections = common.connect_banks(user)
            for connection_row in connections:
                run = common.sync_now(connection_row.pk)
                if run.status != "succeeded":
                    raise RuntimeError(f"{connection_row.bank_code} sync {run.status}: {run.error}")
    user = User.objects.get(pk=user.pk)
    return user, Transaction.objects.filter(user=user).count()


def main(runs: int, source: str, reuse: bool) -> None:
    from banking.models import Transaction
    from users.models import User

    common.migrate()
    today = common.bench_now().date()
    user = User.objects.filter(email=EMAIL).first() if reuse else None
    started = time.perf_counter()
    if user is None:
        common.wipe()
        user, count = _build_user(source, today)
        common.vacuum_analyze()
        print(f"data: {count} transactions in {time.perf_counter() - started:.0f}s", flush=True)
    else:
        count = Transaction.objects.filter(user=user).count()
        print(f"data: reusing {count} transactions", flush=True)
    newest = Transaction.objects.filter(user=user).order_by("-booking_date").first().booking_date
    year_from = (newest - timedelta(days=365)).date().isoformat()

    results: dict[str, list[dict]] = {"all": [], "year": [], "naive": []}
    for number in range(runs):
        for name, query, mode in (
            ("all", "", "stream"),
            ("year", f"from={year_from}", "stream"),
            ("naive", "", "naive"),
        ):
            result = common.run_child(
                [__file__, "--child", str(user.pk), "--query", query, "--mode", mode],
                timeout=CHILD_TIMEOUT,
            )
            results[name].append(result)
        full = results["all"][-1]
        if full["rows"] != count:
            raise RuntimeError(f"the CSV has {full['rows']} rows, the user has {count}")
        print(
            f"run {number + 1}/{runs}: all {full['rows']} rows in {full['seconds']:.1f}s, "
            f"+{full['peak_growth_mb']:.1f} MB; year {results['year'][-1]['rows']} rows, "
            f"+{results['year'][-1]['peak_growth_mb']:.1f} MB; naive "
            f"+{results['naive'][-1]['peak_growth_mb']:.0f} MB",
            flush=True,
        )

    feed = _feed_latencies(user, requests=5)

    def stat(name: str, key: str) -> dict:
        return common.stats([result[key] for result in results[name]])

    growth = stat("all", "peak_growth_mb")
    sampled = stat("all", "sampled_growth_mb")
    year_growth = stat("year", "peak_growth_mb")
    naive_growth = stat("naive", "peak_growth_mb")
    seconds = stat("all", "seconds")
    rate = common.stats([r["rows"] / r["seconds"] for r in results["all"]])
    first_byte = stat("all", "first_byte_seconds")
    full = results["all"][-1]
    year_count = results["year"][-1]["rows"]
    lines = [
        f"user: {count} transactions ({source}); a year's slice (from={year_from}): {year_count}",
        f"CSV: {full['bytes'] / 1e6:.1f} MB in {full['chunks']} chunks "
        f"(1,000 rows each), {full['rows']} rows + header, BOM first",
        f"peak RSS growth (VmHWM − RSS before), full export: {common.fmt(growth, ' MB', 1)}",
        f"largest sampled RSS growth (after each chunk), full: {common.fmt(sampled, ' MB', 1)}",
        f"peak RSS growth, a year's slice: {common.fmt(year_growth, ' MB', 1)}",
        f"peak RSS growth, naive (a list, one string): {common.fmt(naive_growth, ' MB', 0)}",
        f"RSS before the export (warm child): {results['all'][-1]['rss_before_mb']:.0f} MB",
        f"full export time: {common.fmt(seconds, ' s', 2)}; first byte after "
        f"{common.fmt(first_byte, ' s', 3)}",
        f"rows per second: {common.fmt(rate, '', 0)}",
        "GET /api/transactions, first page, same user (in process):",
        *[f"  {name}: {common.fmt(value, ' ms', 1)}" for name, value in feed.items()],
    ]
    # The larger of the two readings: the kernel's mark may lag a sample by a few pages.
    worst_growth = max(growth["max"], sampled["max"])
    targets = [
        common.target(
            f"9. export of {count} rows: peak RSS growth MB (max)",
            worst_growth,
            at_most=RSS_GROWTH_TARGET_MB,
        ),
    ]
    common.report(
        "transactions_export",
        "9. CSV export of ~250k transactions: streamed in bounded memory",
        lines,
        targets,
        {
            "source": source,
            "transactions": count,
            "year_transactions": year_count,
            "peak_growth_mb": growth,
            "sampled_growth_mb": sampled,
            "year_peak_growth_mb": year_growth,
            "naive_peak_growth_mb": naive_growth,
            "seconds": seconds,
            "rows_per_second": rate,
            "first_byte_seconds": first_byte,
            "feed_ms": feed,
            "raw": results,
        },
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--source", choices=["sandbox", "synthetic"], default="sandbox")
    parser.add_argument("--reuse", action="store_true", help="keep the user of a previous run")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--query", default="", help=argparse.SUPPRESS)
    parser.add_argument("--mode", default="stream", help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.child:
        child(arguments.child, arguments.query, arguments.mode)
    else:
        main(arguments.runs, arguments.source, arguments.reuse)
