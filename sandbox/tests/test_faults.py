"""Each fault switch does what it says; none is on by default; the dice replay."""

import json
import time

import pytest
from django.test import override_settings

from sandbox import clock, faults


def _statuses(b, count=20):
    return [b.get("/products").status_code for _ in range(count)]


def test_no_fault_is_on_by_default(bank):
    described = faults.describe("vbank")
    assert described["error_rate"] == described["rate_limit_rate"] == described["hang_rate"] == 0
    assert described["latency_ms"] == 0 and described["token_max_age_seconds"] is None
    assert set(_statuses(bank("vbank"))) == {200}


def test_latency_is_added(bank):
    faults.set_faults("vbank", latency_ms=120)
    started = time.monotonic()
    assert bank("vbank").get("/products").status_code == 200
    assert time.monotonic() - started >= 0.12


@pytest.mark.parametrize("status", [502, 503])
def test_gateway_errors_answer_html(bank, status):
    faults.set_faults("vbank", error_rate=1.0, error_statuses=str(status))
    response = bank("vbank").get("/products")
    assert response.status_code == status
    assert response["Content-Type"] == "text/html"
    assert b"nginx" in response.content


def test_500_answers_plain_text(bank):
    faults.set_faults("vbank", error_rate=1.0, error_statuses="500")
    response = bank("vbank").get("/products")
    assert (response.status_code, response.content) == (500, b"Internal Server Error")


def test_error_rate_is_a_share_and_replays_with_the_same_seed(bank):
    b = bank("vbank")
    faults.set_faults("vbank", error_rate=0.5, rng_seed=7)
    first = _statuses(b, 40)
    assert 5 < first.count(200) < 35
    assert set(first) <= {200, 500, 502, 503}
    faults.set_faults("vbank", error_rate=0.5, rng_seed=7)  # re-saving restarts the dice
    assert _statuses(b, 40) == first
    faults.set_faults("vbank", rng_seed=8)
    assert _statuses(b, 40) != first


def test_rate_limit_answers_429_with_retry_after(bank):
    faults.set_faults("sbank", rate_limit_rate=1.0, retry_after_seconds=7)
    response = bank("sbank").get("/products")
    assert response.status_code == 429
    assert response["Retry-After"] == "7"
    with pytest.raises(ValueError):
        json.loads(response.content)


def test_hang_sleeps_then_answers(bank):
    faults.set_faults("abank", hang_rate=1.0, hang_seconds=0.3)
    started = time.monotonic()
    assert bank("abank").get("/products").status_code == 200
    assert time.monotonic() - started >= 0.3


def test_malformed_body_is_truncated_json(bank):
    faults.set_faults("vbank", malformed_rate=1.0)
    response = bank("vbank").get("/products")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    with pytest.raises(ValueError):
        json.loads(response.content)


def test_tokens_expire_early_by_age(bank):
    b = bank("vbank")
    consent_id = b.consent("team260-1")
    token = b.token()
    faults.set_faults("vbank", token_max_age_seconds=60)
    headers = b.interbank(consent_id, token)
    assert b.get("/accounts", headers=headers, client_id="team260-1").status_code == 200
    clock.advance(seconds=61)
    response = b.get("/accounts", headers=headers, client_id="team260-1")
    assert (response.status_code, response.json()) == (
        401, {"detail": "Could not validate credentials"})  # fmt: skip
    fresh = b.interbank(consent_id)
    assert b.get("/accounts", headers=fresh, client_id="team260-1").status_code == 200


def test_tokens_issued_before_a_cutoff_are_rejected(bank):
    b = bank("vbank")
    consent_id = b.consent("team260-1")
    old = b.token()
    clock.advance(seconds=5)
    faults.set_faults("vbank", tokens_issued_before=clock.now())
    response = b.get("/accounts", headers=b.interbank(consent_id, old), client_id="team260-1")
    assert response.status_code == 401
    clock.advance(seconds=1)
    response = b.get("/accounts", headers=b.interbank(consent_id), client_id="team260-1")
    assert response.status_code == 200


def test_consent_revoked_at_the_bank(bank):
    b = bank("vbank")
    consent_id = b.consent("team260-1")
    other = b.consent("team260-2")
    assert faults.revoke_consents("vbank", consent_id=consent_id) == 1
    response = b.get("/accounts", headers=b.interbank(consent_id), client_id="team260-1")
    assert response.status_code == 403
    assert response.json()["detail"]["error"] == "CONSENT_REQUIRED"
    status = b.get(f"/account-consents/{consent_id}", headers=b.auth()).json()["data"]["status"]
    assert status == "Revoked"
    assert b.get("/accounts", headers=b.interbank(other), client_id="team260-2").status_code == 200


def test_all_consents_of_a_client_revoked_at_the_bank(bank):
    b = bank("abank")
    b.consent("team260-1")
    b.consent("team260-1")
    b.product_consent("team260-1")
    kept = b.consent("team260-2")
    assert faults.revoke_consents("abank", client_id="team260-1") == 3
    assert b.get("/accounts", headers=b.interbank(kept), client_id="team260-2").status_code == 200


def test_faults_stay_at_their_bank(bank):
    faults.set_faults("vbank", error_rate=1.0)
    assert set(_statuses(bank("abank"), 5)) == {200}
    faults.clear_faults("vbank")
    assert set(_statuses(bank("vbank"), 5)) == {200}


@override_settings(SANDBOX_FAULTS="abank:error_rate=1,error_statuses=502;sbank:latency_ms=0")
def test_faults_from_settings(bank):
    assert set(_statuses(bank("abank"), 3)) == {502}
    assert set(_statuses(bank("vbank"), 3)) == {200}


def test_unknown_switch_is_refused():
    with pytest.raises(ValueError):
        faults.set_faults("vbank", explode=True)
