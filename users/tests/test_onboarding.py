"""Onboarding: validation, and from start to "can proceed" against the sandbox banks."""

import pytest

from banking.models import ConnectionStatus
from consents.models import ConsentStatus
from sync.models import SyncStatus
from sync.tests.ground_truth import assert_equals_ground_truth
from users.models import OnboardingFlow


def test_status_before_start_asks_to_choose_banks(auth_client):
    response = auth_client.get("/api/onboarding/status")

    assert response.status_code == 200
    assert response.json() == {
        "step": "choose_banks",
        "completed": False,
        "completed_at": None,
        "can_proceed": False,
        "banks": [],
    }


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
    assert approved.status_code == 200, approved.content

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
