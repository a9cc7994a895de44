"""Benchmark 4: GET /api/dashboard for a user with ~1,000 transactions versus one with ~250,000
(SQL queries, median and p95 latency), and its throughput under concurrent load versus
GET /api/auth/me on the same gunicorn.

The users (`--source sandbox`, the default) are sandbox clients synced over real HTTP from
`run_sandbox` (clock frozen), as a user gets them: the ~250k user is the heavy client team260-1
(`SANDBOX_HEAVY_CLIENTS`, as in benchmarks 1–2: 19 accounts at the three banks, live-style rows
with tied booking times), the ~1k user the ordinary client team260-30 (`--small-client`; archetype
10, own transfers, at the three banks, ~1,100 rows); each connected at every bank the client has,
both consents (accounts, products) authorised, one sync per bank (the progressive first sync).
Then the analytics snapshot as the worker computes it (`analytics.recompute_user`: marker cleared,
`analytics_recompute`) and `VACUUM ANALYZE`. `--source synthetic` writes the old data instead
(bulk_create: one VBank connection, no consents; monthly salary, rent and a subscription plus
random card spending), then aggregates and a snapshot. `--reuse` keeps the users of a previous
run of the same source (the snapshot is computed again).

Latency is measured in process (Django's test client, the full middleware and JWT stack), the
two users interleaved so noise hits both. Throughput: gunicorn (2 sync workers, one per core) on
loopback, `wrk -t2 -c8` for a bounded 10 s per round, rounds alternating between the two
endpoints, with the ~250k user's token.

    .venv/bin/python bench/dashboard.py [--requests 60] [--rounds 3]
        [--source sandbox|synthetic] [--small-client team260-30] [--reuse]
"""

import argparse
import gc
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
# An ordinary sandbox client with ~1,000 rows at all three banks, like the heavy client.
SMALL_CLIENT = "team260-30"
ROLES = ("small", "big")


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


def _email(role: str, source: str) -> str:
    return f"{role}-{source}@bench.local"


def _client_banks(client_id: str, now) -> tuple[str, ...]:
    """The banks where the sandbox has accounts for `client_id` (read from its generator)."""
    from sandbox import data

    key = data.key_for(client_id, now.date())
    return tuple(code for code in common.BANK_CODES if data.bank_layout(key, code).accounts)


def _sandbox_users(small_client: str) -> dict:
    """Both users synced from the sandbox over HTTP, every bank the client has, both consents;
    {role: (user, sync seconds)}."""
    users = {}
    with common.sandbox_server():
        now = common.bench_now()
        common.sandbox_clock_freeze(now)
        for role, client_id in (("small", small_client), ("big", common.HEAVY_CLIENT)):
            banks = _client_banks(client_id, now)
            user = common.make_user(_email(role, "sandbox"), client_id=client_id, bank_codes=banks)
            connections = common.connect_banks(user, banks)
            started = time.perf_counter()
            for connection_row in connections:
                run = common.sync_now(connection_row.pk)
                if run.status != "succeeded":
                    raise RuntimeError(
                        f"{client_id} {connection_row.bank_code} sync {run.status}: {run.error}"
                    )
            users[role] = (user, time.perf_counter() - started)
            print(f"synced {client_id} ({', '.join(banks)}) in {users[role][1]:.0f}s", flush=True)
    return users


def _synthetic_users(today) -> dict:
    """The old data: one VBank connection each, no consents, rows written with bulk_create."""
    small, _count = common.synthetic_user(
        _email("small", "synthetic"), accounts=1, days=365, per_day=2.6, today=today
    )
    big, _count = common.synthetic_user(
        _email("big", "synthetic"), accounts=6, days=3650, per_day=11.3, today=today
    )
    for user in (small, big):
        common.refresh_derived(user, today=today)
    return {"small": (small, None), "big": (big, None)}


def _snapshot_as_the_worker(user, today) -> None:
    """What analytics.recompute_user does: the marker cleared (the sync set it), a snapshot."""
    from analytics import services

    services.recompute_marker_clear(user_id=user.pk)
    services.analytics_recompute(user=user, today=today)


def _describe(user, sync_seconds) -> dict:
    """Transactions, accounts, and every connection's client id and consents, for the report."""
    from banking.models import Account, BankConnection, Transaction
    from consents.models import Consent

    consents: dict[str, list[str]] = {}
    for bank_code, kind, status in (
        Consent.objects.filter(user=user)
        .order_by("bank_code", "kind")
        .values_list("bank_code", "kind", "status")
    ):
        consents.setdefault(bank_code, []).append(f"{kind} {status}")
    connections = BankConnection.objects.filter(user=user).order_by("bank_code")
    return {
        "email": user.email,
        "client_id": next((c.client_id for c in connections if c.client_id), ""),
        "transactions": Transaction.objects.filter(user=user).count(),
        "accounts": Account.objects.filter(user=user).count(),
        "banks": [c.bank_code for c in connections],
        "consents": consents,
        "sync_seconds": sync_seconds,
    }


def _user_line(role: str, info: dict) -> str:
    banks = "; ".join(
        f"{bank} ({', '.join(info['consents'].get(bank, [])) or 'no consents'})"
        for bank in info["banks"]
    )
    who = f" = {info['client_id']}" if info["client_id"] else ""
    synced = f", synced in {info['sync_seconds']:.0f}s" if info["sync_seconds"] else ""
    size = "~1k" if role == "small" else "~250k"
    return (
        f"{size} user{who}: {info['transactions']:,} transactions, {info['accounts']} accounts"
        f"{synced}; banks: {banks}"
    )


def main(requests: int, rounds: int, source: str, small_client: str, reuse: bool) -> None:
    from django.test import Client

    from users.models import User

    if shutil.which("wrk") is None:
        raise SystemExit("wrk is missing: apt-get install -y wrk (bin/bench does it)")
    common.migrate()
    today = common.bench_now().date()
    started = time.perf_counter()
    found = {role: User.objects.filter(email=_email(role, source)).first() for role in ROLES}
    if reuse and all(found.values()):
        built = {role: (user, None) for role, user in found.items()}
        print(f"data: reusing the {source} users of a previous run", flush=True)
    else:
        common.wipe()
        built = _sandbox_users(small_client) if source == "sandbox" else _synthetic_users(today)
    if source == "sandbox" or reuse:
        for user, _seconds in built.values():
            _snapshot_as_the_worker(user, today)
    common.vacuum_analyze()
    users = {role: user for role, (user, _seconds) in built.items()}
    info = {role: _describe(user, built[role][1]) for role, user in users.items()}
    counts = {role: info[role]["transactions"] for role in ROLES}
    print(
        f"data ({source}): {counts['small']} and {counts['big']} transactions, "
        f"ready in {time.perf_counter() - started:.0f}s",
        flush=True,
    )

    gc.collect()
    client = Client()
    tokens = {role: common.access_token(user) for role, user in users.items()}
    answers = {}
    for name in tokens:
        _latencies(client, tokens[name], "/api/dashboard", 5)  # warm-up
        body = client.get("/api/dashboard", HTTP_AUTHORIZATION=f"Bearer {tokens[name]}").json()
        answers[name] = {key: body[key] for key in ("state", "outdated", "recomputing")}
        if body["state"] != "ready" or body["outdated"]:
            raise RuntimeError(f"{name} user's dashboard is not ready and current: {answers[name]}")
        answers[name]["accounts"] = len(body["accounts"])
        answers[name]["bytes"] = len(
            client.get("/api/dashboard", HTTP_AUTHORIZATION=f"Bearer {tokens[name]}").content
        )
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
    # What else runs on the machine (a process an earlier benchmark left behind would take cores
    # from this load test): the cores busy while nothing of it runs yet.
    idle_load, busiest = common.machine_load_while_idle()
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
        f"source: {source}"
        + (" (synced from the sandbox over HTTP, clock frozen)" if source == "sandbox" else ""),
        *[_user_line(role, info[role]) for role in ROLES],
        f"dashboard answer: {answers['small']['bytes']:,} vs {answers['big']['bytes']:,} bytes "
        f"({answers['small']['accounts']} vs {answers['big']['accounts']} accounts), "
        f"state ready, not outdated",
        f"SQL queries per GET /api/dashboard: {queries['small']} vs {queries['big']}",
        f"latency, ~1k:   median {common.fmt(small_stats, ' ms', 2)}, p95 {p95['small']:.2f} ms",
        f"latency, ~250k: median {common.fmt(big_stats, ' ms', 2)}, p95 {p95['big']:.2f} ms",
        f"latency ratio (medians, 250k / 1k): {latency_ratio:.3f}; "
        f"p95 ratio {p95['big'] / p95['small']:.3f}",
        f"gunicorn 2 workers, wrk -t2 -c{WRK_CONNECTIONS} {WRK_SECONDS}s a round, {rounds} rounds:",
        f"  GET /api/dashboard (250k user): {common.fmt(dashboard_rps, ' req/s', 0)}",
        f"  GET /api/auth/me   (same user): {common.fmt(me_rps, ' req/s', 0)}",
        f"  dashboard / me:                 {common.fmt(throughput_ratio, '×', 3)}",
        f"machine before the load test: {idle_load:.2f} cores busy; busiest: "
        + (", ".join(f"{name} {cores:.2f}" for name, cores in busiest) or "none"),
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
            "source": source,
            "transactions": [counts["small"], counts["big"]],
            "users": info,
            "answers": answers,
            "queries": queries,
            "latency_ms": {"small": small_stats, "big": big_stats, "p95": p95},
            "latency_ratio": latency_ratio,
            "throughput": {"dashboard": dashboard_rps, "me": me_rps, "ratio": throughput_ratio},
            "machine_before": {"cores_busy": idle_load, "busiest": busiest},
        },
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=60)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--source", choices=["sandbox", "synthetic"], default="sandbox")
    parser.add_argument(
        "--small-client", default=SMALL_CLIENT, help="the ~1k sandbox client (--source sandbox)"
    )
    parser.add_argument("--reuse", action="store_true", help="keep the users of a previous run")
    arguments = parser.parse_args()
    main(
        arguments.requests,
        arguments.rounds,
        arguments.source,
        arguments.small_client,
        arguments.reuse,
    )
