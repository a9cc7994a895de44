"""Benchmark 4: GET /api/dashboard for a user with ~1,000 transactions versus one with ~250,000
(SQL queries, median and p95 latency), and its throughput under concurrent load versus
GET /api/auth/me on the same gunicorn.

Data is written directly (bulk_create), then aggregates and a snapshot as after a sync. Latency is
measured in process (Django's test client, the full middleware and JWT stack), the two users
interleaved so noise hits both. Throughput: gunicorn (2 sync workers, one per core) on loopback,
`wrk -t2 -c8` for a bounded 10 s per round, rounds alternating between the two endpoints.

    .venv/bin/python bench/dashboard.py [--requests 60] [--rounds 3]
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench import common

WRK_SECONDS = 10
WRK_CONNECTIONS = 8
# Issue 25: the dashboard is served from its snapshot's ready-made JSON, so it costs close to the
# bare authenticated endpoint whatever the data size.
LATENCY_RATIO = 1.1
THROUGHPUT_RATIO = 0.8


def _latencies(client, token: str, path: str, count: int) -> list[float]:
    values = []
    for _ in range(count):
        started = time.perf_counter()
        response = client.get(path, HTTP_AUTHORIZATION=f"Bearer {token}")
        values.append((time.perf_counter() - started) * 1000)
        if response.status_code != 200:
            raise RuntimeError(f"{path}: HTTP {response.status_code} {response.content[:300]!r}")
    return values


def _query_count(client, token: str, path: str) -> int:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        response = client.get(path, HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 200
    return len(queries)


def _wrk(url: str, token: str) -> dict:
    completed = subprocess.run(
        [
            "wrk",
            "-t2",
            f"-c{WRK_CONNECTIONS}",
            f"-d{WRK_SECONDS}s",
            "--timeout",
            "5s",
            "-H",
            f"Authorization: Bearer {token}",
            url,
        ],
        capture_output=True,
        text=True,
        timeout=WRK_SECONDS + 30,
        check=True,
    )
    output = completed.stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    if bad:
        raise RuntimeError(f"{url}: {bad.group(1)} non-2xx answers under load\n{output}")
    return {"requests_per_second": rate}


def main(requests: int, rounds: int) -> None:
    from django.test import Client

    if shutil.which("wrk") is None:
        raise SystemExit("wrk is missing: apt-get install -y wrk (bin/bench does it)")
    common.migrate()
    common.wipe()
    today = common.bench_now().date()
    started = time.perf_counter()
    small, small_count = common.synthetic_user(
        "small@bench.local", accounts=1, days=365, per_day=2.6, today=today
    )
    big, big_count = common.synthetic_user(
        "big@bench.local", accounts=6, days=3650, per_day=11.3, today=today
    )
    for user in (small, big):
        common.refresh_derived(user, today=today)
    common.vacuum_analyze()
    print(
        f"data: {small_count} and {big_count} transactions in {time.perf_counter() - started:.0f}s",
        flush=True,
    )

    client = Client()
    tokens = {"small": common.access_token(small), "big": common.access_token(big)}
    for name in tokens:
        _latencies(client, tokens[name], "/api/dashboard", 5)  # warm-up
    queries = {
        name: _query_count(client, token, "/api/dashboard") for name, token in tokens.items()
    }
    latencies = {"small": [], "big": []}
    for _ in range(requests // 10):
        for name, token in tokens.items():
            latencies[name].extend(_latencies(client, token, "/api/dashboard", 10))
    small_stats, big_stats = common.stats(latencies["small"]), common.stats(latencies["big"])
    p95 = {name: common.percentile(values, 0.95) for name, values in latencies.items()}
    latency_ratio = big_stats["median"] / small_stats["median"]

    port = common.free_port()
    gunicorn = [
        os.path.join(os.path.dirname(common.PYTHON), "gunicorn"),
        "fintrack.wsgi",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        "2",
        "--log-level",
        "warning",
    ]
    base = f"http://127.0.0.1:{port}"
    throughput = {"dashboard": [], "me": []}
    with common.background("gunicorn", gunicorn, ready_url=f"{base}/api/health"):
        for path in ("/api/dashboard", "/api/auth/me"):  # warm both workers up
            subprocess.run(
                ["wrk", "-t1", "-c2", "-d2s", "-H", f"Authorization: Bearer {tokens['big']}",
                 base + path],
                capture_output=True,
                timeout=30,
                check=True,
            )  # fmt: skip
        for _ in range(rounds):
            throughput["dashboard"].append(
                _wrk(f"{base}/api/dashboard", tokens["big"])["requests_per_second"]
            )
            throughput["me"].append(
                _wrk(f"{base}/api/auth/me", tokens["big"])["requests_per_second"]
            )
    ratios = [d / m for d, m in zip(throughput["dashboard"], throughput["me"], strict=True)]
    throughput_ratio = common.stats(ratios)
    dashboard_rps, me_rps = common.stats(throughput["dashboard"]), common.stats(throughput["me"])
    lines = [
        f"users: {small_count} vs {big_count} transactions (aggregates and snapshot stored)",
        f"SQL queries per GET /api/dashboard: {queries['small']} vs {queries['big']}",
        f"latency, ~1k:   median {common.fmt(small_stats, ' ms', 2)}, p95 {p95['small']:.2f} ms",
        f"latency, ~250k: median {common.fmt(big_stats, ' ms', 2)}, p95 {p95['big']:.2f} ms",
        f"latency ratio (medians, 250k / 1k): {latency_ratio:.3f}; "
        f"p95 ratio {p95['big'] / p95['small']:.3f}",
        f"gunicorn 2 workers, wrk -t2 -c{WRK_CONNECTIONS} {WRK_SECONDS}s a round, {rounds} rounds:",
        f"  GET /api/dashboard (250k user): {common.fmt(dashboard_rps, ' req/s', 0)}",
        f"  GET /api/auth/me   (same user): {common.fmt(me_rps, ' req/s', 0)}",
        f"  dashboard / me:                 {common.fmt(throughput_ratio, '×', 3)}",
    ]
    targets = [
        common.target(
            "4. dashboard queries, 250k minus 1k", queries["big"] - queries["small"], at_most=0
        ),
        common.target(
            "4. dashboard latency ratio 250k / 1k (medians)", latency_ratio, at_most=LATENCY_RATIO
        ),
        common.target(
            "4. dashboard / auth/me throughput (median)",
            throughput_ratio["median"],
            at_least=THROUGHPUT_RATIO,
        ),
    ]
    common.report(
        "dashboard",
        "4. Dashboard: ~1,000 vs ~250,000 transactions; throughput vs /api/auth/me",
        lines,
        targets,
        {
            "transactions": [small_count, big_count],
            "queries": queries,
            "latency_ms": {"small": small_stats, "big": big_stats, "p95": p95},
            "latency_ratio": latency_ratio,
            "throughput": {"dashboard": dashboard_rps, "me": me_rps, "ratio": throughput_ratio},
        },
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=60)
    parser.add_argument("--rounds", type=int, default=3)
    arguments = parser.parse_args()
    main(arguments.requests, arguments.rounds)
