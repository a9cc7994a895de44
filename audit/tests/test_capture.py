"""Raw API log capture: every bank request and response is stored, redacted, cheaply."""

import json
import logging
import threading
import time

import pytest
import requests
import responses
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from audit.capture import RawLogBuffer, raw_log_write
from audit.models import RawApiBody, RawApiLog
from banking.clients.errors import BankUnavailableError
from banking.services.clients import bank_client_for
from banking.services.tokens import bank_token_cache_clear
from fintrack.core.correlation import correlation_scope

BASE = "https://vbank.test"
SECRET = "team-secret-xyz-42"
# PostgreSQL gets the rows by COPY, other databases by INSERT.
WRITE_STATEMENT = (
    'COPY "raw_api_logs"' if connection.vendor == "postgresql" else 'INSERT INTO "raw_api_logs"'
)
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
def test_one_exchange_costs_one_write_and_no_other_query(user):
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
    assert statements[0].startswith(WRITE_STATEMENT)


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


# --- RawLogBuffer: a sync run's exchanges noted by the hook, written in bulk by flush() ---------


def _exchange(number: int):
    """A finished exchange as a client hands it to its hook: a token and the secret inside."""
    from banking.clients import BankExchange

    body = {"data": {"balance": [{"amount": str(number)}]}, "access_token": TOKEN}
    return BankExchange(
        bank_code="vbank",
        method="GET",
        path=f"/accounts/acc-{number}/balances",
        query={"client_id": "team260-1"},
        request_headers={"Authorization": f"Bearer {TOKEN}", "X-Consent-Id": "consent-1"},
        request_json=None,
        status_code=200,
        response_headers={"Content-Type": "application/json", "X-Echo": SECRET},
        response_text=json.dumps(body),
        response_json=body,
        response_is_json=True,
        duration_ms=7,
        started_at=timezone.now(),
    )


def _writes(captured) -> list[str]:
    return [
        query["sql"]
        for query in captured.captured_queries
        if query["sql"].lstrip().upper().startswith(("INSERT", "COPY"))
    ]


@pytest.mark.django_db
def test_buffer_hook_writes_nothing_and_flush_keeps_each_exchanges_hook_time_correlation_id(user):
    buffer = RawLogBuffer(user=user, secrets=[SECRET])
    hooked_from = timezone.now()
    with CaptureQueriesContext(connection) as during_hooks:
        with correlation_scope("corr-first"):
            buffer.hook(_exchange(1))
        with correlation_scope("corr-second"):
            buffer.hook(_exchange(2))
    hooked_until = timezone.now()

    assert during_hooks.captured_queries == []
    assert RawApiLog.objects.count() == 0

    time.sleep(0.02)  # the flush happens measurably later than the hooks
    with correlation_scope("corr-at-flush"):
        buffer.flush()

    rows = list(RawApiLog.objects.order_by("id"))
    assert len(rows) == 4
    by_exchange: dict = {}
    for row in rows:
        by_exchange.setdefault(row.exchange_id, []).append(row)
    assert sorted(sorted(r.direction for r in pair) for pair in by_exchange.values()) == [
        ["request", "response"],
        ["request", "response"],
    ]
    correlation_by_path = {(row.endpoint.split("?")[0], row.correlation_id) for row in rows}
    assert correlation_by_path == {
        ("/accounts/acc-1/balances", "corr-first"),
        ("/accounts/acc-2/balances", "corr-second"),
    }
    responses_rows = [row for row in rows if row.direction == "response"]
    assert all(hooked_from <= row.created_at <= hooked_until for row in responses_rows)
    assert {row.user_id for row in rows} == {user.pk}
    # Redaction applies as in the direct writer: headers, bodies, the team secret anywhere.
    dump = json.dumps([*RawApiLog.objects.values(), *RawApiBody.objects.values()], default=str)
    assert TOKEN.split(".")[1] not in dump
    assert SECRET not in dump
    assert {r.headers["Authorization"] for r in rows if r.direction == "request"} == {"[REDACTED]"}
    assert {r.body_payload["access_token"] for r in responses_rows} == {"[REDACTED]"}
    assert {r.body_payload["data"]["balance"][0]["amount"] for r in responses_rows} == {"1", "2"}

    buffer.flush()  # what was written is not written again
    assert RawApiLog.objects.count() == 4


@pytest.mark.django_db
def test_buffer_flush_is_one_write_of_new_bodies_and_one_of_the_rows(user):
    buffer = RawLogBuffer(user=user, secrets=[SECRET])
    for number in range(3):  # 6 rows: far below SQLite's bulk_create batch limit
        buffer.hook(_exchange(number))

    with CaptureQueriesContext(connection) as captured:
        buffer.flush()

    assert RawApiLog.objects.count() == 6
    assert RawApiBody.objects.count() == 3
    writes = _writes(captured)
    assert len(writes) == 2
    # PostgreSQL: the bodies' text goes by binary COPY, sent as its bytes (no quoting).
    body_write = "COPY" if connection.vendor == "postgresql" else "INSERT"
    assert writes[0].startswith(body_write) and "raw_api_bodies" in writes[0].split("(")[0]
    assert writes[1].startswith(WRITE_STATEMENT)

    # The same pages again (the next hourly sync): rows only, the bodies are not sent again.
    for number in range(3):
        buffer.hook(_exchange(number))
    with CaptureQueriesContext(connection) as captured:
        buffer.flush()

    assert RawApiLog.objects.count() == 12
    assert RawApiBody.objects.count() == 3
    writes = _writes(captured)
    assert len(writes) == 1
    assert writes[0].startswith(WRITE_STATEMENT)


@pytest.mark.django_db
def test_buffer_flush_survives_a_failing_insert_and_drops_what_it_could_not_write(
    user, monkeypatch, caplog
):
    from audit import capture

    buffer = RawLogBuffer(user=user, secrets=[SECRET])
    buffer.hook(_exchange(1))
    buffer.hook(_exchange(2))

    def broken(rows):
        raise RuntimeError("database is on fire")

    with monkeypatch.context() as patch:
        patch.setattr(capture, "_insert", broken)
        with caplog.at_level(logging.WARNING, logger="audit.capture"):
            buffer.flush()  # does not raise

    assert any("2 exchange(s)" in record.getMessage() for record in caplog.records)
    assert RawApiLog.objects.count() == 0
    buffer.hook(_exchange(3))
    buffer.flush()
    # The buffer was emptied by the failed flush: only the exchange noted after it is written.
    assert sorted(RawApiLog.objects.values_list("endpoint", flat=True)) == [
        "/accounts/acc-3/balances?client_id=team260-1",
        "/accounts/acc-3/balances?client_id=team260-1",
    ]


@pytest.mark.django_db
def test_buffer_flush_with_a_database_error_leaves_the_callers_transaction_usable(
    user, monkeypatch
):
    from audit import capture

    buffer = RawLogBuffer(user=user)
    buffer.hook(_exchange(1))
    monkeypatch.setattr(capture, "_endpoint", lambda *args: None)  # NOT NULL violation

    with transaction.atomic():
        buffer.flush()
        user.refresh_from_db()  # would raise on PostgreSQL if the failed INSERT poisoned it

    assert RawApiLog.objects.count() == 0


@pytest.mark.django_db
def test_buffer_hook_flushes_by_itself_when_max_pending_exchanges_wait(user):
    buffer = RawLogBuffer(user=user, max_pending=3)
    buffer.hook(_exchange(1))
    buffer.hook(_exchange(2))
    assert RawApiLog.objects.count() == 0

    buffer.hook(_exchange(3))
    assert RawApiLog.objects.count() == 6

    buffer.hook(_exchange(4))
    assert RawApiLog.objects.count() == 6
    buffer.flush()
    assert RawApiLog.objects.count() == 8


@pytest.mark.django_db
def test_client_with_a_buffer_leaves_no_row_until_the_buffer_is_flushed(user):
    buffer = RawLogBuffer(user=user, secrets=[SECRET])
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        mock.post(f"{BASE}/auth/bank-token", json=_token_answer())
        mock.get(f"{BASE}/accounts", json=ACCOUNTS)
        client = bank_client_for("vbank", user=user, raw_logs=buffer)
        with correlation_scope("corr-buffered"):
            accounts = client.list_accounts(client_id="team260-1", consent_id="consent-1")

    assert accounts == []
    assert client.calls_made == 2
    assert RawApiLog.objects.count() == 0

    buffer.flush()

    rows = list(RawApiLog.objects.order_by("id"))
    assert [(r.direction, r.method, r.endpoint.split("?")[0]) for r in rows] == [
        ("request", "POST", "/auth/bank-token"),
        ("response", "POST", "/auth/bank-token"),
        ("request", "GET", "/accounts"),
        ("response", "GET", "/accounts"),
    ]
    assert {r.correlation_id for r in rows} == {"corr-buffered"}
    assert {r.user_id for r in rows} == {user.pk}
    assert SECRET not in json.dumps(
        [*RawApiLog.objects.values(), *RawApiBody.objects.values()], default=str
    )
    assert rows[1].body_payload["access_token"] == "[REDACTED]"


@pytest.mark.django_db(transaction=True)
def test_background_buffer_writes_on_its_own_thread_and_close_writes_the_rest(user, monkeypatch):
    from audit import capture

    if connection.vendor == "sqlite" and connection.is_in_memory_db():
        pytest.skip("a writer thread needs a database connection of its own")
    writes: list[tuple[threading.Thread, int]] = []
    original = capture._insert

    def recording(rows):
        writes.append((threading.current_thread(), len(rows)))
        original(rows)

    monkeypatch.setattr(capture, "_insert", recording)
    buffer = RawLogBuffer(user=user, background=True)
    buffer.hook(_exchange(1))
    buffer.hook(_exchange(2))
    buffer.flush_soon()
    buffer.hook(_exchange(3))

    buffer.close()

    assert RawApiLog.objects.count() == 6
    assert sum(rows for _thread, rows in writes) == 6
    writer = writes[0][0]
    assert writer is not threading.current_thread()
    assert not writer.is_alive()  # close() waited for it
