"""GET /api/admin/raw-logs: staff only, exact rows per filter, newest first, bad input a 400."""

import uuid
from datetime import UTC, datetime

import pytest

from audit.models import Direction, RawApiLog
from users.services import token_pair_for

URL = "/api/admin/raw-logs"


def log(*, created_at, bank="vbank", direction=Direction.RESPONSE, status=200, **fields):
    defaults = {
        "endpoint": "/accounts",
        "method": "GET",
        "correlation_id": "",
        "exchange_id": uuid.uuid4(),
        "payload": None,
    }
    defaults.update(fields)
    return RawApiLog.objects.create(
        bank_code=bank,
        direction=direction,
        status_code=status if direction == Direction.RESPONSE else None,
        created_at=created_at,
        **defaults,
    )


def at(day: int, hour: int = 12) -> datetime:
    return datetime(2025, 11, day, hour, tzinfo=UTC)


@pytest.fixture
def staff_api(api_client, make_user):
    staff = make_user(email="ops@example.com", is_staff=True)
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {token_pair_for(staff)['access']}")
    return api_client


@pytest.fixture
def logs(make_user):
    anna = make_user(email="anna.logs@example.com")
    boris = make_user(email="boris.logs@example.com")
    rows = {
        "anna_accounts": log(
            created_at=at(1), user=anna, correlation_id="corr-a", payload={"data": {"x": 1}}
        ),
        "anna_request": log(
            created_at=at(1, 11), user=anna, direction=Direction.REQUEST, correlation_id="corr-a"
        ),
        "anna_tx_404": log(
            created_at=at(2), user=anna, endpoint="/accounts/acc-1/transactions?page=2", status=404
        ),
        "boris_abank_503": log(created_at=at(3), user=boris, bank="abank", status=503),
        "system_token": log(created_at=at(4), endpoint="/auth/bank-token", status=200),
        "boris_timeout": log(created_at=at(5), user=boris, bank="sbank", status=None),
    }
    rows["anna"], rows["boris"] = anna, boris
    return rows


def ids(response) -> list[int]:
    assert response.status_code == 200, response.content
    return [row["id"] for row in response.json()["results"]]


def assert_error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"code", "message", "extra"}
    assert body["code"] == code
    return body


@pytest.mark.django_db
def test_anonymous_is_refused_with_401(api_client):
    assert_error(api_client.get(URL), 401, "not_authenticated")


def test_a_normal_users_token_is_refused_with_403(auth_client):
    assert_error(auth_client.get(URL), 403, "permission_denied")


def test_staff_sees_every_log_newest_first_with_payload_as_stored(staff_api, logs):
    response = staff_api.get(URL)

    assert ids(response) == [
        logs[name].id
        for name in (
            "boris_timeout",
            "system_token",
            "boris_abank_503",
            "anna_tx_404",
            "anna_accounts",
            "anna_request",
        )
    ]
    row = next(r for r in response.json()["results"] if r["id"] == logs["anna_accounts"].id)
    assert row == {
        "id": logs["anna_accounts"].id,
        "created_at": "2025-11-01T12:00:00Z",
        "user_id": logs["anna"].id,
        "bank_code": "vbank",
        "direction": "response",
        "method": "GET",
        "endpoint": "/accounts",
        "status_code": 200,
        "duration_ms": None,
        "error": "",
        "correlation_id": "corr-a",
        "exchange_id": str(logs["anna_accounts"].exchange_id),
        "headers": {},
        "payload": {"data": {"x": 1}},
        "same_as": None,  # the body is this row's own
    }


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"bank_code": "abank"}, ["boris_abank_503"]),
        ({"correlation_id": "corr-a"}, ["anna_accounts", "anna_request"]),
        ({"endpoint": "transactions"}, ["anna_tx_404"]),
        ({"endpoint": "/AUTH/"}, ["system_token"]),
        ({"direction": "request"}, ["anna_request"]),
        ({"status_code": "404"}, ["anna_tx_404"]),
        ({"status_code": "5xx"}, ["boris_abank_503"]),
        ({"status_code": "2XX"}, ["system_token", "anna_accounts"]),
        ({"status_code": "none"}, ["boris_timeout", "anna_request"]),
        ({"from": "2025-11-03"}, ["boris_timeout", "system_token", "boris_abank_503"]),
        ({"to": "2025-11-01"}, ["anna_accounts", "anna_request"]),
        (
            {"from": "2025-11-01T11:30:00Z", "to": "2025-11-02T12:00:00Z"},
            ["anna_tx_404", "anna_accounts"],
        ),
        ({"from": "2025-11-02", "to": "2025-11-03", "bank_code": "vbank"}, ["anna_tx_404"]),
    ],
)
def test_each_filter_returns_exactly_its_rows(staff_api, logs, query, expected):
    assert ids(staff_api.get(URL, query)) == [logs[name].id for name in expected]


def test_user_id_filter_returns_that_users_rows(staff_api, logs):
    response = staff_api.get(URL, {"user_id": logs["boris"].id})

    assert ids(response) == [logs["boris_timeout"].id, logs["boris_abank_503"].id]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"status_code": "4x"}, "status_code"),
        ({"status_code": "600"}, "status_code"),
        ({"status_code": "abc"}, "status_code"),
        ({"bank_code": "nobank"}, "bank_code"),
        ({"direction": "sideways"}, "direction"),
        ({"user_id": "abc"}, "user_id"),
        ({"user_id": "0"}, "user_id"),
        ({"user_id": str(2**64)}, "user_id"),
        ({"from": "yesterday"}, "from"),
        ({"to": "2025-13-01"}, "to"),
        ({"from": "2025-11-05", "to": "2025-11-01"}, "to"),
        ({"correlation_id": "x" * 65}, "correlation_id"),
        ({"page_size": "twelve"}, "page_size"),
        ({"page_size": "0"}, "page_size"),
        ({"page_size": "201"}, "page_size"),
    ],
)
def test_bad_filter_values_are_a_400_naming_the_field(staff_api, logs, query, field):
    body = assert_error(staff_api.get(URL, query), 400, "validation_error")

    assert list(body["extra"]["fields"]) == [field]
    assert body["message"].startswith(f"{field}: ")


def test_pages_follow_the_cursor_without_gaps_or_repeats(staff_api, logs):
    first = staff_api.get(URL, {"page_size": 4})
    second = staff_api.get(first.json()["next"])

    assert ids(first) + ids(second) == ids(staff_api.get(URL))
    assert second.json()["next"] is None


def test_a_forged_cursor_is_a_400(staff_api, logs):
    body = assert_error(staff_api.get(URL, {"cursor": "not-a-cursor"}), 400, "validation_error")

    assert list(body["extra"]["fields"]) == ["cursor"]


def test_query_count_does_not_grow_with_rows(staff_api, logs, django_assert_max_num_queries):
    for day in range(6, 26):
        log(created_at=at(day), user=logs["anna"])

    # Authentication (1 user lookup) and one page query; no COUNT(*), nothing per row.
    with django_assert_max_num_queries(2):
        response = staff_api.get(URL, {"page_size": 20})

    assert len(ids(response)) == 20
