"""Raw API log capture: every bank request and response is stored, redacted, cheaply."""

import json

import pytest
import requests
import responses
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from audit.capture import raw_log_write
from audit.models import RawApiLog
from banking.clients.errors import BankUnavailableError
from banking.services.clients import bank_client_for
from banking.services.tokens import bank_token_cache_clear
from fintrack.core.correlation import correlation_scope

BASE = "https://vbank.test"
SECRET = "team-secret-xyz-42"
TOKEN = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJ0ZWFtMjYwIiwiZXhwIjo0MTAyNDQ0ODAwfQ"
    ".REAL-LOOKING-SIGNATURE"
)
CLIENT_TOKEN = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ0ZWFtMjYwLTEiLCJ0eXBlIjoiY2xpZW50In0.CLIENTSIG"
ACCOUNTS = {"data": {"account": []}, "links": {"self": "/accounts"}, "meta": {"totalPages": 1}}


@pytest.fixture(autouse=True)
def _banks(settings):
    settings.BANKS = {"vbank": {"name": "Virtual Bank", "base_url": BASE}}
    settings.BANK_TEAM_ID = "team260"
    settings.BANK_TEAM_SECRET = SECRET
    settings.BANK_MAX_RETRIES = 1
    settings.RAW_LOG_MAX_PAYLOAD_BYTES = 65536
    bank_token_cache_clear()
    yield
    bank_token_cache_clear()


def _token_answer():
    return {"access_token": TOKEN, "token_type": "bearer", "expires_in": 86400}


@pytest.mark.django_db
def test_each_exchange_is_a_request_row_and_a_response_row(user):
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        mock.post(f"{BASE}/auth/bank-token", json=_token_answer())
        mock.get(f"{BASE}/accounts", json=ACCOUNTS)
        with correlation_scope("corr-123"):
            bank_client_for("vbank", user=user).list_accounts(
                client_id="team260-1", consent_id="consent-1"
            )

    rows = list(RawApiLog.objects.order_by("id"))
    assert [(r.direction, r.method, r.endpoint) for r in rows] == [
        ("request", "POST", "/auth/bank-token?client_id=team260&client_secret=[REDACTED]"),
        ("response", "POST", "/auth/bank-token?client_id=team260&client_secret=[REDACTED]"),
        ("request", "GET", "/accounts?client_id=team260-1"),
        ("response", "GET", "/accounts?client_id=team260-1"),
    ]
    assert rows[0].exchange_id == rows[1].exchange_id
    assert rows[2].exchange_id == rows[3].exchange_id
    assert rows[0].exchange_id != rows[2].exchange_id
    assert {r.correlation_id for r in rows} == {"corr-123"}
    assert {r.user_id for r in rows} == {user.pk}
    assert {r.bank_code for r in rows} == {"vbank"}
    assert [r.status_code for r in rows] == [None, 200, None, 200]
    assert rows[3].duration_ms is not None
    assert rows[3].payload == ACCOUNTS
    assert rows[2].headers["Authorization"] == "[REDACTED]"
    assert rows[2].headers["X-Consent-Id"] == "consent-1"
    assert rows[1].payload["access_token"] == "[REDACTED]"
    assert rows[1].payload["expires_in"] == 86400


@pytest.mark.django_db
def test_stored_logs_contain_no_token_secret_or_password(user):
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        mock.post(f"{BASE}/auth/bank-token", json=_token_answer())
        mock.post(
            f"{BASE}/account-consents/request", json={"request_id": "req-1", "status": "pending"}
        )
        mock.post(
            f"{BASE}/auth/login",
            json={"access_token": CLIENT_TOKEN, "token_type": "bearer", "client_id": "team260-1"},
        )
        mock.post(
            f"{BASE}/account-consents/sign",
            json={"consent_id": "consent-9", "status": "active", "signature": "password"},
        )
        mock.get(
            f"{BASE}/accounts",
            status=400,
            body=f"bad request from {SECRET} with Bearer {TOKEN}",
            content_type="text/plain",
        )
        client = bank_client_for("vbank", user=user)
        client.request_account_consent(client_id="team260-1")
        client.approve_account_consent_as_client(client_id="team260-1", request_id="req-1")
        with pytest.raises(Exception, match="bad request"):
            client.list_accounts(client_id="team260-1", consent_id="consent-9")

    rows = list(RawApiLog.objects.values())
    assert len(rows) == 10
    dump = json.dumps(rows, default=str)
    assert TOKEN not in dump
    assert TOKEN.split(".")[1] not in dump
    assert CLIENT_TOKEN.split(".")[2] not in dump
    assert SECRET not in dump
    assert '"password": "' + SECRET not in dump
    login_request = next(
        r for r in rows if r["endpoint"] == "/auth/login" and r["direction"] == "request"
    )
    assert login_request["payload"] == {"username": "team260-1", "password": "[REDACTED]"}


@pytest.mark.django_db
def test_a_failing_log_writer_never_breaks_the_call(user, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("database is on fire")

    monkeypatch.setattr(RawApiLog.objects, "bulk_create", broken)
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        mock.post(f"{BASE}/auth/bank-token", json=_token_answer())
        mock.get(f"{BASE}/accounts", json=ACCOUNTS)

        accounts = bank_client_for("vbank", user=user).list_accounts(
            client_id="team260-1", consent_id="consent-1"
        )

    assert accounts == []


@pytest.mark.django_db(transaction=True)
def test_a_failing_log_insert_inside_a_transaction_does_not_poison_it(user, monkeypatch):
    from audit import capture

    monkeypatch.setattr(capture, "_endpoint", lambda *args: None)  # NOT NULL violation
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        mock.post(f"{BASE}/auth/bank-token", json=_token_answer())
        mock.get(f"{BASE}/accounts", json=ACCOUNTS)
        with transaction.atomic():
            bank_client_for("vbank", user=user).list_accounts(
                client_id="team260-1", consent_id="consent-1"
            )
            user.refresh_from_db()  # the transaction is still usable

    assert RawApiLog.objects.count() == 0


@pytest.mark.django_db
def test_big_payloads_are_truncated_with_a_marker(user, settings):
    settings.RAW_LOG_MAX_PAYLOAD_BYTES = 1000
    items = [
        {"transactionId": f"tx-{n}", "note": "x" * 50, "access_token": TOKEN} for n in range(50)
    ]
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        mock.post(f"{BASE}/auth/bank-token", json=_token_answer())
        mock.get(f"{BASE}/products", json={"data": {"product": items}})
        bank_client_for("vbank", user=user).list_products()

    row = RawApiLog.objects.get(endpoint="/products", direction="response")
    assert row.payload["_truncated"] is True
    assert row.payload["_original_bytes"] == len(json.dumps({"data": {"product": items}}))
    assert len(row.payload["_text"].encode()) <= 1000
    assert row.payload["_text"].startswith('{"data": {"product": [{"transactionId": "tx-0"')
    assert TOKEN.split(".")[1] not in row.payload["_text"]


@pytest.mark.django_db
def test_non_json_bodies_are_stored_as_text(user):
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        mock.post(f"{BASE}/auth/bank-token", json=_token_answer())
        mock.get(f"{BASE}/products", status=502, body="<html>502 Bad Gateway</html>")
        mock.get(f"{BASE}/products", status=502, body="<html>502 Bad Gateway</html>")
        client = bank_client_for("vbank", user=user)
        client.sleep = lambda seconds: None
        with pytest.raises(BankUnavailableError):
            client.list_products()

    rows = RawApiLog.objects.filter(endpoint="/products", direction="response")
    assert [(r.status_code, r.payload) for r in rows] == [
        (502, {"_text": "<html>502 Bad Gateway</html>"}),
        (502, {"_text": "<html>502 Bad Gateway</html>"}),
    ]


@pytest.mark.django_db
def test_transport_errors_are_logged_with_the_error_and_no_status(user):
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        mock.post(f"{BASE}/auth/bank-token", json=_token_answer())
        mock.get(f"{BASE}/products", body=requests.exceptions.ReadTimeout("read timed out"))
        mock.get(f"{BASE}/products", json={"data": {"product": []}})
        client = bank_client_for("vbank", user=user)
        client.sleep = lambda seconds: None
        client.list_products()

    rows = list(RawApiLog.objects.filter(endpoint="/products", direction="response").order_by("id"))
    assert [(r.status_code, r.error) for r in rows] == [
        (None, "ReadTimeout: read timed out"),
        (200, ""),
    ]


@pytest.mark.django_db(transaction=True)
def test_one_exchange_costs_one_insert_and_no_other_query(user):
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        mock.post(f"{BASE}/auth/bank-token", json=_token_answer())
        mock.get(f"{BASE}/accounts", json=ACCOUNTS)
        client = bank_client_for("vbank", user=user)
        client.list_accounts(client_id="team260-1", consent_id="consent-1")
        with CaptureQueriesContext(connection) as captured:
            client.list_accounts(client_id="team260-1", consent_id="consent-1")

    statements = [
        query["sql"]
        for query in captured.captured_queries
        if not query["sql"].startswith(("BEGIN", "COMMIT", "SAVEPOINT", "RELEASE"))
    ]
    assert len(statements) == 1
    assert statements[0].startswith('INSERT INTO "raw_api_logs"')


def test_writer_accepts_an_exchange_without_user_or_body(db):
    from banking.clients import BankExchange

    raw_log_write(
        exchange=BankExchange(
            bank_code="vbank",
            method="DELETE",
            path="/account-consents/consent-1",
            query={},
            request_headers={},
            request_json=None,
            status_code=204,
        )
    )

    request_row, response_row = RawApiLog.objects.order_by("id")
    assert (request_row.payload, response_row.payload, response_row.status_code) == (
        None,
        None,
        204,
    )
    assert response_row.user_id is None
