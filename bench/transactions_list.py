"""Benchmark 6: GET /api/transactions, the first page versus a page 1,000 pages deep.

The deep page's cursor is built for its position (the last row of page 1,000, by the feed's order
booking_date DESC, id DESC), exactly what following next_cursor 1,000 times would give; the
script checks the page starts at row 50,001. The synthetic rows get live-style booking times first
(bench/live_ties.py: most of a day's card rows tied on one instant, SPEC §17), so the cursor's
position falls among rows of one booking time as it does on live data. Target (issue 25): ≤ 1.1.

    .venv/bin/python bench/transactions_list.py [--requests 40]
"""

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench import common
from bench.live_ties import tie_booking_times

PAGE_SIZE = 50
DEPTH = 1000
TARGET = 1.1


def _get(client, token, path) -> tuple[float, dict]:
    started = time.perf_counter()
    response = client.get(path, HTTP_AUTHORIZATION=f"Bearer {token}")
    elapsed = (time.perf_counter() - started) * 1000
    if response.status_code != 200:
        raise RuntimeError(f"{path}: HTTP {response.status_code} {response.content[:300]!r}")
    return elapsed, response.json()


def main(requests: int) -> None:
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from banking.filters import cursor_encode
    from banking.models import Transaction

    common.migrate()
    common.wipe()
    today = common.bench_now().date()
    started = time.perf_counter()
    user, count = common.synthetic_user(
        "feed@bench.local", accounts=4, days=3650, per_day=6.5, today=today
    )
    ties = tie_booking_times(user)
    common.refresh_derived(user, today=today)
    common.vacuum_analyze()
    seconds = time.perf_counter() - started
    print(f"data: {count} transactions ({ties['tied_rows']} tied) in {seconds:.0f}s", flush=True)

    ordered = Transaction.objects.filter(user=user).order_by("-booking_date", "-id")
    last_of_page = ordered.values("booking_date", "id")[DEPTH * PAGE_SIZE - 1]
    first_of_next = ordered.values_list("id", flat=True)[DEPTH * PAGE_SIZE]
    cursor = cursor_encode(booking_date=last_of_page["booking_date"], row_id=last_of_page["id"])
    cursor_ties = ordered.filter(booking_date=last_of_page["booking_date"]).count()
    token = common.access_token(user)
    client = Client()
    first_path = f"/api/transactions?page_size={PAGE_SIZE}"
    deep_path = f"{first_path}&cursor={cursor}"
    _elapsed, body = _get(client, token, deep_path)
    if body["results"][0]["id"] != first_of_next or len(body["results"]) != PAGE_SIZE:
        raise RuntimeError("the deep cursor does not land on row 50,001")
    for path in (first_path, deep_path):  # warm-up
        for _ in range(3):
            _get(client, token, path)
    queries = {}
    for name, path in (("first", first_path), ("deep", deep_path)):
        with CaptureQueriesContext(connection) as captured:
            _get(client, token, path)
        queries[name] = len(captured)
    with connection.cursor() as db_cursor:
        db_cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + _feed_sql(user, cursor))
        plan = "\n".join(row[0] for row in db_cursor.fetchall())
    latencies = {"first": [], "deep": []}
    for _ in range(requests):
        for name, path in (("first", first_path), ("deep", deep_path)):
            latencies[name].append(_get(client, token, path)[0])
    first, deep = common.stats(latencies["first"]), common.stats(latencies["deep"])
    ratio = deep["median"] / first["median"]
    lines = [
        f"user with {count} transactions; page size {PAGE_SIZE}; deep page = page {DEPTH + 1}",
        f"live-style ties: {ties['tied_rows']} card rows at their day's batch instant (largest "
        f"group {ties['largest_group']}); the deep cursor's booking time is shared by "
        f"{cursor_ties} row(s)",
        f"SQL queries: first {queries['first']}, deep {queries['deep']}",
        f"first page: {common.fmt(first, ' ms', 2)}",
        f"deep page:  {common.fmt(deep, ' ms', 2)}",
        f"ratio (medians): {ratio:.3f}",
        "deep page's feed query plan:",
        *[f"  {line}" for line in plan.splitlines()[:12]],
    ]
    targets = [common.target("6. page 1,001 / page 1 (medians)", ratio, at_most=TARGET)]
    common.report(
        "transactions_list",
        "6. Transactions list: first page vs 1,000 pages deep",
        lines,
        targets,
        {"transactions": count, "ties": ties, "queries": queries, "first_ms": first,
         "deep_ms": deep, "ratio": ratio, "plan": plan},
    )  # fmt: skip


def _feed_sql(user, cursor: str) -> str:
    """The SQL the feed runs for the deep page, parameters inlined (for EXPLAIN)."""
    from django.db import connection

    from banking.filters import (
        TransactionFilters,
        cursor_decode,
        transactions_after,
        transactions_filter,
    )
    from banking.models import Transaction

    queryset = transactions_filter(Transaction.objects.filter(user=user), TransactionFilters())
    queryset = transactions_after(queryset, cursor_decode(cursor)).select_related("category")
    sql, params = queryset.defer("raw_json")[: PAGE_SIZE + 1].query.sql_with_params()
    return connection.ops.compose_sql(sql, params)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=40)
    main(parser.parse_args().requests)
