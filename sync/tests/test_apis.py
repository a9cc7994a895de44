"""Connect, sync and sync-run APIs: status codes, error shapes, ownership."""

from unittest import mock

import pytest
import responses

from banking.models import BankConnection, ConnectionStatus
from consents.models import Consent, ConsentKind, ConsentStatus
from sync.models import SyncRun, SyncStatus
from sync.tests import fakebank as fb


@pytest.fixture
def bank(db, settings):
    fb.bank_settings(settings)
    settings.BANK_MAX_RETRIES = 0


def test_connect_unknown_bank_is_404(auth_client):
    response = auth_client.post("/api/banks/nobank/connect")

    assert response.status_code == 404
    assert response.json()["code"] == "unknown_bank"
    assert not BankConnection.objects.exists()


def test_sync_unknown_bank_is_404(auth_client):
    response = auth_client.post("/api/banks/nobank/sync")

    assert response.status_code == 404
    assert response.json()["code"] == "unknown_bank"


def test_sync_before_consent_is_409_consent_required(auth_client, bank):
    response = auth_client.post("/api/banks/vbank/sync")

    assert response.status_code == 409
    body = response.json()
    assert body["code"] == "consent_required"
    assert body["extra"]["connect_url"] == "/api/banks/vbank/connect"
    assert not SyncRun.objects.exists()


def test_sync_starts_a_run_and_a_second_request_gets_the_running_one(
    auth_client, bank, django_capture_on_commit_callbacks
):
    fb.authorised_consents(auth_client.user)
    BankConnection.objects.create(user=auth_client.user, bank_code="vbank", status="ready")

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        first = auth_client.post("/api/banks/vbank/sync")
        second = auth_client.post("/api/banks/vbank/sync")

    assert first.status_code == 202
    run_id = first.json()["sync_run_id"]
    assert first.json()["sync_run"]["status"] == SyncStatus.QUEUED
    assert second.status_code == 409
    assert second.json()["code"] == "sync_already_running"
    assert second.json()["extra"]["sync_run_id"] == run_id
    assert second.json()["extra"]["sync_run"]["id"] == run_id
    assert len(callbacks) == 1
    assert SyncRun.objects.count() == 1


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
            responses.POST,
            f"{fb.BASE}/account-consents/request",
            json={
                "request_id": "req-2",
                "status": "pending",
                "message": "Запрос отправлен на одобрение",
                "created_at": "2025-11-26T09:30:59.151865",
                "auto_approved": False,
            },
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


def test_sync_runs_are_listed_newest_first_and_scoped_to_the_user(auth_client, make_user, bank):
    other = make_user(email="other@example.com")
    mine = BankConnection.objects.create(user=auth_client.user, bank_code="vbank")
    theirs = BankConnection.objects.create(user=other, bank_code="vbank")
    old = SyncRun.objects.create(connection=mine, user=auth_client.user, status="succeeded")
    new = SyncRun.objects.create(connection=mine, user=auth_client.user)
    foreign = SyncRun.objects.create(connection=theirs, user=other)

    listed = auth_client.get("/api/sync-runs")
    detail = auth_client.get(f"/api/sync-runs/{new.pk}")
    hidden = auth_client.get(f"/api/sync-runs/{foreign.pk}")
    bad_limit = auth_client.get("/api/sync-runs?limit=0")

    assert listed.status_code == 200
    assert [run["id"] for run in listed.json()] == [new.pk, old.pk]
    assert detail.status_code == 200
    assert detail.json()["bank_code"] == "vbank"
    assert detail.json()["progress"] == 0
    assert hidden.status_code == 404
    assert hidden.json()["code"] == "not_found"
    assert bad_limit.status_code == 400
    assert bad_limit.json()["code"] == "validation_error"


def test_sync_posts_are_throttled_with_the_sync_scope(auth_client, bank, settings):
    rates = {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "sync": "2/min"}
    with mock.patch("rest_framework.throttling.SimpleRateThrottle.THROTTLE_RATES", rates):
        codes = [auth_client.post("/api/banks/vbank/sync").status_code for _ in range(3)]

    assert codes == [409, 409, 429]


def test_openapi_schema_documents_the_sync_and_onboarding_endpoints(auth_client):
    response = auth_client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")

    assert response.status_code == 200
    paths = response.json()["paths"]
    for path in (
        "/api/banks/{bank_code}/connect",
        "/api/banks/{bank_code}/sync",
        "/api/sync-runs",
        "/api/sync-runs/{sync_run_id}",
        "/api/onboarding/start",
        "/api/onboarding/status",
    ):
        assert path in paths, path
    assert "202" in paths["/api/banks/{bank_code}/sync"]["post"]["responses"]
