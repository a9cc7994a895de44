"""CORS: a frontend on a localhost dev port may call the API in the embedded default; other
origins (and, in production, every origin not listed in CORS_ALLOWED_ORIGINS) get no CORS header."""

import pytest

from fintrack.core.tests.test_settings import PRODUCTION_ENV, run_django

PREFLIGHT = {
    "HTTP_ACCESS_CONTROL_REQUEST_METHOD": "GET",
    "HTTP_ACCESS_CONTROL_REQUEST_HEADERS": "authorization",
}


@pytest.mark.parametrize(
    "origin",
    ["http://localhost:3000", "http://127.0.0.1:5173", "http://localhost", "http://[::1]:8080"],
)
def test_a_localhost_dev_origin_is_allowed_in_the_embedded_default(client, origin):
    response = client.options("/api/dashboard", HTTP_ORIGIN=origin, **PREFLIGHT)

    assert response["Access-Control-Allow-Origin"] == origin
    assert "authorization" in response["Access-Control-Allow-Headers"].lower()


@pytest.mark.parametrize(
    "origin",
    ["https://evil.example", "http://localhost.evil.example", "http://localhost:3000.evil.example"],
)
def test_other_origins_get_no_cors_header(client, origin):
    response = client.options("/api/dashboard", HTTP_ORIGIN=origin, **PREFLIGHT)

    assert "Access-Control-Allow-Origin" not in response


def test_an_actual_request_from_localhost_carries_the_header_and_exposes_etag(client):
    response = client.get("/api/health", HTTP_ORIGIN="http://localhost:3000")

    assert response["Access-Control-Allow-Origin"] == "http://localhost:3000"
    assert "etag" in response["Access-Control-Expose-Headers"].lower()


def test_production_allows_only_the_listed_origins():
    code = (
        "from django.conf import settings; "
        "print(settings.CORS_ALLOWED_ORIGIN_REGEXES, settings.CORS_ALLOWED_ORIGINS)"
    )
    result = run_django(
        {**PRODUCTION_ENV, "CORS_ALLOWED_ORIGINS": "https://app.example.com"}, "shell", "-c", code
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[] ['https://app.example.com']"
