"""Account-consent lifecycle: SBank manual approval, the req- trap, revocation, expiry, modes."""

from sandbox import clock, services
from sandbox.tests.conftest import PERMISSIONS

CONSENT_403 = {"detail": {"error": "CONSENT_REQUIRED", "message": "Требуется согласие клиента",
                          "consent_request_url": "/account-consents/request"}}  # fmt: skip


def _request(b, client_id="team260-1", permissions=PERMISSIONS):
    body = {"client_id": client_id, "permissions": permissions, "requesting_bank": b.team}
    response = b.post("/account-consents/request", body,
                      headers={**b.auth(), "X-Requesting-Bank": b.team})  # fmt: skip
    assert response.status_code == 200
    return response.json()


def test_sbank_request_waits_and_sign_returns_a_new_consent_id(bank):
    b = bank("sbank")
    pending = _request(b)
    assert pending["status"] == "pending"
    assert pending["message"] == "Запрос отправлен на одобрение"
    request_id = pending["request_id"]
    before = b.get(f"/account-consents/{request_id}", headers=b.auth()).json()["data"]
    assert before["status"] == "AwaitingAuthorization"
    assert before["consentId"] == request_id

    signed = b.post("/account-consents/sign",
                    {"request_id": request_id, "action": "approve", "signature": "x"},
                    headers=b.auth(b.login("team260-1")))  # fmt: skip
    assert signed.status_code == 200
    consent_id = signed.json()["consent_id"]
    assert consent_id != request_id and consent_id.startswith("consent-")
    assert signed.json()["status"] == "active"
    assert signed.json()["permissions"] == PERMISSIONS

    # The trap of SPEC §16: the request id keeps answering AwaitingAuthorization.
    after = b.get(f"/account-consents/{request_id}", headers=b.auth()).json()["data"]
    assert after["status"] == "AwaitingAuthorization"
    assert after["consentId"] == request_id
    # The new consent works for data calls.
    response = b.get("/accounts", headers=b.interbank(consent_id), client_id="team260-1")
    assert response.status_code == 200


def test_signing_twice_is_404(bank):
    b = bank("sbank")
    request_id = _request(b)["request_id"]
    client_token = b.login("team260-1")
    body = {"request_id": request_id, "action": "approve", "signature": "x"}
    assert b.post("/account-consents/sign", body, headers=b.auth(client_token)).status_code == 200
    again = b.post("/account-consents/sign", body, headers=b.auth(client_token))
    assert again.status_code == 404
    assert again.json() == {
        "detail": f"Consent request {request_id} not found or already processed"
    }


def test_authorize_route_approves_with_the_client_token(bank):
    b = bank("sbank")
    request_id = _request(b)["request_id"]
    response = b.post(f"/account-consents/{request_id}/authorize",
                      headers=b.auth(b.login("team260-1")), action="approve")  # fmt: skip
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"consentId", "status", "message", "permissions", "expiresAt"}
    assert body["status"] == "Authorized"
    response = b.get("/accounts", headers=b.interbank(body["consentId"]), client_id="team260-1")
    assert response.status_code == 200


def test_reject_leaves_no_consent(bank):
    b = bank("sbank")
    request_id = _request(b)["request_id"]
    response = b.post("/account-consents/sign", {"request_id": request_id, "action": "reject"},
                      headers=b.auth(b.login("team260-1")))  # fmt: skip
    assert response.json() == {"request_id": request_id, "status": "rejected"}
    status = b.get(f"/account-consents/{request_id}", headers=b.auth()).json()["data"]["status"]
    assert status == "AwaitingAuthorization"


def test_another_client_cannot_sign_the_request(bank):
    b = bank("sbank")
    request_id = _request(b, "team260-1")["request_id"]
    response = b.post("/account-consents/sign", {"request_id": request_id, "action": "approve"},
                      headers=b.auth(b.login("team260-2")))  # fmt: skip
    assert response.status_code == 404


def test_sign_with_a_team_token_is_insufficient(bank):
    b = bank("sbank")
    request_id = _request(b)["request_id"]
    response = b.post("/account-consents/sign", {"request_id": request_id, "action": "approve"},
                      headers=b.auth())  # fmt: skip
    assert response.status_code == 401
    assert response.json() == {"detail": "Insufficient permissions"}


def test_approval_mode_is_switchable_per_bank(bank):
    services.set_approval_mode("vbank", account_consents="manual")
    services.set_approval_mode("sbank", account_consents="auto")
    assert _request(bank("vbank"))["status"] == "pending"
    assert _request(bank("sbank"))["status"] == "approved"
    services.set_approval_mode("vbank", account_consents="default")
    assert _request(bank("vbank"))["status"] == "approved"


def test_revoked_consent_gets_403_on_data_calls(bank):
    b = bank("vbank")
    consent_id = b.consent("team260-1")
    assert b.delete(f"/account-consents/{consent_id}", headers=b.auth()).status_code == 204
    response = b.get("/accounts", headers=b.interbank(consent_id), client_id="team260-1")
    assert response.status_code == 403
    assert response.json() == CONSENT_403


def test_request_id_cannot_be_revoked(bank):
    b = bank("sbank")
    request_id = _request(b)["request_id"]
    response = b.delete(f"/account-consents/{request_id}", headers=b.auth())
    assert response.status_code == 404
    assert response.json() == {"detail": "Consent not found"}


def test_expired_consent_still_shows_authorized_but_data_calls_fail(bank):
    b = bank("vbank")
    consent_id = b.consent("team260-1")
    status = b.get(f"/account-consents/{consent_id}", headers=b.auth()).json()["data"]
    assert status["expirationDateTime"] == "2026-11-26T12:00:00.123456Z"
    clock.advance(days=364)
    response = b.get("/accounts", headers=b.interbank(consent_id), client_id="team260-1")
    assert response.status_code == 200
    clock.advance(days=1)
    response = b.get("/accounts", headers=b.interbank(consent_id), client_id="team260-1")
    assert response.status_code == 403
    status = b.get(f"/account-consents/{consent_id}", headers=b.auth()).json()["data"]
    assert status["status"] == "Authorized"


def test_consent_is_bound_to_grantee_client_and_permissions(bank):
    b = bank("vbank")
    consent_id = b.consent("team260-1", permissions=["ReadAccountsDetail"])
    headers = b.interbank(consent_id)
    assert b.get("/accounts", headers=headers, client_id="team260-1").status_code == 200
    assert b.get("/accounts", headers=headers, client_id="team260-2").status_code == 403
    foreign = {**headers, "X-Requesting-Bank": "team999"}
    assert b.get("/accounts", headers=foreign, client_id="team260-1").status_code == 403
    response = b.get("/accounts/acc-100010/balances", headers=headers)
    assert response.status_code == 403
    assert response.json() == {"detail": {"error": "CONSENT_REQUIRED",
                                          "message": "Требуется согласие клиента для доступа к балансу"}}  # fmt: skip  # noqa: E501
    response = b.get("/accounts/acc-100010/transactions", headers=headers)
    assert response.json()["detail"]["message"] == (
        "Требуется согласие клиента для доступа к транзакциям"
    )


def test_consent_of_one_bank_is_unknown_at_another(bank):
    consent_id = bank("vbank").consent("team260-1")
    b = bank("abank")
    response = b.get("/accounts", headers=b.interbank(consent_id), client_id="team260-1")
    assert response.status_code == 403
    assert b.get(f"/account-consents/{consent_id}", headers=b.auth()).status_code == 404


def test_grantee_falls_back_to_body_then_test_bank(bank):
    b = bank("vbank")
    body = {"client_id": "team260-1", "permissions": PERMISSIONS}
    consent_id = b.post("/account-consents/request", body, headers=b.auth()).json()["consent_id"]
    headers = {**b.interbank(consent_id), "X-Requesting-Bank": "test_bank"}
    assert b.get("/accounts", headers=headers, client_id="team260-1").status_code == 200


def test_sbank_product_consent_manual_then_signed(bank):
    b = bank("sbank")
    services.set_approval_mode("sbank", product_consents="manual")
    body = {"requesting_bank": b.team, "client_id": "team260-1", "read_product_agreements": True}
    response = b.post("/product-agreement-consents/request", body, headers=b.auth(),
                      client_id="team260-1")  # fmt: skip
    assert response.json()["status"] == "pending"
    assert response.json()["consent_id"] is None
    request_id = response.json()["request_id"]
    status = b.get(f"/product-agreement-consents/{request_id}", headers=b.auth()).json()
    assert status["status"] == "pending" and status["consent_id"] is None
    signed = b.post("/product-agreement-consents/sign",
                    {"request_id": request_id, "action": "approve"},
                    headers=b.auth(b.login("team260-1")))  # fmt: skip
    consent_id = signed.json()["consent_id"]
    assert consent_id.startswith("pagc-")
    headers = {
        **b.auth(),
        "X-Requesting-Bank": b.team,
        "X-Product-Agreement-Consent-Id": consent_id,
    }
    assert b.get("/product-agreements", headers=headers, client_id="team260-1").status_code == 200


def test_product_consent_detail_and_revoke(bank):
    b = bank("abank")
    consent_id = b.product_consent("team260-1")
    body = b.get(f"/product-agreement-consents/{consent_id}", headers=b.auth()).json()
    assert body["status"] == "active"
    assert body["granted_to"] == "team260"
    assert body["read_product_agreements"] is True
    assert body["open_product_agreements"] is False
    assert (
        b.delete(f"/product-agreement-consents/{consent_id}", headers=b.auth()).status_code == 204
    )
    headers = {
        **b.auth(),
        "X-Requesting-Bank": b.team,
        "X-Product-Agreement-Consent-Id": consent_id,
    }
    response = b.get("/product-agreements", headers=headers, client_id="team260-1")
    assert response.status_code == 403
    assert response.json()["detail"]["error"] == "CONSENT_REQUIRED"
