"""The bank's Retry-After (issue 20): waited out in full up to BANK_RETRY_AFTER_MAX_SECONDS per
call, never cut short; a longer wait is left to the caller through BankUnavailableError.retry_after
(a sync task's countdown, an API's 503) instead of sleeping in the request."""

import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
import responses

from banking.clients import VBankClient
from banking.clients.errors import BankUnavailableError

BASE = "https://vbank.test"
PRODUCTS = {"data": {"product": [{"productId": "prod-1", "productType": "loan"}]}}


def bank_client(*, retry_after_max_seconds: float, sleeps: list[float]) -> VBankClient:
    client = VBankClient(
        base_url=BASE,
        team_id="team260",
        team_secret="secret",
        max_retries=3,
        max_sleep_seconds=10.0,
        retry_after_max_seconds=retry_after_max_seconds,
        token_provider=lambda: "tok",
    )
    client.sleep = sleeps.append
    return client


def rate_limited(retry_after: str) -> None:
    responses.get(f"{BASE}/products", status=429, body="", headers={"Retry-After": retry_after})


@responses.activate(assert_all_requests_are_fired=True)
def test_a_retry_after_of_30_s_is_waited_out_in_full_not_cut_to_10():
    sleeps: list[float] = []
    client = bank_client(retry_after_max_seconds=60, sleeps=sleeps)
    rate_limited("30")
    responses.get(f"{BASE}/products", json=PRODUCTS)

    products = client.list_products()

    assert [product.product_id for product in products] == ["prod-1"]
    assert sleeps == [30.0]
    assert client.calls_made == 2


@responses.activate(assert_all_requests_are_fired=True)
def test_a_retry_after_above_the_max_raises_at_once_with_the_banks_retry_after():
    sleeps: list[float] = []
    client = bank_client(retry_after_max_seconds=60, sleeps=sleeps)
    rate_limited("120")

    with pytest.raises(BankUnavailableError) as caught:
        client.list_products()

    assert caught.value.retry_after == 120.0
    assert caught.value.status_code == 429
    assert caught.value.retryable is True
    assert caught.value.message == "vbank: HTTP 429 after 1 attempt(s), Retry-After 120 s"
    assert sleeps == []  # nothing slept: the caller retries after 120 s
    assert client.calls_made == 1


@responses.activate(assert_all_requests_are_fired=True)
def test_a_small_retry_after_is_slept_with_time_sleep_then_retried(monkeypatch):
    slept: list[float] = []
    monkeypatch.setattr(time, "sleep", slept.append)
    client = VBankClient(
        base_url=BASE, team_id="team260", team_secret="s", token_provider=lambda: "tok"
    )
    rate_limited("2")
    responses.get(f"{BASE}/products", json=PRODUCTS)

    products = client.list_products()

    assert len(products) == 1
    assert slept == [2.0]
    assert client.calls_made == 2


@responses.activate(assert_all_requests_are_fired=True)
def test_the_max_bounds_the_waiting_of_one_call_in_total():
    sleeps: list[float] = []
    client = bank_client(retry_after_max_seconds=20, sleeps=sleeps)
    rate_limited("15")
    rate_limited("15")  # 15 + 15 > 20: not waited, handed to the caller

    with pytest.raises(BankUnavailableError) as caught:
        client.list_products()

    assert sleeps == [15.0]
    assert caught.value.retry_after == 15.0
    assert client.calls_made == 2


@responses.activate(assert_all_requests_are_fired=True)
def test_a_retry_after_http_date_is_read_as_seconds_from_now():
    sleeps: list[float] = []
    client = bank_client(retry_after_max_seconds=60, sleeps=sleeps)
    rate_limited(format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True))
    responses.get(f"{BASE}/products", json=PRODUCTS)

    client.list_products()

    assert len(sleeps) == 1
    assert 28.0 <= sleeps[0] <= 30.0  # the date has whole seconds


@pytest.mark.parametrize("value", ["soon", "inf", "nan"])
@responses.activate(assert_all_requests_are_fired=True)
def test_an_unreadable_retry_after_falls_back_to_backoff(value):
    sleeps: list[float] = []
    client = bank_client(retry_after_max_seconds=60, sleeps=sleeps)
    client.jitter = lambda cap: cap
    rate_limited(value)
    responses.get(f"{BASE}/products", json=PRODUCTS)

    client.list_products()

    assert sleeps == [0.5]  # backoff_seconds × 2⁰


def test_the_configured_clients_take_the_max_from_settings(settings):
    from banking.services.clients import bank_client_for

    settings.BANK_RETRY_AFTER_MAX_SECONDS = 45.0

    client = bank_client_for("vbank")

    assert client.retry_after_max_seconds == 45.0
    client.close()
