"""SPEC §12 walked at every bank; every answer checked against the example shapes."""

import jwt
import pytest
from django.conf import settings

from sandbox.tests.conftest import FROZEN_AT, PERMISSIONS, example
from sandbox.tests.shapes import assert_shape

# The examples-style data: these tests compare its payloads with ../shared/bank-api/examples.
pytestmark = pytest.mark.usefixtures("examples_style")

BANKS = ["vbank", "abank", "sbank"]


@pytest.mark.parametrize("code", BANKS)
def test_spec_call_sequence_matches_the_examples(bank, code):
    b = bank(code)
    client_id = "team260-1"

    # 1. Token.
    response = b.post("/auth/bank-token", client_id=b.team, client_secret=settings.BANK_TEAM_SECRET)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    token_body = response.json()
    assert_shape(token_body, example("token.json"))
    assert token_body["token_type"] == "bearer"
    assert token_body["expires_in"] == 86400
    assert token_body["client_id"] == "team260"
    header = jwt.get_unverified_header(token_body["access_token"])
    assert header == {"alg": "HS256", "typ": "JWT"}
    claims = jwt.decode(token_body["access_token"], options={"verify_signature": False})
    assert claims == {"sub": "team260", "client_id": "team260", "type": "team", "iss": code,
                      "aud": "openbanking", "exp": int(FROZEN_AT.timestamp()) + 86400}  # fmt: skip
    token = token_body["access_token"]

    # 2. Account consent: auto at VBank/ABank, pending at SBank (then signed by the client).
    body = {"client_id": client_id, "permissions": PERMISSIONS, "reason": "FinTrack",
            "requesting_bank": b.team, "requesting_bank_name": "FinTrack"}  # fmt: skip
    headers = {**b.auth(token), "X-Requesting-Bank": b.team}
    response = b.post("/account-consents/request", body, headers=headers)
    assert response.status_code == 200
    requested = response.json()
    if code == "sbank":
        assert_shape(requested, example("consent_request_pending.json"))
        assert "consent_id" not in requested
        assert requested["status"] == "pending"
        assert requested["auto_approved"] is False
        client_token = b.login(client_id)
        response = b.post("/account-consents/sign",
                          {"request_id": requested["request_id"], "action": "approve",
                           "signature": "password"}, headers=b.auth(client_token))  # fmt: skip
        assert response.status_code == 200
        assert_shape(response.json(), example("consent_sign.json"))
        assert response.json()["granted_to"] == "team260"
        consent_id = response.json()["consent_id"]
    else:
        assert_shape(requested, example("consent_request.json"))
        assert requested["status"] == "approved"
        assert requested["message"] == "Согласие одобрено автоматически"
        consent_id = requested["consent_id"]
    assert requested["request_id"].startswith("req-") and len(requested["request_id"]) == 16
    assert consent_id.startswith("consent-") and len(consent_id) == 20

    response = b.get(f"/account-consents/{consent_id}", headers=b.auth(token))
    assert response.status_code == 200
    assert_shape(response.json(), example("consent_status.json"))
    assert response.json()["data"]["status"] == "Authorized"
    assert response.json()["data"]["permissions"] == PERMISSIONS
    assert response.json()["links"] == {"self": f"/account-consents/{consent_id}"}

    # 3. Accounts, balances, every transaction page.
    interbank = b.interbank(consent_id, token)
    response = b.get("/accounts", headers=interbank, client_id=client_id)
    assert response.status_code == 200
    assert_shape(response.json(), example("accounts.json"))
    accounts = response.json()["data"]["account"]
    assert {a["accountSubType"] for a in accounts} >= {"Checking"}
    for account in accounts:
        account_id = account["accountId"]
        expected_type = "Personal" if account["accountSubType"] == "Checking" else "Business"
        assert account["accountType"] == expected_type
        response = b.get(f"/accounts/{account_id}/balances", headers=interbank)
        assert response.status_code == 200
        assert_shape(response.json(), example("balances.json"))
        balance = response.json()["data"]["balance"]
        assert [item["type"] for item in balance] == ["InterimAvailable", "InterimBooked"]
        assert balance[0]["amount"] == balance[1]["amount"]
        page = 1
        while True:
            response = b.get(f"/accounts/{account_id}/transactions", headers=interbank,
                             page=page, limit=100)  # fmt: skip
            assert response.status_code == 200
            assert_shape(response.json(), example("transactions.json"))
            if "next" not in response.json()["links"]:
                break
            page += 1

    # 4–5. Product consent, agreements, agreement detail.
    response = b.post("/product-agreement-consents/request",
                      {"requesting_bank": b.team, "client_id": client_id,
                       "read_product_agreements": True}, headers=b.auth(token),
                      client_id=client_id)  # fmt: skip
    assert response.status_code == 200
    assert_shape(response.json(), example("product_agreement_consent_request.json"))
    product_consent = response.json()["consent_id"]
    assert product_consent.startswith("pagc-")
    assert response.json()["request_id"].startswith("pagcr-")
    headers = {**b.auth(token), "X-Requesting-Bank": b.team,
               "X-Product-Agreement-Consent-Id": product_consent}  # fmt: skip
    response = b.get("/product-agreements", headers=headers, client_id=client_id)
    assert response.status_code == 200
    assert_shape(response.json(), example("product_agreements.json"), nullable={"end_date"})
    agreements = response.json()["data"]
    assert response.json()["meta"] == {"total": len(agreements)}
    assert agreements, "client 1 has agreements at every bank"
    numbers = {a["account"][0]["identification"]: a for a in accounts}
    for agreement in agreements:
        response = b.get(f"/product-agreements/{agreement['agreement_id']}", headers=headers,
                         client_id=client_id)  # fmt: skip
        assert response.status_code == 200
        assert_shape(response.json(), example("product_agreement_detail.json"),
                     nullable={"end_date", "account_balance"})  # fmt: skip
        if agreement["status"] == "active":
            linked = numbers[agreement["account_number"]]
            assert linked["accountSubType"] in ("Loan", "Deposit")
            assert agreement["account_number"][:3] in ("423", "455")
            assert len(agreement["account_number"]) == 18

    # 6. Products.
    response = b.get("/products", headers=b.auth(token))
    assert response.status_code == 200
    assert_shape(response.json(), example("products.json"))
    response = b.get("/products", product_type="loan")
    assert {p["productType"] for p in response.json()["data"]["product"]} == {"loan"}


def test_root_answers_bank_info(bank):
    response = bank("abank").get("/")
    assert response.json() == {"bank": "Awesome Bank", "bank_code": "abank",
                               "api_version": "2.1", "status": "online"}  # fmt: skip


def test_revoke_answers_204_with_empty_body(bank):
    b = bank("vbank")
    consent_id = b.consent("team260-2")
    response = b.delete(f"/account-consents/{consent_id}", headers=b.auth())
    assert response.status_code == 204
    assert response.content == b""
    status = b.get(f"/account-consents/{consent_id}", headers=b.auth()).json()
    assert status["data"]["status"] == "Revoked"


def test_account_detail_has_no_identification_block(bank):
    b = bank("vbank")
    headers = b.interbank(b.consent("team260-1"))
    response = b.get("/accounts/acc-100010", headers=headers)
    assert response.status_code == 200
    account = response.json()["data"]["account"][0]
    assert account["accountType"] == "Personal"
    assert account["description"] == "checking account"
    assert "account" not in account


def test_product_detail_stringifies_every_value(bank):
    response = bank("vbank").get("/products/prod-d2b7c90e3f61")
    assert response.json()["data"] == {
        "productId": "prod-d2b7c90e3f61", "productType": "credit_card",
        "productName": "Кредитная карта Premium", "description": "Ставка 15.9%, кэшбэк 5%",
        "interestRate": "15.90", "minAmount": "None", "termMonths": None,
    }  # fmt: skip
    assert bank("vbank").get("/products/prod-nope").json() == {"detail": "Product not found"}


def test_responses_are_compact_utf8_json(bank):
    b = bank("vbank")
    response = b.get("/products")
    assert "Вклад".encode() in response.content
    assert b'": ' not in response.content[:200]
