"""Connecting asynchronously on real processes (issue 21): two simultaneous POST connects of one
bank, through a real Redis broker to a real prefork worker (two pool processes) that also gets a
duplicate of the task message, against the sandbox over HTTP. One connect request is stored, the
bank is asked for each consent once, and the first sync it started ends ready.

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


def test_two_connects_at_once_on_real_workers_ask_the_bank_once(sandbox_banks, make_user):
    from rest_framework.test import APIClient

    from fintrack.tests.celery_workers import (
        celery_worker,
        tasks_through_the_broker,
        worker_environment,
    )
    from users.onboarding.tasks import connect_request_run
    from users.services import token_pair_for

    user = make_user()
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
