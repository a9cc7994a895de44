import json
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import responses
from django.conf import settings
from django.utils import timezone

from banking.clients import VBankClient
from banking.clients.errors import BankUnavailableError
from banking.models import BankProduct, BankToken
from banking.services.products import products_catalogue_refresh
from banking.tests.factories import make_agreement, make_product
from fintrack.core.exceptions import ValidationFailed

pytestmark = pytest.mark.django_db
EXAMPLES = Path("/work/shared/bank-api/examples")
BASE = "https://vbank.test"


def products_payload():
    return json.loads((EXAMPLES / "products.json").read_text())


def client():
    return VBankClient(
        base_url=BASE,
        team_id="team260",
        team_secret="secret",
        token_provider=lambda: "t",
        max_retries=0,
    )


def test_refresh_stores_the_catalogue_through_the_configured_client():
    BankToken.objects.create(
        bank_code="vbank",
        access_token="stored-token",
        expires_at=timezone.now() + timedelta(hours=20),
        last_refreshed_at=timezone.now(),
    )
    base_url = settings.BANKS["vbank"]["base_url"].rstrip("/")
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        mock.get(f"{base_url}/products", json=products_payload())
        assert products_catalogue_refresh(bank_code="vbank") is True

    products = BankProduct.objects.filter(bank_code="vbank").order_by("product_id")
    assert products.count() == 5
    loan = BankProduct.objects.get(product_id="prod-8c41d07e5a93")
    assert (
        loan.product_type,
        loan.name,
        loan.interest_rate,
        loan.min_amount,
        loan.max_amount,
        loan.term_months,
    ) == (
        "loan",
        "Ипотека VBank 9.3%",
        Decimal("9.300"),
        Decimal("500000.00"),
        Decimal("3000000.00"),
        240,
    )
    card = BankProduct.objects.get(product_id="prod-0a9e4c6b18d2")
    assert (card.interest_rate, card.max_amount, card.term_months) == (None, None, None)


def test_a_fresh_catalogue_is_not_fetched_again():
    make_product(product_id="prod-1", fetched_at=timezone.now() - timedelta(hours=1))
    with responses.RequestsMock(assert_all_requests_are_fired=True):
        # No URL registered: any bank call would fail the test.
        assert products_catalogue_refresh(bank_code="vbank", client=client()) is False
    assert list(BankProduct.objects.values_list("product_id", flat=True)) == ["prod-1"]


def test_a_stale_catalogue_is_replaced_and_withdrawn_products_dropped():
    make_product(product_id="prod-withdrawn", fetched_at=timezone.now() - timedelta(hours=7))
    make_product(
        bank_code="abank",
        product_id="prod-other-bank",
        fetched_at=timezone.now() - timedelta(days=3),
    )
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        mock.get(f"{BASE}/products", json=products_payload())
        assert products_catalogue_refresh(bank_code="vbank", client=client()) is True

    assert sorted(BankProduct.objects.values_list("bank_code", "product_id")) == sorted(
        [("abank", "prod-other-bank")]
        + [("vbank", p["productId"]) for p in products_payload()["data"]["product"]]
    )


def test_a_repeat_forced_refresh_with_the_same_data_changes_nothing_but_the_time():
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        mock.get(f"{BASE}/products", json=products_payload())
        products_catalogue_refresh(bank_code="vbank", client=client(), force=True)
        before = list(
            BankProduct.objects.order_by("id").values("id", "product_id", "name", "interest_rate")
        )
        products_catalogue_refresh(bank_code="vbank", client=client(), force=True)

    assert (
        list(BankProduct.objects.order_by("id").values("id", "product_id", "name", "interest_rate"))
        == before
    )


def test_a_bank_outage_leaves_the_cached_catalogue_intact():
    make_product(product_id="prod-kept", fetched_at=timezone.now() - timedelta(days=1))
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        mock.get(f"{BASE}/products", status=503, body="upstream down")
        with pytest.raises(BankUnavailableError):
            products_catalogue_refresh(bank_code="vbank", client=client())

    assert list(BankProduct.objects.values_list("product_id", flat=True)) == ["prod-kept"]


def test_an_unknown_bank_is_refused():
    with pytest.raises(ValidationFailed):
        products_catalogue_refresh(bank_code="tbank")


def test_products_api_shows_catalogues_and_only_own_agreements(auth_client, make_user):
    loan_product = make_product(product_id="prod-loan", product_type="loan")
    deposit = make_product(
        bank_code="abank",
        product_id="prod-dep",
        product_type="deposit",
        name="Вклад",
        interest_rate="8.5",
    )
    mine = make_agreement(user=auth_client.user, agreement_id="agr-mine")
    make_agreement(user=make_user(), agreement_id="agr-theirs")

    body = auth_client.get("/api/products").json()

    assert [p["bank_product_id"] for p in body["catalogue"]] == [
        deposit.product_id,
        loan_product.product_id,
    ]
    assert [a["bank_agreement_id"] for a in body["agreements"]] == [mine.agreement_id]
    assert body["catalogue"][0] == {
        "id": deposit.id,
        "bank_code": "abank",
        "bank_product_id": "prod-dep",
        "product_type": "deposit",
        "name": "Вклад",
        "description": "",
        "interest_rate": "8.500",
        "min_amount": None,
        "max_amount": None,
        "currency": "RUB",
        "term_months": None,
        "fetched_at": "2025-11-25T12:00:00Z",
    }
    assert body["agreements"][0]["principal"] == "100000.00"

    filtered = auth_client.get("/api/products?bank_code=abank&product_type=deposit").json()
    assert [p["bank_product_id"] for p in filtered["catalogue"]] == ["prod-dep"]
    assert filtered["agreements"] == []


@pytest.mark.parametrize("query", ["bank_code=tbank", "product_type=mortgage"])
def test_products_api_bad_filters_are_a_400(auth_client, query):
    response = auth_client.get(f"/api/products?{query}")

    assert response.status_code == 400
    assert response.json()["code"] == "validation_error"


def test_products_api_query_count_does_not_grow(auth_client, django_assert_max_num_queries):
    for i in range(40):
        make_product(product_id=f"prod-{i}")
        make_agreement(user=auth_client.user)

    with django_assert_max_num_queries(3):
        body = auth_client.get("/api/products").json()
    assert (len(body["catalogue"]), len(body["agreements"])) == (40, 40)
