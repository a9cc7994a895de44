"""Consent calls at a bank: account consents (SPEC §3) and product-agreement consents (SPEC §6)."""

from banking.clients import parsing
from banking.clients.auth import AuthMixin
from banking.clients.types import AccountConsentResult

DEFAULT_ACCOUNT_PERMISSIONS = ("ReadAccountsDetail", "ReadBalances", "ReadTransactionsDetail")


class ConsentsMixin(AuthMixin):
    """Request, poll, sign (demo) and revoke both consent families."""

    # --- Account consents (SPEC §3) ---------------------------------------------------------

    def request_account_consent(
        self,
        *,
        client_id: str,
        permissions: tuple[str, ...] | list[str] = DEFAULT_ACCOUNT_PERMISSIONS,
        reason: str = "",
    ) -> AccountConsentResult:
        """POST /account-consents/request; approved → authorized with a consent id, else pending."""
        response = self._send(
            "POST",
            "/account-consents/request",
            json_body={
                "client_id": client_id,
                "permissions": list(permissions),
                "reason": reason,
                "requesting_bank": self.team_id,
                "requesting_bank_name": "FinTrack",
            },
            interbank=True,
        )
        return self._read(
            response,
            "/account-consents/request",
            lambda body: parsing.account_consent_requested(body, permissions=permissions),
        )

    def get_account_consent(self, *, consent_id: str) -> AccountConsentResult:
        """GET /account-consents/{id} by consent-… or req-… id (SPEC §3.2)."""
        response = self._send("GET", f"/account-consents/{consent_id}", interbank=True)
        return self._read(
            response,
            "/account-consents/{id}",
            lambda body: parsing.account_consent_state(body, consent_id=consent_id),
        )

    def revoke_account_consent(self, *, consent_id: str) -> None:
        """DELETE /account-consents/{consent_id} (204)."""
        self._send("DELETE", f"/account-consents/{consent_id}", interbank=True)

    def approve_account_consent_as_client(
        self, *, client_id: str, request_id: str
    ) -> AccountConsentResult:
        """DEMO ONLY: sign a pending consent as our own test client (SPEC §3.4, §16)."""
        client_token = self._client_login(client_id=client_id)
        response = self._send(
            "POST",
            "/account-consents/sign",
            json_body={"request_id": request_id, "action": "approve", "signature": "password"},
            bearer=client_token,
        )
        return self._read(
            response,
            "/account-consents/sign",
            lambda body: parsing.account_consent_signed(body, request_id=request_id),
        )

    # --- Product-agreement consents (SPEC §6) -----------------------------------------------

    def approve_product_consent_as_client(
        self, *, client_id: str, request_id: str
    ) -> AccountConsentResult:
        """DEMO ONLY: sign a pending product-agreement consent as our own test client (§6.1)."""
        client_token = self._client_login(client_id=client_id)
        response = self._send(
            "POST",
            "/product-agreement-consents/sign",
            query={"client_id": client_id},
            json_body={"request_id": request_id, "action": "approve", "signature": "password"},
            bearer=client_token,
        )
        return self._read(
            response,
            "/product-agreement-consents/sign",
            lambda body: parsing.product_consent_signed(body, request_id=request_id),
        )

    def request_product_consent(self, *, client_id: str) -> AccountConsentResult:
        """POST /product-agreement-consents/request with read_product_agreements=true."""
        response = self._send(
            "POST",
            "/product-agreement-consents/request",
            query={"client_id": client_id},
            json_body={
                "requesting_bank": self.team_id,
                "client_id": client_id,
                "read_product_agreements": True,
                "open_product_agreements": False,
                "close_product_agreements": False,
                "reason": "FinTrack: show your loans, deposits and cards",
            },
            interbank=True,
        )
        return self._read(response, "/product-agreement-consents/request", parsing.product_consent)

    def get_product_consent(self, *, consent_id: str, client_id: str) -> AccountConsentResult:
        """GET /product-agreement-consents/{id}?client_id=… (flat JSON, SPEC §6.2)."""
        response = self._send(
            "GET",
            f"/product-agreement-consents/{consent_id}",
            query={"client_id": client_id},
            interbank=True,
        )
        return self._read(
            response,
            "/product-agreement-consents/{id}",
            lambda body: parsing.product_consent_state(body, consent_id=consent_id),
        )

    def revoke_product_consent(self, *, consent_id: str, client_id: str) -> None:
        """DELETE /product-agreement-consents/{id}?client_id=… (204). Some deployments want a
        client token here (SPEC §6.2) and answer 401 `Insufficient permissions`: that is
        BankPermissionError, not an expired bank token, so no new token is fetched."""
        self._send(
            "DELETE",
            f"/product-agreement-consents/{consent_id}",
            query={"client_id": client_id},
            interbank=True,
        )
