"""Product calls at a bank: the public catalogue (SPEC §5) and a client's agreements (SPEC §7)."""

from banking.clients import parsing
from banking.clients.transport import BankTransport
from banking.clients.types import BankAgreement, BankProductItem


class ProductsMixin(BankTransport):
    """The catalogue, and agreements read under a product-agreement consent."""

    def list_products(self, *, product_type: str | None = None) -> list[BankProductItem]:
        """GET /products[?product_type=…]: the public catalogue."""
        query = {"product_type": product_type} if product_type else {}
        response = self._send("GET", "/products", query=query)
        return self._read(response, "/products", parsing.products)

    def list_agreements(self, *, client_id: str, product_consent_id: str) -> list[BankAgreement]:
        """GET /product-agreements?client_id=… with the product-agreement consent."""
        response = self._send(
            "GET",
            "/product-agreements",
            query={"client_id": client_id},
            interbank=True,
            product_consent_id=product_consent_id,
        )
        return self._read(response, "/product-agreements", parsing.agreements)

    def get_agreement(
        self, *, client_id: str, product_consent_id: str, agreement_id: str
    ) -> BankAgreement:
        """GET /product-agreements/{id}?client_id=…: adds interest_rate and account_balance."""
        response = self._send(
            "GET",
            f"/product-agreements/{agreement_id}",
            query={"client_id": client_id},
            interbank=True,
            product_consent_id=product_consent_id,
        )
        return self._read(response, "/product-agreements/{id}", parsing.agreement_detail)
