"""Account calls at a bank (SPEC §4): the accounts a consent grants, balances, transaction pages.

A transactions page is checked against what was asked before it is parsed: no more items than
the limit (SPEC §4.4: 1..100), and a `links.next` that moves forward (a listing stuck on one page
would otherwise be read until the task's time limit).
"""

import logging
from typing import Any
from urllib.parse import parse_qs, urlsplit

from banking.clients import parsing
from banking.clients.errors import BankPagingError, BankResponseError
from banking.clients.transport import BankResponse, BankTransport
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

        def parse(body: dict[str, Any]) -> TransactionPage:
            self._page_bounds_check(body, response, page=page, limit=limit)
            return parsing.transaction_page(body, account_id=account_id, page=page)

        result = self._read(response, "/accounts/{id}/transactions", parse)
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

    def _page_bounds_check(
        self, body: dict[str, Any], response: BankResponse, *, page: int, limit: int
    ) -> None:
        """Refuse a page of more items than `limit`, or whose `links.next` does not advance."""
        data = body.get("data")
        items = data.get("transaction") if isinstance(data, dict) else None
        if isinstance(items, list) and len(items) > limit:
            raise BankResponseError(
                f"{self.bank_code}: transactions page {page} has {len(items)} items, more than"
                f" the {limit} asked for",
                bank_code=self.bank_code,
                status_code=response.status_code,
            )
        links = body.get("links")
        if not isinstance(links, dict):
            return
        next_link = links.get("next")
        if not next_link or not isinstance(next_link, str):
            return
        next_page = _page_number(next_link)
        if next_link == links.get("self") or (next_page is not None and next_page <= page):
            raise BankPagingError(
                f"{self.bank_code}: transactions page {page} links to page"
                f" {next_page if next_page is not None else page} as next: the listing does not"
                " advance",
                bank_code=self.bank_code,
                status_code=response.status_code,
                detail={"links": links},
            )


def _page_number(link: str) -> int | None:
    """The `page` query parameter of a paging link, if it has a numeric one."""
    values = parse_qs(urlsplit(link).query).get("page")
    if not values:
        return None
    return parsing.to_int(values[0])
