"""The bank token service: one token per bank, cached in process and in the database."""

import logging
from datetime import timedelta

import pytest
import responses
from django.db import connection
from django.utils import timezone
from responses import matchers

from banking.clients.errors import BankAuthError
from banking.exceptions import UnknownBank
from banking.models import BankToken
from banking.services.clients import bank_client_for, bank_codes, bank_display_name
from banking.services.tokens import bank_token_cache_clear, bank_token_get, bank_token_invalidate

BASE = "https://vbank.test"
PRODUCTS = {"data": {"product": []}}


@pytest.fixture(autouse=True)
def _banks(settings):
    settings.BANKS = {
        "vbank": {"name": "Virtual Bank", "base_url": BASE},
        "abank": {"name": "Awesome Bank", "base_url": "https://abank.test"},
    }
    settings.BANK_TEAM_ID = "team260"
    settings.BANK_TEAM_SECRET = "team-secret-xyz"
    settings.BANK_TOKEN_REFRESH_MARGIN_SECONDS = 300
    bank_token_cache_clear()
    yield
    bank_token_cache_clear()


def _token_answer(token: str, expires_in: int = 86400):
    return {"access_token": token, "token_type": "bearer", "expires_in": expires_in}


def _products_with(token: str):
    return dict(
        json=PRODUCTS, match=[matchers.header_matcher({"Authorization": f"Bearer {token}"})]
    )


@pytest.mark.django_db
def test_first_call_fetches_a_token_and_stores_it_encrypted():
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        token_call = mock.post(f"{BASE}/auth/bank-token", json=_token_answer("tok-A"))
        mock.get(f"{BASE}/products", **_products_with("tok-A"))

        bank_client_for("vbank").list_products()

    assert token_call.call_count == 1
    row = BankToken.objects.get(bank_code="vbank")
    assert row.access_token == "tok-A"
    assert row.expires_at > timezone.now() + timedelta(hours=23)
    with connection.cursor() as cursor:
        cursor.execute("SELECT access_token FROM bank_tokens WHERE bank_code = 'vbank'")
        stored = cursor.fetchone()[0]
    assert "tok-A" not in stored


@pytest.mark.django_db
def test_token_is_reused_without_a_second_fetch():
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        token_call = mock.post(f"{BASE}/auth/bank-token", json=_token_answer("tok-A"))
        products_call = mock.get(f"{BASE}/products", **_products_with("tok-A"))

        bank_client_for("vbank").list_products()
        bank_client_for("vbank").list_products()
        bank_client_for("vbank").list_products()

    assert token_call.call_count == 1
    assert products_call.call_count == 3


@pytest.mark.django_db
def test_after_a_restart_the_stored_token_is_used_without_a_bank_call():
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        token_call = mock.post(f"{BASE}/auth/bank-token", json=_token_answer("tok-A"))
        mock.get(f"{BASE}/products", **_products_with("tok-A"))
        bank_client_for("vbank").list_products()

        bank_token_cache_clear()  # what a process restart does
        client = bank_client_for("vbank")
        client.list_products()

    assert token_call.call_count == 1
    assert client.calls_made == 1


@pytest.mark.django_db
def test_a_token_close_to_expiry_is_refreshed_before_use():
    BankToken.objects.create(
        bank_code="vbank",
        access_token="tok-old",
        expires_at=timezone.now() + timedelta(seconds=120),
        last_refreshed_at=timezone.now() - timedelta(hours=23),
    )
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        token_call = mock.post(f"{BASE}/auth/bank-token", json=_token_answer("tok-new"))
        mock.get(f"{BASE}/products", **_products_with("tok-new"))

        bank_client_for("vbank").list_products()

    assert token_call.call_count == 1
    assert BankToken.objects.get(bank_code="vbank").access_token == "tok-new"


@pytest.mark.django_db
def test_a_valid_stored_token_outside_the_margin_is_used():
    BankToken.objects.create(
        bank_code="vbank",
        access_token="tok-stored",
        expires_at=timezone.now() + timedelta(seconds=600),
        last_refreshed_at=timezone.now(),
    )
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        mock.get(f"{BASE}/products", **_products_with("tok-stored"))

        bank_client_for("vbank").list_products()


@pytest.mark.django_db
def test_a_401_refreshes_the_token_exactly_once_and_repeats_the_call():
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        mock.post(f"{BASE}/auth/bank-token", json=_token_answer("tok-A"))
        mock.post(f"{BASE}/auth/bank-token", json=_token_answer("tok-B"))
        mock.get(
            f"{BASE}/products",
            status=401,
            json={"detail": "Could not validate credentials"},
            match=[matchers.header_matcher({"Authorization": "Bearer tok-A"})],
        )
        mock.get(f"{BASE}/products", **_products_with("tok-B"))

        bank_client_for("vbank").list_products()

        token_calls = [c for c in mock.calls if "/auth/bank-token" in c.request.url]
    assert len(token_calls) == 2
    assert BankToken.objects.get(bank_code="vbank").access_token == "tok-B"


@pytest.mark.django_db
def test_a_second_401_after_refresh_is_a_bank_auth_error():
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        mock.post(f"{BASE}/auth/bank-token", json=_token_answer("tok-A"))
        mock.post(f"{BASE}/auth/bank-token", json=_token_answer("tok-B"))
        products = mock.get(
            f"{BASE}/products", status=401, json={"detail": "Could not validate credentials"}
        )

        with pytest.raises(BankAuthError):
            bank_client_for("vbank").list_products()

        token_calls = [c for c in mock.calls if "/auth/bank-token" in c.request.url]
    assert len(token_calls) == 2
    assert products.call_count == 2


@pytest.mark.django_db
def test_invalidate_forgets_the_token_in_process_and_database():
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        mock.post(f"{BASE}/auth/bank-token", json=_token_answer("tok-A"))
        client = bank_client_for("vbank")
        assert bank_token_get(bank_code="vbank", client=client) == "tok-A"

    bank_token_invalidate(bank_code="vbank")

    assert not BankToken.objects.filter(bank_code="vbank").exists()


@pytest.mark.django_db
def test_tokens_are_kept_per_bank():
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        mock.post(f"{BASE}/auth/bank-token", json=_token_answer("tok-V"))
        mock.post("https://abank.test/auth/bank-token", json=_token_answer("tok-A"))
        mock.get(f"{BASE}/products", **_products_with("tok-V"))
        mock.get("https://abank.test/products", **_products_with("tok-A"))

        bank_client_for("vbank").list_products()
        bank_client_for("abank").list_products()

    assert set(BankToken.objects.values_list("bank_code", flat=True)) == {"vbank", "abank"}


@pytest.mark.django_db
def test_the_token_is_never_logged_in_clear(caplog):
    caplog.set_level(logging.DEBUG)
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        mock.post(f"{BASE}/auth/bank-token", json=_token_answer("tok-very-secret-123"))
        mock.get(f"{BASE}/products", status=401, json={"detail": "Could not validate credentials"})
        mock.post(f"{BASE}/auth/bank-token", json=_token_answer("tok-very-secret-456"))
        mock.get(f"{BASE}/products", json=PRODUCTS)

        bank_client_for("vbank").list_products()

    assert "tok-very-secret" not in caplog.text
    assert "team-secret-xyz" not in caplog.text


def test_bank_registry_lists_configured_banks_and_rejects_unknown_codes():
    assert bank_codes() == ["vbank", "abank"]
    assert bank_display_name("abank") == "Awesome Bank"
    with pytest.raises(UnknownBank) as caught:
        bank_client_for("nobank")
    assert (caught.value.code, caught.value.http_status) == ("unknown_bank", 404)


def test_bank_client_for_builds_the_bank_subclass_from_settings(settings):
    settings.BANK_TIMEOUT_SECONDS = 7.5
    settings.BANK_MAX_RETRIES = 2

    client = bank_client_for("vbank")

    assert type(client).__name__ == "VBankClient"
    assert client.base_url == BASE
    assert (client.team_id, client.timeout_seconds, client.max_retries) == ("team260", 7.5, 2)
    assert client.display_name == "Virtual Bank"
