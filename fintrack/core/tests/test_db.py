"""The fast psycopg list dumper writes exactly what psycopg's own does."""

from datetime import UTC, datetime

import pytest
from psycopg.types.array import ListDumper
from psycopg.types.json import Jsonb

from fintrack.core.db import FastListDumper

VALUES = [
    ["plain", 'with "quotes"', "back\\slash", "", None, "comma, and {braces}", "NULL", "юникод"],
    [Jsonb({"a": 'b "c" \\ d', "n": [1, 2.5, None]}), Jsonb([]), None],
    [[1, 2], [3, None]],
    [],
]


@pytest.mark.parametrize("values", VALUES)
def test_fast_list_dumper_output_equals_psycopgs(values):
    assert FastListDumper(list).dump(values) == ListDumper(list).dump(values)


@pytest.mark.django_db
def test_bulk_insert_through_unnest_round_trips_quotes_and_backslashes():
    from django.db import connection

    from audit.models import Direction, RawApiLog

    if connection.vendor != "postgresql":
        pytest.skip("the dumper is registered on PostgreSQL only")
    payload = {"text": 'a "quoted" \\ value', "items": [{"x": '"'}, {"y": "\\"}]}
    rows = [
        RawApiLog(
            bank_code="vbank",
            endpoint=f'/p"{n}\\',
            method="GET",
            direction=Direction.REQUEST,
            payload=payload,
            exchange_id=f"00000000-0000-0000-0000-00000000000{n}",
            created_at=datetime(2025, 1, 1, tzinfo=UTC),
        )
        for n in range(2)
    ]
    RawApiLog.objects.bulk_create(rows)
    stored = list(RawApiLog.objects.order_by("endpoint").values_list("endpoint", "payload"))
    assert stored == [('/p"0\\', payload), ('/p"1\\', payload)]
