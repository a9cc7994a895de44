"""Connecting a bank (POST /api/banks/{bank_code}/connect): status codes, what the answer says,
and the background poll of a consent the bank left pending."""

import pytest
import responses

from banking.models import BankConnection, ConnectionStatus
from consents.models import Consent, ConsentKind, ConsentStatus
from sync.models import SyncRun, SyncStatus
from sync.tests import fakebank as fb
from users.onboarding import tasks as onboarding_tasks

MANUAL_ACCOUNTS_CONSENT = {
    "request_id": "req-2",
    "status": "pending",
    "message": "Запрос отправлен на одобрение",
    "created_at": "2025-11-26T09:30:59.151865",
    "auto_approved": False,
}


@pytest.fixture
def bank(db, settings):
    fb.bank_settings(settings)
    settings.BANK_MAX_RETRIES = 0


def test_connect_unknown_bank_is_404(auth_client):
    response = auth_client.post("/api/banks/nobank/connect")

    assert response.status_code == 404
    assert response.json()["code"] == "unknown_bank"
    assert not BankConnection.objects.exists()


def test_connect_with_auto_approving_bank_answers_202_and_starts_first_sync(
    auth_client, bank, django_capture_on_commit_callbacks
):
    with responses.RequestsMock(assert_all_requests_are_fired=True) as bank_http:
        bank_http.add(
            responses.POST,
            f"{fb.BASE}/account-consents/request",
            json={
                "request_id": "req-1",
                "consent_id": "consent-1",
                "status": "approved",
                "message": "Согласие одобрено автоматически",
                "created_at": "2025-11-26T09:30:59.151865",
                "auto_approved": True,
            },
        )
        bank_http.add(
            responses.POST,
            f"{fb.BASE}/product-agreement-consents/request",
            json={
                "request_id": "pagcr-1",
                "consent_id": "pagc-1",
                "status": "approved",
                "auto_approved": True,
                "message": "ok",
                "valid_until": "2026-11-26T09:30:59Z",
            },
        )
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            response = auth_client.post("/api/banks/vbank/connect")

    assert response.status_code == 202, response.content
    body = response.json()
    assert body["accounts_consent"]["status"] == ConsentStatus.AUTHORIZED
    assert body["products_consent"]["status"] == ConsentStatus.AUTHORIZED
    assert body["sync_started"] is True
    assert body["sync_run"]["status"] == SyncStatus.QUEUED
    assert body["action_required"] is None
    assert len(callbacks) == 1

    BankConnection.objects.filter(user=auth_client.user).update(status=ConnectionStatus.READY)
    again = auth_client.post("/api/banks/vbank/connect")

    assert again.status_code == 409
    assert again.json()["code"] == "already_connected"
    assert again.json()["extra"]["sync_url"] == "/api/banks/vbank/sync"


def test_connect_with_manual_bank_says_what_the_user_must_do(auth_client, bank):
    with responses.RequestsMock(assert_all_requests_are_fired=True) as bank_http:
        bank_http.add(
            responses.POST, f"{fb.BASE}/account-consents/request", json=MANUAL_ACCOUNTS_CONSENT
        )
        bank_http.add(
            responses.POST,
            f"{fb.BASE}/product-agreement-consents/request",
            status=503,
            body="",
        )
        response = auth_client.post("/api/banks/vbank/connect")

    assert response.status_code == 202, response.content
    body = response.json()
    assert body["connection_status"] == ConnectionStatus.CONSENT_PENDING
    assert body["sync_started"] is False
    assert body["sync_run"] is None
    assert body["products_consent"] is None
    consent = Consent.objects.get(kind=ConsentKind.ACCOUNTS)
    assert body["action_required"] == {
        "type": "approve_consent",
        "message": "Open Virtual Bank and approve FinTrack's access request, then come back.",
        "bank_code": "vbank",
        "consent_id": consent.pk,
        "request_id": "req-2",
        "approve_demo_url": f"/api/consents/{consent.pk}/approve-demo",
    }


def test_connect_when_bank_is_down_is_503_and_nothing_is_started(auth_client, bank):
    with responses.RequestsMock(assert_all_requests_are_fired=True) as bank_http:
        bank_http.add(responses.POST, f"{fb.BASE}/account-consents/request", status=502, body="")
        response = auth_client.post("/api/banks/vbank/connect")

    assert response.status_code == 503
    assert response.json()["code"] == "bank_unavailable"
    assert response.json()["extra"]["bank_code"] == "vbank"
    assert not SyncRun.objects.exists()


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
        bank_http.add(
            responses.POST, f"{fb.BASE}/account-consents/request", json=MANUAL_ACCOUNTS_CONSENT
        )
        bank_http.add(
            responses.POST, f"{fb.BASE}/product-agreement-consents/request", status=503, body=""
        )
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            response = auth_client.post("/api/banks/vbank/connect")
        assert sent == []  # nothing is sent before the connect commits
        for callback in callbacks:
            callback()

    assert response.status_code == 202, response.content
    consent = Consent.objects.get(kind=ConsentKind.ACCOUNTS)
    assert sent == [({"consent_id": consent.pk, "trigger": "user", "attempt": 0}, 15.0)]
    assert not SyncRun.objects.exists()
