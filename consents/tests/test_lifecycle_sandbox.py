"""Honest connection states and the consent lifecycle end to end, against the sandbox banks over
real HTTP: revoked at the bank, expired, renewed without a gap in syncing, an approval given in
the bank's app that never resolves, a bank failing then recovering, the warning before expiry.

FinTrack's clock and the sandbox's move together where time passes (`clocks`): the sandbox
decides when its consents run out, FinTrack when it warns, renews and times out approvals.
"""

from datetime import timedelta
from unittest import mock

import pytest
from celery.exceptions import Retry

from audit.models import RawApiLog
from banking.models import BankConnection
from banking.tests.factories import client_id_of
from consents.models import Consent, ConsentKind, ConsentStatus
from consents.tasks import consent_lifecycle_sweep_task, superseded_consent_revoke
from sandbox import clock, faults
from sandbox import services as sandbox_services
from sandbox.models import AccountConsent, ProductConsent
from sync import tasks as sync_tasks
from sync.models import SyncRun, SyncStatus, SyncStep
from users.onboarding.services import onboarding_consent_poll
from users.onboarding.tasks import pending_consent_poll

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def clocks(monkeypatch):
    """Move FinTrack's clock (django.utils.timezone.now) and, unless told, the sandbox's."""
    from django.utils import timezone

    real_now = timezone.now
    offset = {"by": timedelta(0)}
    monkeypatch.setattr(timezone, "now", lambda: real_now() + offset["by"])

    def move(delta: timedelta, *, bank: bool = True) -> None:
        offset["by"] += delta
        if bank:
            clock.advance(seconds=delta.total_seconds())

    return move


def _connect(api, code: str, *, approve: bool = True) -> dict:
    response = api.post(f"/api/banks/{code}/connect", {}, format="json")
    assert response.status_code == 202, response.content
    body = response.json()
    if approve and body["action_required"]:
        _approve(api, body["action_required"]["approve_demo_url"])
    return body


def _approve(api, url: str) -> dict:
    """POST approve-demo: 202, and the worker (eager here) approved and started the sync."""
    approved = api.post(url)
    assert approved.status_code == 202, approved.content
    request = approved.json()["connect_request"]
    assert (request["kind"], request["status"]) == ("approve_demo", "succeeded"), request
    return approved.json()


def _status(api, code: str) -> dict:
    response = api.get(f"/api/banks/{code}/status")
    assert response.status_code == 200
    return response.json()


def _dashboard_bank(api, code: str) -> dict:
    banks = api.get("/api/dashboard").json()["banks"]
    return next(bank for bank in banks if bank["bank_code"] == code)


def _sync(api, code: str) -> SyncRun:
    response = api.post(f"/api/banks/{code}/sync")
    assert response.status_code == 202, response.content
    return SyncRun.objects.get(pk=response.json()["sync_run_id"])


def _authorised(user, code: str, kind: str = ConsentKind.ACCOUNTS) -> Consent:
    return Consent.objects.get(user=user, bank_code=code, kind=kind, status="authorized")


def _at_bank(consent: Consent) -> str:
    """The consent's status at the sandbox bank."""
    model = AccountConsent if consent.kind == ConsentKind.ACCOUNTS else ProductConsent
    return model.objects.get(bank=consent.bank_code, consent_id=consent.bank_consent_id).status


def test_revoked_at_the_bank_the_next_sync_says_consent_required(sandbox_banks, auth_client):
    user = auth_client.user
    _connect(auth_client, "vbank")
    assert _status(auth_client, "vbank")["status"] == "ready"
    consent = _authorised(user, "vbank")
    faults.revoke_consents("vbank", client_id=client_id_of(user=user, bank_code="vbank"))

    run = _sync(auth_client, "vbank")

    run.refresh_from_db()
    assert (run.status, run.error_code) == (SyncStatus.FAILED, "consent_required")
    shown = _status(auth_client, "vbank")
    assert (shown["status"], shown["status_reason"]) == ("consent_required", "consent_revoked")
    assert "revoked at the bank" in shown["status_message"]
    assert shown["consent"]["status"] == "revoked"
    assert Consent.objects.get(pk=consent.pk).status == ConsentStatus.REVOKED
    dashboard = _dashboard_bank(auth_client, "vbank")
    assert (dashboard["status"], dashboard["status_reason"]) == (
        "consent_required",
        "consent_revoked",
    )

    _connect(auth_client, "vbank")  # a new consent: syncing again

    shown = _status(auth_client, "vbank")
    assert (shown["status"], shown["status_reason"], shown["status_message"]) == ("ready", "", "")


def test_past_its_expiry_the_next_sync_says_consent_expired(sandbox_banks, auth_client, clocks):
    user = auth_client.user
    _connect(auth_client, "abank")
    consent = _authorised(user, "abank")

    clocks(timedelta(days=366))
    response = auth_client.post("/api/banks/abank/sync")

    assert response.status_code == 409
    assert (response.json()["code"], response.json()["extra"]["reason"]) == (
        "consent_required",
        "consent_expired",
    )
    assert not SyncRun.objects.filter(status__in=["queued", "running"]).exists()
    shown = _status(auth_client, "abank")
    assert (shown["status"], shown["status_reason"]) == ("consent_required", "consent_expired")
    assert shown["status_message"].startswith("FinTrack's access to Awesome Bank expired on ")
    assert (shown["consent"]["status"], shown["consent_state"]) == ("expired", "expired")
    assert Consent.objects.get(pk=consent.pk).status == ConsentStatus.EXPIRED


def test_a_sync_the_bank_refuses_after_expiry_says_consent_expired(
    sandbox_banks, auth_client, clocks
):
    """The scheduled run of a connection whose consent ran out while it waited in the queue."""
    user = auth_client.user
    _connect(auth_client, "vbank")
    connection = BankConnection.objects.get(user=user, bank_code="vbank")
    with mock.patch("sync.services.sync_run_send"):
        run = _sync(auth_client, "vbank")
    clocks(timedelta(days=366))

    sync_tasks.connection_sync.apply(args=[run.pk])

    run.refresh_from_db()
    connection.refresh_from_db()
    assert run.error_code == "consent_required"
    assert (connection.status, connection.status_reason) == ("consent_required", "consent_expired")


def test_renewal_switches_without_a_gap_in_syncing(sandbox_banks, auth_client):
    """SBank (manual approval): a sync before the renewal, one while it waits, one running when
    it is approved and switched, one after; all succeed. The old consents end superseded and
    revoked at the bank, once the run that used them ended."""
    user = auth_client.user
    _connect(auth_client, "sbank")
    old = _authorised(user, "sbank")
    old_products = _authorised(user, "sbank", ConsentKind.PRODUCTS)
    assert _sync(auth_client, "sbank").status == SyncStatus.SUCCEEDED

    renewed = auth_client.post("/api/banks/sbank/consents/renew")

    assert renewed.status_code == 202, renewed.content
    body = renewed.json()
    # A worker renewed (eager here: it ran once the request committed).
    assert (body["connect_request"]["kind"], body["connect_request"]["outcome"]) == (
        "renew",
        "awaiting_approval",
    )
    renewal = Consent.objects.get(pk=body["accounts_consent"]["id"])
    assert (renewal.status, renewal.renews_id) == ("pending", old.pk)
    assert body["connection_status"] == "ready"
    assert body["action_required"]["consent_id"] == renewal.pk
    shown = _status(auth_client, "sbank")
    assert (shown["status"], shown["consent"]["id"]) == ("ready", old.pk)
    assert shown["consent"]["renewal"]["id"] == renewal.pk
    # Products auto-approve at SBank: switched at once, the old one revoked at the bank.
    products = Consent.objects.get(renews=old_products)
    assert products.status == "authorized"
    assert Consent.objects.get(pk=old_products.pk).status == "superseded"
    assert _at_bank(old_products) == "revoked"

    during = _sync(auth_client, "sbank")  # the renewal waits: the old consent is used
    assert during.status == SyncStatus.SUCCEEDED, during.error

    # A run in progress when the renewal is approved keeps its consent to its end.
    from sync.services import _SyncExecution

    original_step = _SyncExecution._step
    approvals = []

    def approve_mid_run(self, step, progress=None):
        original_step(self, step, progress)
        if step == SyncStep.TRANSACTIONS and not approvals:
            approvals.append(auth_client.post(f"/api/consents/{renewal.pk}/approve-demo"))

    with mock.patch.object(_SyncExecution, "_step", approve_mid_run):
        running = _sync(auth_client, "sbank")

    assert approvals[0].status_code == 202, approvals[0].content
    assert approvals[0].json()["connect_request"]["status"] == "succeeded"
    assert running.status == SyncStatus.SUCCEEDED, running.error
    old.refresh_from_db()
    assert (old.status, old.status_reason) == ("superseded", "superseded_by_renewal")
    assert _authorised(user, "sbank").pk == renewal.pk
    assert _at_bank(old) == "active"  # not revoked while the run used it

    assert superseded_consent_revoke.apply(args=[old.pk]).get() == "revoked"

    assert _at_bank(old) == "revoked"
    after = _sync(auth_client, "sbank")  # the new consent
    assert after.status == SyncStatus.SUCCEEDED, after.error
    shown = _status(auth_client, "sbank")
    assert (shown["status"], shown["consent"]["id"], shown["consent"]["renewal"]) == (
        "ready",
        renewal.pk,
        None,
    )


def test_an_approval_in_the_banks_app_never_resolves_then_expires_and_a_fresh_one_works(
    sandbox_banks, auth_client, clocks, settings
):
    settings.CONSENT_APPROVAL_TIMEOUT_MINUTES = 30
    user = auth_client.user
    started = auth_client.post("/api/onboarding/start", {"banks": ["sbank"]}, format="json")
    assert started.status_code == 202, started.content
    waiting = Consent.objects.get(pk=started.json()["banks"][0]["action_required"]["consent_id"])
    assert _status(auth_client, "sbank")["status"] == "consent_pending"
    client_id = client_id_of(user=user, bank_code="sbank")
    sandbox_services.app_request_decide(
        bank="sbank",
        client_id=client_id,
        request_id=waiting.request_id,
        approve=True,
        now=clock.now(),
    )

    assert onboarding_consent_poll(consent_id=waiting.pk) is True  # AwaitingAuthorization still
    waiting.refresh_from_db()
    assert (waiting.status, waiting.bank_consent_id) == ("pending", "")

    clocks(timedelta(minutes=31), bank=False)
    calls_before = RawApiLog.objects.count()
    assert onboarding_consent_poll(consent_id=waiting.pk) is False
    pending_consent_poll.apply(args=[waiting.pk])  # a poll still queued finds nothing to do

    assert RawApiLog.objects.count() == calls_before  # polling stopped: no bank call
    waiting.refresh_from_db()
    assert (waiting.status, waiting.status_reason) == ("expired", "approval_timed_out")
    shown = _status(auth_client, "sbank")
    assert (shown["status"], shown["status_reason"]) == ("consent_required", "approval_expired")
    assert shown["status_message"].startswith(
        "The approval request at Smart Bank expired; start a new one."
    )
    onboarding = auth_client.get("/api/onboarding/status").json()["banks"][0]
    assert (onboarding["connection_status"], onboarding["status_reason"]) == (
        "consent_required",
        "approval_expired",
    )
    assert onboarding["status_message"] == shown["status_message"]

    again = auth_client.post("/api/banks/sbank/consents/request-again")

    assert again.status_code == 202, again.content
    assert again.json()["connect_request"]["status"] == "succeeded"
    action = again.json()["action_required"]
    fresh = Consent.objects.get(pk=action["consent_id"])
    assert fresh.status == "pending" and fresh.request_id != waiting.request_id
    assert again.json()["connection_status"] == "consent_pending"
    _approve(auth_client, action["approve_demo_url"])
    shown = _status(auth_client, "sbank")
    assert (shown["status"], shown["consent"]["id"]) == ("ready", fresh.pk)


def _worker_attempt(run_id: int, *, retries: int) -> None:
    """One delivery of the sync task as a worker runs it: a retry is asked of Celery."""
    task = sync_tasks.connection_sync
    task.push_request(id="task-1", retries=retries, is_eager=False, called_directly=False)
    try:
        with mock.patch.object(task, "retry", side_effect=Retry("later")):
            task.run(run_id)
    finally:
        task.pop_request()


def test_a_failing_bank_shows_retrying_with_the_next_attempt_then_ready(sandbox_banks, auth_client):
    _connect(auth_client, "vbank")
    faults.set_faults("vbank", error_rate=1.0, error_statuses="503")
    with mock.patch("sync.services.sync_run_send"):
        run = _sync(auth_client, "vbank")

    with pytest.raises(Retry):
        _worker_attempt(run.pk, retries=0)

    shown = _status(auth_client, "vbank")
    dashboard = _dashboard_bank(auth_client, "vbank")
    for bank in (shown, dashboard):
        assert (bank["status"], bank["status_reason"]) == ("retrying", "bank_unavailable")
        assert bank["next_retry_at"] is not None
        assert "Virtual Bank is not answering" in bank["status_message"]

    faults.clear_faults("vbank")
    _worker_attempt(run.pk, retries=1)

    run.refresh_from_db()
    assert run.status == SyncStatus.SUCCEEDED, run.error
    shown = _status(auth_client, "vbank")
    assert (shown["status"], shown["status_reason"], shown["next_retry_at"]) == ("ready", "", None)


def test_seven_days_before_expiry_banks_and_dashboard_warn_and_the_sweep_renews(
    sandbox_banks, auth_client, clocks
):
    user = auth_client.user
    _connect(auth_client, "vbank")
    old = _authorised(user, "vbank")
    old_products = _authorised(user, "vbank", ConsentKind.PRODUCTS)
    assert _status(auth_client, "vbank")["consent_state"] == "valid"

    # Both clocks to six days and a bit before the consents run out.
    clocks(old.expires_at - timedelta(days=6, hours=1) - clock.now())

    shown = _status(auth_client, "vbank")
    assert (shown["consent_state"], shown["consent_days_left"], shown["consent_expiring"]) == (
        "expiring_soon",
        6,
        True,
    )
    assert shown["product_consent"]["state"] == "expiring_soon"
    dashboard = _dashboard_bank(auth_client, "vbank")
    assert (dashboard["consent_state"], dashboard["consent_days_left"]) == ("expiring_soon", 6)
    assert (dashboard["product_consent_state"], dashboard["consent_expiring"]) == (
        "expiring_soon",
        True,
    )

    report = consent_lifecycle_sweep_task.apply().get()

    new = _authorised(user, "vbank")
    assert new.renews_id == old.pk
    assert sorted(report["renewals_requested"]) == sorted(
        [new.pk, Consent.objects.get(renews=old_products).pk]
    )
    assert Consent.objects.get(pk=old.pk).status == "superseded"
    assert _at_bank(old) == "revoked" and _at_bank(old_products) == "revoked"
    shown = _status(auth_client, "vbank")
    assert (shown["consent_state"], shown["consent_expiring"]) == ("valid", False)
    assert _sync(auth_client, "vbank").status == SyncStatus.SUCCEEDED
