"""The base bank client (SPEC.md): one session, a timeout on every call, no redirects, retries with
backoff and full jitter, one token refresh on 401, typed errors and normalised dataclasses.

It never imports models or the ORM: the bank token and the raw-log writer are injected as callables
(`token_provider`, `token_invalidator`, `exchange_hook`) by `banking.services.clients`.
"""

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

import orjson
import requests
from requests.adapters import HTTPAdapter

from banking.clients import parsing
from banking.clients.errors import (
    BankAuthError,
    BankError,
    BankNotFoundError,
    BankRejectedError,
    BankResponseError,
    BankUnavailableError,
    ConsentRequiredError,
)
from banking.clients.types import (
    AccountConsentResult,
    BankAccount,
    BankAgreement,
    BankBalance,
    BankProductItem,
    BankTokenInfo,
    BankTransaction,
    TransactionPage,
)

logger = logging.getLogger(__name__)

DEFAULT_ACCOUNT_PERMISSIONS = ("ReadAccountsDetail", "ReadBalances", "ReadTransactionsDetail")
RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})
CONSENT_REQUIRED_CODES = frozenset({"CONSENT_REQUIRED"})
# What the columns hold (banking.models): longer ids or bigger amounts are bad bank data.
MAX_TRANSACTION_ID_LENGTH = 128
MAX_AMOUNT = Decimal("1e16")  # 18 digits, 2 of them decimals
_text = parsing.text
_TRANSPORT_ERRORS = (
    requests.exceptions.Timeout,
    requests.exceptions.ConnectionError,  # includes a keep-alive connection dropped by the server
    requests.exceptions.ChunkedEncodingError,
)


@dataclass(slots=True)
class BankExchange:
    """One HTTP request and its outcome, handed to the raw-log hook before any parsing."""

    bank_code: str
    method: str
    path: str  # relative to the bank's base URL, without the query string
    query: dict[str, Any]
    request_headers: dict[str, str]
    request_json: Any
    status_code: int | None = None
    response_headers: dict[str, str] = field(default_factory=dict)
    response_text: str = ""
    response_json: Any = None  # the parsed body, so the hook never parses it again
    response_is_json: bool = False
    duration_ms: int = 0
    error: str = ""
    started_at: datetime | None = None


@dataclass(slots=True)
class _Response:
    status_code: int
    body: Any  # parsed JSON, or None for an empty or non-JSON body
    text: str
    headers: Any  # requests' case-insensitive headers
    is_json: bool = False


class BankClient:
    """HTTP client of one bank's OpenBanking API; subclasses hold only what differs."""

    bank_code = ""
    display_name = ""
    # Whether a new account consent is usually approved by the bank itself (SPEC §11). Only a hint
    # for the UI: the flow is driven by the status every answer carries (SPEC §3.5).
    auto_approves_account_consents = True

    def __init__(
        self,
        *,
        base_url: str,
        team_id: str,
        team_secret: str,
        bank_code: str | None = None,
        timeout_seconds: float = 10.0,
        max_retries: int = 3,
        backoff_seconds: float = 0.5,
        max_sleep_seconds: float = 10.0,
        verify_tls: bool = True,
        pool_size: int = 10,
        token_provider: Callable[[], str] | None = None,
        token_invalidator: Callable[[], None] | None = None,
        exchange_hook: Callable[[BankExchange], None] | None = None,
    ):
        self.bank_code = bank_code or self.bank_code
        self.base_url = base_url.rstrip("/")
        self.team_id = team_id
        self.team_secret = team_secret
        self.timeout_seconds = timeout_seconds
        self.max_retries = max(0, max_retries)
        self.backoff_seconds = backoff_seconds
        self.max_sleep_seconds = max_sleep_seconds
        self.token_provider = token_provider
        self.token_invalidator = token_invalidator
        self.exchange_hook = exchange_hook
        # Injectable so tests neither sleep nor depend on randomness.
        self.sleep: Callable[[float], None] = time.sleep
        self.jitter: Callable[[float], float] = lambda cap: random.uniform(0, cap)
        self.calls_made = 0
        self._calls_lock = threading.Lock()  # a sync may read several accounts at once
        self._own_token: BankTokenInfo | None = None
        self.session = requests.Session()
        # Proxies and the CA bundle are read from the environment once, for this bank's URL:
        # with trust_env, requests re-reads the environment (and ~/.netrc) on every call.
        environment = self.session.merge_environment_settings(
            self.base_url, {}, None, verify_tls, None
        )
        self.session.trust_env = False
        self.session.proxies = environment["proxies"]
        self.session.verify = environment["verify"]
        adapter = HTTPAdapter(pool_connections=1, pool_maxsize=pool_size, max_retries=0)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)

    def close(self) -> None:
        """Release the pooled connections."""
        self.session.close()

    # --- Authentication ---------------------------------------------------------------------

    def fetch_bank_token(self) -> BankTokenInfo:
        """POST /auth/bank-token with the team credentials in the query string (SPEC §2.1)."""
        response = self._send(
            "POST",
            "/auth/bank-token",
            query={"client_id": self.team_id, "client_secret": self.team_secret},
            authenticated=False,
        )
        body = self._expect_dict(response, "/auth/bank-token")
        token = body.get("access_token")
        if not isinstance(token, str) or not token:
            raise self._bad_response("bank token answer without access_token", response)
        return BankTokenInfo(access_token=token, expires_at=self._token_expiry(body, token))

    @staticmethod
    def _token_expiry(body: dict[str, Any], token: str) -> datetime:
        # expires_in is a duration, immune to a skewed bank clock; the JWT exp is the fallback.
        expires_in = parsing.to_int(body.get("expires_in"))
        if expires_in is not None and expires_in > 0:
            return datetime.now(UTC) + timedelta(seconds=expires_in)
        return parsing.jwt_expiry(token) or datetime.now(UTC) + timedelta(hours=1)

    def _bank_token(self) -> str:
        if self.token_provider is not None:
            return self.token_provider()
        now = datetime.now(UTC)
        if self._own_token is None or self._own_token.expires_at - now < timedelta(minutes=5):
            self._own_token = self.fetch_bank_token()
        return self._own_token.access_token

    def _drop_bank_token(self) -> None:
        self._own_token = None
        if self.token_invalidator is not None:
            self.token_invalidator()

    def _client_login(self, *, client_id: str) -> str:
        """POST /auth/login as a bank client (demo only, SPEC §2.2); returns the client token."""
        response = self._send(
            "POST",
            "/auth/login",
            json_body={"username": client_id, "password": self.team_secret},
            authenticated=False,
        )
        body = self._expect_dict(response, "/auth/login")
        token = body.get("access_token")
        if not isinstance(token, str) or not token:
            raise self._bad_response("login answer without access_token", response)
        return token

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
        body = self._expect_dict(response, "/account-consents/request")
        status = parsing.consent_status(body.get("status"))
        consent_id = parsing.text(body.get("consent_id")) or None
        if status is None:
            raise self._bad_response(f"unknown consent status {body.get('status')!r}", response)
        if status == "authorized" and not consent_id:
            raise self._bad_response("approved consent without consent_id", response)
        return AccountConsentResult(
            status=status,
            consent_id=consent_id if status == "authorized" else None,
            request_id=parsing.text(body.get("request_id")) or None,
            permissions=list(permissions),
            expires_at=parsing.to_datetime(body.get("expires_at") or body.get("valid_until")),
            raw=body,
        )

    def get_account_consent(self, *, consent_id: str) -> AccountConsentResult:
        """GET /account-consents/{id} by consent-… or req-… id (SPEC §3.2)."""
        response = self._send("GET", f"/account-consents/{consent_id}", interbank=True)
        body = self._expect_dict(response, "/account-consents/{id}")
        data = body.get("data") if isinstance(body.get("data"), dict) else body
        status = parsing.consent_status(data.get("status"))
        if status is None:
            raise self._bad_response(f"unknown consent status {data.get('status')!r}", response)
        returned_id = parsing.text(data.get("consentId") or data.get("consent_id"))
        is_request_id = consent_id.startswith("req-")
        real_consent_id = returned_id if returned_id.startswith("consent-") else ""
        if not real_consent_id and not is_request_id:
            real_consent_id = consent_id
        permissions = data.get("permissions")
        return AccountConsentResult(
            status=status,
            # A pending request echoes its own req-… id as consentId (SPEC §3.2 trap): not usable.
            consent_id=real_consent_id or None,
            request_id=consent_id if is_request_id else None,
            permissions=list(permissions) if isinstance(permissions, list) else [],
            expires_at=parsing.to_datetime(data.get("expirationDateTime")),
            raw=body,
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
        body = self._expect_dict(response, "/account-consents/sign")
        consent_id = parsing.text(body.get("consent_id") or body.get("consentId"))
        status = parsing.consent_status(body.get("status")) or "authorized"
        if status == "authorized" and not consent_id:
            raise self._bad_response("signed consent without consent_id", response)
        permissions = body.get("permissions")
        return AccountConsentResult(
            status=status,
            consent_id=consent_id or None,
            request_id=request_id,
            permissions=list(permissions) if isinstance(permissions, list) else [],
            expires_at=parsing.to_datetime(body.get("expires_at") or body.get("expiresAt")),
            raw=body,
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
        body = self._expect_dict(response, "/product-agreement-consents/sign")
        consent_id = parsing.text(body.get("consent_id") or body.get("consentId"))
        status = parsing.consent_status(body.get("status")) or "authorized"
        if status == "authorized" and not consent_id:
            raise self._bad_response("signed product consent without consent_id", response)
        return AccountConsentResult(
            status=status,
            consent_id=consent_id or None,
            request_id=request_id,
            permissions=["read_product_agreements"],
            expires_at=parsing.to_datetime(body.get("valid_until") or body.get("expires_at")),
            raw=body,
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
        body = self._expect_dict(response, "/product-agreement-consents/request")
        return self._product_consent_result(body, response)

    def get_product_consent(self, *, consent_id: str, client_id: str) -> AccountConsentResult:
        """GET /product-agreement-consents/{id}?client_id=… (flat JSON, SPEC §6.2)."""
        response = self._send(
            "GET",
            f"/product-agreement-consents/{consent_id}",
            query={"client_id": client_id},
            interbank=True,
        )
        body = self._expect_dict(response, "/product-agreement-consents/{id}")
        data = body.get("data") if isinstance(body.get("data"), dict) else body
        result = self._product_consent_result(data, response, raw=body)
        if result.consent_id is None and result.status == "authorized":
            result = AccountConsentResult(
                status=result.status,
                consent_id=consent_id if consent_id.startswith("pagc-") else None,
                request_id=result.request_id,
                permissions=result.permissions,
                expires_at=result.expires_at,
                raw=body,
            )
        return result

    def revoke_product_consent(self, *, consent_id: str, client_id: str) -> None:
        """DELETE /product-agreement-consents/{id}?client_id=… (204)."""
        self._send(
            "DELETE",
            f"/product-agreement-consents/{consent_id}",
            query={"client_id": client_id},
            interbank=True,
        )

    def _product_consent_result(
        self, body: dict[str, Any], response: _Response, raw: dict[str, Any] | None = None
    ) -> AccountConsentResult:
        status = parsing.consent_status(body.get("status"))
        if status is None:
            raise self._bad_response(f"unknown consent status {body.get('status')!r}", response)
        consent_id = parsing.text(body.get("consent_id")) or None
        if status == "authorized" and consent_id is None and "request_id" in body:
            raise self._bad_response("approved product consent without consent_id", response)
        permissions = [
            name
            for name in (
                "read_product_agreements",
                "open_product_agreements",
                "close_product_agreements",
            )
            if body.get(name)
        ] or ["read_product_agreements"]
        return AccountConsentResult(
            status=status,
            consent_id=consent_id if status != "pending" else None,
            request_id=parsing.text(body.get("request_id")) or None,
            permissions=permissions,
            expires_at=parsing.to_datetime(body.get("valid_until")),
            raw=raw if raw is not None else body,
        )

    # --- Accounts, balances, transactions (SPEC §4) -----------------------------------------

    def list_accounts(self, *, client_id: str, consent_id: str) -> list[BankAccount]:
        """GET /accounts?client_id=… with the account consent."""
        response = self._send(
            "GET",
            "/accounts",
            query={"client_id": client_id},
            interbank=True,
            consent_id=consent_id,
        )
        body = self._expect_dict(response, "/accounts")
        data = body.get("data")
        items = data.get("account") if isinstance(data, dict) else None
        if not isinstance(items, list):
            raise self._bad_response("accounts answer without data.account list", response)
        accounts = []
        for item in items:
            if not isinstance(item, dict) or not parsing.text(item.get("accountId")):
                # Skipping it would mark the stored account it stands for inactive: refuse the
                # whole list instead, so a bad answer changes nothing.
                raise self._bad_response(
                    "accounts answer with an entry without accountId", response
                )
            nested = item.get("account")
            identity = nested[0] if isinstance(nested, list) and nested else {}
            identity = identity if isinstance(identity, dict) else {}
            accounts.append(
                BankAccount(
                    account_id=parsing.text(item.get("accountId")),
                    account_type=parsing.account_type(item.get("accountSubType")),
                    bank_subtype=parsing.text(item.get("accountSubType")),
                    bank_account_type=parsing.text(item.get("accountType")),
                    status=parsing.text(item.get("status")),
                    currency=parsing.text(item.get("currency")) or "RUB",
                    nickname=parsing.text(item.get("nickname")),
                    opening_date=parsing.to_date(item.get("openingDate")),
                    identification=parsing.text(identity.get("identification")),
                    holder_name=parsing.text(identity.get("name")),
                    raw=item,
                )
            )
        return accounts

    def get_balances(self, *, client_id: str, account_id: str, consent_id: str) -> BankBalance:
        """GET /accounts/{id}/balances: InterimAvailable and InterimBooked, signed."""
        response = self._send(
            "GET",
            f"/accounts/{account_id}/balances",
            query={"client_id": client_id},
            interbank=True,
            consent_id=consent_id,
        )
        body = self._expect_dict(response, "/accounts/{id}/balances")
        data = body.get("data")
        items = data.get("balance") if isinstance(data, dict) else None
        if not isinstance(items, list):
            raise self._bad_response("balances answer without data.balance list", response)
        by_type: dict[str, dict[str, Any]] = {}
        for item in items:
            if isinstance(item, dict):
                by_type.setdefault(parsing.text(item.get("type")), item)

        def amount_of(item: dict[str, Any] | None):
            if item is None:
                return None
            money = item.get("amount") if isinstance(item.get("amount"), dict) else {}
            value = parsing.to_decimal(money.get("amount"))
            return (
                None if value is None else parsing.signed(value, item.get("creditDebitIndicator"))
            )

        available_item = by_type.get("InterimAvailable")
        booked_item = by_type.get("InterimBooked")
        if amount_of(available_item) is None and amount_of(booked_item) is None:
            # An unreadable balance must not overwrite the stored one with nothing.
            raise self._bad_response("balances answer without a readable amount", response)
        first = available_item or booked_item or {}
        money = first.get("amount") if isinstance(first.get("amount"), dict) else {}
        return BankBalance(
            account_id=account_id,
            available=amount_of(available_item),
            booked=amount_of(booked_item),
            currency=parsing.text(money.get("currency")) or "RUB",
            as_of=parsing.to_datetime(first.get("dateTime")) or datetime.now(UTC),
            raw=body,
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
        body = self._expect_dict(response, "/accounts/{id}/transactions")
        data = body.get("data")
        items = data.get("transaction") if isinstance(data, dict) else None
        if not isinstance(items, list):
            raise self._bad_response("transactions answer without data.transaction list", response)
        transactions: list[BankTransaction] = []
        skipped: list[dict[str, Any]] = []
        for item in items:
            parsed, reason = self._parse_transaction(item, account_id)
            if parsed is None:
                skipped.append({"reason": reason, "item": item})
            else:
                transactions.append(parsed)
        if skipped:
            logger.warning(
                "%s %s page %s: skipped %d transaction(s): %s",
                self.bank_code,
                account_id,
                page,
                len(skipped),
                "; ".join(entry["reason"] for entry in skipped[:5]),
            )
        meta = body.get("meta") if isinstance(body.get("meta"), dict) else {}
        links = body.get("links") if isinstance(body.get("links"), dict) else {}
        current_page = parsing.to_int(meta.get("currentPage")) or page
        total_pages = parsing.to_int(meta.get("totalPages"))
        if "next" in links or "self" in links:
            has_next = bool(links.get("next"))
        else:
            has_next = total_pages is not None and current_page < total_pages
        return TransactionPage(
            transactions=transactions,
            page=current_page,
            total_pages=total_pages,
            total_records=parsing.to_int(meta.get("totalRecords")),
            has_next=has_next,
            skipped=skipped,
        )

    @staticmethod
    def _parse_transaction(item: Any, account_id: str) -> tuple[BankTransaction | None, str]:
        # The hot loop of a sync (every row of every page): lookups done once, helpers inlined
        # for the common types; anything unusual takes parsing's general path.
        if not isinstance(item, dict):
            return None, "not an object"
        get = item.get
        raw_id = get("transactionId")
        if raw_id is not None and not isinstance(raw_id, str | int):
            return None, f"transactionId is a {type(raw_id).__name__}, not a string"
        transaction_id = _text(raw_id).strip()
        if not transaction_id:
            return None, "missing transactionId"
        if len(transaction_id) > MAX_TRANSACTION_ID_LENGTH:
            return None, f"{transaction_id[:40]}…: transactionId longer than 128 characters"
        money = get("amount")
        if not isinstance(money, dict):
            money = {}
        amount = parsing.to_decimal(money.get("amount"))
        if amount is None:
            return None, f"{transaction_id}: missing or non-numeric amount"
        if amount < 0:
            return None, f"{transaction_id}: negative amount (sign must come from the indicator)"
        if amount >= MAX_AMOUNT:
            return None, f"{transaction_id}: amount {money.get('amount')!r} out of range"
        indicator = _text(get("creditDebitIndicator")).strip().lower()
        if indicator not in ("credit", "debit"):
            # Guessing would store money out as money in (SPEC §1.2: the sign is the indicator).
            return None, (
                f"{transaction_id}: unknown creditDebitIndicator {get('creditDebitIndicator')!r}"
            )
        booking_date = parsing.to_datetime(get("bookingDateTime"))
        if booking_date is None:
            return None, f"{transaction_id}: unparseable bookingDateTime"
        status = parsing.transaction_status(get("status") or "booked")
        if status is None:
            return None, f"{transaction_id}: unknown status {get('status')!r}"
        merchant = get("merchant")
        if not isinstance(merchant, dict):
            merchant = {}
        code = get("bankTransactionCode")
        if isinstance(code, dict):
            code = code.get("code")
        counterparty = get("counterparty")
        if isinstance(counterparty, dict):
            counterparty = counterparty.get("name")
        return (
            BankTransaction(
                account_id=_text(get("accountId")) or account_id,
                transaction_id=transaction_id,
                amount=-amount if indicator == "debit" else amount,
                currency=_text(money.get("currency")) or "RUB",
                status=status,
                booking_date=booking_date,
                value_date=parsing.to_datetime(get("valueDateTime")),
                description=_text(get("transactionInformation")),
                bank_transaction_code=_text(code),
                merchant_name=_text(merchant.get("name")),
                merchant_category=_text(merchant.get("category")),
                mcc=_text(merchant.get("mccCode"))[:4],
                counterparty=_text(counterparty),
                raw=item,
            ),
            "",
        )

    # --- Products and agreements (SPEC §5, §7) ----------------------------------------------

    def list_products(self, *, product_type: str | None = None) -> list[BankProductItem]:
        """GET /products[?product_type=…]: the public catalogue."""
        query = {"product_type": product_type} if product_type else {}
        response = self._send("GET", "/products", query=query)
        body = self._expect_dict(response, "/products")
        data = body.get("data")
        items = data.get("product") if isinstance(data, dict) else None
        if not isinstance(items, list):
            raise self._bad_response("products answer without data.product list", response)
        products = []
        for item in items:
            if not isinstance(item, dict) or not parsing.text(item.get("productId")):
                continue
            products.append(
                BankProductItem(
                    product_id=parsing.text(item.get("productId")),
                    product_type=parsing.text(item.get("productType")),
                    name=parsing.text(item.get("productName")),
                    description=parsing.text(item.get("description")),
                    interest_rate=parsing.to_decimal(item.get("interestRate")),
                    min_amount=parsing.to_decimal(item.get("minAmount")),
                    max_amount=parsing.to_decimal(item.get("maxAmount")),
                    term_months=parsing.to_int(item.get("termMonths")),
                    raw=item,
                )
            )
        return products

    def list_agreements(self, *, client_id: str, product_consent_id: str) -> list[BankAgreement]:
        """GET /product-agreements?client_id=… with the product-agreement consent."""
        response = self._send(
            "GET",
            "/product-agreements",
            query={"client_id": client_id},
            interbank=True,
            product_consent_id=product_consent_id,
        )
        body = self._expect_dict(response, "/product-agreements")
        items = body.get("data")
        if isinstance(items, dict):  # tolerate an OBR-style wrapper
            items = items.get("agreement")
        if not isinstance(items, list):
            raise self._bad_response("agreements answer without a data list", response)
        return [
            self._parse_agreement(item)
            for item in items
            if isinstance(item, dict) and item.get("agreement_id")
        ]

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
        body = self._expect_dict(response, "/product-agreements/{id}")
        data = body.get("data")
        if not isinstance(data, dict) or not data.get("agreement_id"):
            raise self._bad_response("agreement answer without data.agreement_id", response)
        return self._parse_agreement(data)

    @staticmethod
    def _parse_agreement(item: dict[str, Any]) -> BankAgreement:
        return BankAgreement(
            agreement_id=parsing.text(item.get("agreement_id")),
            product_id=parsing.text(item.get("product_id")),
            product_name=parsing.text(item.get("product_name")),
            product_type=parsing.text(item.get("product_type")),
            amount=parsing.to_decimal(item.get("amount")),
            status=parsing.text(item.get("status")).lower() or "active",
            start_date=parsing.to_datetime(item.get("start_date")),
            end_date=parsing.to_datetime(item.get("end_date")),
            account_number=parsing.text(item.get("account_number")),
            interest_rate=parsing.to_decimal(item.get("interest_rate")),
            account_balance=parsing.to_decimal(item.get("account_balance")),
            raw=item,
        )

    # --- Transport --------------------------------------------------------------------------

    def _send(
        self,
        method: str,
        path: str,
        *,
        query: dict[str, Any] | None = None,
        json_body: Any = None,
        authenticated: bool = True,
        interbank: bool = False,
        consent_id: str | None = None,
        product_consent_id: str | None = None,
        bearer: str | None = None,
    ) -> _Response:
        """Send with retries; refresh the bank token once on 401; map failures to typed errors."""
        headers = {"Accept": "application/json"}
        if interbank:
            headers["X-Requesting-Bank"] = self.team_id
        if consent_id:
            headers["X-Consent-Id"] = consent_id
        if product_consent_id:
            headers["X-Product-Agreement-Consent-Id"] = product_consent_id
        uses_bank_token = authenticated and bearer is None
        refreshed = False
        attempt = 0
        while True:
            if bearer is not None:
                headers["Authorization"] = f"Bearer {bearer}"
            elif uses_bank_token:
                headers["Authorization"] = f"Bearer {self._bank_token()}"
            try:
                response = self._attempt(method, path, query or {}, headers, json_body)
            except _TRANSPORT_ERRORS as exc:
                if attempt >= self.max_retries:
                    raise BankUnavailableError(
                        f"{self.bank_code}: {type(exc).__name__} after {attempt + 1} attempt(s)",
                        bank_code=self.bank_code,
                        retry_after=self._backoff_cap(attempt + 1),
                    ) from exc
                self.sleep(self._backoff(attempt))
                attempt += 1
                continue
            status = response.status_code
            if status == 401 and uses_bank_token and not refreshed:
                refreshed = True
                self._drop_bank_token()
                continue
            if status in RETRYABLE_STATUSES:
                retry_after = self._retry_after(response) if status == 429 else None
                if attempt >= self.max_retries:
                    raise BankUnavailableError(
                        f"{self.bank_code}: HTTP {status} after {attempt + 1} attempt(s)",
                        bank_code=self.bank_code,
                        status_code=status,
                        detail=response.body if response.is_json else response.text[:500],
                        retry_after=(
                            retry_after
                            if retry_after is not None
                            else self._backoff_cap(attempt + 1)
                        ),
                    )
                if retry_after is not None:
                    self.sleep(min(retry_after, self.max_sleep_seconds))
                else:
                    self.sleep(self._backoff(attempt))
                attempt += 1
                continue
            return self._checked(response, path)

    def _attempt(
        self,
        method: str,
        path: str,
        query: dict[str, Any],
        headers: dict[str, str],
        json_body: Any,
    ) -> _Response:
        exchange = BankExchange(
            bank_code=self.bank_code,
            method=method,
            path=path,
            query=query,
            request_headers=dict(headers),
            request_json=json_body,
            started_at=datetime.now(UTC),
        )
        started = time.perf_counter()
        with self._calls_lock:
            self.calls_made += 1
        try:
            response = self.session.request(
                method,
                self.base_url + path + ("?" + urlencode(query) if query else ""),
                headers=headers,
                json=json_body,
                timeout=self.timeout_seconds,
                allow_redirects=False,
            )
            # Reading the body here keeps a dropped connection inside the retry loop. Decoding
            # ourselves avoids requests' slow charset sniffing; the body is parsed exactly once.
            body_text = response.content.decode(response.encoding or "utf-8", errors="replace")
        except _TRANSPORT_ERRORS as exc:
            exchange.duration_ms = int((time.perf_counter() - started) * 1000)
            exchange.error = f"{type(exc).__name__}: {exc}"[:255]
            self._record(exchange)
            raise
        exchange.duration_ms = int((time.perf_counter() - started) * 1000)
        body: Any = None
        parsed = False
        if body_text:
            try:
                body = orjson.loads(body_text)  # ~2× json.loads; stricter (no NaN)
                parsed = True
            except ValueError:
                body = None
        result = _Response(
            status_code=response.status_code,
            body=body,
            text=body_text,
            headers=response.headers,
            is_json=parsed,
        )
        exchange.status_code = result.status_code
        exchange.response_headers = dict(result.headers)
        exchange.response_text = body_text
        exchange.response_json = body
        exchange.response_is_json = parsed
        self._record(exchange)
        return result

    def _record(self, exchange: BankExchange) -> None:
        if self.exchange_hook is None:
            return
        try:
            self.exchange_hook(exchange)
        except Exception:
            # Logging never breaks the call it records.
            logger.warning("%s: raw-log hook failed", self.bank_code, exc_info=True)

    def _backoff_cap(self, attempt: int) -> float:
        return min(self.max_sleep_seconds, self.backoff_seconds * (2**attempt))

    def _backoff(self, attempt: int) -> float:
        """Exponential backoff with full jitter, capped."""
        return max(0.0, min(self.jitter(self._backoff_cap(attempt)), self.max_sleep_seconds))

    @staticmethod
    def _retry_after(response: _Response) -> float | None:
        value = response.headers.get("Retry-After") or response.headers.get("retry-after")
        if not value:
            return None
        try:
            return max(0.0, float(value))
        except ValueError:
            return None

    def _checked(self, response: _Response, path: str) -> _Response:
        """Status first, then the body: 2xx must be JSON (or empty); anything else a typed error."""
        status = response.status_code
        if 200 <= status < 300:
            if response.text and not response.is_json:
                raise BankResponseError(
                    f"{self.bank_code} {path}: HTTP {status} with a body that is not JSON",
                    bank_code=self.bank_code,
                    status_code=status,
                    detail=response.text[:500],
                )
            return response
        body = response.body if response.is_json else (response.text[:500] or None)
        message = parsing.error_detail_message(body) or (
            body if isinstance(body, str) and len(body) < 200 else f"HTTP {status}"
        )
        text = f"{self.bank_code} {path}: {message}"
        kwargs = {"bank_code": self.bank_code, "status_code": status, "detail": body}
        if 300 <= status < 400:
            raise BankResponseError(f"{self.bank_code} {path}: unexpected redirect", **kwargs)
        if status == 401:
            raise BankAuthError(text, **kwargs)
        if parsing.error_code(body) in CONSENT_REQUIRED_CODES:
            raise ConsentRequiredError(text, **kwargs)
        if status == 404:
            raise BankNotFoundError(text, **kwargs)
        if 400 <= status < 500:
            raise BankRejectedError(text, **kwargs)
        raise BankUnavailableError(text, **kwargs)

    def _expect_dict(self, response: _Response, path: str) -> dict[str, Any]:
        if not isinstance(response.body, dict):
            raise self._bad_response(f"{path}: expected a JSON object", response)
        return response.body

    def _bad_response(self, message: str, response: _Response) -> BankError:
        return BankResponseError(
            f"{self.bank_code}: {message}",
            bank_code=self.bank_code,
            status_code=response.status_code,
            detail=response.text[:500],
        )
