"""Hostile input on every GET endpoint of the OpenAPI schema: no 5xx, always the standard shape.

Each query parameter of each GET operation gets each hostile value (NUL bytes, dates at the edges
of the calendar, malformed and out-of-range cursors, huge numbers), alone and with from/to pairs
at both edges; path parameters get NUL bytes and huge ids. The user has a few transactions and
raw logs, so every filter reaches the database. Run on SQLite and on PostgreSQL (NUL bytes only
fail on PostgreSQL):
`DATABASE_URL=postgres://postgres@127.0.0.1:5432/fintrack_hostile .venv/bin/pytest -q fintrack`.
"""

import base64
import json
from datetime import UTC, datetime

import pytest
from django.db import transaction
from django.utils import timezone

pytestmark = pytest.mark.django_db


def _cursor(payload: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")


def _drf_cursor(position: str) -> str:
    """A DRF CursorPagination cursor (the staff raw-log API) at `position`."""
    return base64.b64encode(f"p={position}".encode()).decode()


HOSTILE_VALUES = [
    "\x00",
    "a\x00b",
    "%00",
    "0001-01-01",
    "9999-12-31",
    "0000-00-00",
    "-1",
    "0",
    "99999999999999999999999999",
    "1e400",
    "NaN",
    "-Infinity",
    "2025-13-45",
    "0001-01-01T00:00:00-23:59",
    "9999-12-31T23:59:59+23:59",
    "9999-12-31T23:59:59-23:59",
    "0001-01-01T00:00:00+23:59",
    "x" * 5000,
    "\u200b",
    "\ud7ff\ufeff",
    _cursor({"i": 1, "d": "0001-01-01T00:00:00+23:59"}),
    _cursor({"i": 1, "d": "9999-12-31T23:59:59-23:59"}),
    _cursor({"i": 1, "d": "0001-01-01T00:00:00-23:59", "o": "date"}),
    _cursor({"i": 1, "d": "9999-12-31T23:59:59-23:59", "o": "date"}),
    _cursor({"i": 2**70, "d": "2025-01-01T00:00:00+00:00"}),
    _cursor({"i": 1, "a": "1e999999", "o": "-amount"}),
    _cursor({"i": 1, "a": "9" * 40, "o": "amount"}),
    _cursor({"i": 1, "d": "2025-01-01T00:00:00\x00+00:00"}),
    _drf_cursor("0001-01-01 00:00:00-23:59"),
    _drf_cursor("9999-12-31 23:59:59-23:59"),
    _drf_cursor("\x00"),
    base64.b64encode(b"o=99999999999999999999999&p=2025-01-01").decode(),
    base64.b64encode(b"r=1&o=-5").decode(),
]
EDGE_RANGES = [
    {"from": "0001-01-01", "to": "0001-01-01"},
    {"from": "9999-12-31", "to": "9999-12-31"},
    {"from": "0001-01-01", "to": "9999-12-31"},
    {"from": "0001-01-01T00:00:00-23:59", "to": "9999-12-31T23:59:59+23:59"},
    {"from": "0001-01-01T00:00:00+23:59", "to": "9999-12-31T23:59:59-23:59"},
    {"period": "month", "to": "0001-01-01"},
    {"period": "7d", "from": "9999-12-31"},
]
PATH_VALUES = ["\x00", "1\x00", "99999999999999999999999999", "0", "-1", "vbank\x00"]


def _schema_get_operations() -> list[tuple[str, list[dict]]]:
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    return [
        (path, operations["get"].get("parameters", []))
        for path, operations in sorted(schema["paths"].items())
        if "get" in operations
    ]


@pytest.fixture
def world(make_user):
    """A user with transactions on two days and a staff user with raw logs to page through."""
    from audit.tests.factories import make_raw_log
    from banking.tests.factories import make_account, make_transaction
    from users.services import token_pair_for

    user = make_user(email="anna@example.com")
    staff = make_user(email="ops@example.com", is_staff=True)
    account = make_account(user=user)
    for day in ("2025-01-01", "2025-01-02"):
        make_transaction(account=account, amount="-10.00", booking_date=day, description="cafe")
    for _ in range(3):
        make_raw_log(user=user, created_at=timezone.now())
    make_raw_log(user=user, created_at=datetime(2001, 1, 1, tzinfo=UTC))
    return {"user": token_pair_for(user)["access"], "staff": token_pair_for(staff)["access"]}


def _standard_error(response) -> bool:
    try:
        body = json.loads(response.content)
    except ValueError:
        return False
    return (
        isinstance(body, dict)
        and set(body) == {"code", "message", "extra"}
        and isinstance(body["code"], str)
        and isinstance(body["extra"], dict)
    )


def _fill(path: str, parameters: list[dict], override: dict[str, str] | None = None) -> str:
    for parameter in parameters:
        if parameter["in"] == "path":
            name = parameter["name"]
            value = (override or {}).get(name, "vbank" if name == "bank_code" else "1")
            path = path.replace("{" + name + "}", value)
    return path


def _requests():
    """(path, query) pairs: each hostile value in each parameter, edge ranges, path values."""
    for path, parameters in _schema_get_operations():
        query_names = [p["name"] for p in parameters if p["in"] == "query"]
        path_names = [p["name"] for p in parameters if p["in"] == "path"]
        yield _fill(path, parameters), {}
        for name in query_names:
            for value in HOSTILE_VALUES:
                yield _fill(path, parameters), {name: value}
        if {"from", "to"} & set(query_names):
            for pair in EDGE_RANGES:
                yield _fill(path, parameters), {k: v for k, v in pair.items() if k in query_names}
        for name in path_names:
            for value in PATH_VALUES:
                yield _fill(path, parameters, {name: value}), {}
        # A parameter the schema does not name, and a NUL in its name.
        yield _fill(path, parameters), {"unknown\x00": "\x00"}


@pytest.fixture
def quiet_client():
    """A test client that answers 500 instead of raising, and what each 500 was (to report it)."""
    from django.core.signals import got_request_exception
    from django.test import Client

    errors: list[str] = []

    def record(sender, request=None, **kwargs):
        import sys

        exc = sys.exc_info()[1]
        errors.append(f"{type(exc).__name__}: {str(exc)[:120]}")

    got_request_exception.connect(record)
    client = Client(raise_request_exception=False)
    client.errors = errors
    yield client
    got_request_exception.disconnect(record)


def test_every_get_endpoint_answers_hostile_input_without_a_5xx(quiet_client, world, caplog):
    from urllib.parse import quote, urlencode

    client = quiet_client
    failures, checked = [], 0
    caplog.set_level("CRITICAL", logger="django.request")
    for path, query in _requests():
        for token in (world["user"], world["staff"]):
            url = quote(path, safe="/{}") + ("?" + urlencode(query) if query else "")
            client.errors.clear()
            # A savepoint per request: on PostgreSQL one failed statement would abort the test's
            # transaction and turn every later request into a 500 too.
            savepoint = transaction.savepoint()
            response = client.get(url, HTTP_AUTHORIZATION=f"Bearer {token}")
            transaction.savepoint_rollback(savepoint)
            checked += 1
            if response.status_code >= 500:
                failures.append(f"{response.status_code} {url[:160]} {client.errors[-1:]}")
            elif response.status_code >= 400 and not _standard_error(response):
                failures.append(f"{response.status_code} not the standard shape {url[:200]}")
    assert checked > 1000
    assert not failures, f"{len(failures)} of {checked}:\n" + "\n".join(sorted(set(failures)))


def test_the_walk_covers_the_endpoints_of_the_issue():
    paths = {path for path, _parameters in _schema_get_operations()}
    assert {
        "/api/consents",
        "/api/transactions",
        "/api/transactions/summary",
        "/api/transactions/export.csv",
        "/api/admin/raw-logs",
    } <= paths


def _schema_write_operations() -> list[tuple[str, str]]:
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    return [
        (method, path)
        for path, operations in sorted(schema["paths"].items())
        for method in operations
        if method in ("post", "put", "patch")
    ]


@pytest.mark.parametrize(
    ("body", "code", "field"),
    [
        ('{"login": "anna\\u0000@example.com", "password": "x"}', "validation_error", "login"),
        ('{"refresh": "a\\u0000"}', "validation_error", "refresh"),
        ('{"banks": ["vbank\\u0000"]}', "validation_error", "banks"),
        ('{"nested": [{"deeper": ["\\u0000"]}]}', "validation_error", "nested"),
        ('{"ke\\u0000y": 1}', "malformed_request", None),
        ('["\\u0000"]', "malformed_request", None),
        ('{"raw": "a\x00b"}', "malformed_request", None),
    ],
)
def test_a_nul_in_any_json_body_is_a_400(quiet_client, world, body, code, field):
    operations = _schema_write_operations()
    assert len(operations) > 5
    for method, path in operations:
        url = _fill(path, [{"in": "path", "name": n.strip("{}")} for n in _path_names(path)])
        response = getattr(quiet_client, method)(
            url, body, content_type="application/json",
            HTTP_AUTHORIZATION=f"Bearer {world['user']}",
        )  # fmt: skip
        assert response.status_code == 400, (method, url, response.content)
        assert response.json()["code"] == code
        if field:
            assert response.json()["extra"] == {
                "fields": {field: ["Null characters are not allowed."]}
            }


def _path_names(path: str) -> list[str]:
    import re

    return re.findall(r"\{[^}]+\}", path)


def test_a_literal_backslash_u0000_text_is_not_a_nul(quiet_client, world):
    response = quiet_client.post(
        "/api/auth/login",
        '{"login": "anna\\\\u0000@example.com", "password": "x"}',
        content_type="application/json",
    )
    assert response.status_code == 401  # the text \u0000, escaped: an unknown login, no NUL


@pytest.mark.parametrize(
    ("url", "code"),
    [
        ("/api/banks/vbank%00/status", "malformed_request"),
        ("/api/consents/1%00", "malformed_request"),
        ("/sandbox/vbank/accounts/acc%00", "malformed_request"),
        ("/api/consents?bank%00_code=vbank", "malformed_request"),
        ("/api/transactions?search=caf%00e", "validation_error"),
        ("/api/consents?bank_code=%00", "validation_error"),
        ("/api/admin/raw-logs?endpoint=%00", "validation_error"),
        ("/admin/login/?next=%00", "validation_error"),
    ],
)
def test_a_nul_in_a_path_or_query_is_a_400(quiet_client, world, url, code):
    response = quiet_client.get(url, HTTP_AUTHORIZATION=f"Bearer {world['user']}")
    assert response.status_code == 400
    body = response.json()
    assert set(body) == {"code", "message", "extra"}
    assert body["code"] == code
