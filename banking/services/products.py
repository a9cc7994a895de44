"""The banks' product catalogues, cached in `bank_products` and refreshed only when stale."""

import logging
from datetime import timedelta

from django.conf import settings
from django.db import transaction as db_transaction
from django.db.models import Max
from django.utils import timezone

from banking.models import BankCode, BankProduct
from fintrack.core.exceptions import ValidationFailed

logger = logging.getLogger(__name__)


def catalogue_max_age() -> timedelta:
    """How long a fetched catalogue stays fresh (settings PRODUCT_CATALOGUE_MAX_AGE_HOURS, 6 h)."""
    return timedelta(hours=float(settings.PRODUCT_CATALOGUE_MAX_AGE_HOURS))


def products_catalogue_is_fresh(*, bank_code: str) -> bool:
    """Whether the bank's cached catalogue was fetched within the max age."""
    fetched_at = BankProduct.objects.filter(bank_code=bank_code).aggregate(last=Max("fetched_at"))[
        "last"
    ]
    return fetched_at is not None and timezone.now() - fetched_at < catalogue_max_age()


def products_catalogue_refresh(*, bank_code: str, force: bool = False, client=None) -> bool:
    """Fetch the bank's catalogue if stale (or forced) and replace the cached one; True if done."""
    if bank_code not in BankCode.values:
        raise ValidationFailed(f"Unknown bank {bank_code!r}.", extra={"bank_code": bank_code})
    if not force and products_catalogue_is_fresh(bank_code=bank_code):
        return False
    if client is None:
        from banking.services.clients import bank_client_for

        client = bank_client_for(bank_code)
    # The bank call happens outside any transaction; typed bank errors propagate to the caller.
    items = client.list_products()
    now = timezone.now()
    unique_items = {item.product_id: item for item in items}  # a repeated id keeps its last entry
    products = [
        BankProduct(
            bank_code=bank_code,
            product_id=item.product_id,
            product_type=item.product_type,
            name=item.name[:255],
            description=item.description,
            interest_rate=item.interest_rate,
            min_amount=item.min_amount,
            max_amount=item.max_amount,
            term_months=item.term_months,
            raw_json=item.raw,
            fetched_at=now,
        )
        for item in unique_items.values()
    ]
    with db_transaction.atomic():
        # Products the bank no longer lists are withdrawn from the catalogue.
        BankProduct.objects.filter(bank_code=bank_code).exclude(
            product_id__in=[product.product_id for product in products]
        ).delete()
        if products:
            BankProduct.objects.bulk_create(
                products,
                update_conflicts=True,
                unique_fields=["bank_code", "product_id"],
                update_fields=[
                    "product_type",
                    "name",
                    "description",
                    "interest_rate",
                    "min_amount",
                    "max_amount",
                    "term_months",
                    "raw_json",
                    "fetched_at",
                ],
            )
    logger.info("product catalogue of %s refreshed: %s products", bank_code, len(products))
    return True
