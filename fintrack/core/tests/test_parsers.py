"""The JSON nesting check that keeps a deep body from reaching the recursive decoder."""

import json

import pytest

from fintrack.core.parsers import MAX_JSON_DEPTH, json_nesting_exceeds

pytestmark = pytest.mark.django_db


def _nested(depth: int) -> bytes:
    return ("[" * depth + "]" * depth).encode()


def test_nesting_up_to_the_limit_passes_and_one_level_more_does_not():
    assert not json_nesting_exceeds(_nested(MAX_JSON_DEPTH))
    assert json_nesting_exceeds(_nested(MAX_JSON_DEPTH + 1))
    mixed = ('{"a":' * 60 + "[" * 41 + "]" * 41 + "}" * 60).encode()
    assert json.loads(mixed)  # valid JSON, 101 deep
    assert json_nesting_exceeds(mixed)


def test_brackets_inside_strings_and_many_siblings_are_not_depth():
    strings = json.dumps({"note": "[" * 5000, "quote": 'a \\" [{' * 500}).encode()
    assert not json_nesting_exceeds(strings)
    siblings = json.dumps([[{"x": [1]}] for _ in range(5000)]).encode()
    assert not json_nesting_exceeds(siblings)


def test_a_too_deep_body_is_a_400_in_the_standard_shape_and_nothing_is_created(api_client):
    from users.models import User

    before = User.objects.count()
    body = '{"email": "deep@example.com", "password": ' + "[" * 5000 + "]" * 5000 + "}"
    response = api_client.generic(
        "POST", "/api/auth/register", body, content_type="application/json"
    )
    assert response.status_code == 400
    assert response.json()["code"] in {"parse_error", "malformed_request"}
    assert str(MAX_JSON_DEPTH) in response.json()["message"]
    assert User.objects.count() == before

    # With a NUL escape too, the middleware leaves the deep body to the parser.
    response = api_client.generic(
        "POST",
        "/api/auth/register",
        body.replace("deep@", "deep\\u0000@"),
        content_type="application/json",
    )
    assert response.status_code == 400
    assert str(MAX_JSON_DEPTH) in response.json()["message"]
