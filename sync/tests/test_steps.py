"""The catalogue step: refreshed when older than PRODUCT_CATALOGUE_MAX_AGE_HOURS (read at each
call), stored through banking.ingestion; an unchanged re-read changes nothing."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from banking.clients.types import BankProductItem
from banking.models import BankProduct
from banking.tests.factories import make_product
from sync.steps import catalogue_refresh_if_stale

pytestmark = pytest.mark.django_db


class _CatalogueClient:
    def __init__(self):
        self.calls = 0

    def list_products(self) -> list[BankProductItem]:
        self.calls += 1
        return [
            BankProductItem(
                product_id="prod-1",
                product_type="deposit",
                name="Вклад 18%",
                description="",
                interest_rate=Decimal("18.00"),
                min_amount=None,
                max_amount=None,
                term_months=12,
                raw={"productId": "prod-1"},
            )
        ]


@pytest.mark.parametrize(("max_age_hours", "refreshed"), [(6, False), (2, True), (0.5, True)])
def test_the_catalogue_is_refreshed_once_older_than_the_setting(settings, max_age_hours, refreshed):
    make_product(product_id="prod-1", fetched_at=timezone.now() - timedelta(hours=3))
    settings.PRODUCT_CATALOGUE_MAX_AGE_HOURS = max_age_hours
    client = _CatalogueClient()

    assert catalogue_refresh_if_stale(client=client, bank_code="vbank") is refreshed

    assert client.calls == int(refreshed)
    product = BankProduct.objects.get(bank_code="vbank", product_id="prod-1")
    assert (product.name == "Вклад 18%") is refreshed


def test_a_missing_catalogue_is_read_and_then_fresh(settings):
    settings.PRODUCT_CATALOGUE_MAX_AGE_HOURS = 6
    client = _CatalogueClient()

    assert catalogue_refresh_if_stale(client=client, bank_code="abank") is True
    assert catalogue_refresh_if_stale(client=client, bank_code="abank") is False

    assert client.calls == 1
    assert list(
        BankProduct.objects.filter(bank_code="abank").values_list("product_id", "name")
    ) == [("prod-1", "Вклад 18%")]
