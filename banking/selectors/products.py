"""Product catalogue (public, per bank) and the user's product agreements."""

from django.db.models import QuerySet

from banking.models import BankProduct, ProductAgreement


def product_list(*, bank_code: str | None = None, product_type: str | None = None):
    """The cached catalogues of the banks, optionally of one bank or one product type."""
    products = BankProduct.objects.all().order_by("bank_code", "product_type", "name", "id")
    if bank_code:
        products = products.filter(bank_code=bank_code)
    if product_type:
        products = products.filter(product_type=product_type)
    return products


def agreement_list(*, user, bank_code: str | None = None, product_type: str | None = None):
    """The user's product agreements (deposits, loans, cards), newest first per bank."""
    agreements: QuerySet[ProductAgreement] = ProductAgreement.objects.filter(user=user).order_by(
        "bank_code", "-start_date", "id"
    )
    if bank_code:
        agreements = agreements.filter(bank_code=bank_code)
    if product_type:
        agreements = agreements.filter(product_type=product_type)
    return agreements
