"""Onboarding: validation, a status that only reads, the step stored by the actions that change
it, and from start to "can proceed" against the sandbox banks."""

from datetime import timedelta

import pytest
import responses
from django.db import connection as db_connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from banking.models import ConnectionStatus
from banking.tests.factories import make_connection
from consents.models import Consent, ConsentKind, ConsentStatus
from sync.models import SyncRun, SyncStatus
from sync.tests import fakebank as fb
from sync.tests.ground_truth import assert_equals_ground_truth
from users.models import ConnectRequest, OnboardingFlow
from users.onboarding.services import onboarding_status

Step = OnboardingFlow.Step


def test_status_before_start_asks_to_choose_banks(auth_client):
    response = auth_client.get("/api/onboarding/status")

    assert response.status_code == 200
    body = response.json()
    assert body == {
        "step": "choose_banks",
        "completed": False,
        "completed_at": None,
        "can_proceed": False,
        "progress": {"percent": 0, "eta_seconds": None},
        "banks": [],
        "version": body["version"],
    }
    assert response["ETag"] == f'"{body["version"]}"'


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"banks": ["vbank", "nobank"]}, "banks: Unknown bank(s): nobank."),
        ({"banks": []}, "banks: This list may not be empty."),
        ({"banks": "vbank"}, 'banks: Expected a list of items but got type "str".'),
        ({}, "banks: This field is required."),
    ],
)
def test_start_rejects_bad_bank_lists(auth_client, body, message):
    response = auth_client.post("/api/onboarding/start", body, format="json")

    assert response.status_code == 400
    assert response.json()["code"] == "validation_error"
    assert response.json()["message"] == message
    assert not OnboardingFlow.objects.exists()


def test_onboarding_needs_authentication(api_client, db):
    assert api_client.get("/api/onboarding/status").status_code == 401
    assert api_client.post("/api/onboarding/start", {"banks": ["vbank"]}).status_code == 401


def test_start_asks_no_bank_and_a_worker_connects_each_bank(
    auth_client, settings, django_capture_on_commit_callbacks
):
    fb.bank_settings(settings)
    with responses.RequestsMock(assert_all_requests_are_fired=True) as bank_http:
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            response = auth_client.post(
                "/api/onboarding/start", {"banks": ["vbank", "abank"]}, format="json"
            )
        assert len(bank_http.calls) == 0

    assert response.status_code == 202, response.content
    assert response["Location"] == "/api/onboarding/status"
    body = response.json()
    assert body["status_url"] == "/api/onboarding/status"
    assert (body["step"], body["can_proceed"], body["progress"]["percent"]) == (
        "consents",
        False,
        0,
    )
    for bank in body["banks"]:
        assert (bank["connection_status"], bank["status_reason"]) == (
            ConnectionStatus.CONSENT_PENDING,
            "connect_requested",
        )
        assert bank["connect"]["status"] == ConnectRequest.Status.QUEUED
    assert len(callbacks) == 2  # one connect task per bank, sent once the start committed
    assert ConnectRequest.objects.filter(user=auth_client.user).count() == 2
    # The version lets the client long-poll from here: unchanged, the poll answers 304.
    polled = auth_client.get(f"/api/onboarding/status?since={body['version']}&wait=0")
    assert polled.status_code == 304


def test_a_bank_down_at_start_is_shown_in_the_status_not_raised(
    auth_client, settings, django_capture_on_commit_callbacks
):
    fb.bank_settings(settings)
    settings.BANK_MAX_RETRIES = 0
    settings.SYNC_TASK_MAX_RETRIES = 0
    with responses.RequestsMock(assert_all_requests_are_fired=True) as bank_http:
        bank_http.add(responses.POST, f"{fb.BASE}/account-consents/request", status=502, body="")
        with django_capture_on_commit_callbacks(execute=True):  # the worker runs the connect
            response = auth_client.post(
                "/api/onboarding/start", {"banks": ["vbank"]}, format="json"
            )

    assert response.status_code == 202, response.content
    body = auth_client.get("/api/onboarding/status").json()
    assert (body["step"], body["can_proceed"], body["progress"]["percent"]) == (
        "consents",
        False,
        100,  # nothing left to wait for: the bank's state says what to do
    )
    [vbank] = body["banks"]
    assert vbank["connection_status"] == ConnectionStatus.ERROR
    assert vbank["status_reason"] == "bank_unavailable"
    assert vbank["last_error"] == "Virtual Bank is not answering right now; try again later."
    assert vbank["connect"]["status"] == ConnectRequest.Status.FAILED
    assert OnboardingFlow.objects.get(user=auth_client.user).step == Step.CONSENTS


def test_status_only_reads_no_bank_call_no_sync_no_write(auth_client, settings):
    """A pending consent is not polled by GET (a task does it), and a stale stored step stays."""
    fb.bank_settings(settings)
    user = auth_client.user
    flow = OnboardingFlow.objects.create(
        user=user, selected_banks=["vbank", "abank"], step=Step.SYNCING
    )
    make_connection(user=user, bank_code="vbank", status=ConnectionStatus.CONSENT_PENDING)
    abank = make_connection(user=user, bank_code="abank", status=ConnectionStatus.READY)
    SyncRun.objects.create(connection=abank, user=user, status=SyncStatus.SUCCEEDED)
    pending = Consent.objects.create(
        user=user,
        bank_code="vbank",
        kind=ConsentKind.ACCOUNTS,
        status=ConsentStatus.PENDING,
        request_id="req-1",
    )
    stored_before = OnboardingFlow.objects.values().get(pk=flow.pk)

    with responses.RequestsMock(assert_all_requests_are_fired=True) as bank_http:
        with CaptureQueriesContext(db_connection) as queries:
            response = auth_client.get("/api/onboarding/status")
        assert len(bank_http.calls) == 0

    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["step"], body["completed"], body["can_proceed"]) == ("consents", False, True)
    by_bank = {bank["bank_code"]: bank for bank in body["banks"]}
    assert by_bank["vbank"]["consent_status"] == ConsentStatus.PENDING
    assert by_bank["vbank"]["action_required"]["consent_id"] == pending.pk
    assert by_bank["abank"]["sync"]["status"] == SyncStatus.SUCCEEDED
    # The user (with the logout deny list), the flow, connections, consents, runs (2), the
    # accounts' history reach (the progressive first sync's phase) and the connect requests:
    # reads.
    statements = [query["sql"].lstrip().split()[0].upper() for query in queries.captured_queries]
    assert statements == ["SELECT"] * 8, queries.captured_queries
    assert OnboardingFlow.objects.values().get(pk=flow.pk) == stored_before
    assert SyncRun.objects.count() == 1
    assert Consent.objects.get(pk=pending.pk).status == ConsentStatus.PENDING


def test_a_finished_sync_stores_the_step_and_completed_at_once(
    user, django_capture_on_commit_callbacks
):
    flow = OnboardingFlow.objects.create(user=user, selected_banks=["vbank"], step=Step.SYNCING)
    connection = make_connection(user=user, bank_code="vbank", status=ConnectionStatus.READY)
    Consent.objects.create(
        user=user,
        bank_code="vbank",
        kind=ConsentKind.ACCOUNTS,
        status=ConsentStatus.AUTHORIZED,
        bank_consent_id="consent-1",
    )
    run = SyncRun.objects.create(connection=connection, user=user, status=SyncStatus.RUNNING)

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        run.progress = 50
        run.save(update_fields=["progress"])  # still running: nothing to settle
    assert callbacks == []

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        run.status = SyncStatus.SUCCEEDED
        run.save()

    assert len(callbacks) == 1
    flow.refresh_from_db()
    assert flow.step == Step.DONE
    completed_at = flow.completed_at
    assert completed_at is not None
    assert timezone.now() - completed_at < timedelta(minutes=1)

    # A later sync ends (failed, another bank state unchanged): the first completion time stays.
    later = SyncRun.objects.create(connection=connection, user=user, status=SyncStatus.RUNNING)
    with django_capture_on_commit_callbacks(execute=True):
        later.status = SyncStatus.FAILED
        later.save()
    flow.refresh_from_db()
    assert (flow.step, flow.completed_at) == (Step.DONE, completed_at)
    status = onboarding_status(user=user)
    assert (status["step"], status["completed"], status["completed_at"]) == (
        "done",
        True,
        completed_at,
    )


@pytest.mark.django_db(transaction=True)
def test_onboarding_from_start_to_can_proceed_with_all_three_banks(
    sandbox_banks,
    auth_client,
):
    user = auth_client.user
    response = auth_client.post(
        "/api/onboarding/start", {"banks": ["vbank", "abank", "sbank", "vbank"]}, format="json"
    )

    assert response.status_code == 202, response.content
    body = response.json()
    assert [bank["bank_code"] for bank in body["banks"]] == ["vbank", "abank", "sbank"]
    by_bank = {bank["bank_code"]: bank for bank in body["banks"]}
    # VBank and ABank approve at once: the first sync ran (Celery is eager in tests).
    for code in ("vbank", "abank"):
        assert by_bank[code]["connection_status"] == ConnectionStatus.READY, by_bank[code]
        assert by_bank[code]["sync"]["status"] == SyncStatus.SUCCEEDED
        assert by_bank[code]["sync"]["progress"] == 100
        assert by_bank[code]["sync"]["transactions_added"] > 0
    # SBank waits for the client's approval and says what to do.
    sbank = by_bank["sbank"]
    assert sbank["connection_status"] == ConnectionStatus.CONSENT_PENDING
    assert sbank["consent_status"] == ConsentStatus.PENDING
    assert sbank["sync"] is None
    action = sbank["action_required"]
    assert action["type"] == "approve_consent"
    assert "Smart Bank" in action["message"]
    assert action["approve_demo_url"] == f"/api/consents/{action['consent_id']}/approve-demo"
    assert body["can_proceed"] is True
    assert body["step"] == "consents"
    assert body["completed"] is False

    approved = auth_client.post(action["approve_demo_url"])
    # A worker approves (eager in tests: it ran once the request committed).
    assert approved.status_code == 202, approved.content
    request = approved.json()["connect_request"]
    assert (request["kind"], request["status"], request["outcome"]) == (
        "approve_demo",
        "succeeded",
        "sync_started",
    )
    assert approved.json()["consent"]["status"] == ConsentStatus.AUTHORIZED

    status = auth_client.get("/api/onboarding/status").json()

    assert status["step"] == "done"
    assert status["completed"] is True
    assert status["can_proceed"] is True
    assert {bank["connection_status"] for bank in status["banks"]} == {ConnectionStatus.READY}
    assert all(bank["action_required"] is None for bank in status["banks"])
    assert all(bank["last_error"] == "" for bank in status["banks"])
    assert OnboardingFlow.objects.get(user=user).completed_at is not None
    for code in ("vbank", "abank", "sbank"):
        assert_equals_ground_truth(user=user, bank_code=code)
