"""Defensive parsing of bank payloads (SPEC §1.2): strings, floats or null become Decimal or None,
naive timestamps are UTC, statuses and account types are normalised."""

import base64
import json
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

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
    if isinstance(detail, dict) and isinstance(detail.get("error"), str):
        return detail["error"]
    if isinstance(body.get("error"), str):
        return body["error"]
    return ""
