"""Secrets stay secret: after a full sync of every sandbox bank driven through the API, no bank
token, team secret, client token or password shows in any API response, error message, stored
log or audit event; bank tokens are ciphertext in a database dump; a bank that refuses our
secret gets it back in no error. (Raw-log redaction itself: audit/tests/test_no_secrets_in_logs.py;
`check --deploy`: fintrack/core/tests/test_settings.py.)"""

import json
import re
from types import SimpleNamespace

import pytest
from django.db import connection as db_connection
from rest_framework.test import APIClient

from audit.models import AuditEvent, RawApiLog
from banking.models import BankConnection, BankToken
from banking.services.tokens import bank_token_cache_clear
from consents.models import Consent
from sync.models import SyncRun, SyncStatus
from users.services import token_pair_for

pytestmark = pytest.mark.django_db(transaction=True)

TEAM_SECRET = "team-secret-Hq27vNc0Xe"
PASSWORD = "Anna-Secret-Pass-9431"
JWT = re.compile(r"eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*")


@pytest.fixture
def sandbox(sandbox_banks, settings):
    """The sandbox banks, with a distinctive team secret to search the logs for."""
    settings.BANK_TEAM_SECRET = TEAM_SECRET
    bank_token_cache_clear()
    yield sandbox_banks
    bank_token_cache_clear()


@pytest.fixture
def client_tokens(bank_client_tokens):
    return bank_client_tokens


def _api_for(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token_pair_for(user)['access']}")
    return client


def _connect_every_bank_through_the_api(api: APIClient) -> list[dict]:
    """POST connect for each bank, approving SBank's pending consent the demo way."""
    bodies = []
    for bank_code in ("vbank", "abank", "sbank"):
        response = api.post(f"/api/banks/{bank_code}/connect")
        assert response.status_code in (200, 201, 202), response.content
        bodies.append(response.json())
        for consent in Consent.objects.filter(bank_code=bank_code, status="pending"):
            approved = api.post(f"/api/consents/{consent.pk}/approve-demo")  # starts the sync
            bodies.append(approved.json())
            assert approved.status_code == 202, approved.content  # a worker (eager) approved
            assert approved.json()["connect_request"]["status"] == "succeeded", approved.content
    return bodies


def _everything_a_user_can_read(api: APIClient, staff_api: APIClient) -> list[str]:
    from django.urls import reverse

    texts = []
    for path in (
        "/api/auth/me", "/api/banks", "/api/accounts", "/api/transactions?page_size=500",
        "/api/transactions/summary", "/api/consents", "/api/sync-runs", "/api/dashboard",
        "/api/analytics", "/api/debts", "/api/debts/next-payment", "/api/products",
        "/api/onboarding/status", "/api/banks/vbank/status", "/api/banks/sbank/status",
    ):  # fmt: skip
        texts.append(api.get(path).content.decode())
    for run in SyncRun.objects.all():
        texts.append(api.get(f"/api/sync-runs/{run.pk}").content.decode())
    texts.append(staff_api.get(reverse("schema")).content.decode())
    texts.append(staff_api.get("/api/admin/raw-logs?page_size=500").content.decode())
    return texts


def _stored_texts() -> str:
    rows = [
        list(RawApiLog.objects.values("endpoint", "headers", "payload", "error")),
        list(AuditEvent.objects.values("details")),
        list(SyncRun.objects.values("error", "warnings")),
        list(BankConnection.objects.values("last_error")),
        list(Consent.objects.values("raw_response", "status_reason")),
    ]
    return json.dumps(rows, ensure_ascii=False, default=str)


def test_no_secret_in_any_response_error_log_or_event_after_a_full_sync(
    sandbox, make_user, client_tokens
):
    user = make_user(email="anna@example.com", password=PASSWORD)
    staff = make_user(email="ops@example.com", is_staff=True)
    api, staff_api = _api_for(user), _api_for(staff)
    login = APIClient().post(
        "/api/auth/login", {"login": "anna@example.com", "password": PASSWORD}, format="json"
    )
    assert login.status_code == 200

    bodies = _connect_every_bank_through_the_api(api)

    assert SyncRun.objects.filter(status=SyncStatus.SUCCEEDED).count() == 3
    bank_tokens = list(BankToken.objects.values_list("access_token", flat=True))
    assert len(bank_tokens) == 3 and client_tokens
    secrets = {TEAM_SECRET, PASSWORD, user.password, *bank_tokens, *client_tokens}
    seen = "\n".join(
        [json.dumps(bodies), *_everything_a_user_can_read(api, staff_api), _stored_texts()]
    )
    assert len(seen) > 100_000  # every response and table above really holds the sync's data
    assert [secret for secret in secrets if secret in seen] == []
    # No JWT at all, except the user's own tokens in their login answer (not scanned above).
    assert JWT.findall(seen) == []


def test_bank_tokens_and_passwords_are_unreadable_in_a_database_dump(
    sandbox, make_user, client_tokens
):
    user = make_user(email="anna@example.com", password=PASSWORD)
    _connect_every_bank_through_the_api(_api_for(user))
    tokens = dict(BankToken.objects.values_list("bank_code", "access_token"))
    assert set(tokens) == {"vbank", "abank", "sbank"}

    with db_connection.cursor() as cursor:
        cursor.execute("SELECT bank_code, access_token FROM bank_tokens")
        dumped = dict(cursor.fetchall())
        cursor.execute("SELECT password FROM users WHERE id = %s", [user.pk])
        (password_column,) = cursor.fetchone()

    for bank_code, token in tokens.items():
        assert token.startswith("eyJ")  # what the model gives back is the real token…
        assert token not in dumped[bank_code]  # …but the column holds ciphertext
        assert "eyJ" not in dumped[bank_code]
        assert len(dumped[bank_code]) > len(token) // 2
    assert PASSWORD not in password_column
    assert password_column.startswith(("pbkdf2_", "argon2", "bcrypt", "scrypt", "md5$"))


def test_a_bank_refusing_our_secret_gets_it_back_in_no_error(sandbox, make_user, monkeypatch):
    from django.conf import settings

    user = make_user(email="anna@example.com", password=PASSWORD)
    bank_settings = SimpleNamespace(BANK_TEAM_ID=settings.BANK_TEAM_ID,
                                    BANK_TEAM_SECRET="the-bank-expects-another")  # fmt: skip
    monkeypatch.setattr("sandbox.views.auth.settings", bank_settings)
    api = _api_for(user)

    response = api.post("/api/banks/vbank/connect")
    # A worker asks the bank (eager here, once the request committed): its refusal is the
    # connection's state, read by the status endpoint.
    status = api.get("/api/banks/vbank/status")

    assert response.status_code == 202, response.content
    body = response.json()
    assert body["connect_request"]["error_code"] == "bank_auth_failed"
    assert (status.json()["status"], status.json()["status_reason"]) == (
        "error",
        "bank_auth_failed",
    )
    seen = response.content.decode() + status.content.decode() + _stored_texts()
    assert TEAM_SECRET not in seen
    assert "client_secret=[REDACTED]" in json.dumps(
        list(RawApiLog.objects.values_list("endpoint", flat=True))
    )
