"""Sync, balances-refresh and sync-run APIs: status codes, error shapes, ownership (connecting a
bank: users/tests/test_connect.py)."""

from types import SimpleNamespace
from unittest import mock

import pytest

import sync.services
from banking.models import BankConnection, ConnectionStatus
from banking.tests.factories import make_connection
from sync.models import SyncRun, SyncStatus
from sync.tests import fakebank as fb


@pytest.fixture
def bank(db, settings):
    fb.bank_settings(settings)
    settings.BANK_MAX_RETRIES = 0


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
    BankConnection.objects.create(
        user=auth_client.user, bank_code="vbank", status="ready", client_id="team260-1"
    )

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


def test_refresh_balances_starts_a_balances_sync_per_ready_or_failed_connection(
    auth_client, monkeypatch
):
    user = auth_client.user
    ready = make_connection(user=user, bank_code="vbank", status=ConnectionStatus.READY)
    failed = make_connection(user=user, bank_code="abank", status=ConnectionStatus.ERROR)
    make_connection(user=user, bank_code="sbank", status=ConnectionStatus.CONSENT_PENDING)
    calls = []

    def fake_start(*, connection, trigger, kind):
        calls.append((connection.id, trigger, kind))
        run = SimpleNamespace(
            id=100 + len(calls),
            connection_id=connection.id,
            connection=connection,
            kind=kind,
            status="queued",
        )
        return run, connection.bank_code == "vbank"

    monkeypatch.setattr(sync.services, "connection_sync_start", fake_start)

    response = auth_client.post("/api/accounts/refresh-balances")

    assert response.status_code == 202
    assert calls == [(failed.id, "user", "balances"), (ready.id, "user", "balances")]
    assert response.json() == {
        "runs": [
            {
                "id": 101,
                "connection_id": failed.id,
                "bank_code": "abank",
                "kind": "balances",
                "status": "queued",
                "created": False,
            },
            {
                "id": 102,
                "connection_id": ready.id,
                "bank_code": "vbank",
                "kind": "balances",
                "status": "queued",
                "created": True,
            },
        ]
    }


def test_refresh_balances_without_a_connected_bank_is_a_conflict(
    auth_client, make_user, monkeypatch
):
    make_connection(
        user=auth_client.user, bank_code="vbank", status=ConnectionStatus.CONSENT_PENDING
    )
    make_connection(user=make_user(), bank_code="abank", status=ConnectionStatus.READY)
    monkeypatch.setattr(
        sync.services, "connection_sync_start", lambda **kwargs: pytest.fail("called")
    )

    response = auth_client.post("/api/accounts/refresh-balances")

    assert response.status_code == 409
    assert response.json()["code"] == "conflict"
