"""Bank JSON → the typed values of `types.py`, and nothing else (SPEC §1.2): strings, floats or
null become Decimal or None, naive timestamps are UTC, statuses and account types are normalised.

Every rule that reads a bank answer lives here. A body that lacks what the contract promises raises
`BankDataError`; the client turns it into a `BankResponseError` carrying the HTTP context.
"""

import base64
import json
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

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

# What the columns hold (banking.models): longer ids or bigger amounts are bad bank data.
MAX_TRANSACTION_ID_LENGTH = 128
MAX_AMOUNT = Decimal("1e16")  # 18 digits, 2 of them decimals
PRODUCT_CONSENT_PERMISSIONS = (
    "read_product_agreements",
    "open_product_agreements",
    "close_product_agreements",
)


class BankDataError(ValueError):
    """A bank answer without what the contract promises (the client reports it as bad response)."""


ACCOUNT_TYPES = {
    "checking": "checking",
    "savings": "savings",
    "deposit": "deposit",
    "loan": "loan",
    "card": "card",
    "creditcard": "credit_card",
    "credit_card": "credit_card",
}

ACCOUNT_CONSENT_STATUSES = {
    # POST /account-consents/request and /product-agreement-consents/request
    "approved": "authorized",
    "pending": "pending",
    # GET /account-consents/{id} (OBR style)
    "awaitingauthorization": "pending",
    "authorized": "authorized",
    "revoked": "revoked",
    "expired": "expired",
    "rejected": "rejected",
    # sign / product-consent detail (sandbox style)
    "active": "authorized",
}

TRANSACTION_STATUSES = {
    "booked": "booked",
    "completed": "booked",
    "settled": "booked",
    "pending": "pending",
    "declined": "declined",
    "rejected": "declined",
    "refunded": "refunded",
}


def to_decimal(value: Any) -> Decimal | None:
    """A bank number (string, int, float or null) as Decimal; floats go through str()."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, float):
        value = str(value)
    try:
        # Decimal ignores surrounding whitespace itself; only other types need str() first.
        result = Decimal(value if type(value) is str or type(value) is int else str(value))
    except (InvalidOperation, ValueError, TypeError):
        return None
    return result if result.is_finite() else None


def to_datetime(value: Any) -> datetime | None:
    """An ISO-8601 timestamp as an aware datetime; naive ones are UTC (SPEC §1.2)."""
    if type(value) is not str:
        return None
    try:
        parsed = datetime.fromisoformat(value)  # Python 3.11 reads "Z" and most ISO forms
    except ValueError:
        text = value.strip()
        if not text:
            return None
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            return None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def to_date(value: Any) -> date | None:
    """A `YYYY-MM-DD` (or full timestamp) as a date."""
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        return date.fromisoformat(value.strip()[:10])
    except ValueError:
        return None


def to_int(value: Any) -> int | None:
    """An int from an int or a numeric string; anything else is None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return None


def _object(value: Any) -> dict[str, Any]:
    """A JSON object field that may be missing or of another type: {} then."""
    return value if isinstance(value, dict) else {}


def text(value: Any) -> str:
    """A string field that may be null or missing."""
    if value is None:
        return ""
    return value if isinstance(value, str) else str(value)


def account_type(sub_type: Any) -> str:
    """accountSubType ("Checking", "CreditCard", …) as our account type."""
    key = text(sub_type).strip().lower().replace(" ", "").replace("-", "_")
    return ACCOUNT_TYPES.get(key, ACCOUNT_TYPES.get(key.replace("_", ""), "other"))


def consent_status(value: Any) -> str | None:
    """A consent status of any bank shape as pending/authorized/revoked/expired/rejected."""
    return ACCOUNT_CONSENT_STATUSES.get(text(value).strip().lower())


def transaction_status(value: Any) -> str | None:
    """A transaction status as booked/pending/declined/refunded; None if unknown."""
    return TRANSACTION_STATUSES.get(text(value).strip().lower())


def signed(amount: Decimal, indicator: Any) -> Decimal:
    """Apply creditDebitIndicator: Debit is money out (negative)."""
    return -amount if text(indicator).strip().lower() == "debit" else amount


def jwt_expiry(token: str) -> datetime | None:
    """The `exp` claim of a JWT (signature not verified: we cannot, SPEC §2.1)."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        padded = parts[1] + "=" * (-len(parts[1]) % 4)
        claims = json.loads(base64.urlsafe_b64decode(padded))
        return datetime.fromtimestamp(int(claims["exp"]), tz=UTC)
    except (ValueError, KeyError, TypeError, OverflowError):
        return None


def error_detail_message(body: Any) -> str:
    """A readable message from FastAPI's `detail` as string, object or list (SPEC §9)."""
    if not isinstance(body, dict):
        return ""
    detail = body.get("detail", body)
    if isinstance(detail, str):
        return detail
    if isinstance(detail, dict):
        return text(detail.get("message") or detail.get("error") or detail.get("detail"))
    if isinstance(detail, list):
        messages = []
        for item in detail:
            if isinstance(item, dict):
                location = ".".join(str(part) for part in item.get("loc") or [])
                message = text(item.get("msg"))
                messages.append(f"{location}: {message}" if location else message)
            else:
                messages.append(text(item))
        return "; ".join(message for message in messages if message)
    return text(detail)


def error_code(body: Any) -> str:
    """The machine error code (`CONSENT_REQUIRED`, …) in detail.error or a top-level error."""
    if not isinstance(body, dict):
        return ""
    detail = body.get("detail")
    code = detail.get("error") if isinstance(detail, dict) else None
    if isinstance(code, str):
        return code
    code = body.get("error")
    return code if isinstance(code, str) else ""


# The one 401 detail that means "this bank token is bad, expired or another bank's" (SPEC §2.3).
TOKEN_REFUSED_DETAIL = "could not validate credentials"


def token_refused(body: Any, www_authenticate: str) -> bool:
    """Whether a 401 says the bearer token itself is not valid (SPEC §2.3): its detail is
    "Could not validate credentials", or it has no detail of its own and challenges for a new
    Bearer token (`WWW-Authenticate: Bearer`, RFC 6750 `error="invalid_token"`). Any other 401
    (`Insufficient permissions`, `Invalid client_id`, …) is about the caller, not the token."""
    detail = error_detail_message(body).strip().rstrip(".").lower()
    if detail:
        return detail == TOKEN_REFUSED_DETAIL
    challenge = (www_authenticate or "").strip().lower()
    return challenge.startswith("bearer") and "insufficient_scope" not in challenge


# --- Authentication (SPEC §2) ---------------------------------------------------------------


def token_info(body: dict[str, Any]) -> BankTokenInfo:
    """The bank token answer of /auth/bank-token, with its expiry."""
    token = body.get("access_token")
    if not isinstance(token, str) or not token:
        raise BankDataError("bank token answer without access_token")
    return BankTokenInfo(access_token=token, expires_at=token_expiry(body, token))


def token_expiry(body: dict[str, Any], token: str) -> datetime:
    """When a bank token expires: `expires_in`, else the JWT `exp`, else in an hour."""
    # expires_in is a duration, immune to a skewed bank clock; the JWT exp is the fallback.
    expires_in = to_int(body.get("expires_in"))
    if expires_in is not None and expires_in > 0:
        return datetime.now(UTC) + timedelta(seconds=expires_in)
    return jwt_expiry(token) or datetime.now(UTC) + timedelta(hours=1)


def login_token(body: dict[str, Any]) -> str:
    """The client token of a demo /auth/login answer."""
    token = body.get("access_token")
    if not isinstance(token, str) or not token:
        raise BankDataError("login answer without access_token")
    return token


# --- Account consents (SPEC §3) -------------------------------------------------------------


def account_consent_requested(
    body: dict[str, Any], *, permissions: Sequence[str]
) -> AccountConsentResult:
    """POST /account-consents/request: approved → authorized with a consent id, else pending."""
    status = consent_status(body.get("status"))
    consent_id = text(body.get("consent_id")) or None
    if status is None:
        raise BankDataError(f"unknown consent status {body.get('status')!r}")
    if status == "authorized" and not consent_id:
        raise BankDataError("approved consent without consent_id")
    return AccountConsentResult(
        status=status,
        consent_id=consent_id if status == "authorized" else None,
        request_id=text(body.get("request_id")) or None,
        permissions=list(permissions),
        expires_at=to_datetime(body.get("expires_at") or body.get("valid_until")),
        raw=body,
    )


def account_consent_state(body: dict[str, Any], *, consent_id: str) -> AccountConsentResult:
    """GET /account-consents/{id}, asked by consent-… or req-… id (SPEC §3.2)."""
    data = body.get("data")
    if not isinstance(data, dict):
        data = body
    status = consent_status(data.get("status"))
    if status is None:
        raise BankDataError(f"unknown consent status {data.get('status')!r}")
    returned_id = text(data.get("consentId") or data.get("consent_id"))
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
        expires_at=to_datetime(data.get("expirationDateTime")),
        raw=body,
    )


def account_consent_signed(body: dict[str, Any], *, request_id: str) -> AccountConsentResult:
    """POST /account-consents/sign (demo, SPEC §3.4)."""
    consent_id = text(body.get("consent_id") or body.get("consentId"))
    status = consent_status(body.get("status")) or "authorized"
    if status == "authorized" and not consent_id:
        raise BankDataError("signed consent without consent_id")
    permissions = body.get("permissions")
    return AccountConsentResult(
        status=status,
        consent_id=consent_id or None,
        request_id=request_id,
        permissions=list(permissions) if isinstance(permissions, list) else [],
        expires_at=to_datetime(body.get("expires_at") or body.get("expiresAt")),
        raw=body,
    )


# --- Product-agreement consents (SPEC §6) ---------------------------------------------------


def product_consent_signed(body: dict[str, Any], *, request_id: str) -> AccountConsentResult:
    """POST /product-agreement-consents/sign (demo, SPEC §6.1)."""
    consent_id = text(body.get("consent_id") or body.get("consentId"))
    status = consent_status(body.get("status")) or "authorized"
    if status == "authorized" and not consent_id:
        raise BankDataError("signed product consent without consent_id")
    return AccountConsentResult(
        status=status,
        consent_id=consent_id or None,
        request_id=request_id,
        permissions=["read_product_agreements"],
        expires_at=to_datetime(body.get("valid_until") or body.get("expires_at")),
        raw=body,
    )


def product_consent(
    body: dict[str, Any], *, raw: dict[str, Any] | None = None
) -> AccountConsentResult:
    """A product-agreement consent request answer, or the flat object of its detail."""
    status = consent_status(body.get("status"))
    if status is None:
        raise BankDataError(f"unknown consent status {body.get('status')!r}")
    consent_id = text(body.get("consent_id")) or None
    if status == "authorized" and consent_id is None and "request_id" in body:
        raise BankDataError("approved product consent without consent_id")
    permissions = [name for name in PRODUCT_CONSENT_PERMISSIONS if body.get(name)] or [
        "read_product_agreements"
    ]
    return AccountConsentResult(
        status=status,
        consent_id=consent_id if status != "pending" else None,
        request_id=text(body.get("request_id")) or None,
        permissions=permissions,
        expires_at=to_datetime(body.get("valid_until")),
        raw=raw if raw is not None else body,
    )


def product_consent_state(body: dict[str, Any], *, consent_id: str) -> AccountConsentResult:
    """GET /product-agreement-consents/{id} (flat JSON or under `data`, SPEC §6.2)."""
    data = body.get("data")
    if not isinstance(data, dict):
        data = body
    result = product_consent(data, raw=body)
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


# --- Accounts, balances, transactions (SPEC §4) ---------------------------------------------


def accounts(body: dict[str, Any]) -> list[BankAccount]:
    """GET /accounts: every entry, or none (an entry without accountId refuses the list)."""
    data = body.get("data")
    items = data.get("account") if isinstance(data, dict) else None
    if not isinstance(items, list):
        raise BankDataError("accounts answer without data.account list")
    result = []
    for item in items:
        if not isinstance(item, dict) or not text(item.get("accountId")):
            # Skipping it would mark the stored account it stands for inactive: refuse the
            # whole list instead, so a bad answer changes nothing.
            raise BankDataError("accounts answer with an entry without accountId")
        nested = item.get("account")
        identity = nested[0] if isinstance(nested, list) and nested else {}
        identity = identity if isinstance(identity, dict) else {}
        result.append(
            BankAccount(
                account_id=text(item.get("accountId")),
                account_type=account_type(item.get("accountSubType")),
                bank_subtype=text(item.get("accountSubType")),
                bank_account_type=text(item.get("accountType")),
                status=text(item.get("status")),
                currency=text(item.get("currency")) or "RUB",
                nickname=text(item.get("nickname")),
                opening_date=to_date(item.get("openingDate")),
                identification=text(identity.get("identification")),
                holder_name=text(identity.get("name")),
                raw=item,
            )
        )
    return result


def _balance_amount(item: dict[str, Any] | None) -> Decimal | None:
    if item is None:
        return None
    money = _object(item.get("amount"))
    value = to_decimal(money.get("amount"))
    return None if value is None else signed(value, item.get("creditDebitIndicator"))


def balance(body: dict[str, Any], *, account_id: str) -> BankBalance:
    """GET /accounts/{id}/balances: InterimAvailable and InterimBooked, signed."""
    data = body.get("data")
    items = data.get("balance") if isinstance(data, dict) else None
    if not isinstance(items, list):
        raise BankDataError("balances answer without data.balance list")
    by_type: dict[str, dict[str, Any]] = {}
    for item in items:
        if isinstance(item, dict):
            by_type.setdefault(text(item.get("type")), item)
    available_item = by_type.get("InterimAvailable")
    booked_item = by_type.get("InterimBooked")
    available = _balance_amount(available_item)
    booked = _balance_amount(booked_item)
    if available is None and booked is None:
        # An unreadable balance must not overwrite the stored one with nothing.
        raise BankDataError("balances answer without a readable amount")
    first = available_item or booked_item or {}
    money = _object(first.get("amount"))
    return BankBalance(
        account_id=account_id,
        available=available,
        booked=booked,
        currency=text(money.get("currency")) or "RUB",
        as_of=to_datetime(first.get("dateTime")) or datetime.now(UTC),
        raw=body,
    )


def transaction_page(body: dict[str, Any], *, account_id: str, page: int) -> TransactionPage:
    """GET /accounts/{id}/transactions: the page's rows, those that failed to parse, paging."""
    data = body.get("data")
    items = data.get("transaction") if isinstance(data, dict) else None
    if not isinstance(items, list):
        raise BankDataError("transactions answer without data.transaction list")
    transactions: list[BankTransaction] = []
    skipped: list[dict[str, Any]] = []
    for item in items:
        parsed, reason = transaction(item, account_id)
        if parsed is None:
            skipped.append({"reason": reason, "item": item})
        else:
            transactions.append(parsed)
    meta = _object(body.get("meta"))
    links = _object(body.get("links"))
    current_page = to_int(meta.get("currentPage")) or page
    total_pages = to_int(meta.get("totalPages"))
    if "next" in links or "self" in links:
        has_next = bool(links.get("next"))
    else:
        has_next = total_pages is not None and current_page < total_pages
    return TransactionPage(
        transactions=transactions,
        page=current_page,
        total_pages=total_pages,
        total_records=to_int(meta.get("totalRecords")),
        has_next=has_next,
        skipped=skipped,
    )


def transaction(item: Any, account_id: str) -> tuple[BankTransaction | None, str]:
    """One transaction item, or None and the reason it cannot be stored as it is."""
    # The hot loop of a sync (every row of every page): lookups done once, helpers inlined
    # for the common types; anything unusual takes the general helpers above.
    if not isinstance(item, dict):
        return None, "not an object"
    get = item.get
    raw_id = get("transactionId")
    if raw_id is not None and not isinstance(raw_id, str | int):
        return None, f"transactionId is a {type(raw_id).__name__}, not a string"
    transaction_id = text(raw_id).strip()
    if not transaction_id:
        return None, "missing transactionId"
    if len(transaction_id) > MAX_TRANSACTION_ID_LENGTH:
        return None, f"{transaction_id[:40]}…: transactionId longer than 128 characters"
    money = get("amount")
    if not isinstance(money, dict):
        money = {}
    amount = to_decimal(money.get("amount"))
    if amount is None:
        return None, f"{transaction_id}: missing or non-numeric amount"
    if amount < 0:
        return None, f"{transaction_id}: negative amount (sign must come from the indicator)"
    if amount >= MAX_AMOUNT:
        return None, f"{transaction_id}: amount {money.get('amount')!r} out of range"
    indicator = text(get("creditDebitIndicator")).strip().lower()
    if indicator not in ("credit", "debit"):
        # Guessing would store money out as money in (SPEC §1.2: the sign is the indicator).
        return None, (
            f"{transaction_id}: unknown creditDebitIndicator {get('creditDebitIndicator')!r}"
        )
    booked_text = get("bookingDateTime")
    booking_date = to_datetime(booked_text)
    if booking_date is None:
        return None, f"{transaction_id}: unparseable bookingDateTime"
    value_text = get("valueDateTime")
    # Most banks send the same text twice (SPEC §4.4): parsed once.
    value_date = booking_date if value_text == booked_text else to_datetime(value_text)
    status = transaction_status(get("status") or "booked")
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
            account_id=text(get("accountId")) or account_id,
            transaction_id=transaction_id,
            amount=-amount if indicator == "debit" else amount,
            currency=text(money.get("currency")) or "RUB",
            status=status,
            booking_date=booking_date,
            value_date=value_date,
            description=text(get("transactionInformation")),
            bank_transaction_code=text(code),
            merchant_name=text(merchant.get("name")),
            merchant_category=text(merchant.get("category")),
            mcc=text(merchant.get("mccCode"))[:4],
            counterparty=text(counterparty),
            raw=item,
        ),
        "",
    )


# --- Products and agreements (SPEC §5, §7) --------------------------------------------------


def products(body: dict[str, Any]) -> list[BankProductItem]:
    """GET /products: the catalogue; entries without productId are left out."""
    data = body.get("data")
    items = data.get("product") if isinstance(data, dict) else None
    if not isinstance(items, list):
        raise BankDataError("products answer without data.product list")
    result = []
    for item in items:
        if not isinstance(item, dict) or not text(item.get("productId")):
            continue
        result.append(
            BankProductItem(
                product_id=text(item.get("productId")),
                product_type=text(item.get("productType")),
                name=text(item.get("productName")),
                description=text(item.get("description")),
                interest_rate=to_decimal(item.get("interestRate")),
                min_amount=to_decimal(item.get("minAmount")),
                max_amount=to_decimal(item.get("maxAmount")),
                term_months=to_int(item.get("termMonths")),
                raw=item,
            )
        )
    return result


def agreements(body: dict[str, Any]) -> list[BankAgreement]:
    """GET /product-agreements: entries without agreement_id are left out."""
    items = body.get("data")
    if isinstance(items, dict):  # tolerate an OBR-style wrapper
        items = items.get("agreement")
    if not isinstance(items, list):
        raise BankDataError("agreements answer without a data list")
    return [
        agreement(item) for item in items if isinstance(item, dict) and item.get("agreement_id")
    ]


def agreement_detail(body: dict[str, Any]) -> BankAgreement:
    """GET /product-agreements/{id}: the agreement under `data`."""
    data = body.get("data")
    if not isinstance(data, dict) or not data.get("agreement_id"):
        raise BankDataError("agreement answer without data.agreement_id")
    return agreement(data)


def agreement(item: dict[str, Any]) -> BankAgreement:
    """One agreement object of the list or the detail call."""
    return BankAgreement(
        agreement_id=text(item.get("agreement_id")),
        product_id=text(item.get("product_id")),
        product_name=text(item.get("product_name")),
        product_type=text(item.get("product_type")),
        amount=to_decimal(item.get("amount")),
        status=text(item.get("status")).lower() or "active",
        start_date=to_datetime(item.get("start_date")),
        end_date=to_datetime(item.get("end_date")),
        account_number=text(item.get("account_number")),
        interest_rate=to_decimal(item.get("interest_rate")),
        account_balance=to_decimal(item.get("account_balance")),
        raw=item,
    )
