"""The reaper of connect requests (issue 21): a request a lost task message or a dead worker left
queued or running is re-sent, taken over, or failed honestly, as sync runs are (sync/reaper.py).

The fault itself is reproduced by putting the request in the state it leaves (a message never
taken: queued and untouched; a dead worker: running, claimed long ago); the bank is faked with
`responses`.
"""

import importlib
from datetime import timedelta

import pytest
import responses
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from banking.models import BankConnection, ConnectionStatus
from banking.tests.factories import client_id_of
from sync.tests import fakebank as fb
from users.models import ConnectRequest
from users.onboarding import connect_requests, reaper
from users.onboarding import tasks as onboarding_tasks

Status = ConnectRequest.Status
ACCOUNTS_ROUTE = f"{fb.BASE}/account-consents/request"
PRODUCTS_ROUTE = f"{fb.BASE}/product-agreement-consents/request"
APPROVED_ACCOUNTS_CONSENT = {
    "request_id": "req-1",
    "consent_id": "consent-1",
    "status": "approved",
    "message": "Согласие одобрено автоматически",
    "created_at": "2025-11-26T09:30:59.151865",
    "auto_approved": True,
}
APPROVED_PRODUCTS_CONSENT = {
    "request_id": "pagcr-1",
    "consent_id": "pagc-1",
    "status": "approved",
    "auto_approved": True,
    "message": "ok",
    "valid_until": "2026-11-26T09:30:59Z",
}

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def bank(settings):
    fb.bank_settings(settings)
    settings.BANK_MAX_RETRIES = 0
    settings.DEMO_BANK_CLIENTS = True
    settings.SYNC_QUEUED_STALE_SECONDS = 300
    settings.SYNC_TASK_MAX_RETRIES = 2  # three attempts in all
    settings.CELERY_TASK_TIME_LIMIT = 960


@pytest.fixture
def sent(monkeypatch):
    """Request ids the reaper sent a task message for (the messages themselves go nowhere)."""
    ids: list[int] = []
    monkeypatch.setattr(
        reaper, "connect_request_send", lambda *, connect_request_id: ids.append(connect_request_id)
    )
    return ids


def _request(user, **fields) -> ConnectRequest:
    """A connect asked for in a web request whose task message went nowhere (fields: the state
    a fault left it in)."""
    with responses.RequestsMock(assert_all_requests_are_fired=True):
        request = connect_requests.bank_connect_request(user=user, bank_code="vbank")
    if fields:
        ConnectRequest.objects.filter(pk=request.pk).update(**fields)
        request.refresh_from_db()
    return request


def test_a_queued_request_whose_message_was_lost_is_sent_again_once_per_period(user, sent):
    now = timezone.now()
    lost = _request(user, updated_at=now - timedelta(seconds=301))

    first = reaper.connect_requests_reap(now=now)
    second = reaper.connect_requests_reap(now=now + timedelta(seconds=60))

    assert (first.resent, first.requeued, first.failed) == ([lost.pk], [], [])
    assert second.resent == []  # touched when re-sent: it waits a full period again
    assert sent == [lost.pk]
    lost.refresh_from_db()
    assert (lost.status, lost.updated_at) == (Status.QUEUED, now)


def test_a_fresh_request_and_one_waiting_for_its_retry_are_left_alone(user, make_user, sent):
    now = timezone.now()
    _request(user, updated_at=now - timedelta(seconds=30))
    waiting = _request(
        make_user(),
        updated_at=now - timedelta(hours=1),
        next_retry_at=now + timedelta(minutes=5),
    )

    result = reaper.connect_requests_reap(now=now)

    assert result.as_dict() == {"resent": [], "requeued": [], "failed": []}
    assert sent == []
    waiting.refresh_from_db()
    assert waiting.next_retry_at == now + timedelta(minutes=5)


def test_a_retry_long_overdue_is_sent_again_and_its_time_cleared(user, sent):
    now = timezone.now()
    overdue = _request(
        user,
        attempts=1,
        updated_at=now - timedelta(minutes=20),
        next_retry_at=now - timedelta(seconds=301),
    )

    result = reaper.connect_requests_reap(now=now)

    assert result.resent == [overdue.pk]
    overdue.refresh_from_db()
    assert (overdue.status, overdue.next_retry_at) == (Status.QUEUED, None)


def test_a_running_request_whose_worker_died_is_requeued_and_sent_again(
    user, make_user, sent, settings
):
    now = timezone.now()
    limit = timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT + 60)
    dead = _request(
        user,
        status=Status.RUNNING,
        task_id="m-1",
        attempts=1,
        updated_at=now - limit - timedelta(1),
    )
    alive = _request(
        make_user(), status=Status.RUNNING, task_id="m-2", attempts=1, updated_at=now - limit / 2
    )

    result = reaper.connect_requests_reap(now=now)

    assert (result.requeued, result.resent, result.failed) == ([dead.pk], [], [])
    assert sent == [dead.pk]
    dead.refresh_from_db()
    alive.refresh_from_db()
    assert (dead.status, dead.task_id, dead.attempts) == (Status.QUEUED, "", 1)
    assert "stopped answering" in dead.error
    assert (alive.status, alive.task_id) == (Status.RUNNING, "m-2")  # may still be at the bank


def test_a_running_request_out_of_attempts_fails_honestly_and_puts_the_client_back(
    user, sent, settings
):
    now = timezone.now()
    limit = timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT + 60)
    dead = _request(user, status=Status.RUNNING, attempts=3, updated_at=now - limit * 2)
    assert client_id_of(user=user, bank_code="vbank") == "team260-1"  # proposed by the connect

    result = reaper.connect_requests_reap(now=now)

    assert (result.failed, result.requeued, sent) == ([dead.pk], [], [])
    dead.refresh_from_db()
    assert (dead.status, dead.error_code) == (Status.FAILED, "worker_lost")
    assert dead.finished_at == dead.updated_at
    assert "stopped answering 3 time(s)" in dead.error
    connection = BankConnection.objects.get(user=user, bank_code="vbank")
    assert (connection.status, connection.status_reason) == (ConnectionStatus.ERROR, "worker_lost")
    assert client_id_of(user=user, bank_code="vbank") == ""  # as a failed connect leaves it
    # The bank's lock is free: a new connect is a new request.
    with responses.RequestsMock(assert_all_requests_are_fired=True):
        again = connect_requests.bank_connect_request(user=user, bank_code="vbank")
    assert again.pk != dead.pk and again.status == Status.QUEUED


def test_a_request_queued_longer_than_any_could_take_fails_instead_of_waiting_forever(user, sent):
    now = timezone.now()
    forgotten = _request(
        user,
        created_at=now - reaper._give_up_after() - timedelta(seconds=1),
        updated_at=now - timedelta(seconds=301),
    )

    result = reaper.connect_requests_reap(now=now)

    assert (result.failed, sent) == ([forgotten.pk], [])
    forgotten.refresh_from_db()
    assert (forgotten.status, forgotten.error_code) == (Status.FAILED, "worker_lost")
    assert "no worker took it up in time" in forgotten.error


def test_a_lost_connect_heals_end_to_end_when_the_reaper_sends_it_again(
    user, monkeypatch, django_capture_on_commit_callbacks
):
    """The message never reached a worker; the reaper's (eager here) carries the connect out."""
    from sync import services as sync_services

    runs: list[int] = []
    monkeypatch.setattr(
        sync_services, "sync_run_send", lambda *, sync_run_id: runs.append(sync_run_id) or True
    )
    lost = _request(user, updated_at=timezone.now() - timedelta(seconds=301))

    with responses.RequestsMock(assert_all_requests_are_fired=True) as bank_http:
        bank_http.add(responses.POST, ACCOUNTS_ROUTE, json=APPROVED_ACCOUNTS_CONSENT)
        bank_http.add(responses.POST, PRODUCTS_ROUTE, json=APPROVED_PRODUCTS_CONSENT)
        with django_capture_on_commit_callbacks(execute=True):
            result = onboarding_tasks.reap_stale_connect_requests.apply().get()

    assert result == {"resent": [lost.pk], "requeued": [], "failed": []}
    lost.refresh_from_db()
    assert (lost.status, lost.outcome, lost.attempts) == (Status.SUCCEEDED, "sync_started", 1)
    assert runs == [lost.sync_run_id]


def test_attempts_count_across_messages_so_a_resent_request_does_not_retry_forever(user):
    """A re-sent message starts its task's retry count at 0: the request's attempts still bound
    how often a bank outage is waited out (SYNC_TASK_MAX_RETRIES in all)."""
    from banking.clients.errors import BankUnavailableError

    request = _request(user, attempts=2)  # two claims already (the first and one retry)

    with responses.RequestsMock(assert_all_requests_are_fired=True) as bank_http:
        bank_http.add(responses.POST, ACCOUNTS_ROUTE, status=503, body="")
        # The third attempt may not retry any more, whatever its message's retry count says.
        connect_requests.connect_request_execute(connect_request_id=request.pk, retry_allowed=True)

    request.refresh_from_db()
    assert (request.status, request.error_code, request.attempts) == (
        Status.FAILED,
        BankUnavailableError.code,
        3,
    )


def test_the_reaper_is_scheduled_by_beat_on_the_maintenance_queue_once(settings):
    from django.apps import apps

    migration = importlib.import_module(
        "users.migrations.0008_connect_request_kinds_and_reaper_schedule"
    )
    task = PeriodicTask.objects.get(name=migration.PERIODIC_TASK_NAME)  # seeded by migrate
    assert task.task == "onboarding.reap_stale_connect_requests"
    assert (task.queue, task.enabled) == ("maintenance", True)
    assert (task.interval.every, task.interval.period) == (settings.SYNC_REAPER_PERIOD_SECONDS,
                                                           "seconds")  # fmt: skip
    assert task.expire_seconds == settings.SYNC_REAPER_PERIOD_SECONDS
    task.enabled = False  # an operator pauses it in the admin
    task.save()

    migration.create_reaper_schedule(apps, None)  # running it again changes nothing

    task.refresh_from_db()
    assert task.enabled is False
    assert PeriodicTask.objects.filter(name=migration.PERIODIC_TASK_NAME).count() == 1
    # Sent by beat or by hand, it goes to the maintenance queue (beside sync.reap_stale_runs).
    assert onboarding_tasks.reap_stale_connect_requests.queue == "maintenance"
