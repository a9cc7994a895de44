"""Per-bank team credentials (SPEC §17): a team registered through a bank gets a different secret
at each bank, so each sandbox bank checks `POST /auth/bank-token` (SPEC §2.1) and the demo
clients' password (SPEC §2.2) against its own `<BANK>_TEAM_*` settings, falling back to the
shared BANK_TEAM_ID / BANK_TEAM_SECRET when they are unset."""

import jwt
import pytest

from sandbox.tests.conftest import PERMISSIONS

BANKS = ("vbank", "abank", "sbank")
SECRETS = {"vbank": "vb-secret-1111", "abank": "ab-secret-2222", "sbank": "sb-secret-3333"}
INVALID_SECRET = {"detail": "Invalid client_secret"}


@pytest.fixture
def per_bank_secrets(settings):
    settings.BANK_TEAM_ID = "team260"
    settings.BANK_TEAM_SECRET = "shared-secret-0000"
    for code, secret in SECRETS.items():
        setattr(settings, f"{code.upper()}_TEAM_SECRET", secret)
    return SECRETS


def _token(b, secret, team="team260"):
    return b.post("/auth/bank-token", client_id=team, client_secret=secret)


@pytest.mark.parametrize("code", BANKS)
def test_each_bank_accepts_only_its_own_secret(bank, per_bank_secrets, code):
    b = bank(code)

    response = _token(b, per_bank_secrets[code])
    assert response.status_code == 200, response.content
    claims = jwt.decode(response.json()["access_token"], options={"verify_signature": False})
    assert (claims["sub"], claims["client_id"], claims["iss"]) == ("team260", "team260", code)

    for other in BANKS:
        if other != code:
            response = _token(b, per_bank_secrets[other])
            assert (response.status_code, response.json()) == (401, INVALID_SECRET), other
    # The shared secret is no longer this bank's once it has its own.
    response = _token(b, "shared-secret-0000")
    assert (response.status_code, response.json()) == (401, INVALID_SECRET)


def test_a_vbank_secret_at_abank_is_refused_exactly_as_the_spec_says(bank, per_bank_secrets):
    response = _token(bank("abank"), per_bank_secrets["vbank"])

    assert response.status_code == 401
    assert response.content.decode() == '{"detail":"Invalid client_secret"}'


def test_a_bank_without_its_own_secret_takes_the_shared_one(bank, settings):
    settings.BANK_TEAM_SECRET = "shared-secret-0000"
    settings.VBANK_TEAM_SECRET = SECRETS["vbank"]
    settings.ABANK_TEAM_SECRET = ""
    settings.SBANK_TEAM_SECRET = ""

    assert _token(bank("vbank"), SECRETS["vbank"]).status_code == 200
    for code in ("abank", "sbank"):
        assert _token(bank(code), "shared-secret-0000").status_code == 200
        response = _token(bank(code), SECRETS["vbank"])
        assert (response.status_code, response.json()) == (401, INVALID_SECRET)


def test_zero_configuration_every_bank_takes_the_shared_secret(bank, settings):
    for code in BANKS:
        assert getattr(settings, f"{code.upper()}_TEAM_SECRET") == ""
        assert getattr(settings, f"{code.upper()}_TEAM_ID") == ""
        response = _token(bank(code), settings.BANK_TEAM_SECRET, settings.BANK_TEAM_ID)
        assert response.status_code == 200


def test_each_bank_checks_its_own_team_id(bank, settings, per_bank_secrets):
    settings.VBANK_TEAM_ID = "team777"

    response = _token(bank("vbank"), per_bank_secrets["vbank"], team="team777")
    assert response.status_code == 200, response.content
    assert response.json()["client_id"] == "team777"
    claims = jwt.decode(response.json()["access_token"], options={"verify_signature": False})
    assert claims["sub"] == "team777"

    response = _token(bank("vbank"), per_bank_secrets["vbank"], team="team260")
    assert (response.status_code, response.json()) == (401, {"detail": "Invalid client_id"})
    response = _token(bank("abank"), per_bank_secrets["abank"], team="team777")
    assert (response.status_code, response.json()) == (401, {"detail": "Invalid client_id"})


@pytest.mark.parametrize("code", BANKS)
def test_client_password_is_the_team_secret_at_that_bank(bank, per_bank_secrets, code):
    b = bank(code)
    for other, secret in per_bank_secrets.items():
        response = b.post("/auth/login", {"username": "team260-1", "password": secret})
        if other == code:
            assert response.status_code == 200, response.content
            assert response.json()["client_id"] == "team260-1"
        else:
            assert (response.status_code, response.json()) == (
                401, {"detail": "Invalid credentials"})  # fmt: skip


def test_a_token_got_with_the_banks_own_secret_works_there(bank, per_bank_secrets):
    b = bank("sbank")
    token = _token(b, per_bank_secrets["sbank"]).json()["access_token"]
    body = {"client_id": "team260-1", "permissions": PERMISSIONS, "requesting_bank": "team260"}

    response = b.post("/account-consents/request", body,
                      headers={**b.auth(token), "X-Requesting-Bank": "team260"})  # fmt: skip

    assert response.status_code == 200, response.content
    assert response.json()["status"] == "pending"
