"""The exception handler maps every upstream (bank) error once: 503 when retryable, else 502."""

import pytest
from rest_framework.response import Response

from banking.clients.errors import (
    BankAuthError,
    BankError,
    BankNotFoundError,
    BankRejectedError,
    BankResponseError,
    BankUnavailableError,
    ConsentRequiredError,
)
from fintrack.core.exception_handler import exception_handler
from fintrack.core.exceptions import UpstreamError


@pytest.fixture(autouse=True)
def _banks(settings):
    settings.BANKS = {"vbank": {"name": "Virtual Bank", "base_url": "https://vbank.test"}}


def handled(exc: Exception) -> Response:
    response = exception_handler(exc, context={})
    assert response is not None
    return response


def test_an_unavailable_bank_is_a_503_with_its_retry_after():
    error = BankUnavailableError("VBank 503", bank_code="vbank", status_code=503, retry_after=7.6)

    response = handled(error)

    assert response.status_code == 503
    assert response.data == {
        "code": "bank_unavailable",
        "message": "Virtual Bank is not answering right now; try again later.",
        "extra": {
            "bank_code": "vbank",
            "bank_error": "bank_unavailable",
            "bank_status": 503,
            "retry_after_seconds": 7,
        },
    }


@pytest.mark.parametrize(("retry_after", "seconds"), [(0.2, 1), (None, None)])
def test_retry_after_is_at_least_one_second_and_left_out_when_unknown(retry_after, seconds):
    error = BankUnavailableError("timeout", bank_code="vbank", retry_after=retry_after)

    extra = handled(error).data["extra"]

    assert extra.get("retry_after_seconds") == seconds
    assert ("retry_after_seconds" in extra) is (seconds is not None)
    assert extra["bank_status"] is None


@pytest.mark.parametrize(
    ("error_class", "code"),
    [
        (BankRejectedError, "bank_rejected"),
        (BankNotFoundError, "bank_not_found"),
        (BankAuthError, "bank_auth_failed"),
        (ConsentRequiredError, "consent_required"),
        (BankResponseError, "bank_bad_response"),
        (BankError, "bank_error"),
    ],
)
def test_a_terminal_bank_error_is_a_502_with_the_banks_own_code(error_class, code):
    error = error_class("the bank said no", bank_code="vbank", status_code=400)

    response = handled(error)

    assert response.status_code == 502
    assert response.data == {
        "code": code,
        "message": "Virtual Bank: the bank said no",
        "extra": {"bank_code": "vbank", "bank_error": code, "bank_status": 400},
    }


@pytest.mark.parametrize(("bank_code", "name"), [("zbank", "zbank"), ("", "The bank")])
def test_a_bank_not_in_settings_is_named_by_its_code_or_as_the_bank(bank_code, name):
    response = handled(BankRejectedError("no", bank_code=bank_code, status_code=422))

    assert response.data["message"] == f"{name}: no"
    assert response.data["extra"]["bank_code"] == bank_code


def test_an_upstream_error_of_another_kind_names_its_own_keys():
    class MapsError(UpstreamError):
        kind = "maps"
        code = "maps_quota"

    class MapsDown(MapsError):
        retryable = True

    refused = handled(MapsError("quota exceeded", service="geo", status_code=429))
    down = handled(MapsDown("down", service="geo", retry_after=3))

    assert (refused.status_code, refused.data) == (
        502,
        {
            "code": "maps_quota",
            "message": "geo: quota exceeded",
            "extra": {"maps_code": "geo", "maps_error": "maps_quota", "maps_status": 429},
        },
    )
    assert (down.status_code, down.data["code"], down.data["extra"]["retry_after_seconds"]) == (
        503,
        "maps_unavailable",
        3,
    )
