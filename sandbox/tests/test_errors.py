"""Every SPEC §9 error the emulator produces, with its exact status and body."""

import jwt
import pytest
from django.conf import settings

from sandbox import clock
from sandbox.auth import issue_team_token
from sandbox.tests.conftest import FROZEN_AT, example

# Error bodies are the same in both data styles; the examples style keeps the client ids 1–10.
pytestmark = pytest.mark.usefixtures("examples_style")

ERRORS = example("errors.json")


def test_bank_token_bad_client_id_and_secret(bank):
    b = bank("vbank")
    response = b.post("/auth/bank-token", client_id="team999", client_secret="x")
    assert (response.status_code, response.json()) == (401, {"detail": "Invalid client_id"})
    response = b.post("/auth/bank-token", client_id=b.team, client_secret="wrong")
    assert (response.status_code, response.json()) == (401, ERRORS["bank_token_bad_secret__401"])


def test_bank_token_missing_query_param_is_a_422_list(bank):
    b = bank("vbank")
    response = b.post("/auth/bank-token", client_id=b.team)
    assert response.status_code == 422
    assert response.json() == ERRORS["bank_token_missing_query_param__422"]
    # A form body instead of the query string is the classic mistake: both fields missing.
    response = b.client.post("/sandbox/vbank/auth/bank-token",
                             {"client_id": b.team, "client_secret": "x"})  # fmt: skip
    assert response.status_code == 422
    assert [e["loc"] for e in response.json()["detail"]] == [
        ["query", "client_id"], ["query", "client_secret"]]  # fmt: skip


def test_no_authorization_header_is_403_not_authenticated(bank):
    b = bank("vbank")
    for path in ("/accounts", "/accounts/acc-100010/transactions", "/account-consents/x"):
        response = b.get(path, headers={"X-Requesting-Bank": b.team}, client_id="team260-1")
        assert (response.status_code, response.json()) == (
            403, ERRORS["no_authorization_header__403"])  # fmt: skip


def test_bad_foreign_and_expired_tokens_are_401(bank):
    b = bank("vbank")
    foreign = bank("abank").token()
    garbage = "not.a.jwt"
    claims = {"sub": "team260", "type": "team", "iss": "vbank", "aud": "openbanking",
              "exp": int(FROZEN_AT.timestamp()) + 100}  # fmt: skip
    forged = jwt.encode(claims, "a-guessed-key-that-is-long-enough-for-hs256", algorithm="HS256")
    for token in (foreign, garbage, forged):
        response = b.get("/accounts", headers={**b.auth(token), "X-Requesting-Bank": b.team},
                         client_id="team260-1")  # fmt: skip
        assert response.status_code == 401
        assert response.json() == ERRORS["expired_or_foreign_bank_token__401"]
        assert response["WWW-Authenticate"] == "Bearer"
    token = b.token()
    clock.advance(hours=24)
    response = b.get("/accounts", headers={**b.auth(token), "X-Requesting-Bank": b.team},
                     client_id="team260-1")  # fmt: skip
    assert response.status_code == 401


def test_token_is_valid_for_24_hours_of_sandbox_time(bank):
    b = bank("vbank")
    token = issue_team_token("vbank", FROZEN_AT)
    clock.advance(hours=23, minutes=59)
    response = b.get("/accounts", headers={**b.auth(token), "X-Requesting-Bank": b.team},
                     client_id="team260-1")  # fmt: skip
    assert response.status_code == 403  # authenticated, only the consent is missing


def test_bank_token_without_x_requesting_bank_on_accounts(bank):
    b = bank("vbank")
    response = b.get("/accounts", headers=b.auth(), client_id="team260-1")
    assert (response.status_code, response.json()) == (
        401, ERRORS["bank_token_without_x_requesting_bank_on_accounts__401"])  # fmt: skip


def test_interbank_without_client_id_is_400(bank):
    b = bank("vbank")
    response = b.get("/accounts", headers=b.interbank(b.consent("team260-1")))
    assert (response.status_code, response.json()) == (
        400, ERRORS["interbank_without_client_id__400"])  # fmt: skip


def test_missing_or_invalid_consent_bodies(bank):
    b = bank("vbank")
    headers = {**b.auth(), "X-Requesting-Bank": b.team}
    response = b.get("/accounts", headers=headers, client_id="team260-1")
    assert (response.status_code, response.json()) == (
        403, ERRORS["accounts_consent_missing_or_invalid__403"])  # fmt: skip
    response = b.get("/accounts/acc-100010/balances",
                     headers={**headers, "X-Consent-Id": "consent-000000000000"})  # fmt: skip
    assert (response.status_code, response.json()) == (
        403, ERRORS["balances_consent_missing_or_invalid__403"])  # fmt: skip
    # An unknown client fails the consent lookup first.
    response = b.get("/accounts", headers=headers, client_id="team260-99")
    assert response.status_code == 403


def test_limit_over_100_is_422(bank):
    b = bank("vbank")
    response = b.get("/accounts/acc-100010/transactions",
                     headers=b.interbank(b.consent("team260-1")), limit=500)  # fmt: skip
    assert (response.status_code, response.json()) == (
        422, ERRORS["transactions_limit_over_100__422"])  # fmt: skip


def test_unknown_account_is_404_and_malformed_is_plain_500(bank):
    b = bank("vbank")
    headers = b.interbank(b.consent("team260-1"))
    for account_id in ("acc-999999", "acc-200010", "acc-100019"):
        response = b.get(f"/accounts/{account_id}/balances", headers=headers)
        assert (response.status_code, response.json()) == (404, ERRORS["unknown_account__404"])
    for account_id in ("acc-abc", "12345", "acc-"):
        response = b.get(f"/accounts/{account_id}/transactions", headers=headers)
        assert response.status_code == 500
        assert response.content == b"Internal Server Error"
        assert response["Content-Type"].startswith("text/plain")


def test_unknown_client_on_consent_request_is_404(bank):
    b = bank("vbank")
    response = b.post("/account-consents/request",
                      {"client_id": "team260-99", "permissions": ["ReadBalances"]},
                      headers=b.auth())  # fmt: skip
    assert (response.status_code, response.json()) == (
        404, ERRORS["unknown_client_on_consent_request__404"])  # fmt: skip


def test_consent_request_missing_fields_is_422(bank):
    b = bank("vbank")
    response = b.post("/account-consents/request", {"client_id": "team260-1"}, headers=b.auth())
    assert response.status_code == 422
    assert response.json() == {"detail": [{"type": "missing", "loc": ["body", "permissions"],
                                           "msg": "Field required",
                                           "input": {"client_id": "team260-1"}}]}  # fmt: skip


def test_unknown_consent_is_404(bank):
    b = bank("vbank")
    response = b.get("/account-consents/consent-000000000000", headers=b.auth())
    assert (response.status_code, response.json()) == (404, ERRORS["unknown_consent__404"])


def test_product_consent_without_flags_is_400(bank):
    b = bank("vbank")
    body = {"requesting_bank": b.team, "client_id": "team260-1", "read_product_agreements": False}
    response = b.post("/product-agreement-consents/request", body, headers=b.auth(),
                      client_id="team260-1")  # fmt: skip
    assert (response.status_code, response.json()) == (400, ERRORS["product_consent_no_flags__400"])
    # The list form some teams sent is no flag at all.
    body = {"requesting_bank": b.team, "client_id": "team260-1",
            "permissions": ["read_product_agreements"]}  # fmt: skip
    response = b.post("/product-agreement-consents/request", body, headers=b.auth(),
                      client_id="team260-1")  # fmt: skip
    assert response.status_code == 400


def test_product_consent_needs_client_id_in_the_query(bank):
    b = bank("vbank")
    body = {"requesting_bank": b.team, "client_id": "team260-1", "read_product_agreements": True}
    response = b.post("/product-agreement-consents/request", body, headers=b.auth())
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["query", "client_id"]


def test_unknown_agreement_is_404_and_wrong_consent_header_is_403(bank):
    b = bank("vbank")
    consent_id = b.product_consent("team260-1")
    headers = {
        **b.auth(),
        "X-Requesting-Bank": b.team,
        "X-Product-Agreement-Consent-Id": consent_id,
    }
    response = b.get("/product-agreements/agr-000000000000", headers=headers, client_id="team260-1")
    assert (response.status_code, response.json()) == (404, {"detail": "Agreement not found"})
    # X-Consent-Id does not work here (SPEC §7).
    headers = {**b.auth(), "X-Requesting-Bank": b.team, "X-Consent-Id": consent_id}
    response = b.get("/product-agreements", headers=headers, client_id="team260-1")
    assert response.status_code == 403


def test_login_errors_and_own_client_mode(bank):
    b = bank("vbank")
    response = b.post("/auth/login", {"username": "team260-1", "password": "nope"})
    assert (response.status_code, response.json()) == (401, {"detail": "Invalid credentials"})
    token = b.login("team260-1")
    claims = jwt.decode(token, options={"verify_signature": False})
    assert (claims["sub"], claims["type"], claims["bank"]) == ("team260-1", "client", "self")
    response = b.get("/accounts", headers=b.auth(token))
    assert response.status_code == 200
    assert response.json()["data"]["account"][0]["accountId"] == "acc-100010"
    assert b.get("/accounts/acc-100020/balances", headers=b.auth(token)).status_code == 404


def test_unknown_route_and_method(bank):
    b = bank("vbank")
    assert b.get("/oauth2/token").json() == {"detail": "Not Found"}
    response = b.client.put("/sandbox/vbank/accounts", headers=b.auth())
    assert (response.status_code, response.json()) == (405, {"detail": "Method Not Allowed"})


def test_team_secret_is_the_configured_one(bank):
    response = bank("sbank").post("/auth/bank-token", client_id=settings.BANK_TEAM_ID,
                                  client_secret=settings.BANK_TEAM_SECRET)  # fmt: skip
    assert response.status_code == 200
