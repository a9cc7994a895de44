"""`raw_api_logs` partitioned by day of `created_at` on PostgreSQL (issue 22); SQLite unchanged.

The table is rebuilt as a range-partitioned one with the same columns (compression and checks
included), indexes and foreign key, under the same names, so Django's later migrations find
what they expect. Its primary key becomes (id, created_at): a partitioned table's unique keys
must hold the partition key. Django still sees `id` as the primary key; ids come from the same
sequence (continued, owned by the new table), so they stay unique on their own. Nothing
references raw_api_logs by foreign key (a RawApiLog's `body` points the other way, without a
constraint).

Partitions: one per UTC day that holds rows, today and the next two days, and a default one for
anything else (rows never fail to insert); beat then keeps partitions ahead and retention drops
whole days (audit.partitions). The existing rows are copied in this migration's transaction: on a
big table, run it in a quiet hour (or purge old logs first).
"""

from datetime import UTC, datetime, time, timedelta

from django.db import migrations

DAYS_AHEAD = 2


def _bound(day) -> str:
    return f"'{datetime.combine(day, time(0), tzinfo=UTC).isoformat()}'"


def _definitions(cursor, table: str):
    """(index name, CREATE INDEX) of every non-primary index, (name, definition) of every FK."""
    cursor.execute(
        "SELECT c.relname, pg_get_indexdef(i.indexrelid) FROM pg_index i "
        "JOIN pg_class c ON c.oid = i.indexrelid "
        "WHERE i.indrelid = to_regclass(%s) AND NOT i.indisprimary ORDER BY c.relname",
        [table],
    )
    indexes = cursor.fetchall()
    cursor.execute(
        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE conrelid = to_regclass(%s) AND contype = 'f' ORDER BY conname",
        [table],
    )
    return indexes, cursor.fetchall()


def _next_id(cursor, table: str) -> int:
    cursor.execute("SELECT pg_get_serial_sequence(%s, 'id')", [table])
    (sequence,) = cursor.fetchone()
    next_id = 1
    if sequence:
        cursor.execute(f"SELECT last_value, is_called FROM {sequence}")
        last_value, is_called = cursor.fetchone()
        next_id = last_value + 1 if is_called else last_value
    cursor.execute(f'SELECT COALESCE(MAX(id), 0) + 1 FROM "{table}"')
    return max(next_id, cursor.fetchone()[0])


def _is_partitioned(cursor) -> bool:
    cursor.execute(
        "SELECT EXISTS (SELECT 1 FROM pg_partitioned_table WHERE partrelid = "
        "to_regclass('raw_api_logs'))"
    )
    return cursor.fetchone()[0]


def _recreate(cursor, indexes, foreign_keys) -> None:
    for _name, definition in indexes:
        cursor.execute(definition)
    for name, definition in foreign_keys:
        cursor.execute(f'ALTER TABLE raw_api_logs ADD CONSTRAINT "{name}" {definition}')


def partition(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        # Deferred foreign-key checks pending on the table would make PostgreSQL refuse the DDL.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        if _is_partitioned(cursor):
            return
        indexes, foreign_keys = _definitions(cursor, "raw_api_logs")
        next_id = _next_id(cursor, "raw_api_logs")
        cursor.execute("ALTER TABLE raw_api_logs RENAME TO raw_api_logs_unpartitioned")
        for name, _definition in indexes:
            cursor.execute(f'DROP INDEX "{name}"')
        for name, _definition in foreign_keys:
            cursor.execute(f'ALTER TABLE raw_api_logs_unpartitioned DROP CONSTRAINT "{name}"')
        cursor.execute(
            "ALTER TABLE raw_api_logs_unpartitioned "
            "RENAME CONSTRAINT raw_api_logs_pkey TO raw_api_logs_unpartitioned_pkey"
        )
        # The identity's sequence goes with it; a serial's sequence is dropped by name.
        cursor.execute("ALTER TABLE raw_api_logs_unpartitioned ALTER COLUMN id DROP IDENTITY IF EXISTS")
        cursor.execute("ALTER TABLE raw_api_logs_unpartitioned ALTER COLUMN id DROP DEFAULT")
        cursor.execute("DROP SEQUENCE IF EXISTS raw_api_logs_id_seq")
        cursor.execute(f"CREATE SEQUENCE raw_api_logs_id_seq AS bigint START WITH {next_id}")
        cursor.execute(
            "CREATE TABLE raw_api_logs (LIKE raw_api_logs_unpartitioned INCLUDING DEFAULTS "
            "INCLUDING CONSTRAINTS INCLUDING STORAGE INCLUDING COMPRESSION) "
            "PARTITION BY RANGE (created_at)"
        )
        cursor.execute(
            "ALTER TABLE raw_api_logs ALTER COLUMN id SET DEFAULT nextval('raw_api_logs_id_seq')"
        )
        cursor.execute("ALTER SEQUENCE raw_api_logs_id_seq OWNED BY raw_api_logs.id")
        cursor.execute(
            "ALTER TABLE raw_api_logs ADD CONSTRAINT raw_api_logs_pkey PRIMARY KEY (id, created_at)"
        )
        cursor.execute("CREATE TABLE raw_api_logs_default PARTITION OF raw_api_logs DEFAULT")
        cursor.execute(
            "SELECT DISTINCT (created_at AT TIME ZONE 'UTC')::date FROM raw_api_logs_unpartitioned"
        )
        today = datetime.now(UTC).date()
        days = {day for (day,) in cursor.fetchall()}
        days.update(today + timedelta(days=offset) for offset in range(DAYS_AHEAD + 1))
        for day in sorted(days):
            cursor.execute(
                f'CREATE TABLE "raw_api_logs_p{day:%Y%m%d}" PARTITION OF raw_api_logs '
                f"FOR VALUES FROM ({_bound(day)}) TO ({_bound(day + timedelta(days=1))})"
            )
        cursor.execute("INSERT INTO raw_api_logs SELECT * FROM raw_api_logs_unpartitioned")
        cursor.execute("DROP TABLE raw_api_logs_unpartitioned")
        _recreate(cursor, indexes, foreign_keys)
        cursor.execute("SET CONSTRAINTS ALL DEFERRED")


def unpartition(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        # Deferred foreign-key checks pending on the table would make PostgreSQL refuse the DDL.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        if not _is_partitioned(cursor):
            return
        indexes, foreign_keys = _definitions(cursor, "raw_api_logs")
        next_id = _next_id(cursor, "raw_api_logs")
        cursor.execute("ALTER TABLE raw_api_logs RENAME TO raw_api_logs_partitioned")
        for name, _definition in indexes:
            cursor.execute(f'DROP INDEX "{name}"')
        for name, _definition in foreign_keys:
            cursor.execute(f'ALTER TABLE raw_api_logs_partitioned DROP CONSTRAINT "{name}"')
        cursor.execute(
            "ALTER TABLE raw_api_logs_partitioned "
            "RENAME CONSTRAINT raw_api_logs_pkey TO raw_api_logs_partitioned_pkey"
        )
        cursor.execute("ALTER SEQUENCE raw_api_logs_id_seq RENAME TO raw_api_logs_partitioned_id_seq")
        cursor.execute(
            "CREATE TABLE raw_api_logs (LIKE raw_api_logs_partitioned INCLUDING DEFAULTS "
            "INCLUDING CONSTRAINTS INCLUDING STORAGE INCLUDING COMPRESSION)"
        )
        cursor.execute("ALTER TABLE raw_api_logs ALTER COLUMN id DROP DEFAULT")
        cursor.execute("INSERT INTO raw_api_logs SELECT * FROM raw_api_logs_partitioned")
        cursor.execute("DROP TABLE raw_api_logs_partitioned")
        cursor.execute(
            "ALTER TABLE raw_api_logs ALTER COLUMN id "
            f"ADD GENERATED BY DEFAULT AS IDENTITY (START WITH {next_id})"
        )
        cursor.execute("ALTER TABLE raw_api_logs ADD CONSTRAINT raw_api_logs_pkey PRIMARY KEY (id)")
        _recreate(cursor, indexes, foreign_keys)
        cursor.execute("SET CONSTRAINTS ALL DEFERRED")


class Migration(migrations.Migration):
    dependencies = [("audit", "0008_data_lifecycle_schedules")]

    operations = [migrations.RunPython(partition, unpartition)]
