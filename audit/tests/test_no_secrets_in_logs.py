"""After a full sync of every sandbox bank over real HTTP, no stored log holds a secret."""

import json
import re

import pytest

from audit.models import AuditEvent, RawApiBody, RawApiLog
from banking.models import BankToken
from banking.services.tokens import bank_token_cache_clear
from consents import services as consent_services
from consents.models import ConsentKind, ConsentStatus
from sync.models import SyncRun, SyncStatus, SyncTrigger
from sync.services import connection_sync_start

pytestmark = pytest.mark.django_db(transaction=True)

TEAM_SECRET = "team-secret-Zq81xLw0pQ"
USER_PASSWORD = "Anna-Pass-word-2026"
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


def test_no_log_holds_a_token_the_team_secret_or_a_password(sandbox, make_user, client_tokens):
    from banking.services.connections import connection_get_or_create

    user = make_user(email="anna@example.com", password=USER_PASSWORD, client_id="team260-1")
    for bank_code in ("vbank", "abank", "sbank"):
        for kind in (ConsentKind.ACCOUNTS, ConsentKind.PRODUCTS):
            consent = consent_services.consent_ensure(user=user, bank_code=bank_code, kind=kind)
            if consent.status == ConsentStatus.PENDING:
                consent = consent_services.consent_approve_demo(consent=consent)
            assert consent.status == ConsentStatus.AUTHORIZED
        connection = connection_get_or_create(user=user, bank_code=bank_code)
        run, created = connection_sync_start(connection=connection, trigger=SyncTrigger.ADMIN)
        run.refresh_from_db()
        assert (created, run.status) == (True, SyncStatus.SUCCEEDED), run.error

    bank_tokens = [token.access_token for token in BankToken.objects.all()]
    secrets = {TEAM_SECRET, USER_PASSWORD, *bank_tokens, *client_tokens}
    assert len(bank_tokens) == 3
    assert all(len(secret) >= 8 for secret in secrets)

    logs = list(RawApiLog.objects.values("endpoint", "headers", "payload", "error"))
    bodies = list(RawApiBody.objects.values("payload"))  # the sync's response bodies, shared
    events = list(AuditEvent.objects.values("details"))
    stored = json.dumps([logs, bodies, events], ensure_ascii=False, default=str)

    assert SyncRun.objects.filter(status=SyncStatus.SUCCEEDED).count() == 3
    assert len(logs) > 20 and len(bodies) > 10  # the whole conversation was recorded...
    assert {row["endpoint"].split("?")[0] for row in logs} >= {"/auth/bank-token", "/accounts"}
    assert [secret for secret in secrets if secret in stored] == []  # ...but none of its secrets
    assert JWT.findall(stored) == []
    token_requests = [r for r in logs if r["endpoint"].startswith("/auth/bank-token")]
    assert token_requests
    assert all("client_secret=[REDACTED]" in row["endpoint"] for row in token_requests)
    authorised = [r for r in logs if "Authorization" in (r["headers"] or {})]
    assert authorised
    assert {row["headers"]["Authorization"] for row in authorised} == {"[REDACTED]"}
