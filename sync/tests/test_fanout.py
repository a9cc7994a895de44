"""The periodic fan-out (issue 21): due connections read by keyset pages, one chunk task per page
at its slot of the interval, each chunk's runs created in bulk and sent spread over its span;
queues per kind of work."""

from datetime import timedelta

import pytest
from django.db import connection as db_connection
from django.db.models import Count
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from banking.models import BankConnection, ConnectionStatus
from consents.models import Consent, ConsentKind, ConsentStatus
from fintrack.celery import app
from sync import fanout, tasks
from sync.models import SyncKind, SyncRun, SyncStatus, SyncTrigger

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fanout_settings(settings):
    settings.SYNC_PERIODIC_MINUTES = 60
    settings.SYNC_MIN_INTERVAL_MINUTES = 30
    settings.SYNC_FANOUT_SPREAD_SHARE = 0.9
    settings.SYNC_FANOUT_CHUNK_SIZE = 500


def _connection(make_user, bank_code="vbank", *, synced_minutes_ago=None, **fields):
    user = make_user()
    connection = BankConnection.objects.create(
        user=user,
        bank_code=bank_code,
        status=fields.pop("status", ConnectionStatus.READY),
        client_id=f"team260-{user.pk}",
        last_sync_at=(
            timezone.now() - timedelta(minutes=synced_minutes_ago)
            if synced_minutes_ago is not None
            else None
        ),
    )
    Consent.objects.create(
        user=user,
        bank_code=bank_code,
        kind=ConsentKind.ACCOUNTS,
        bank_consent_id=f"consent-{user.pk}",
        status=fields.pop("consent_status", ConsentStatus.AUTHORIZED),
    )
    return connection


@pytest.fixture
def sent_tasks(monkeypatch):
    """apply_async of the fan-out's tasks, recorded instead of sent: (name, args, options)."""
    calls: list[tuple[str, list, dict]] = []

    def recorder(task):
        def apply_async(args=None, **options):
            options.pop("producer", None)
            calls.append((task.name, list(args or []), options))

        return apply_async

    for task in (tasks.fanout_chunk, tasks.connection_sync):
        monkeypatch.setattr(task, "apply_async", recorder(task))
    # Sent as to a broker (with countdowns), not run inline. The Django-namespaced key is the
    # one the app reads (config_from_object with namespace="CELERY").
    app.conf.CELERY_TASK_ALWAYS_EAGER = False
    yield calls
    app.conf.CELERY_TASK_ALWAYS_EAGER = True


def test_candidates_are_read_by_keyset_pages_never_offset(make_user):
    connections = [_connection(make_user, synced_minutes_ago=90) for _ in range(5)]
    now = timezone.now()

    with CaptureQueriesContext(db_connection) as queries:
        ids = fanout.fanout_candidate_ids(now=now, horizon=now + timedelta(minutes=54), page_size=2)

    assert ids == [c.pk for c in connections]
    selects = [q["sql"] for q in queries.captured_queries]
    assert len(selects) == 3  # pages of 2, 2 and 1
    assert not any("OFFSET" in sql.upper() for sql in selects)
    assert f'"bank_connections"."id" > {connections[1].pk}' in selects[1]
    assert f'"bank_connections"."id" > {connections[3].pk}' in selects[2]


def test_the_plan_spreads_chunks_over_the_interval_each_spanning_at_most_a_minute(
    make_user, settings
):
    settings.SYNC_FANOUT_CHUNK_SIZE = 4
    connections = [_connection(make_user, synced_minutes_ago=90) for _ in range(10)]
    spread = 60 * 60 * 0.9

    plan = fanout.fanout_plan()

    assert [pk for chunk in plan for pk in chunk.connection_ids] == [c.pk for c in connections]
    # 10 connections over 54 minutes: one every 324 s, so a chunk of one (≤ 60 s each).
    assert [len(chunk.connection_ids) for chunk in plan] == [1] * 10
    assert [chunk.countdown for chunk in plan] == pytest.approx(
        [i * spread / 10 for i in range(10)]
    )
    assert all(chunk.span_seconds == fanout.CHUNK_SPAN_MAX_SECONDS for chunk in plan)


def test_a_large_fanout_is_cut_in_chunks_of_the_configured_size(make_user, settings):
    settings.SYNC_FANOUT_CHUNK_SIZE = 3
    settings.SYNC_PERIODIC_MINUTES = 1  # 7 connections over 54 s: ~7.7 s each
    connections = [_connection(make_user, synced_minutes_ago=90) for _ in range(7)]

    plan = fanout.fanout_plan()

    assert [chunk.connection_ids for chunk in plan] == [
        [c.pk for c in connections[0:3]],
        [c.pk for c in connections[3:6]],
        [connections[6].pk],
    ]
    per_connection = 54 / 7
    assert [chunk.countdown for chunk in plan] == pytest.approx(
        [0, 3 * per_connection, 6 * per_connection]
    )
    assert [chunk.span_seconds for chunk in plan] == pytest.approx(
        [3 * per_connection, 3 * per_connection, per_connection]
    )


def test_candidates_are_those_due_by_the_end_of_the_spread(make_user):
    long_ago = _connection(make_user, synced_minutes_ago=90)
    never = _connection(make_user, "abank")
    # Synced 10 minutes ago: not due now, due again 20 minutes from now (inside the spread).
    lately = _connection(make_user, "sbank", synced_minutes_ago=10)
    _connection(make_user, consent_status=ConsentStatus.REVOKED, synced_minutes_ago=90)
    _connection(make_user, status=ConnectionStatus.CONSENT_PENDING, synced_minutes_ago=90)
    running = _connection(make_user, status=ConnectionStatus.SYNC_IN_PROGRESS)
    SyncRun.objects.create(connection=running, user_id=running.user_id)

    plan = fanout.fanout_plan()

    assert [pk for chunk in plan for pk in chunk.connection_ids] == [
        long_ago.pk,
        never.pk,
        lately.pk,
    ]


def test_beat_sends_one_chunk_task_per_slot_with_expiry(make_user, sent_tasks):
    connections = [_connection(make_user, synced_minutes_ago=90) for _ in range(3)]

    scheduled = tasks.sync_all_due()

    assert scheduled == 3
    assert [(name, args[0]) for name, args, _ in sent_tasks] == [
        ("sync.fanout_chunk", [c.pk]) for c in connections
    ]
    countdowns = [options["countdown"] for _, _, options in sent_tasks]
    assert countdowns == pytest.approx([0, 1080, 2160])  # 54 minutes / 3
    assert [options["expires"] for _, _, options in sent_tasks] == pytest.approx(
        [c + 3600 for c in countdowns]
    )


def test_a_chunk_creates_runs_in_bulk_for_those_still_due_and_spreads_their_sends(
    make_user, sent_tasks, django_capture_on_commit_callbacks, django_assert_max_num_queries
):
    due = [_connection(make_user, synced_minutes_ago=90) for _ in range(4)]
    synced_meanwhile = _connection(make_user, synced_minutes_ago=5)
    ids = [c.pk for c in due] + [synced_meanwhile.pk]

    # One due check and one bulk insert (in a savepoint), whatever the chunk's size.
    with django_capture_on_commit_callbacks(execute=True), django_assert_max_num_queries(4):
        run_ids = tasks.fanout_chunk(ids, 30.0)

    runs = list(SyncRun.objects.order_by("pk"))
    assert run_ids == 4
    assert [run.connection_id for run in runs] == [c.pk for c in due]
    assert {(run.kind, run.trigger, run.status) for run in runs} == {
        (SyncKind.FULL, SyncTrigger.SCHEDULE, SyncStatus.QUEUED)
    }
    assert [(name, args) for name, args, _ in sent_tasks] == [
        ("sync.connection_sync", [run.pk]) for run in runs
    ]
    countdowns = [options["countdown"] for _, _, options in sent_tasks]
    # The i-th of 4 within [i, i + 1) × 30 / 4 s: spread over the span, with jitter.
    for index, countdown in enumerate(countdowns):
        assert index * 7.5 <= countdown < (index + 1) * 7.5


def test_a_chunk_meeting_an_active_run_starts_the_others_and_duplicates_nothing(
    make_user, sent_tasks, monkeypatch
):
    first, second = (_connection(make_user, synced_minutes_ago=90) for _ in range(2))
    original = fanout.connection_due_for_sync_list

    def due_then_user_sync(**kwargs):
        # A user's "sync now" lands between the chunk's due check and its insert.
        due = [connection.pk for connection in original(**kwargs)]
        SyncRun.objects.create(connection=first, user_id=first.user_id, trigger=SyncTrigger.USER)
        return BankConnection.objects.filter(pk__in=due)

    monkeypatch.setattr(fanout, "connection_due_for_sync_list", due_then_user_sync)

    started = fanout.fanout_chunk_start(connection_ids=[first.pk, second.pk], span_seconds=10)

    assert list(SyncRun.objects.filter(connection=first).values_list("trigger", flat=True)) == [
        SyncTrigger.USER
    ]
    assert list(SyncRun.objects.filter(pk__in=started).values_list("connection_id", flat=True)) == [
        second.pk
    ]


def test_eager_fanout_starts_the_due_runs_at_once(make_user):
    due = _connection(make_user, synced_minutes_ago=90)
    _connection(make_user, synced_minutes_ago=10)  # due later in the interval, not now

    assert tasks.sync_all_due() == 2

    runs = SyncRun.objects.filter(trigger=SyncTrigger.SCHEDULE)
    assert list(runs.values_list("connection_id", flat=True)) == [due.pk]


def test_tasks_are_routed_to_their_kind_of_queue():
    router = app.amqp.router
    queue_of = {
        name: router.route({}, name)["queue"].name
        for name in (
            "sync.connection_sync",
            "sync.fanout_chunk",
            "sync.failed_steps_retry",
            "onboarding.pending_consent_poll",
            "analytics.recompute_user",
            "sync.sync_all_due",
            "sync.reap_stale_runs",
            "audit.raw_logs_purge",
        )
    }

    assert queue_of == {
        "sync.connection_sync": "sync",
        "sync.fanout_chunk": "sync",
        "sync.failed_steps_retry": "sync",
        "onboarding.pending_consent_poll": "sync",
        "analytics.recompute_user": "analytics",
        "sync.sync_all_due": "maintenance",
        "sync.reap_stale_runs": "maintenance",
        "audit.raw_logs_purge": "maintenance",
    }
    # A worker started without -Q consumes every queue (the embedded default, tests, benches).
    assert set(app.amqp.queues) == {"sync", "analytics", "maintenance"}


@pytest.mark.django_db(transaction=True)
def test_a_chunk_delivered_twice_at_once_beside_user_syncs_makes_one_run_each(make_user, settings):
    """A redelivered chunk running at the same time as itself and as users' "sync now": the
    one-active-run constraint holds across connections to the database (PostgreSQL threads)."""
    import threading

    from django.db import connections

    if db_connection.vendor != "postgresql":
        pytest.skip("threads need a database with real concurrent connections (PostgreSQL)")
    from sync.services import connection_sync_start

    app.conf.CELERY_TASK_ALWAYS_EAGER = False
    targets = [_connection(make_user, synced_minutes_ago=90) for _ in range(30)]
    ids = [c.pk for c in targets]
    barrier = threading.Barrier(3)
    errors: list[BaseException] = []

    def chunk():
        try:
            barrier.wait()
            fanout.fanout_chunk_start(connection_ids=ids, span_seconds=0)
        except BaseException as exc:  # collected: a thread's failure must fail the test
            errors.append(exc)
        finally:
            connections.close_all()

    def users():
        try:
            barrier.wait()
            for connection in reversed(targets):
                connection_sync_start(connection=connection, trigger=SyncTrigger.USER)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(fanout, "runs_send_spread", lambda run_ids, span_seconds: len(run_ids))
            patch.setattr(tasks.connection_sync, "delay", lambda *args: None)
            threads = [threading.Thread(target=f) for f in (chunk, chunk, users)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=60)
    finally:
        app.conf.CELERY_TASK_ALWAYS_EAGER = True

    assert errors == []
    per_connection = dict(
        SyncRun.objects.filter(status=SyncStatus.QUEUED)
        .values_list("connection_id")
        .annotate(n=Count("id"))
        .values_list("connection_id", "n")
    )
    assert per_connection == {pk: 1 for pk in ids}
