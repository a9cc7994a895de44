"""Test data for the audit app."""

import uuid

from django.utils import timezone

from audit.models import Direction, RawApiLog


def make_raw_log(**fields) -> RawApiLog:
    """A stored raw-log row: VBank `GET /accounts`, a response, now; `fields` override."""
    defaults = {
        "bank_code": "vbank",
        "endpoint": "/accounts",
        "method": "GET",
        "direction": Direction.RESPONSE,
        "exchange_id": uuid.uuid4(),
        "created_at": timezone.now(),
    }
    return RawApiLog.objects.create(**{**defaults, **fields})
