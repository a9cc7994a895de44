"""How raw logs are stored on PostgreSQL."""

import json

import pytest
from django.db import connection
from django.utils import timezone

from audit.models import Direction, RawApiLog
from audit.tests.factories import make_raw_log


@pytest.mark.skipif(connection.vendor != "postgresql", reason="TOAST compression is PostgreSQL's")
@pytest.mark.django_db
def test_a_big_payload_is_compressed_with_lz4():
    page = {
        "data": {
            "transaction": [{"transactionId": f"tx-{n}", "note": "x" * 40} for n in range(200)]
        }
    }
    log = make_raw_log(endpoint="/accounts/acc-1/transactions", payload=page)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_column_compression(payload) FROM raw_api_logs WHERE id = %s", [log.pk]
        )
        (method,) = cursor.fetchone()

    assert method == "lz4"
    log.refresh_from_db()
    assert log.payload == page


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the `json` type is PostgreSQL's")
@pytest.mark.django_db
def test_a_logged_page_is_stored_as_the_very_text_the_bank_sent():
    from audit.capture import RawLogBuffer
    from banking.clients import BankExchange

    text = '{"data": {"transaction": [{"transactionId": "tx-1",  "amount": 1.50}]},\n "meta": {}}'
    buffer = RawLogBuffer()
    buffer.hook(
        BankExchange(
            bank_code="vbank",
            method="GET",
            path="/accounts/acc-1/transactions",
            query={"page": 1},
            request_headers={"Authorization": "Bearer abc.def.ghi"},
            request_json=None,
            status_code=200,
            response_headers={"Content-Type": "application/json"},
            response_text=text,
            response_json=json.loads(text),
            response_is_json=True,
            duration_ms=3,
            started_at=timezone.now(),
        )
    )

    buffer.flush()

    response = RawApiLog.objects.get(direction=Direction.RESPONSE)
    with connection.cursor() as cursor:
        # A sync's response body is stored once (shared by every identical later response).
        cursor.execute("SELECT payload::text FROM raw_api_bodies WHERE id = %s", [response.body_id])
        assert cursor.fetchone()[0] == text
    assert response.body_payload == json.loads(text)
    assert response.headers == {"Content-Type": "application/json"}
    request = RawApiLog.objects.get(direction=Direction.REQUEST)
    assert request.headers == {"Authorization": "[REDACTED]"}
    assert request.payload is None
    assert (request.exchange_id, request.endpoint) == (
        response.exchange_id,
        "/accounts/acc-1/transactions?page=1",
    )


@pytest.mark.skipif(connection.vendor != "postgresql", reason="TOAST compression is PostgreSQL's")
@pytest.mark.django_db
def test_a_big_shared_body_is_compressed_with_lz4():
    from audit.capture import RawLogBuffer
    from banking.clients import BankExchange

    page = {
        "data": {
            "transaction": [{"transactionId": f"tx-{n}", "note": "x" * 40} for n in range(200)]
        }
    }
    text = json.dumps(page)
    buffer = RawLogBuffer()
    buffer.hook(
        BankExchange(
            bank_code="vbank",
            method="GET",
            path="/accounts/acc-1/transactions",
            query={"page": 1},
            request_headers={},
            request_json=None,
            status_code=200,
            response_text=text,
            response_json=page,
            response_is_json=True,
            started_at=timezone.now(),
        )
    )
    buffer.flush()

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_column_compression(payload) FROM raw_api_bodies")
        assert cursor.fetchone()[0] == "lz4"
