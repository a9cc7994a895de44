"""What a sync tells the connection (faked bank, `responses`): retrying with the next attempt's
time while the bank fails, ready again after; error with a reason when retries run out; and
consent_required / consent_pending with the reason when there is no usable consent."""

from datetime import timedelta
from unittest import mock

import pytest
import responses
from celery.exceptions import Retry
from django.utils import timezone

from audit.models import AuditEvent
from banking.models import BankConnection, ConnectionStatus
from consents.models import Consent, ConsentKind, ConsentStatus
from sync import tasks
from sync.models import SyncRun, SyncStatus, SyncTrigger
from sync.services import connection_sync_start, sync_run_execute
from sync.tests import fakebank as fb

pytestmark = pytest.mark.django_db


@pytest.fixture
def connection(user, settings):
    fb.bank_settings(settings)
    settings.BANK_MAX_RETRIES = 0
    settings.SYNC_TASK_MAX_RETRIES = 3
    settings.SYNC_RETRY_BASE_SECONDS = 40
    settings.SYNC_RETRY_MAX_SECONDS = 600
    return BankConnection.objects.create(
        user=user, bank_code="vbank", client_id="team260-3", status=ConnectionStatus.READY
    )


def _worker_attempt(run_id: int, *, retries: int) -> None:
    """One delivery of the task as a worker runs it (not eager): its retry is asked of Celery."""
    task = tasks.connection_sync
    task.push_request(id="task-1", retries=retries, is_eager=False, called_directly=False)
    try:
        with mock.patch.object(task, "retry", side_effect=Retry("retry later")):
            task.run(run_id)
    finally:
        task.pop_request()


def _good_bank(bank) -> None:
    fb.add_accounts_and_balances(bank)
    fb.add_page(bank, [], page=1, has_next=False)
    fb.add_products(bank)
    fb.add_agreements(bank)


def test_a_bank_outage_shows_retrying_with_the_next_attempt_then_ready(connection, auth_client):
    fb.authorised_consents(connection.user)
    run, _ = connection_sync_start(connection=connection, trigger=SyncTrigger.USER)

    with responses.RequestsMock(assert_all_requests_are_fired=True) as bank:
        bank.add(responses.GET, f"{fb.BASE}/accounts", status=503, body="")
        before = timezone.now()
        with pytest.raises(Retry):
            _worker_attempt(run.pk, retries=0)

    connection.refresh_from_db()
    run.refresh_from_db()
    assert (connection.status, connection.status_reason) == ("retrying", "bank_unavailable")
    # Backoff with jitter: between half and all of the base delay for the first retry.
    assert before + timedelta(seconds=20) <= connection.next_retry_at
    assert connection.next_retry_at <= timezone.now() + timedelta(seconds=40)
    assert run.next_retry_at == connection.next_retry_at
    assert run.status == SyncStatus.QUEUED
    assert "Virtual Bank is not answering" in connection.last_error
    assert "(retry 1 of 3)" in connection.last_error
    shown = auth_client.get("/api/banks/vbank/status").json()
    assert (shown["status"], shown["status_reason"]) == ("retrying", "bank_unavailable")
    assert shown["next_retry_at"] is not None
    assert shown["status_message"] == connection.last_error

    with responses.RequestsMock(assert_all_requests_are_fired=True) as bank:
        _good_bank(bank)
        _worker_attempt(run.pk, retries=1)

    connection.refresh_from_db()
    run.refresh_from_db()
    assert run.status == SyncStatus.SUCCEEDED, run.error
    assert (connection.status, connection.status_reason, connection.last_error) == ("ready", "", "")
    assert connection.next_retry_at is None


def test_a_throttled_bank_shows_its_own_reason_and_waits_its_retry_after(connection):
    fb.authorised_consents(connection.user)
    run, _ = connection_sync_start(connection=connection, trigger=SyncTrigger.USER)

    with responses.RequestsMock(assert_all_requests_are_fired=True) as bank:
        bank.add(
            responses.GET,
            f"{fb.BASE}/accounts",
            status=429,
            body="",
            headers={"Retry-After": "300"},
        )
        before = timezone.now()
        with pytest.raises(Retry):
            _worker_attempt(run.pk, retries=0)

    connection.refresh_from_db()
    assert (connection.status, connection.status_reason) == ("retrying", "bank_throttled")
    assert connection.next_retry_at >= before + timedelta(seconds=300)


def test_retries_run_out_into_error_with_the_reason(connection):
    fb.authorised_consents(connection.user)
    run, _ = connection_sync_start(connection=connection, trigger=SyncTrigger.USER)

    with responses.RequestsMock(assert_all_requests_are_fired=True) as bank:
        bank.add(responses.GET, f"{fb.BASE}/accounts", status=502, body="<html></html>")
        _worker_attempt(run.pk, retries=3)

    connection.refresh_from_db()
    run.refresh_from_db()
    assert run.status == SyncStatus.FAILED
    assert (connection.status, connection.status_reason) == ("error", "bank_unavailable")
    assert connection.next_retry_at is None
    assert "unavailable" in connection.last_error


def test_eager_retries_pass_through_retrying_and_end_ready(connection):
    fb.authorised_consents(connection.user)
    run, _ = connection_sync_start(connection=connection, trigger=SyncTrigger.USER)

    with responses.RequestsMock(assert_all_requests_are_fired=True) as bank:
        bank.add(responses.GET, f"{fb.BASE}/accounts", status=503, body="")
        _good_bank(bank)
        tasks.connection_sync.apply(args=[run.pk])

    statuses = list(
        AuditEvent.objects.filter(action="connection.status_changed")
        .order_by("id")
        .values_list("details__to", flat=True)
    )
    assert statuses == ["sync_in_progress", "retrying", "sync_in_progress", "ready"]
    connection.refresh_from_db()
    assert (connection.status, connection.next_retry_at) == ("ready", None)


def _run(connection) -> SyncRun:
    run = SyncRun.objects.create(
        connection=connection, user_id=connection.user_id, trigger=SyncTrigger.USER
    )
    sync_run_execute(sync_run_id=run.pk)
    run.refresh_from_db()
    connection.refresh_from_db()
    return run


def test_a_consent_past_its_expiry_stops_the_sync_with_consent_expired(connection):
    consent = Consent.objects.create(
        user=connection.user,
        bank_code="vbank",
        kind=ConsentKind.ACCOUNTS,
        bank_consent_id="consent-1",
        status=ConsentStatus.AUTHORIZED,
        expires_at=timezone.now() - timedelta(minutes=5),
    )

    with responses.RequestsMock(assert_all_requests_are_fired=True) as bank:
        run = _run(connection)
        assert len(bank.calls) == 0

    assert (run.status, run.error_code) == (SyncStatus.FAILED, "consent_required")
    assert Consent.objects.get(pk=consent.pk).status == ConsentStatus.EXPIRED
    assert (connection.status, connection.status_reason) == ("consent_required", "consent_expired")
    assert connection.last_error.startswith("FinTrack's access to Virtual Bank expired on ")


def test_a_consent_the_bank_refuses_stops_the_sync_with_consent_revoked(connection):
    fb.authorised_consents(connection.user)

    with responses.RequestsMock(assert_all_requests_are_fired=True) as bank:
        bank.add(
            responses.GET,
            f"{fb.BASE}/accounts",
            status=403,
            json={"detail": {"error": "CONSENT_REQUIRED", "message": "Требуется согласие"}},
        )
        run = _run(connection)

    assert run.error_code == "consent_required"
    assert (connection.status, connection.status_reason) == ("consent_required", "consent_revoked")
    assert "was revoked at the bank" in connection.last_error
    assert "Требуется согласие" in connection.last_error


def test_a_sync_while_a_request_still_waits_shows_consent_pending(connection):
    Consent.objects.create(
        user=connection.user,
        bank_code="vbank",
        kind=ConsentKind.ACCOUNTS,
        request_id="req-1",
        status=ConsentStatus.PENDING,
    )
    body = {
        "data": {
            "consentId": "req-1",
            "status": "AwaitingAuthorization",
            "creationDateTime": "2026-12-01T09:00:00Z",
            "statusUpdateDateTime": "2026-12-01T09:00:00Z",
            "permissions": [],
            "expirationDateTime": "2027-03-01T09:00:00Z",
        },
        "links": {},
        "meta": {},
    }

    with responses.RequestsMock(assert_all_requests_are_fired=True) as bank:
        bank.add(responses.GET, f"{fb.BASE}/account-consents/req-1", json=body)
        run = _run(connection)

    assert run.error_code == "consent_required"
    assert (connection.status, connection.status_reason) == (
        "consent_pending",
        "awaiting_approval",
    )
