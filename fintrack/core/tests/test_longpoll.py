"""The status long-poll (fintrack/core/longpoll.py): answered at once without `since`, as soon as
the state differs from it, else 304 once `wait` ran out; the state read at most every 0.5 s and
no transaction left open while waiting; bad parameters are 400s in the standard shape."""

import pytest
from django.db import connection as db_connection

from banking.models import ConnectionStatus
from banking.tests.factories import make_connection
from fintrack.core import longpoll
from sync.models import SyncRun, SyncStatus


class FakeTime:
    def __init__(self):
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_without_since_it_answers_at_once_with_the_version():
    time = FakeTime()
    body, version = longpoll.long_poll(
        read=lambda: {"a": 1}, since=None, wait=25, sleep=time.sleep, clock=time.clock
    )

    assert (body, version) == ({"a": 1}, longpoll.body_version({"a": 1}))
    assert time.sleeps == []


def test_it_answers_as_soon_as_the_state_differs_from_since():
    time = FakeTime()
    states = iter([{"n": 1}, {"n": 1}, {"n": 1}, {"n": 2}])
    since = longpoll.body_version({"n": 1})

    body, version = longpoll.long_poll(
        read=lambda: next(states), since=since, wait=25, sleep=time.sleep, clock=time.clock
    )

    assert body == {"n": 2} and version == longpoll.body_version({"n": 2}) != since
    assert time.sleeps == [0.5, 0.5, 0.5]  # read again every half second, no faster


def test_unchanged_until_the_wait_runs_out_it_answers_nothing():
    time = FakeTime()
    reads = []
    since = longpoll.body_version({"n": 1})

    def read():
        reads.append(time.now)
        return {"n": 1}

    body, version = longpoll.long_poll(
        read=read, since=since, wait=1.2, sleep=time.sleep, clock=time.clock
    )

    assert (body, version) == (None, since)
    assert reads == [0.0, 0.5, 1.0, 1.2]
    assert max(time.sleeps) <= 0.5 and sum(time.sleeps) == pytest.approx(1.2)


def test_the_version_is_of_the_body_whatever_the_key_order():
    assert longpoll.body_version({"a": 1, "b": [1, 2]}) == longpoll.body_version(
        {"b": [1, 2], "a": 1}
    )
    assert longpoll.body_version({"a": 1}) != longpoll.body_version({"a": 2})


@pytest.fixture
def run(auth_client):
    connection = make_connection(
        user=auth_client.user, bank_code="vbank", status=ConnectionStatus.SYNC_IN_PROGRESS
    )
    return SyncRun.objects.create(
        connection=connection, user=auth_client.user, status=SyncStatus.RUNNING, progress=40
    )


def test_the_sync_run_answers_304_while_nothing_changed_and_200_once_it_did(auth_client, run):
    first = auth_client.get(f"/api/sync-runs/{run.pk}")
    version = first.json()["version"]

    unchanged = auth_client.get(f"/api/sync-runs/{run.pk}?since={version}&wait=0")
    SyncRun.objects.filter(pk=run.pk).update(progress=41, transactions_added=100)
    changed = auth_client.get(f"/api/sync-runs/{run.pk}?since={version}&wait=2")

    assert first.status_code == 200 and first["ETag"] == f'"{version}"'
    assert unchanged.status_code == 304
    assert unchanged["ETag"] == f'"{version}"' and unchanged.content == b""
    assert changed.status_code == 200
    body = changed.json()
    assert (body["progress"], body["transactions_added"]) == (41, 100)
    assert body["version"] != version


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("since=v1&wait=26", "wait"),
        ("since=v1&wait=-1", "wait"),
        ("since=v1&wait=x", "wait"),
        (f"since={'v' * 65}", "since"),
    ],
)
def test_bad_long_poll_parameters_are_400s_on_the_field(auth_client, run, query, field):
    for path in (f"/api/sync-runs/{run.pk}", "/api/onboarding/status"):
        response = auth_client.get(f"{path}?{query}")

        assert response.status_code == 400, response.content
        body = response.json()
        assert body["code"] == "validation_error"
        assert list(body["extra"]["fields"]) == [field]


def test_the_wait_is_bounded_by_the_setting(auth_client, run, settings):
    settings.STATUS_LONG_POLL_MAX_SECONDS = 3

    response = auth_client.get(f"/api/sync-runs/{run.pk}?since=v1&wait=4")

    assert response.status_code == 400
    assert response.json()["extra"]["fields"] == {"wait": ["At most 3 seconds."]}


def test_another_users_run_is_404_before_any_wait(api_client, run, make_user):
    from users.services import token_pair_for

    other = make_user(email="boris@example.com")
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {token_pair_for(other)['access']}")

    response = api_client.get(f"/api/sync-runs/{run.pk}?since=v1&wait=25")

    assert response.status_code == 404


@pytest.mark.django_db(transaction=True)
def test_no_transaction_stays_open_while_the_poll_waits(auth_client, monkeypatch):
    from users.onboarding import services

    seen_in_transaction = []
    original = services.onboarding_status

    def status(*, user):
        seen_in_transaction.append(db_connection.in_atomic_block)
        return original(user=user)

    monkeypatch.setattr(services, "onboarding_status", status)
    version = auth_client.get("/api/onboarding/status").json()["version"]

    response = auth_client.get(f"/api/onboarding/status?since={version}&wait=1.2")

    assert response.status_code == 304
    # The first GET's read, then the poll's: at once, about every 0.5 s, and at the wait's end
    # (how many fit in 1.2 s depends on the machine's load); none inside a transaction.
    assert len(seen_in_transaction) >= 3
    assert not any(seen_in_transaction), seen_in_transaction
