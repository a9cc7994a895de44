"""Connecting a bank (POST /api/banks/{bank_code}/connect), asynchronously (issue 21): the web
request stores the intent and answers 202 without a bank call, a worker asks the bank for the
consents and starts the first sync, and what the bank answered becomes the connection's state
(read by the status endpoints); the background poll of a consent the bank left pending."""

from datetime import timedelta

import pytest
import responses
from django.conf import settings

from audit.models import AuditEvent
from banking.models import BankConnection, ConnectionStatus
from banking.tests.factories import client_id_give, client_id_of
from consents.models import Consent, ConsentKind, ConsentStatus
from sync.models import SyncRun, SyncStatus
from sync.tests import fakebank as fb
from users.models import ConnectRequest
from users.onboarding import connect_requests
from users.onboarding import tasks as onboarding_tasks

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
MANUAL_ACCOUNTS_CONSENT = {
    "request_id": "req-2",
    "status": "pending",
    "message": "Запрос отправлен на одобрение",
    "created_at": "2025-11-26T09:30:59.151865",
    "auto_approved": False,
}
ACCOUNTS_ROUTE = f"{fb.BASE}/account-consents/request"
PRODUCTS_ROUTE = f"{fb.BASE}/product-agreement-consents/request"


@pytest.fixture
def bank(db, settings):
    fb.bank_settings(settings)
    settings.BANK_MAX_RETRIES = 0
    settings.DEMO_BANK_CLIENTS = True
    settings.DEMO_BANK_CLIENT_SELF_SIGN = True


@pytest.fixture
def sync_sends(monkeypatch):
    """The first syncs' task messages, recorded instead of sent (their bank calls are the sync's
    tests'): the run ids."""
    from sync import services as sync_services

    sent: list[int] = []
    monkeypatch.setattr(
        sync_services, "sync_run_send", lambda *, sync_run_id: sent.append(sync_run_id) or True
    )
    return sent


def _connect(client, bank_code="vbank", body=None, *, worker, capture):
    """POST connect; with `worker`, the connect's task (eager in tests) runs once the request
    committed, as a worker would take it from the queue."""
    with capture(execute=worker) as callbacks:
        response = client.post(f"/api/banks/{bank_code}/connect", body or {}, format="json")
    response.callbacks = callbacks
    return response


def _status(client, bank_code="vbank") -> dict:
    response = client.get(f"/api/banks/{bank_code}/status")
    assert response.status_code == 200, response.content
    return response.json()


def _consent_requests_made(bank_http) -> list[str]:
    """The consent requests sent to the bank (POSTs; an expiry lookup is a GET)."""
    return [
        call.request.url.split("?")[0] for call in bank_http.calls if call.request.method == "POST"
    ]


def test_connect_unknown_bank_is_404(auth_client):
    response = auth_client.post("/api/banks/nobank/connect")

    assert response.status_code == 404
    assert response.json()["code"] == "unknown_bank"
    assert not BankConnection.objects.exists()
    assert not ConnectRequest.objects.exists()


def test_the_connect_request_makes_no_bank_call_and_answers_202_with_a_status_url(
    auth_client, bank, django_capture_on_commit_callbacks
):
    with responses.RequestsMock(assert_all_requests_are_fired=True) as bank_http:
        response = _connect(auth_client, worker=False, capture=django_capture_on_commit_callbacks)
        seen = _status(auth_client)
        assert len(bank_http.calls) == 0  # nothing registered: any bank call would fail too

    assert response.status_code == 202, response.content
    assert response["Location"] == "/api/banks/vbank/status"
    body = response.json()
    request = ConnectRequest.objects.get(user=auth_client.user)
    assert body["status_url"] == "/api/banks/vbank/status"
    assert body["connect_request"]["id"] == request.pk
    assert body["connect_request"]["status"] == ConnectRequest.Status.QUEUED
    assert (body["connection_status"], body["status_reason"]) == (
        ConnectionStatus.CONSENT_PENDING,
        "connect_requested",
    )
    assert (body["accounts_consent"], body["action_required"], body["sync_run"]) == (
        None,
        None,
        None,
    )
    assert body["sync_started"] is False
    # Who the user is at the bank is settled in the request (a demo client proposed).
    assert client_id_of(user=auth_client.user) == request.client_id == "team260-1"
    # The status endpoint reads what the request stored: connecting, nothing to approve yet.
    assert (seen["status"], seen["status_reason"], seen["action_required"]) == (
        ConnectionStatus.CONSENT_PENDING,
        "connect_requested",
        None,
    )
    assert "asking Virtual Bank for access" in seen["status_message"]
    # One task message, sent once the request commits.
    assert len(response.callbacks) == 1
    assert not Consent.objects.exists()


def test_the_worker_asks_for_the_consents_and_starts_the_first_sync(
    auth_client, bank, sync_sends, django_capture_on_commit_callbacks
):
    with responses.RequestsMock(assert_all_requests_are_fired=True) as bank_http:
        bank_http.add(responses.POST, ACCOUNTS_ROUTE, json=APPROVED_ACCOUNTS_CONSENT)
        bank_http.add(responses.POST, PRODUCTS_ROUTE, json=APPROVED_PRODUCTS_CONSENT)
        response = _connect(auth_client, worker=True, capture=django_capture_on_commit_callbacks)

    assert response.status_code == 202, response.content
    request = ConnectRequest.objects.get(user=auth_client.user)
    run = SyncRun.objects.get(connection__user=auth_client.user)
    assert (request.status, request.outcome, request.attempts, request.sync_run_id) == (
        ConnectRequest.Status.SUCCEEDED,
        "sync_started",
        1,
        run.pk,
    )
    assert sync_sends == [run.pk]
    assert run.status == SyncStatus.QUEUED
    consents = {c.kind: c.status for c in Consent.objects.filter(user=auth_client.user)}
    assert consents == {
        ConsentKind.ACCOUNTS: ConsentStatus.AUTHORIZED,
        ConsentKind.PRODUCTS: ConsentStatus.AUTHORIZED,
    }
    seen = _status(auth_client)
    assert (seen["status"], seen["status_reason"], seen["action_required"]) == (
        ConnectionStatus.SYNC_IN_PROGRESS,
        "",
        None,
    )
    assert seen["consent"]["status"] == ConsentStatus.AUTHORIZED

    BankConnection.objects.filter(user=auth_client.user).update(status=ConnectionStatus.READY)
    again = auth_client.post("/api/banks/vbank/connect")

    assert again.status_code == 409
    assert again.json()["code"] == "already_connected"
    assert again.json()["extra"]["sync_url"] == "/api/banks/vbank/sync"
    assert ConnectRequest.objects.count() == 1


def test_with_a_manual_bank_the_status_says_what_the_user_must_do(
    auth_client, bank, django_capture_on_commit_callbacks
):
    with responses.RequestsMock(assert_all_requests_are_fired=True) as bank_http:
        bank_http.add(responses.POST, ACCOUNTS_ROUTE, json=MANUAL_ACCOUNTS_CONSENT)
        bank_http.add(responses.POST, PRODUCTS_ROUTE, status=503, body="")
        response = _connect(auth_client, worker=True, capture=django_capture_on_commit_callbacks)

    assert response.status_code == 202, response.content
    consent = Consent.objects.get(kind=ConsentKind.ACCOUNTS)
    deadline = consent.created_at + timedelta(minutes=settings.CONSENT_APPROVAL_TIMEOUT_MINUTES)
    expected_action = {
        "type": "approve_consent",
        "message": (
            "Open Virtual Bank and approve FinTrack's access request by "
            f"{deadline:%Y-%m-%d %H:%M} UTC; FinTrack checks it regularly. Virtual Bank may not "
            "tell FinTrack about an approval given in its own app: if the request still shows "
            "pending after you approved it, start a new request."
        ),
        "bank_code": "vbank",
        "consent_id": consent.pk,
        "bank_request_id": "req-2",
        "approval_expires_at": deadline.isoformat().replace("+00:00", "Z"),
        "request_again_url": "/api/banks/vbank/consents/request-again",
        "approve_demo_url": f"/api/consents/{consent.pk}/approve-demo",
    }
    seen = _status(auth_client)
    assert (seen["status"], seen["status_reason"]) == (
        ConnectionStatus.CONSENT_PENDING,
        "awaiting_approval",
    )
    assert seen["action_required"] == expected_action
    assert "Waiting for your approval at Virtual Bank" in seen["status_message"]
    request = ConnectRequest.objects.get()
    assert (request.status, request.outcome) == (
        ConnectRequest.Status.SUCCEEDED,
        "awaiting_approval",
    )
    assert not SyncRun.objects.exists()

    # Connecting again answers from what is stored: the pending request and what to do.
    with responses.RequestsMock(assert_all_requests_are_fired=False) as bank_http:
        bank_http.add(responses.GET, f"{fb.BASE}/account-consents/req-2", status=503, body="")
        again = _connect(auth_client, worker=False, capture=django_capture_on_commit_callbacks)
        assert len(bank_http.calls) == 0
    body = again.json()
    assert again.status_code == 202, again.content
    assert body["accounts_consent"]["status"] == ConsentStatus.PENDING
    assert body["products_consent"] is None
    assert body["action_required"] == expected_action


def test_a_client_the_bank_does_not_know_ends_in_error_and_the_old_client_comes_back(
    auth_client, bank, django_capture_on_commit_callbacks
):
    client_id_give(user=auth_client.user, client_id="team260-5", bank_codes=["vbank"])
    with responses.RequestsMock(assert_all_requests_are_fired=True) as bank_http:
        bank_http.add(
            responses.POST,
            ACCOUNTS_ROUTE,
            status=404,
            json={"detail": "Client team260-99 not found"},
        )
        response = _connect(
            auth_client,
            body={"client_id": "team260-99"},
            worker=True,
            capture=django_capture_on_commit_callbacks,
        )

    assert response.status_code == 202, response.content
    # The request set the new client; the worker's 404 put the old one back.
    assert response.json()["connect_request"]["status"] == ConnectRequest.Status.QUEUED
    assert client_id_of(user=auth_client.user) == "team260-5"
    seen = _status(auth_client)
    assert (seen["status"], seen["status_reason"], seen["client_id"]) == (
        ConnectionStatus.ERROR,
        "bank_client_unknown",
        "team260-5",
    )
    assert seen["status_message"] == (
        "Virtual Bank knows no client 'team260-99': check the client id you have at this bank."
    )
    request = ConnectRequest.objects.get()
    assert (request.status, request.error_code, request.client_id) == (
        ConnectRequest.Status.FAILED,
        "bank_client_unknown",
        "team260-99",
    )
    assert not Consent.objects.exists()
    assert not SyncRun.objects.exists()


def test_a_request_the_bank_rejects_asks_for_a_new_consent(
    auth_client, bank, django_capture_on_commit_callbacks
):
    rejected = {**MANUAL_ACCOUNTS_CONSENT, "status": "rejected"}
    with responses.RequestsMock(assert_all_requests_are_fired=True) as bank_http:
        bank_http.add(responses.POST, ACCOUNTS_ROUTE, json=rejected)
        bank_http.add(responses.POST, PRODUCTS_ROUTE, json=APPROVED_PRODUCTS_CONSENT)
        _connect(auth_client, worker=True, capture=django_capture_on_commit_callbacks)

    seen = _status(auth_client)
    assert (seen["status"], seen["status_reason"]) == (
        ConnectionStatus.CONSENT_REQUIRED,
        "consent_rejected",
    )
    assert client_id_of(user=auth_client.user) == "team260-1"  # the bank knows the client
    request = ConnectRequest.objects.get()
    assert (request.status, request.error_code) == (
        ConnectRequest.Status.FAILED,
        "consent_rejected",
    )
    assert not SyncRun.objects.exists()


def test_a_bank_that_is_down_is_retried_with_backoff_then_shown_as_an_error(
    auth_client, bank, settings, django_capture_on_commit_callbacks
):
    settings.SYNC_TASK_MAX_RETRIES = 2
    settings.BANK_TASK_MAX_RETRIES = 0
    with responses.RequestsMock(assert_all_requests_are_fired=True) as bank_http:
        bank_http.add(responses.POST, ACCOUNTS_ROUTE, status=502, body="")
        _connect(auth_client, worker=True, capture=django_capture_on_commit_callbacks)
        # One call per attempt: the task's retry is the layer that waits.
        assert len(bank_http.calls) == 3

    seen = _status(auth_client)
    assert (seen["status"], seen["status_reason"], seen["next_retry_at"]) == (
        ConnectionStatus.ERROR,
        "bank_unavailable",
        None,
    )
    assert seen["status_message"] == "Virtual Bank is not answering right now; try again later."
    moves = [
        (event.details["to"], event.details.get("reason"), "next_retry_at" in event.details)
        for event in AuditEvent.objects.filter(action="connection.status_changed").order_by("pk")
    ]
    assert moves == [
        (ConnectionStatus.CONSENT_PENDING, "connect_requested", False),
        (ConnectionStatus.RETRYING, "bank_unavailable", True),
        (ConnectionStatus.RETRYING, "bank_unavailable", True),
        (ConnectionStatus.ERROR, "bank_unavailable", False),
    ]
    request = ConnectRequest.objects.get()
    assert (request.status, request.attempts, request.error_code) == (
        ConnectRequest.Status.FAILED,
        3,
        "bank_unavailable",
    )
    assert not SyncRun.objects.exists()


def test_the_retry_wait_shows_retrying_with_when(auth_client, bank):
    """While the task waits for its countdown, the connection says when it asks again."""
    from banking.clients.errors import BankUnavailableError

    with responses.RequestsMock(assert_all_requests_are_fired=True):
        request = connect_requests.bank_connect_request(user=auth_client.user, bank_code="vbank")
    error = BankUnavailableError("HTTP 503", bank_code="vbank", status_code=503)

    connect_requests.connect_request_retry_wait(
        connect_request_id=request.pk, exc=error, countdown=60, retry=1, retries=5
    )

    seen = _status(auth_client)
    assert (seen["status"], seen["status_reason"]) == (
        ConnectionStatus.RETRYING,
        "bank_unavailable",
    )
    request.refresh_from_db()
    assert seen["next_retry_at"] is not None and request.next_retry_at is not None
    assert "retry 1 of 5" in seen["status_message"]


def test_connecting_again_while_a_connect_is_under_way_requests_one_consent(
    auth_client, bank, sync_sends, django_capture_on_commit_callbacks
):
    with responses.RequestsMock(assert_all_requests_are_fired=True) as bank_http:
        bank_http.add(responses.POST, ACCOUNTS_ROUTE, json=APPROVED_ACCOUNTS_CONSENT)
        bank_http.add(responses.POST, PRODUCTS_ROUTE, json=APPROVED_PRODUCTS_CONSENT)
        with django_capture_on_commit_callbacks(execute=False) as first_callbacks:
            first = auth_client.post("/api/banks/vbank/connect")
        # Still queued (its message not taken yet): the same request answers, its task resent.
        second = _connect(auth_client, worker=True, capture=django_capture_on_commit_callbacks)
        for callback in first_callbacks:  # the first message comes late: the request is done
            callback()
        other_client = auth_client.post(
            "/api/banks/vbank/connect", {"client_id": "team260-77"}, format="json"
        )
        consent_requests = _consent_requests_made(bank_http)

    assert first.status_code == second.status_code == 202
    assert first.json()["connect_request"]["id"] == second.json()["connect_request"]["id"]
    assert ConnectRequest.objects.count() == 1
    assert consent_requests == [ACCOUNTS_ROUTE, PRODUCTS_ROUTE]  # each consent asked for once
    assert Consent.objects.filter(kind=ConsentKind.ACCOUNTS).count() == 1
    assert len(sync_sends) == 1
    assert ConnectRequest.objects.get().attempts == 1
    # Done now: a connect as another client is a new request (the bank is connected: 409).
    assert other_client.status_code == 409, other_client.content


def test_a_connect_as_another_client_while_one_is_under_way_is_a_409(
    auth_client, bank, django_capture_on_commit_callbacks
):
    with responses.RequestsMock(assert_all_requests_are_fired=True) as bank_http:
        _connect(auth_client, worker=False, capture=django_capture_on_commit_callbacks)
        response = _connect(
            auth_client,
            body={"client_id": "team260-77"},
            worker=False,
            capture=django_capture_on_commit_callbacks,
        )
        assert len(bank_http.calls) == 0

    assert response.status_code == 409, response.content
    body = response.json()
    assert body["code"] == "connect_in_progress"
    assert body["extra"] == {
        "bank_code": "vbank",
        "connect_request_id": ConnectRequest.objects.get().pk,
    }
    assert client_id_of(user=auth_client.user) == "team260-1"


def test_a_duplicate_task_message_does_not_ask_the_bank_twice(auth_client, bank, sync_sends):
    with responses.RequestsMock(assert_all_requests_are_fired=True) as bank_http:
        request = connect_requests.bank_connect_request(user=auth_client.user, bank_code="vbank")
        bank_http.add(responses.POST, ACCOUNTS_ROUTE, json=APPROVED_ACCOUNTS_CONSENT)
        bank_http.add(responses.POST, PRODUCTS_ROUTE, json=APPROVED_PRODUCTS_CONSENT)
        onboarding_tasks.connect_request_run.apply(args=[request.pk], task_id="message-1")
        onboarding_tasks.connect_request_run.apply(args=[request.pk], task_id="message-2")
        assert _consent_requests_made(bank_http) == [ACCOUNTS_ROUTE, PRODUCTS_ROUTE]

    request.refresh_from_db()
    assert (request.status, request.attempts, request.task_id) == (
        ConnectRequest.Status.SUCCEEDED,
        1,
        "message-1",
    )


def test_the_connect_task_goes_to_the_sync_queue():
    from fintrack.celery import app

    route = app.amqp.router.route({}, "onboarding.connect_request_run")

    assert route["queue"].name == "sync"


def test_a_connect_left_pending_schedules_the_consent_poll_after_commit(
    auth_client, bank, monkeypatch, django_capture_on_commit_callbacks
):
    sent = []
    monkeypatch.setattr(
        onboarding_tasks.pending_consent_poll,
        "apply_async",
        lambda *, args, kwargs, countdown: sent.append((kwargs, countdown)),
    )
    monkeypatch.setattr(onboarding_tasks.random, "uniform", lambda low, high: high)
    with responses.RequestsMock(assert_all_requests_are_fired=True) as bank_http:
        bank_http.add(responses.POST, ACCOUNTS_ROUTE, json=MANUAL_ACCOUNTS_CONSENT)
        bank_http.add(responses.POST, PRODUCTS_ROUTE, status=503, body="")
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            response = auth_client.post("/api/banks/vbank/connect")
        assert sent == []  # nothing is sent before the connect commits
        with django_capture_on_commit_callbacks(execute=False) as worker_callbacks:
            for callback in callbacks:  # the connect's task: it asks the bank
                callback()
        assert sent == []  # nor before the worker's writes commit
        for callback in worker_callbacks:
            callback()

    assert response.status_code == 202, response.content
    consent = Consent.objects.get(kind=ConsentKind.ACCOUNTS)
    assert sent == [({"consent_id": consent.pk, "trigger": "user", "attempt": 0}, 15.0)]
    assert not SyncRun.objects.exists()


def test_a_connect_whose_worker_died_does_not_block_the_next_one(auth_client, bank, settings):
    from django.utils import timezone

    first = connect_requests.bank_connect_request(user=auth_client.user, bank_code="vbank")
    long_ago = timezone.now() - timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT + 120)
    ConnectRequest.objects.filter(pk=first.pk).update(
        status=ConnectRequest.Status.RUNNING, task_id="lost", updated_at=long_ago
    )

    second = connect_requests.bank_connect_request(user=auth_client.user, bank_code="vbank")

    first.refresh_from_db()
    assert second.pk != first.pk and second.status == ConnectRequest.Status.QUEUED
    assert (first.status, first.error_code) == (ConnectRequest.Status.FAILED, "abandoned")


def test_an_unexpected_error_in_the_worker_is_a_failed_connect_not_a_stuck_one(
    auth_client, bank, monkeypatch
):
    def broken(**_kwargs):
        raise RuntimeError("boom")

    request = connect_requests.bank_connect_request(user=auth_client.user, bank_code="vbank")
    monkeypatch.setattr(connect_requests, "connect_at_bank", broken)

    connect_requests.connect_request_execute(connect_request_id=request.pk)

    request.refresh_from_db()
    assert (request.status, request.error_code) == (ConnectRequest.Status.FAILED, "internal_error")
    seen = _status(auth_client)
    assert (seen["status"], seen["status_reason"]) == (ConnectionStatus.ERROR, "internal_error")
    assert client_id_of(user=auth_client.user) == ""  # the proposed client is not kept


def test_onboarding_as_another_client_while_a_connect_is_under_way_is_a_409(auth_client, bank):
    connect_requests.bank_connect_request(user=auth_client.user, bank_code="vbank")

    response = auth_client.post(
        "/api/onboarding/start",
        {"banks": [{"bank_code": "vbank", "client_id": "team260-77"}]},
        format="json",
    )

    assert response.status_code == 409, response.content
    assert response.json()["code"] == "connect_in_progress"
    assert ConnectRequest.objects.count() == 1
