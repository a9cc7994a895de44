"""VerbatimJSONField: `json` on PostgreSQL (the text as written), a plain JSONField elsewhere."""

import pytest
from django.db import connection
from django.db.models import Value
from django.db.models.functions import Cast

from audit.models import RawApiLog
from audit.tests.factories import make_raw_log
from fintrack.core.fields import VerbatimJSONField

postgresql_only = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="the `json` type is PostgreSQL's"
)


def _log(payload) -> RawApiLog:
    return make_raw_log(payload=payload)


def _stored_text(log: RawApiLog) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT payload::text FROM raw_api_logs WHERE id = %s", [log.pk])
        return cursor.fetchone()[0]


@pytest.mark.parametrize(
    "value",
    [
        {"b": 1, "a": [2.5, None, True], "текст": '«ёлка» "q" \\ \t'},
        [1, "two", {"three": 3}],
        "123",  # a JSON string that looks like a number stays a string
        '{"not": "an object"}',  # and one that looks like an object too
        42,
        False,
    ],
)
@pytest.mark.django_db
def test_a_value_reads_back_as_it_was_saved(value):
    log = _log(value)
    log.refresh_from_db()

    assert log.payload == value
    assert type(log.payload) is type(value)


@pytest.mark.django_db
def test_none_is_stored_as_sql_null():
    log = _log(None)

    assert RawApiLog.objects.filter(pk=log.pk, payload__isnull=True).exists()


@postgresql_only
@pytest.mark.django_db
def test_text_cast_to_the_field_is_stored_character_for_character():
    text = '{"b": 1,   "a": {"z": [1.50, 2e3]},\n "b": 2}'  # key order, spacing, a duplicate key

    log = _log(Cast(Value(text), output_field=VerbatimJSONField()))

    assert _stored_text(log) == text
    log.refresh_from_db()
    assert log.payload == {"b": 2, "a": {"z": [1.5, 2000.0]}}


@postgresql_only
@pytest.mark.django_db
def test_invalid_json_text_is_refused_by_the_database():
    from django.db import DataError, transaction

    with pytest.raises(DataError), transaction.atomic():
        _log(Cast(Value('{"unclosed": '), output_field=VerbatimJSONField()))


@postgresql_only
@pytest.mark.django_db
def test_the_columns_are_json_not_jsonb():
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT table_name, data_type FROM information_schema.columns "
            "WHERE (table_name, column_name) IN "
            "(('raw_api_logs', 'payload'), ('transactions', 'raw_json'))"
        )
        types = dict(cursor.fetchall())

    assert types == {"raw_api_logs": "json", "transactions": "json"}
