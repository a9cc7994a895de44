"""Account calls at a bank (SPEC §4): the accounts a consent grants, balances, transaction pages."""

import logging

from banking.clients import parsing
from banking.clients.transport import BankTransport
from banking.clients.types import BankAccount, BankBalance, TransactionPage

logger = logging.getLogger(__name__)


class AccountsMixin(BankTransport):
    """Reads under an account consent."""

    def list_accounts(self, *, client_id: str, consent_id: str) -> list[BankAccount]:
        """GET /accounts?client_id=… with the account consent."""
        response = self._send(
            "GET",
            "/accounts",
            query={"client_id": client_id},
            interbank=True,
            consent_id=consent_id,
        )
        return self._read(response, "/accounts", parsing.accounts)

    def get_balances(self, *, client_id: str, account_id: str, consent_id: str) -> BankBalance:
        """GET /accounts/{id}/balances: InterimAvailable and InterimBooked, signed."""
        response = self._send(
            "GET",
            f"/accounts/{account_id}/balances",
            query={"client_id": client_id},
            interbank=True,
            consent_id=consent_id,
        )
        return self._read(
            response,
            "/accounts/{id}/balances",
            lambda body: parsing.balance(body, account_id=account_id),
        )

    def get_transactions_page(
        self, *, client_id: str, account_id: str, consent_id: str, page: int, limit: int = 100
    ) -> TransactionPage:
        """GET /accounts/{id}/transactions?page=N&limit=L: one page, newest first."""
        response = self._send(
            "GET",
            f"/accounts/{account_id}/transactions",
            query={"client_id": client_id, "page": page, "limit": limit},
            interbank=True,
            consent_id=consent_id,
        )
        result = self._read(
            response,
            "/accounts/{id}/transactions",
            lambda body: parsing.transaction_page(body, account_id=account_id, page=page),
        )
        if result.skipped:
            logger.warning(
                "%s %s page %s: skipped %d transaction(s): %s",
                self.bank_code,
                account_id,
                page,
                len(result.skipped),
                "; ".join(entry["reason"] for entry in result.skipped[:5]),
            )
        return result
