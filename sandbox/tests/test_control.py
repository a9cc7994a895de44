"""The control API (faults, clock, approval, volume, reset, truth), its credential (a staff
session or SANDBOX_CONTROL_TOKEN), and the stand-alone URLconf."""

import json

import pytest
from django.test import Client, override_settings

from sandbox import clock
from sandbox.models import AccountConsent, FaultConfig
from sandbox.tests.conftest import FROZEN_AT
from sandbox.views.control import CONTROL_TOKEN_HEADER

CONTROL_TOKEN = "test-control-token-0123456789"
# One request per control route: (method, path).
CONTROL_ROUTES = [
    ("get", "faults/vbank"),
    ("post", "faults/vbank"),
    ("get", "approval/vbank"),
    ("post", "approval/vbank"),
    ("get", "clock"),
    ("post", "clock"),
    ("get", "volume/team260-1"),
    ("post", "volume/team260-1"),
    ("post", "reset"),
    ("get", "truth/vbank/team260-1"),
]


@pytest.fixture
def client(settings):
    """A client that sends the control token, as the tests and bench/ scripts do."""
    settings.SANDBOX_CONTROL_TOKEN = CONTROL_TOKEN
    return Client(headers={CONTROL_TOKEN_HEADER: CONTROL_TOKEN})


def _call(client, method, path, **extra):
    return getattr(client, method)(
        f"/sandbox/_control/{path}", "{}" if method == "post" else None,
        content_type="application/json", **extra
    )  # fmt: skip


@pytest.mark.parametrize(("method", "path"), CONTROL_ROUTES)
def test_every_control_route_needs_a_credential(settings, method, path):
    settings.SANDBOX_CONTROL_TOKEN = CONTROL_TOKEN
    anonymous = _call(Client(), method, path)
    assert anonymous.status_code == 401
    assert anonymous.headers["WWW-Authenticate"] == CONTROL_TOKEN_HEADER
    wrong = _call(Client(headers={CONTROL_TOKEN_HEADER: "guess"}), method, path)
    assert wrong.status_code == 403
    assert (
        _call(Client(headers={CONTROL_TOKEN_HEADER: CONTROL_TOKEN}), method, path).status_code
        == 200
    )


def test_an_unset_token_lets_no_token_in(settings):
    settings.SANDBOX_CONTROL_TOKEN = ""
    assert _call(Client(), "get", "clock").status_code == 401
    assert _call(Client(headers={CONTROL_TOKEN_HEADER: ""}), "get", "clock").status_code == 401
    assert _call(Client(headers={CONTROL_TOKEN_HEADER: "x"}), "get", "clock").status_code == 403


def test_a_staff_session_gets_in_and_a_non_staff_one_does_not(settings, make_user):
    settings.SANDBOX_CONTROL_TOKEN = ""
    staff = make_user(email="ops@example.com", is_staff=True)
    person = make_user(email="anna@example.com")
    browser = Client()
    browser.force_login(person)
    assert _call(browser, "get", "clock").status_code == 403
    browser.force_login(staff)
    assert _call(browser, "get", "clock").status_code == 200
    assert _call(browser, "post", "clock").status_code == 200


def test_a_staff_session_needs_the_csrf_token_for_changes(make_user):
    staff = make_user(email="ops@example.com", is_staff=True)
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(staff)
    assert _call(browser, "get", "clock").status_code == 200
    assert _call(browser, "post", "clock").status_code == 403


def _post(client, path, body):
    return client.post(f"/sandbox/_control/{path}", json.dumps(body),
                       content_type="application/json")  # fmt: skip


def test_fault_switches_over_http(client, bank):
    response = _post(client, "faults/vbank", {"error_rate": 1, "error_statuses": "503"})
    assert response.status_code == 200
    assert response.json()["error_rate"] == 1
    assert bank("vbank").get("/products").status_code == 503
    assert client.get("/sandbox/_control/faults/vbank").json()["error_statuses"] == "503"
    _post(client, "faults/vbank", {"clear": True})
    assert bank("vbank").get("/products").status_code == 200
    assert _post(client, "faults/vbank", {"nonsense": 1}).status_code == 400
    assert _post(client, "faults/xbank", {"error_rate": 1}).status_code == 404


def test_revoke_and_token_cutoff_over_http(client, bank):
    b = bank("vbank")
    consent_id = b.consent("team260-1")
    response = _post(client, "faults/vbank", {"revoke_consent": consent_id})
    assert response.json()["revoked"] == 1
    assert AccountConsent.objects.get(consent_id=consent_id).status == "revoked"
    token = b.token()
    _post(client, "faults/vbank", {"tokens_issued_before": "now"})
    clock.advance(seconds=1)
    assert b.get("/accounts", headers=b.interbank(consent_id, token)).status_code == 401


def test_clock_over_http(client):
    body = _post(client, "clock", {"days": 1, "hours": 2}).json()
    assert body["now"] == "2025-11-27T14:00:00.123456Z"
    assert body["anchor"] == "2025-11-26"
    body = _post(client, "clock", {"freeze_at": "2026-01-01T00:00:00.000001Z"}).json()
    assert body["now"] == "2026-01-01T00:00:00.000001Z"
    assert client.get("/sandbox/_control/clock").json()["now"] == body["now"]


def test_approval_and_volume_over_http(client, bank):
    body = _post(client, "approval/vbank", {"account_consents": "manual"}).json()
    assert body == {"bank": "vbank", "account_consents": "manual", "product_consents": "auto"}
    b = bank("vbank")
    response = b.post("/account-consents/request",
                      {"client_id": "team260-1", "permissions": ["ReadBalances"]},
                      headers=b.auth())  # fmt: skip
    assert response.json()["status"] == "pending"
    body = _post(client, "volume/team260-9", {"transactions_per_year": 20000}).json()
    assert body == {"client_id": "team260-9", "transactions_per_year": 20000, "history_months": 12}


def test_reset_clears_state(client, bank):
    bank("vbank").consent("team260-1")
    _post(client, "faults/sbank", {"latency_ms": 5})
    body = _post(client, "reset", {"at": FROZEN_AT.isoformat()}).json()
    assert body["now"] == "2025-11-26T12:00:00.123456Z"
    assert not AccountConsent.objects.exists()
    assert not FaultConfig.objects.exists()


def test_truth_over_http(client):
    body = client.get("/sandbox/_control/truth/vbank/team260-1").json()
    # Live style: one acc-NNNN per client at every bank (client 1 → acc-0010).
    assert body["accounts"][0]["accountId"] == "acc-0010"
    assert set(body) >= {"accounts", "balances", "transactions", "agreements"}


@override_settings(ROOT_URLCONF="sandbox.server_urls")
def test_stand_alone_server_serves_only_the_sandbox(client):
    assert client.get("/vbank/").json()["bank_code"] == "vbank"
    assert client.get("/sandbox/sbank/").json()["bank_code"] == "sbank"
    assert client.get("/api/health").status_code == 404
