"""Day partitions of `raw_api_logs` on PostgreSQL: created ahead, dropped whole by retention.

Migration 0009 makes `raw_api_logs` a table partitioned by range of `created_at`, one partition
per UTC day (`raw_api_logs_p20261201`), and a default partition (`raw_api_logs_default`) for any
row no day partition holds: an insert never fails for want of a partition. Beat creates the next
days' partitions ahead (`raw_log_partitions_ensure`, hourly); creating one whose day already has
rows in the default partition moves them in, in the same transaction. Retention drops a whole
day (`raw_log_partitions_drop_before`): a metadata change instead of deleting millions of rows.

Locks: attaching a partition takes SHARE UPDATE EXCLUSIVE on the parent (inserts go on);
dropping one takes ACCESS EXCLUSIVE for an instant, so it waits at most LOCK_TIMEOUT for the
queries running on the table (and is retried on the next run) rather than queueing every insert
behind it. Elsewhere (SQLite, or before the migration) every function here is a no-op.
"""

import logging
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from django.db import DatabaseError, connections, transaction

logger = logging.getLogger(__name__)

PARENT = "raw_api_logs"
DEFAULT_PARTITION = "raw_api_logs_default"
LOCK_TIMEOUT = "5s"
_DAY_PARTITION = re.compile(r"^raw_api_logs_p(\d{8})$")


def partition_name(day: date) -> str:
    return f"raw_api_logs_p{day:%Y%m%d}"


def day_start(day: date) -> datetime:
    """The first instant of a UTC day: a partition's lower bound."""
    return datetime.combine(day, time(0), tzinfo=UTC)


def _bound(day: date) -> str:
    # A literal, never a parameter: DDL takes none (and a server-side binding would refuse it).
    return f"'{day_start(day).isoformat()}'"


def raw_logs_partitioned(*, using: str = "default") -> bool:
    """Whether `raw_api_logs` is a partitioned table here (PostgreSQL after migration 0009)."""
    connection = connections[using]
    if connection.vendor != "postgresql":
        return False
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT EXISTS (SELECT 1 FROM pg_partitioned_table p JOIN pg_class c "
            "ON c.oid = p.partrelid WHERE c.oid = to_regclass(%s))",
            [PARENT],
        )
        return bool(cursor.fetchone()[0])


def raw_log_day_partitions(*, using: str = "default") -> dict[date, str]:
    """The day partitions attached to `raw_api_logs`, by day (the default partition is not one)."""
    connection = connections[using]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = to_regclass(%s)",
            [PARENT],
        )
        names = [name for (name,) in cursor.fetchall()]
    days = {}
    for name in names:
        match = _DAY_PARTITION.match(name)
        if match:
            days[datetime.strptime(match.group(1), "%Y%m%d").date()] = name
    return days


def raw_log_partition_create(*, day: date, using: str = "default") -> bool:
    """Attach the partition of `day`, moving that day's rows out of the default partition;
    False when it exists already (or another process created it meanwhile)."""
    connection = connections[using]
    name = partition_name(day)
    lower, upper = day_start(day), day_start(day + timedelta(days=1))
    try:
        with transaction.atomic(using=using), connection.cursor() as cursor:
            _ddl_prepare(cursor)
            cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [name])
            if cursor.fetchone()[0]:
                return False
            cursor.execute(
                f'CREATE TABLE "{name}" (LIKE "{PARENT}" INCLUDING DEFAULTS INCLUDING '
                "CONSTRAINTS INCLUDING STORAGE INCLUDING COMPRESSION)"
            )
            # Rows of that day that arrived before its partition did: moved in, or the attach
            # below would refuse (the default partition must hold no row of the new range).
            # Table names are ours (constants, and a name made from a date), never input.
            moved_sql = (
                f'WITH moved AS (DELETE FROM "{DEFAULT_PARTITION}" WHERE created_at >= %s '  # noqa: S608
                f'AND created_at < %s RETURNING *) INSERT INTO "{name}" SELECT * FROM moved'
            )
            cursor.execute(moved_sql, [lower, upper])
            moved = cursor.rowcount
            cursor.execute(
                f'ALTER TABLE "{PARENT}" ATTACH PARTITION "{name}" '
                f"FOR VALUES FROM ({_bound(day)}) TO ({_bound(day + timedelta(days=1))})"
            )
            cursor.execute("SET CONSTRAINTS ALL DEFERRED")
    except DatabaseError:
        if _exists(name, using=using):
            return False  # a concurrent run created it first
        raise
    if moved:
        logger.info("raw api logs: partition %s created with %d rows from the default", name, moved)
    return True


def _ddl_prepare(cursor) -> None:
    """Before DDL on the table: wait at most LOCK_TIMEOUT for its lock; and check now the
    deferred foreign keys of rows this transaction wrote (a caller's transaction: PostgreSQL
    refuses DDL on a table with such checks pending). Deferred again after the DDL."""
    cursor.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
    cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")


def _exists(name: str, *, using: str) -> bool:
    with connections[using].cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [name])
        return bool(cursor.fetchone()[0])


def raw_log_partitions_ensure(
    *, days_ahead: int, today: date | None = None, using: str = "default"
) -> list[str]:
    """Partitions for today and the next `days_ahead` days (UTC); the names created."""
    if not raw_logs_partitioned(using=using):
        return []
    today = today or datetime.now(UTC).date()
    existing = raw_log_day_partitions(using=using)
    created = []
    for offset in range(max(0, days_ahead) + 1):
        day = today + timedelta(days=offset)
        if day not in existing and raw_log_partition_create(day=day, using=using):
            created.append(partition_name(day))
    return created


@dataclass
class PartitionDrop:
    """What dropping old partitions did: the partitions dropped, their rows, those left."""

    dropped: list[str] = field(default_factory=list)
    rows: int = 0
    skipped: list[str] = field(default_factory=list)  # locked past LOCK_TIMEOUT: next run


def raw_log_partitions_drop_before(*, day: date, using: str = "default") -> PartitionDrop:
    """Drop every day partition of a day before `day` (whole days only), oldest first."""
    result = PartitionDrop()
    if not raw_logs_partitioned(using=using):
        return result
    connection = connections[using]
    for partition_day, name in sorted(raw_log_day_partitions(using=using).items()):
        if partition_day >= day:
            break
        rows = _row_count(name, using=using)
        try:
            with transaction.atomic(using=using), connection.cursor() as cursor:
                _ddl_prepare(cursor)
                cursor.execute(f'DROP TABLE "{name}"')
                cursor.execute("SET CONSTRAINTS ALL DEFERRED")
        except DatabaseError as exc:
            logger.warning("raw api logs: partition %s not dropped (%s); next run", name, exc)
            result.skipped.append(name)
            continue
        result.dropped.append(name)
        result.rows += rows
    if result.dropped:
        logger.info(
            "raw api logs: dropped %d partition(s), ~%d rows: %s",
            len(result.dropped),
            result.rows,
            ", ".join(result.dropped),
        )
    return result


def _row_count(name: str, *, using: str) -> int:
    """A partition's rows: the planner's count once the table was analysed (a day partition
    holds millions: no scan to report them), else counted."""
    with connections[using].cursor() as cursor:
        cursor.execute("SELECT reltuples FROM pg_class WHERE oid = to_regclass(%s)", [name])
        row = cursor.fetchone()
        if row is not None and row[0] is not None and row[0] >= 0:
            return int(row[0])
        cursor.execute(f'SELECT count(*) FROM "{name}"')  # noqa: S608 (a partition's name)
        return int(cursor.fetchone()[0])
