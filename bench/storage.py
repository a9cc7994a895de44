"""Benchmark: what raw logs cost to store and to purge (issue 22).

1. Bytes stored by a no-op incremental sync of the heavy client (three banks, nothing new at the
   sandbox) before and after response bodies are shared: "before" counts each response's body in
   its own row (as stored until issue 22), "after" what the sync really added (metadata rows and
   the bodies not stored yet). Both against the full sync's raw-log bytes; target after ≤ 2%
   (issue 25, as the no-op sync's time against the full one's).
   Bytes are the rows' stored size (each column's pg_column_size, compressed as stored, + the
   tuple header); the physical growth of the tables, indexes included, is shown beside them.
2. Purging one day of 1,000,000 raw-log rows (shaped like the heavy client's no-op sync rows):
   dropping the day's partition vs the batched DELETE loop (5,000 rows per DELETE) on the same
   rows.
3. Table and index sizes after 30 simulated days of hourly syncs for 100 users: rows inserted in
   bulk (no 72,000 syncs run), each user-hour a copy of a typical client's real no-op sync
   (team260-2: its endpoints, headers, statuses, its shared bodies), and NEW_BODIES_PER_DAY new
   bodies per user and day (pages and balances that changed: copies of its real ones, so they
   compress as real ones do), in day partitions as production has them. Beside it: what the
   same rows would have weighed with every body in its row.

    .venv/bin/python bench/storage.py [--ci]

`--ci` is a small size (~1 min): the heavy client over 6 months, 50,000 rows purged, 10 users
over 3 days. The simulated days and the purged day are far in the past (their partitions are
dropped at the end); the bench database is wiped at the start, as every bench does.
"""

import argparse
import os
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

CI_SIZE = {"heavy_months": "6", "purge_rows": 50_000, "users": 10, "days": 3}
FULL_SIZE = {"purge_rows": 1_000_000, "users": 100, "days": 30}

if __name__ == "__main__":
    _parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    _parser.add_argument("--ci", action="store_true", help="small size (~1 minute)")
    ARGS = _parser.parse_args()
    if ARGS.ci:
        # Before bench.common reads it: the heavy client's history, in months.
        os.environ.setdefault("BENCH_HEAVY_MONTHS", CI_SIZE["heavy_months"])

from bench import common  # noqa: E402

TYPICAL_CLIENT = "team260-2"
NEW_BODIES_PER_DAY = 10  # per user: ~5 transactions a day, each changing a page and a balance
PURGE_BATCH = 5000
MB = 1024 * 1024


def _user(email: str, client_id: str):
    """A user who is `client_id` at every bank, both consents authorised, as a connect leaves."""
    from banking.services.connections import connection_client_id_set, connection_get_or_create
    from consents import services as consent_services
    from consents.models import ConsentKind, ConsentStatus
    from users.models import User

    user = User.objects.create_user(email=email, password="bench-password-123")
    for bank_code in common.BANK_CODES:
        connection = connection_get_or_create(user=user, bank_code=bank_code)
        connection_client_id_set(connection=connection, client_id=client_id, is_demo=True)
        for kind in (ConsentKind.ACCOUNTS, ConsentKind.PRODUCTS):
            consent = consent_services.consent_ensure(user=user, bank_code=bank_code, kind=kind)
            if consent.status == ConsentStatus.PENDING:
                consent = consent_services.consent_approve_demo(consent=consent)
            if consent.status != ConsentStatus.AUTHORIZED:
                raise RuntimeError(f"{bank_code} {kind} consent is {consent.status}")
    return user


def _sync_all(user) -> list[str]:
    """One sync of each of the user's connections, in turn; their correlation ids."""
    from banking.models import BankConnection

    runs = [
        common.sync_now(pk)
        for pk in BankConnection.objects.filter(user=user)
        .order_by("pk")
        .values_list("pk", flat=True)
    ]
    failed = [run.error for run in runs if run.status != "succeeded"]
    if failed:
        raise RuntimeError(f"sync failed: {failed}")
    return [str(run.correlation_id) for run in runs]


def _row_bytes(alias: str, model) -> str:
    """SQL: a row's stored bytes, each column as stored (compressed, or out of line) + header."""
    columns = [field.column for field in model._meta.concrete_fields]
    return " + ".join(f"coalesce(pg_column_size({alias}.{c}), 0)" for c in columns) + " + 24"


def _one(sql: str, params=None):
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(sql, params or [])
        return cursor.fetchone()


def _execute(sql: str, params=None) -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(sql, params or [])
        return cursor.rowcount


def _physical_bytes() -> int:
    """Heap, TOAST and indexes of raw_api_logs (every partition) and raw_api_bodies."""
    (total,) = _one(
        "SELECT coalesce(sum(pg_total_relation_size(inhrelid)), 0) "
        "+ pg_total_relation_size('raw_api_bodies') FROM pg_inherits "
        "WHERE inhparent = 'raw_api_logs'::regclass"
    )
    return int(total)


def _max_body_id() -> int:
    return int(_one("SELECT coalesce(max(id), 0) FROM raw_api_bodies")[0])


def _sync_bytes(correlation_ids: list[str], *, bodies_after: int, bodies_until: int) -> dict:
    """What these runs stored: their log rows, the bodies they added, and what their bodies
    would have weighed in their rows (each reference counted: storage before issue 22)."""
    from audit.models import RawApiBody, RawApiLog

    rows, log_bytes, referenced = _one(
        f"SELECT count(*), coalesce(sum({_row_bytes('l', RawApiLog)}), 0), "
        "coalesce(sum(pg_column_size(b.payload)), 0) FROM raw_api_logs l "
        "LEFT JOIN raw_api_bodies b ON b.id = l.body_id WHERE l.correlation_id = ANY(%s)",
        [correlation_ids],
    )
    new_bodies, body_bytes = _one(
        f"SELECT count(*), coalesce(sum({_row_bytes('b', RawApiBody)}), 0) "
        "FROM raw_api_bodies b WHERE b.id > %s AND b.id <= %s",
        [bodies_after, bodies_until],
    )
    return {
        "rows": int(rows),
        "log_bytes": int(log_bytes),
        "new_bodies": int(new_bodies),
        "new_body_bytes": int(body_bytes),
        "after": int(log_bytes) + int(body_bytes),
        "before": int(log_bytes) + int(referenced),
    }


def _measured_sync(user) -> dict:
    bodies_before, physical_before = _max_body_id(), _physical_bytes()
    started = time.perf_counter()
    correlation_ids = _sync_all(user)
    seconds = time.perf_counter() - started
    figures = _sync_bytes(correlation_ids, bodies_after=bodies_before, bodies_until=_max_body_id())
    figures.update(
        seconds=seconds,
        physical_growth=_physical_bytes() - physical_before,
        correlation_ids=correlation_ids,
    )
    return figures


# --- 2. Purge one day: partition drop vs DELETE loop -----------------------------------------

_LOG_COPY_COLUMNS = (
    "user_id, bank_code, endpoint, method, direction, status_code, duration_ms, headers, "
    "payload, body_id, error, correlation_id"
)


def _fill_day(day, *, rows: int, correlation_ids: list[str]) -> None:
    """`rows` raw-log rows spread over `day`, copies of the given runs' rows in turn (their
    endpoints, headers, bodies), each with its own exchange id and time."""
    from audit.partitions import day_start

    _execute(
        f"INSERT INTO raw_api_logs ({_LOG_COPY_COLUMNS}, exchange_id, created_at) "
        f"SELECT {_LOG_COPY_COLUMNS}, md5('purge' || g::text)::uuid, "
        "%s::timestamptz + (g * (86399.0 / %s)) * interval '1 second' "
        f"FROM (SELECT row_number() OVER (ORDER BY id) - 1 AS n, {_LOG_COPY_COLUMNS} "
        "FROM raw_api_logs WHERE correlation_id = ANY(%s)) AS t "
        "JOIN generate_series(0, %s - 1) AS g "
        "ON t.n = g %% (SELECT count(*) FROM raw_api_logs WHERE correlation_id = ANY(%s))",
        [day_start(day), rows, correlation_ids, rows, correlation_ids],
    )


def _vacuum(table: str) -> None:
    _execute(f'VACUUM ANALYZE "{table}"')


def purge_bench(*, rows: int, correlation_ids: list[str], today) -> dict:
    from audit.partitions import (
        day_start,
        partition_name,
        raw_log_partition_create,
        raw_log_partitions_drop_before,
    )
    from audit.services import raw_logs_delete_older

    day = today - timedelta(days=200)
    raw_log_partition_create(day=day)
    table = partition_name(day)
    fill_seconds, _ = common.timed(
        lambda: _fill_day(day, rows=rows, correlation_ids=correlation_ids)
    )
    _vacuum(table)
    (table_mb,) = _one("SELECT pg_total_relation_size(%s) / 1048576.0", [table])
    delete_seconds, deleted = common.timed(
        lambda: raw_logs_delete_older(
            before=day_start(day + timedelta(days=1)), batch_size=PURGE_BATCH
        )
    )
    if deleted != rows:
        raise RuntimeError(f"the delete loop removed {deleted} of {rows} rows")
    _fill_day(day, rows=rows, correlation_ids=correlation_ids)
    _execute(f'ANALYZE "{table}"')  # the drop reads no row: statistics only (its row count)
    drop_seconds, dropped = common.timed(
        lambda: raw_log_partitions_drop_before(day=day + timedelta(days=1))
    )
    if table not in dropped.dropped:
        raise RuntimeError(f"{table} was not dropped: {dropped}")
    print(
        f"purge: {rows:,} rows ({float(table_mb):.0f} MB with indexes, filled in "
        f"{fill_seconds:.1f} s): DELETE loop {delete_seconds:.1f} s, partition drop "
        f"{drop_seconds * 1000:.1f} ms",
        flush=True,
    )
    return {
        "rows": rows,
        "day_mb": float(table_mb),
        "delete_seconds": delete_seconds,
        "drop_seconds": drop_seconds,
        "delete_rows_per_second": rows / delete_seconds,
        "statements": -(-rows // PURGE_BATCH),
    }


# --- 3. 30 simulated days of hourly syncs for 100 users ---------------------------------------


def _simulated_users(count: int) -> list[int]:
    from users.models import User

    users = User.objects.bulk_create(
        [User(email=f"sim{n}@bench.local", password="!") for n in range(count)]
    )
    return [user.pk for user in users]


def simulate(*, users: int, days: int, template_ids: list[str], today) -> dict:
    """Insert `days` × 24 hourly copies of the template sync per user, day partition by day
    partition, with the bodies they share and NEW_BODIES_PER_DAY new ones a day each."""
    from audit.models import RawApiBody, RawApiLog
    from audit.partitions import day_start, raw_log_partition_create

    first_day = today - timedelta(days=400)
    user_ids = _simulated_users(users)
    # The template sync's distinct bodies, and which of them change (pages and balances).
    (template_bodies,) = _one(
        "SELECT count(DISTINCT body_id) FROM raw_api_logs WHERE correlation_id = ANY(%s)",
        [template_ids],
    )
    started = time.perf_counter()
    # Each user's own copy of the template's bodies (bodies are per user): the shared ones.
    _execute(
        "INSERT INTO raw_api_bodies (digest, user_id, payload, size_bytes, first_exchange_id, "
        "first_seen_at, last_seen_at) "
        "SELECT encode(sha256(convert_to(u::text || ':' || b.id::text, 'UTF8')), 'hex'), u, "
        "b.payload, b.size_bytes, md5(u::text || b.id::text)::uuid, %s, %s "
        "FROM raw_api_bodies b JOIN (SELECT DISTINCT body_id FROM raw_api_logs "
        "WHERE correlation_id = ANY(%s)) t ON t.body_id = b.id, unnest(%s::bigint[]) AS u",
        [day_start(first_day), day_start(first_day + timedelta(days=days)), template_ids, user_ids],
    )
    # The bodies that changed: copies of the template's page and balance bodies, so each
    # compresses as a real one does.
    changing = (
        "SELECT b.id, b.payload, b.size_bytes, row_number() OVER (ORDER BY b.id) - 1 AS n "
        "FROM raw_api_bodies b WHERE b.id IN (SELECT body_id FROM raw_api_logs "
        "WHERE correlation_id = ANY(%s) AND (endpoint LIKE '%%/transactions%%' "
        "OR endpoint LIKE '%%/balances%%'))"
    )
    new_bodies = _execute(
        "INSERT INTO raw_api_bodies (digest, user_id, payload, size_bytes, first_exchange_id, "
        "first_seen_at, last_seen_at) "
        "SELECT encode(sha256(convert_to(u::text || ':' || d::text || ':' || k::text, "
        "'UTF8')), 'hex'), u, c.payload, c.size_bytes, md5(u::text || d::text || k::text)::uuid, "
        "%s::timestamptz + d * interval '1 day', %s::timestamptz + d * interval '1 day' "
        f"FROM ({changing}) c, unnest(%s::bigint[]) AS u, generate_series(0, %s - 1) AS d, "
        "generate_series(0, %s - 1) AS k "
        f"WHERE c.n = k %% (SELECT count(*) FROM ({changing}) cc)",
        [
            day_start(first_day),
            day_start(first_day),
            template_ids,
            user_ids,
            days,
            NEW_BODIES_PER_DAY,
            template_ids,
        ],
    )
    bodies_seconds = time.perf_counter() - started
    # The metadata rows, one day partition at a time; each user-hour a copy of the template
    # rows, pointing at the user's copy of each body.
    rows = 0
    started = time.perf_counter()
    for offset in range(days):
        day = first_day + timedelta(days=offset)
        raw_log_partition_create(day=day)
        rows += _execute(
            f"INSERT INTO raw_api_logs ({_LOG_COPY_COLUMNS}, exchange_id, created_at) "
            "SELECT u, t.bank_code, t.endpoint, t.method, t.direction, t.status_code, "
            "t.duration_ms, t.headers, t.payload, ub.id, t.error, "
            "md5(u::text || ':' || h::text)::uuid::text, "
            "md5(u::text || ':' || h::text || ':' || t.pair::text)::uuid, "
            "%s::timestamptz + h * interval '1 hour' + t.offset_ms * interval '1 millisecond' "
            "FROM (SELECT l.*, (row_number() OVER (ORDER BY l.id) - 1) / 2 AS pair, "
            "(extract(epoch FROM l.created_at - min(l.created_at) OVER ()) * 1000)::float8 "
            "AS offset_ms "
            "FROM raw_api_logs l WHERE l.correlation_id = ANY(%s)) t "
            "CROSS JOIN unnest(%s::bigint[]) AS u CROSS JOIN generate_series(0, 23) AS h "
            "LEFT JOIN raw_api_bodies ub ON ub.user_id = u AND t.body_id IS NOT NULL "
            "AND ub.digest = encode(sha256(convert_to(u::text || ':' || t.body_id::text, "
            "'UTF8')), 'hex')",
            [day_start(day), template_ids, user_ids],
        )
        if offset % 10 == 9 or offset == days - 1:
            print(f"  simulated {offset + 1}/{days} days: {rows:,} rows", flush=True)
    rows_seconds = time.perf_counter() - started
    _execute("ANALYZE raw_api_logs")
    _execute("ANALYZE raw_api_bodies")
    sizes = _sizes(first_day=first_day, days=days)
    # Without sharing: every response row with its body in it (the bodies' stored size).
    (inline_bytes,) = _one(
        "SELECT coalesce(sum(pg_column_size(b.payload)), 0) FROM raw_api_logs l "
        "JOIN raw_api_bodies b ON b.id = l.body_id WHERE l.created_at >= %s AND l.created_at < %s",
        [day_start(first_day), day_start(first_day + timedelta(days=days))],
    )
    del RawApiBody, RawApiLog
    return {
        "users": users,
        "days": days,
        "rows": rows,
        "rows_per_user_hour": rows / (users * days * 24),
        "template_bodies": int(template_bodies),
        "new_bodies": new_bodies,
        "bodies_seconds": bodies_seconds,
        "rows_seconds": rows_seconds,
        "inline_body_bytes": int(inline_bytes),
        **sizes,
    }


def _sizes(*, first_day, days: int) -> dict:
    """Heap, TOAST and each index of the simulated partitions; the bodies table's."""
    from audit.partitions import partition_name

    names = [partition_name(first_day + timedelta(days=n)) for n in range(days)]
    heap, toast = _one(
        "SELECT coalesce(sum(pg_relation_size(c.oid)), 0), "
        "coalesce(sum(pg_total_relation_size(c.reltoastrelid)), 0) FROM pg_class c "
        "WHERE c.relname = ANY(%s)",
        [names],
    )
    from django.db import connection

    with connection.cursor() as cursor:
        # Each partition's index is attached to the parent's: grouped under the parent's name.
        cursor.execute(
            "SELECT parent.relname, sum(pg_relation_size(child.oid)) FROM pg_inherits i "
            "JOIN pg_class child ON child.oid = i.inhrelid "
            "JOIN pg_class parent ON parent.oid = i.inhparent "
            "JOIN pg_index x ON x.indexrelid = child.oid "
            "JOIN pg_class t ON t.oid = x.indrelid "
            "WHERE t.relname = ANY(%s) GROUP BY parent.relname ORDER BY 2 DESC",
            [names],
        )
        indexes = {name: int(size) for name, size in cursor.fetchall()}
    bodies_heap, bodies_toast, bodies_indexes, bodies_rows = _one(
        "SELECT pg_relation_size('raw_api_bodies'), "
        "pg_total_relation_size((SELECT reltoastrelid FROM pg_class "
        "WHERE relname = 'raw_api_bodies')), pg_indexes_size('raw_api_bodies'), "
        "(SELECT count(*) FROM raw_api_bodies)"
    )
    return {
        "logs_heap": int(heap),
        "logs_toast": int(toast),
        "logs_indexes": indexes,
        "bodies_heap": int(bodies_heap),
        "bodies_toast": int(bodies_toast),
        "bodies_indexes": int(bodies_indexes),
        "bodies_rows": int(bodies_rows),
    }


def _cleanup(today) -> None:
    """The simulated and purged days' partitions dropped (the bench database keeps today's)."""
    from audit.partitions import raw_log_partitions_drop_before

    raw_log_partitions_drop_before(day=today - timedelta(days=7))
    common.wipe()


def _mb(value: float) -> str:
    return f"{value / MB:,.1f} MB"


def main(*, ci: bool) -> None:
    size = CI_SIZE if ci else FULL_SIZE
    common.migrate()
    common.wipe()
    now = common.bench_now()
    today = now.astimezone(UTC).date()
    with common.sandbox_server():
        common.sandbox_clock_freeze(now)
        heavy = _user("heavy@bench.local", common.HEAVY_CLIENT)
        full = _measured_sync(heavy)
        print(
            f"heavy full sync: {full['rows']:,} log rows, {_mb(full['after'])} stored "
            f"({full['seconds']:.0f} s)",
            flush=True,
        )
        noop = _measured_sync(heavy)
        print(
            f"heavy no-op sync: {noop['rows']} rows, {noop['after']:,} B stored "
            f"({noop['before']:,} B before sharing bodies)",
            flush=True,
        )
        typical = _user("typical@bench.local", TYPICAL_CLIENT)
        _sync_all(typical)
        typical_noop = _measured_sync(typical)
    purge = purge_bench(
        rows=size["purge_rows"], correlation_ids=noop["correlation_ids"], today=today
    )
    simulated = simulate(
        users=size["users"],
        days=size["days"],
        template_ids=typical_noop["correlation_ids"],
        today=today,
    )
    _cleanup(today)

    after_share = noop["after"] / full["after"]
    before_share = noop["before"] / full["after"]
    drop_share = purge["drop_seconds"] / purge["delete_seconds"]
    logs_total = (
        simulated["logs_heap"] + simulated["logs_toast"] + sum(simulated["logs_indexes"].values())
    )
    bodies_total = (
        simulated["bodies_heap"] + simulated["bodies_toast"] + simulated["bodies_indexes"]
    )
    without_sharing = (
        simulated["logs_heap"]
        + simulated["logs_toast"]
        + simulated["inline_body_bytes"]
        + sum(simulated["logs_indexes"].values())
    )
    index_lines = [
        f"    {name}: {_mb(size_bytes)}" for name, size_bytes in simulated["logs_indexes"].items()
    ]
    lines = [
        f"heavy client {common.HEAVY_CLIENT} ({common.HEAVY_MONTHS} months), 3 banks",
        f"full sync: {full['rows']:,} log rows, {full['new_bodies']:,} bodies; "
        f"{_mb(full['after'])} stored (physical growth {_mb(full['physical_growth'])})",
        f"no-op sync: {noop['rows']} log rows, {noop['new_bodies']} new bodies",
        f"  before sharing bodies: {noop['before']:,} B = {before_share:.2%} of the full sync",
        f"  after:                 {noop['after']:,} B = {after_share:.2%} of the full sync "
        f"(physical growth {noop['physical_growth']:,} B)",
        f"purge one day of {purge['rows']:,} rows ({purge['day_mb']:.0f} MB): DELETE loop "
        f"{purge['delete_seconds']:.1f} s ({purge['statements']} DELETEs, "
        f"{purge['delete_rows_per_second']:,.0f} rows/s) vs partition drop "
        f"{purge['drop_seconds'] * 1000:.1f} ms ({drop_share:.2%} of the loop's time)",
        f"{simulated['days']} days × 24 hourly syncs × {simulated['users']} users "
        f"(as {TYPICAL_CLIENT}'s no-op sync, {simulated['rows_per_user_hour']:.0f} rows each; "
        f"{NEW_BODIES_PER_DAY} new bodies a day per user): {simulated['rows']:,} rows, "
        f"{simulated['bodies_rows']:,} bodies (inserted in {simulated['rows_seconds']:.0f} s "
        f"+ {simulated['bodies_seconds']:.0f} s)",
        f"  raw_api_logs: heap {_mb(simulated['logs_heap'])}, TOAST "
        f"{_mb(simulated['logs_toast'])}, indexes "
        f"{_mb(sum(simulated['logs_indexes'].values()))}; total {_mb(logs_total)}",
        *index_lines,
        f"  raw_api_bodies: heap {_mb(simulated['bodies_heap'])}, TOAST "
        f"{_mb(simulated['bodies_toast'])}, indexes {_mb(simulated['bodies_indexes'])}; total "
        f"{_mb(bodies_total)}",
        f"  together {_mb(logs_total + bodies_total)}; with every body in its row "
        f"~{_mb(without_sharing)} ({(logs_total + bodies_total) / without_sharing:.1%})",
    ]
    targets = [
        common.target(
            "storage: no-op sync bytes / full sync (shared bodies)", after_share, at_most=0.02
        ),
        # A drop is catalogue work, whatever the day's size: seconds, not a ratio.
        common.target(
            "storage: drop one day's partition, seconds", purge["drop_seconds"], at_most=1.0
        ),
    ]
    common.report(
        "storage",
        "Raw-log storage: no-op sync bytes, purge by partition, 30 days of 100 users",
        lines,
        targets,
        {
            "size": "ci" if ci else "full",
            "full_sync": {k: v for k, v in full.items() if k != "correlation_ids"},
            "noop_sync": {k: v for k, v in noop.items() if k != "correlation_ids"},
            "typical_noop_sync": {k: v for k, v in typical_noop.items() if k != "correlation_ids"},
            "purge": purge,
            "simulated": simulated,
            "simulated_total_bytes": logs_total + bodies_total,
            "simulated_without_sharing_bytes": without_sharing,
            "run_id": str(uuid.uuid4()),
            "finished": datetime.now(UTC).isoformat(),
        },
    )


if __name__ == "__main__":
    main(ci=ARGS.ci)
