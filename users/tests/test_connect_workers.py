"""Connecting asynchronously on real processes (issue 21): two simultaneous POST connects of one
bank, through a real Redis broker to a real prefork worker (two pool processes) that also gets a
duplicate of the task message, against the sandbox over HTTP. One connect request is stored, the
bank is asked for each consent once, and the first sync it started ends ready. The same for a
demo approval and a renewal (the other kinds a worker carries out): two at once, and a duplicate
message, make one request, one signature or one consent request at the bank.

Runs where CELERY_BROKER_URL is a Redis URL and the database is PostgreSQL (the worker is
another process and reads the test's database); skipped elsewhere.
"""

import os
import threading
import time

import pytest
from django.conf import settings
from django.db import connections

from audit.models import RawApiLog
from banking.models import BankConnection, ConnectionStatus
from consents.models import Consent, ConsentKind
from sync.models import SyncRun, SyncStatus
from users.models import ConnectRequest

BROKER_URL = os.environ.get("CELERY_BROKER_URL", "")
ON_POSTGRESQL = settings.DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"

pytestmark = [
    pytest.mark.broker,
    pytest.mark.skipif(
        not BROKER_URL.startswith("redis://"), reason="needs CELERY_BROKER_URL=redis://…"
    ),
    pytest.mark.skipif(not ON_POSTGRESQL, reason="needs PostgreSQL: the worker is a process"),
    pytest.mark.django_db(transaction=True),
]


def _post_at_once(clients, path: str) -> list:
    """POST `path` from each client on its own thread, released together."""
    barrier = threading.Barrier(len(clients))
    answers: list = [None] * len(clients)

    def post(index: int, client) -> None:
        try:
            barrier.wait(timeout=10)
            answers[index] = client.post(path)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=post, args=pair) for pair in enumerate(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return answers


def _clients_and_environment(user, sandbox_banks) -> tuple[list, dict[str, str]]:
    """Two API clients of `user` and the environment of a worker that reaches the sandbox."""
    from rest_framework.test import APIClient

    from fintrack.tests.celery_workers import worker_environment
    from users.services import token_pair_for

    clients = []
    for _ in range(2):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token_pair_for(user)['access']}")
        clients.append(client)
    environment = worker_environment(
        broker_url=BROKER_URL,
        BANK_RETRY_BACKOFF_SECONDS="0.001",
        BANK_RETRY_MAX_SLEEP_SECONDS="0.01",
        LOG_LEVEL="WARNING",
        **{
            f"{code.upper()}_BASE_URL": config["base_url"] for code, config in sandbox_banks.items()
        },
    )
    return clients, environment


def _finished(request_id: int, *, seconds: float = 120) -> ConnectRequest:
    """The connect request once a worker has finished it (or as it stands at the deadline)."""
    deadline = time.monotonic() + seconds
    while True:
        request = ConnectRequest.objects.get(pk=request_id)
        finished = request.status in (ConnectRequest.Status.SUCCEEDED, ConnectRequest.Status.FAILED)
        if finished or time.monotonic() > deadline:
            return request
        time.sleep(0.2)


def _bank_posts(user, path: str) -> int:
    """POSTs FinTrack sent to `path` at the bank, from the raw logs."""
    return sum(
        1
        for endpoint in RawApiLog.objects.filter(
            user=user, method="POST", direction="request", endpoint__contains=path
        ).values_list("endpoint", flat=True)
        if endpoint.split("?")[0] == path
    )


def test_two_connects_at_once_on_real_workers_ask_the_bank_once(sandbox_banks, make_user):
    from fintrack.tests.celery_workers import celery_worker, tasks_through_the_broker
    from users.onboarding.tasks import connect_request_run

    user = make_user()
    clients, environment = _clients_and_environment(user, sandbox_banks)
    with (
        tasks_through_the_broker(),
        celery_worker(name="connect", environment=environment, concurrency=2) as worker,
    ):
        answers = _post_at_once(clients, "/api/banks/vbank/connect")
        assert [answer.status_code for answer in answers] == [202, 202], [
            answer.content for answer in answers
        ]
        [request] = ConnectRequest.objects.filter(user=user)
        connect_request_run.delay(request.pk)  # a duplicate message: the claim settles it
        deadline = time.monotonic() + 120
        run = None
        while time.monotonic() < deadline:
            run = SyncRun.objects.filter(connection__user=user).first()
            if run is not None and run.status in (SyncStatus.SUCCEEDED, SyncStatus.FAILED):
                break
            time.sleep(0.2)
        log = worker.log()[-4000:]

    assert {answer.json()["connect_request"]["id"] for answer in answers} == {request.pk}
    request.refresh_from_db()
    assert (request.status, request.attempts) == (ConnectRequest.Status.SUCCEEDED, 1), log
    assert run is not None and run.status == SyncStatus.SUCCEEDED, (run and run.error, log)
    assert SyncRun.objects.filter(connection__user=user).count() == 1
    requests_sent = RawApiLog.objects.filter(
        user=user, method="POST", direction="request", endpoint__contains="consents/request"
    ).values_list("endpoint", flat=True)
    assert sorted(endpoint.split("?")[0] for endpoint in requests_sent) == [
        "/account-consents/request",
        "/product-agreement-consents/request",
    ]
    assert Consent.objects.filter(user=user, kind=ConsentKind.ACCOUNTS).count() == 1
    connection = BankConnection.objects.get(user=user, bank_code="vbank")
    assert connection.status == ConnectionStatus.READY, connection.last_error


def test_approvals_and_renewals_at_once_on_real_workers_reach_the_bank_once(
    sandbox_banks, make_user
):
    """SBank approves accounts consents by hand: connect, then two demo approvals at once (and a
    duplicate message), then two renewals at once (and a duplicate), all on a real worker."""
    from fintrack.tests.celery_workers import celery_worker, tasks_through_the_broker
    from users.onboarding.tasks import connect_request_run

    user = make_user()
    clients, environment = _clients_and_environment(user, sandbox_banks)
    with (
        tasks_through_the_broker(),
        celery_worker(name="kinds", environment=environment, concurrency=2) as worker,
    ):
        connected = clients[0].post("/api/banks/sbank/connect")
        assert connected.status_code == 202, connected.content
        connect = _finished(connected.json()["connect_request"]["id"])
        assert connect.status == ConnectRequest.Status.SUCCEEDED, worker.log()[-4000:]
        pending = Consent.objects.get(user=user, bank_code="sbank", kind=ConsentKind.ACCOUNTS)
        assert pending.status == "pending"

        approvals = _post_at_once(clients, f"/api/consents/{pending.pk}/approve-demo")
        assert [answer.status_code for answer in approvals] == [202, 202], [
            answer.content for answer in approvals
        ]
        approval_ids = {answer.json()["connect_request"]["id"] for answer in approvals}
        assert len(approval_ids) == 1
        [approval_id] = approval_ids
        connect_request_run.delay(approval_id)  # a duplicate message: the claim settles it
        approval = _finished(approval_id)
        pending.refresh_from_db()
        old = pending

        renewals = _post_at_once(clients, "/api/banks/sbank/consents/renew")
        assert [answer.status_code for answer in renewals] == [202, 202], [
            answer.content for answer in renewals
        ]
        renewal_ids = {answer.json()["connect_request"]["id"] for answer in renewals}
        assert len(renewal_ids) == 1
        [renewal_id] = renewal_ids
        connect_request_run.delay(renewal_id)
        renewal = _finished(renewal_id)
        followed = clients[1].get(renewals[0].json()["status_url"])
        log = worker.log()[-4000:]

    assert (approval.kind, approval.status, approval.attempts) == ("approve_demo", "succeeded", 1)
    assert old.status == "authorized", log
    assert _bank_posts(user, "/account-consents/sign") == 1  # signed once
    assert (renewal.kind, renewal.status, renewal.attempts) == ("renew", "succeeded", 1), log
    new = Consent.objects.get(user=user, bank_code="sbank", kind=ConsentKind.ACCOUNTS, renews=old)
    assert new.status == "pending"  # SBank: the renewal waits for the user's approval
    # One request for the connect, one for the renewal; never one per POST or message.
    assert _bank_posts(user, "/account-consents/request") == 2
    assert ConnectRequest.objects.filter(user=user).count() == 3
    assert followed.status_code == 200
    assert followed.json()["connect_request"]["status"] == "succeeded"
