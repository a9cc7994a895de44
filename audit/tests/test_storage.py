"""How raw logs are stored on PostgreSQL."""

import uuid

import pytest
from django.db import connection
from django.utils import timezone

from audit.models import Direction, RawApiLog


@pytest.mark.skipif(connection.vendor != "postgresql", reason="TOAST compression is PostgreSQL's")
@pytest.mark.django_db
def test_a_big_payload_is_compressed_with_lz4():
    page = {
        "data": {
            "transaction": [{"transactionId": f"tx-{n}", "note": "x" * 40} for n in range(200)]
        }
    }
    log = RawApiLog.objects.create(
        bank_code="vbank",
        endpoint="/accounts/acc-1/transactions",
        method="GET",
        direction=Direction.RESPONSE,
        payload=page,
        exchange_id=uuid.uuid4(),
        created_at=timezone.now(),
    )
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_column_compression(payload) FROM raw_api_logs WHERE id = %s", [log.pk]
        )
        (method,) = cursor.fetchone()

    assert method == "lz4"
    log.refresh_from_db()
    assert log.payload == page
