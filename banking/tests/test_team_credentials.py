"""Per-bank team credentials (SPEC §17): a team registered through a bank gets a different secret
at each bank. FinTrack reads `<BANK>_TEAM_ID` / `<BANK>_TEAM_SECRET`, each falling back to the
shared BANK_TEAM_ID / BANK_TEAM_SECRET, through banking.services.clients.team_credentials."""

import json

import pytest
import responses
from responses import matchers

from audit.models import RawApiLog
from banking.clients.errors import BankAuthError
from banking.exceptions import UnknownBank
from banking.services.clients import bank_client_for, team_credentials, team_secrets
from banking.services.tokens import bank_token_cache_clear

BANKS = ("vbank", "abank", "sbank")
BASES = {code: f"https://{code}.test" for code in BANKS}
SECRETS = {"vbank": "vb-secret-1111", "abank": "ab-secret-2222", "sbank": "sb-secret-3333"}
SHARED = "shared-secret-0000"
TOKEN = {"access_token": "tok", "token_type": "bearer", "expires_in": 86400}


@pytest.fixture(autouse=True)
def _banks(settings):
    settings.BANKS = {code: {"name": code, "base_url": BASES[code]} for code in BANKS}
    settings.BANK_TEAM_ID = "team260"
    settings.BANK_TEAM_SECRET = SHARED
    for code in BANKS:
        setattr(settings, f"{code.upper()}_TEAM_ID", "")
        setattr(settings, f"{code.upper()}_TEAM_SECRET", "")
    bank_token_cache_clear()
    yield
    bank_token_cache_clear()


@pytest.fixture
def per_bank_secrets(settings):
    for code, secret in SECRETS.items():
        setattr(settings, f"{code.upper()}_TEAM_SECRET", secret)
    return SECRETS


def _token_call(mock, code, team_id, secret):
    return mock.post(
        f"{BASES[code]}/auth/bank-token",
        json=TOKEN,
        match=[matchers.query_param_matcher({"client_id": team_id, "client_secret": secret})],
    )


def _products(mock, code):
    mock.get(f"{BASES[code]}/products", json={"data": {"product": []}})


# --- The helper ---------------------------------------------------------------------------------


def test_unset_per_bank_settings_fall_back_to_the_shared_pair():
    assert [team_credentials(code) for code in BANKS] == [("team260", SHARED)] * 3


def test_each_per_bank_setting_overrides_only_its_own_value(settings):
    settings.VBANK_TEAM_SECRET = SECRETS["vbank"]
    settings.ABANK_TEAM_ID = "team777"

    assert team_credentials("vbank") == ("team260", SECRETS["vbank"])
    assert team_credentials("abank") == ("team777", SHARED)
    assert team_credentials("sbank") == ("team260", SHARED)


def test_the_shared_pair_is_read_when_asked_not_at_start_up(settings):
    settings.BANK_TEAM_SECRET = "rotated-secret"

    assert team_credentials("sbank") == ("team260", "rotated-secret")


def test_an_unknown_bank_has_no_credentials():
    with pytest.raises(UnknownBank):
        team_credentials("xbank")


def test_team_secrets_lists_every_secret_in_use_once(settings, per_bank_secrets):
    settings.SBANK_TEAM_SECRET = ""  # SBank uses the shared one

    assert team_secrets() == [SHARED, SECRETS["vbank"], SECRETS["abank"]]
    settings.BANK_TEAM_SECRET = ""
    assert team_secrets() == [SECRETS["vbank"], SECRETS["abank"]]


# --- The client's calls ------------------------------------------------------------------------


@pytest.mark.django_db
def test_each_banks_token_request_carries_that_banks_id_and_secret(per_bank_secrets):
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        calls = {code: _token_call(mock, code, "team260", SECRETS[code]) for code in BANKS}
        for code in BANKS:
            _products(mock, code)

        for code in BANKS:
            bank_client_for(code).list_products()

    assert {code: call.call_count for code, call in calls.items()} == dict.fromkeys(BANKS, 1)


@pytest.mark.django_db
def test_banks_without_their_own_pair_ask_with_the_shared_one(settings):
    settings.VBANK_TEAM_SECRET = SECRETS["vbank"]
    settings.SBANK_TEAM_ID = "team777"
    expected = {"vbank": ("team260", SECRETS["vbank"]), "abank": ("team260", SHARED),
                "sbank": ("team777", SHARED)}  # fmt: skip

    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        for code, (team_id, secret) in expected.items():
            _token_call(mock, code, team_id, secret)
            _products(mock, code)

        for code in BANKS:
            bank_client_for(code).list_products()


@pytest.mark.django_db
def test_consent_requests_carry_that_banks_team_id_in_header_and_body(settings):
    settings.VBANK_TEAM_ID = "team777"
    approved = {"request_id": "req-1", "consent_id": "consent-1", "status": "approved",
                "created_at": "2025-11-06T13:21:06.556824", "auto_approved": True}  # fmt: skip

    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        for code, team_id in (("vbank", "team777"), ("abank", "team260")):
            _token_call(mock, code, team_id, SHARED)
            mock.post(
                f"{BASES[code]}/account-consents/request",
                json=approved,
                match=[
                    matchers.header_matcher({"X-Requesting-Bank": team_id}),
                    matchers.json_params_matcher(
                        {"requesting_bank": team_id, "client_id": "team260-1"},
                        strict_match=False,
                    ),
                ],
            )
            mock.get(
                f"{BASES[code]}/accounts",
                json={"data": {"account": []}},
                match=[
                    matchers.header_matcher(
                        {"X-Requesting-Bank": team_id, "X-Consent-Id": "consent-1"}
                    )
                ],
            )

        for code in ("vbank", "abank"):
            client = bank_client_for(code)
            assert client.request_account_consent(client_id="team260-1").consent_id == "consent-1"
            assert client.list_accounts(client_id="team260-1", consent_id="consent-1") == []


@pytest.mark.django_db
def test_the_demo_login_password_is_that_banks_secret(per_bank_secrets):
    signed = {"consent_id": "consent-9", "status": "active", "granted_to": "team260",
              "permissions": [], "expires_at": "2026-11-06T13:21:06.556824",
              "signed_at": "2025-11-06T13:21:06.556824"}  # fmt: skip

    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        mock.post(
            f"{BASES['sbank']}/auth/login",
            json={"access_token": "client-tok", "token_type": "bearer", "client_id": "team260-1"},
            match=[
                matchers.json_params_matcher(
                    {"username": "team260-1", "password": SECRETS["sbank"]}
                )
            ],
        )
        mock.post(f"{BASES['sbank']}/account-consents/sign", json=signed)

        result = bank_client_for("sbank").approve_account_consent_as_client(
            client_id="team260-1", request_id="req-1"
        )

    assert result.consent_id == "consent-9"


@pytest.mark.django_db
def test_a_per_bank_secret_echoed_by_a_bank_is_redacted_from_raw_logs(user, per_bank_secrets):
    echo = f"client_secret {SECRETS['abank']} is not ours"
    with responses.RequestsMock() as mock:
        mock.post(f"{BASES['abank']}/auth/bank-token", status=401, json={"detail": echo})

        with pytest.raises(BankAuthError):
            bank_client_for("abank", user=user).list_products()

    stored = json.dumps(list(RawApiLog.objects.values("endpoint", "payload", "error")))
    assert RawApiLog.objects.filter(bank_code="abank").exists()
    assert SECRETS["abank"] not in stored


# --- Production settings -----------------------------------------------------------------------


def test_production_takes_three_per_bank_secrets_instead_of_the_shared_one():
    from fintrack.core.tests.test_settings import PRODUCTION_ENV, run_django

    env = {k: v for k, v in PRODUCTION_ENV.items() if k != "BANK_TEAM_SECRET"}
    per_bank = {f"{code.upper()}_TEAM_SECRET": secret for code, secret in SECRETS.items()}

    assert run_django({**env, **per_bank}, "check").returncode == 0
    two_of_three = {k: v for k, v in per_bank.items() if k != "SBANK_TEAM_SECRET"}
    refused = run_django({**env, **two_of_three}, "check")
    assert refused.returncode != 0
    assert "BANK_TEAM_SECRET is required" in refused.stderr
    assert "VBANK_TEAM_SECRET, ABANK_TEAM_SECRET and SBANK_TEAM_SECRET" in refused.stderr


# --- End to end: the sandbox banks, three different secrets -------------------------------------


@pytest.mark.django_db(transaction=True)
def test_every_bank_syncs_with_its_own_secret(sandbox_banks, settings, make_user):
    """The sandbox banks check the same per-bank settings: with three different secrets (and a
    shared one no bank accepts any more) a user connects and syncs all three banks, SBank's
    pending consent signed with SBank's secret as the demo client's password."""
    from rest_framework.test import APIClient

    from banking.models import BankToken
    from consents.models import Consent, ConsentStatus
    from sync.models import SyncRun, SyncStatus
    from sync.tests.ground_truth import assert_equals_ground_truth
    from users.services import token_pair_for

    for code, secret in SECRETS.items():
        setattr(settings, f"{code.upper()}_TEAM_SECRET", secret)
    settings.BANK_TEAM_SECRET = "no-bank-takes-this-one"
    settings.DEMO_BANK_CLIENT_SELF_SIGN = True
    user = make_user()
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {token_pair_for(user)['access']}")

    for code in BANKS:
        response = api.post(f"/api/banks/{code}/connect")
        assert response.status_code in (200, 201, 202), response.content
        for consent in Consent.objects.filter(bank_code=code, status=ConsentStatus.PENDING):
            approved = api.post(f"/api/consents/{consent.pk}/approve-demo")
            assert approved.status_code == 202, approved.content  # a worker (eager) approved
            assert approved.json()["connect_request"]["status"] == "succeeded", approved.content

    runs = {run.connection.bank_code: run for run in SyncRun.objects.select_related("connection")}
    assert {code: run.status for code, run in runs.items()} == dict.fromkeys(
        BANKS, SyncStatus.SUCCEEDED
    ), {code: run.error for code, run in runs.items()}
    assert set(BankToken.objects.values_list("bank_code", flat=True)) == set(BANKS)
    for code in BANKS:
        assert_equals_ground_truth(user=user, bank_code=code)
        tokens = RawApiLog.objects.filter(bank_code=code, endpoint__startswith="/auth/bank-token")
        assert tokens.exists()
        assert {row.status_code for row in tokens if row.direction == "response"} == {200}
    stored = json.dumps(list(RawApiLog.objects.values("endpoint", "headers", "payload", "error")),
                        default=str)  # fmt: skip
    assert [secret for secret in SECRETS.values() if secret in stored] == []
