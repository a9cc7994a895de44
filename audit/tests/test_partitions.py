"""raw_api_logs partitioned by day on PostgreSQL: partitions made ahead, rows never refused, old
days dropped whole; SQLite keeps one table and the batched delete."""

import threading
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone

from audit import partitions
from audit.models import Direction, RawApiLog
from audit.services import raw_logs_purge_detailed
from audit.tests.factories import make_raw_log

postgres_only = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="raw_api_logs is partitioned on PostgreSQL only"
)


def at(day: str, hour: int = 12) -> datetime:
    return datetime.fromisoformat(day).replace(hour=hour, tzinfo=UTC)


def stored_in(log: RawApiLog) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT tableoid::regclass::text FROM raw_api_logs WHERE id = %s", [log.pk])
        return cursor.fetchone()[0]


def day_partitions() -> set[str]:
    return set(partitions.raw_log_day_partitions().values())


@pytest.mark.django_db
def test_elsewhere_than_postgresql_nothing_is_partitioned():
    if connection.vendor == "postgresql":
        pytest.skip("the SQLite side")
    assert partitions.raw_logs_partitioned() is False
    assert partitions.raw_log_partitions_ensure(days_ahead=3) == []
    assert partitions.raw_log_partitions_drop_before(day=timezone.now().date()).dropped == []


@postgres_only
@pytest.mark.django_db
def test_the_migration_partitions_the_table_by_day_with_a_default():
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_get_partkeydef(to_regclass('raw_api_logs')), "
            "pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid = to_regclass('raw_api_logs') AND contype = 'p'"
        )
        assert cursor.fetchone() == ("RANGE (created_at)", "PRIMARY KEY (id, created_at)")
        cursor.execute("SELECT to_regclass('raw_api_logs_default') IS NOT NULL")
        assert cursor.fetchone()[0] is True
    assert partitions.raw_logs_partitioned() is True
    today = datetime.now(UTC).date()
    assert {partitions.partition_name(today + timedelta(days=n)) for n in range(3)} <= (
        day_partitions()
    )


@postgres_only
@pytest.mark.django_db
def test_django_reads_and_writes_the_partitioned_table_as_before(user):
    today = make_raw_log(user=user, payload={"a": 1})
    old = make_raw_log(user=user, created_at=at("2001-01-01"))

    assert stored_in(today) == partitions.partition_name(today.created_at.astimezone(UTC).date())
    assert stored_in(old) == partitions.DEFAULT_PARTITION  # no day partition: never refused
    assert RawApiLog.objects.get(pk=old.pk).created_at == old.created_at
    assert list(RawApiLog.objects.values_list("pk", flat=True)) == [today.pk, old.pk]
    assert old.pk > today.pk  # one sequence for every partition

    user.delete()  # the foreign key still sets the user to null, in every partition
    assert set(RawApiLog.objects.values_list("user_id", flat=True)) == {None}


@postgres_only
@pytest.mark.django_db
def test_partitions_are_made_ahead_once(settings):
    today = datetime(2031, 3, 30, tzinfo=UTC).date()
    expected = [partitions.partition_name(today + timedelta(days=n)) for n in range(4)]

    assert partitions.raw_log_partitions_ensure(days_ahead=3, today=today) == expected
    assert partitions.raw_log_partitions_ensure(days_ahead=3, today=today) == []
    assert set(expected) <= day_partitions()
    log = make_raw_log(created_at=at("2031-04-02", 23))
    assert stored_in(log) == "raw_api_logs_p20310402"


@postgres_only
@pytest.mark.django_db
def test_a_late_partition_takes_its_days_rows_out_of_the_default():
    early = [make_raw_log(created_at=at("2030-06-01", hour)) for hour in (0, 13, 23)]
    neighbour = make_raw_log(created_at=at("2030-06-02", 0))
    assert {stored_in(log) for log in [*early, neighbour]} == {partitions.DEFAULT_PARTITION}

    assert partitions.raw_log_partition_create(day=at("2030-06-01").date()) is True

    assert {stored_in(log) for log in early} == {"raw_api_logs_p20300601"}
    assert stored_in(neighbour) == partitions.DEFAULT_PARTITION
    assert set(
        RawApiLog.objects.filter(pk__in=[log.pk for log in early]).values_list(
            "created_at", flat=True
        )
    ) == {log.created_at for log in early}
    assert partitions.raw_log_partition_create(day=at("2030-06-01").date()) is False


@postgres_only
@pytest.mark.django_db
def test_retention_drops_whole_old_days_and_deletes_the_defaults_old_rows():
    now = timezone.now()
    cutoff_day = (now - timedelta(days=90)).astimezone(UTC).date()
    days = [cutoff_day - timedelta(days=n) for n in (3, 2, 1, 0)]
    for day in days:
        partitions.raw_log_partition_create(day=day)

    def on(day, hour):
        return datetime.combine(day, datetime.min.time(), tzinfo=UTC) + timedelta(hours=hour)

    dropped_rows = [
        make_raw_log(created_at=on(days[0], 8)),
        make_raw_log(created_at=on(days[1], 8)),
        make_raw_log(created_at=on(days[2], 23)),
    ]
    # The cutoff day stays whole, its rows older than the cutoff too: dropped tomorrow.
    kept = make_raw_log(created_at=on(days[3], 0))
    stray_old = make_raw_log(created_at=at("2001-01-01"))  # in the default partition
    stray_new = make_raw_log(created_at=now - timedelta(days=10))

    result = raw_logs_purge_detailed(older_than_days=90, batch_size=2, now=now)

    assert result.partitions_dropped == [partitions.partition_name(day) for day in days[:3]]
    assert result.rows_in_partitions == 3
    assert result.rows_deleted == 1  # the stray one, by DELETE
    assert partitions.partition_name(days[3]) in day_partitions()
    remaining = set(RawApiLog.objects.values_list("pk", flat=True))
    assert remaining == {kept.pk, stray_new.pk}
    assert not remaining & {log.pk for log in [*dropped_rows, stray_old]}


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_a_drop_waits_for_a_busy_table_only_briefly_and_is_retried_next_time(monkeypatch):
    """A long query holds the table: the drop gives up after lock_timeout instead of queueing
    every insert behind it, and the next purge drops the partition."""
    monkeypatch.setattr(partitions, "LOCK_TIMEOUT", "300ms")
    old_day = at("2001-01-01").date()  # before every other partition
    partitions.raw_log_partition_create(day=old_day)
    make_raw_log(created_at=at("2001-01-01"))
    holding, release = threading.Event(), threading.Event()

    def long_reader():
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute("SELECT count(*) FROM raw_api_logs")
                holding.set()
                release.wait(timeout=20)
        finally:
            connection.close()

    reader = threading.Thread(target=long_reader)
    reader.start()
    try:
        assert holding.wait(timeout=10)
        started = datetime.now(UTC)
        busy = partitions.raw_log_partitions_drop_before(day=old_day + timedelta(days=1))
        waited = (datetime.now(UTC) - started).total_seconds()
    finally:
        release.set()
        reader.join(timeout=20)

    try:
        assert busy.dropped == [] and busy.skipped == ["raw_api_logs_p20010101"]
        assert waited < 5
        retried = partitions.raw_log_partitions_drop_before(day=old_day + timedelta(days=1))
        assert retried.dropped == ["raw_api_logs_p20010101"] and retried.rows == 1
    finally:
        _drop_partitions("raw_api_logs_p20010101")


def _drop_partitions(*names: str) -> None:
    """Partitions a transactional test committed: gone again (a flush keeps tables)."""
    with connection.cursor() as cursor:
        for name in names:
            cursor.execute(f'DROP TABLE IF EXISTS "{name}"')


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_logs_keep_being_written_while_partitions_are_made_ahead():
    """Attaching a partition does not block the writers of the others (SHARE UPDATE EXCLUSIVE)."""
    from audit.capture import RawLogBuffer
    from banking.clients import BankExchange

    stop, errors, written = threading.Event(), [], [0]

    def writer():
        try:
            while not stop.is_set():
                buffer = RawLogBuffer()
                buffer.hook(
                    BankExchange(
                        bank_code="vbank",
                        method="GET",
                        path="/accounts",
                        query={},
                        request_headers={},
                        request_json=None,
                        status_code=200,
                        response_text='{"data": []}',
                        response_json={"data": []},
                        response_is_json=True,
                        started_at=timezone.now(),
                    )
                )
                buffer.flush()
                written[0] += 1
        except Exception as exc:
            errors.append(exc)
        finally:
            connection.close()

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        created = partitions.raw_log_partitions_ensure(days_ahead=9, today=at("2032-01-01").date())
    finally:
        stop.set()
        thread.join(timeout=20)

    try:
        assert errors == []
        assert len(created) == 10
        # A flush that failed would have logged it and written nothing: every one was written.
        assert RawApiLog.objects.filter(direction=Direction.RESPONSE).count() == written[0] > 0
    finally:
        _drop_partitions(*created)


@postgres_only
@pytest.mark.django_db
def test_the_migration_round_trip_keeps_rows_ids_and_names():
    """0009 backwards (one plain table) and forwards again, with rows: all of them kept, ids
    continued, indexes under their names."""
    from importlib import import_module

    migration = import_module("audit.migrations.0009_raw_logs_partitioned")
    rows = [make_raw_log(created_at=at(day)) for day in ("2031-01-05", "2031-01-06")]

    def indexes():
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT indexname FROM pg_indexes WHERE tablename = 'raw_api_logs' ORDER BY 1"
            )
            return [name for (name,) in cursor.fetchall()]

    before = indexes()
    editor = connection.schema_editor(atomic=False)
    migration.unpartition(None, editor)
    assert partitions.raw_logs_partitioned() is False
    assert indexes() == before
    plain = make_raw_log(created_at=at("2031-01-07"))
    migration.partition(None, editor)

    assert partitions.raw_logs_partitioned() is True
    assert indexes() == before
    assert {"raw_api_logs_p20310105", "raw_api_logs_p20310106", "raw_api_logs_p20310107"} <= (
        day_partitions()
    )
    assert sorted(RawApiLog.objects.values_list("pk", flat=True)) == sorted(
        [*(row.pk for row in rows), plain.pk]
    )
    after = make_raw_log(exchange_id=uuid.uuid4())
    assert after.pk > plain.pk > rows[-1].pk
