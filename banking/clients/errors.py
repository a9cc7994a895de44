"""Typed bank errors: what went wrong decides what the caller does next."""

from typing import Any


class BankError(Exception):
    """Base of every error a bank client raises."""

    retryable = False
    code = "bank_error"

    def __init__(
        self,
        message: str,
        *,
        bank_code: str = "",
        status_code: int | None = None,
        detail: Any = None,
        retry_after: float | None = None,
    ):
        super().__init__(message)
        self.message = message
        self.bank_code = bank_code
        self.status_code = status_code
        self.detail = detail
        self.retry_after = retry_after


class BankUnavailableError(BankError):
    """Timeout, connection error, 5xx or 429: try again later (honour retry_after)."""

    retryable = True
    code = "bank_unavailable"


class BankAuthError(BankError):
    """401 from the bank: the bank token is bad or expired; refresh it once."""

    code = "bank_auth_failed"


class ConsentRequiredError(BankError):
    """403 CONSENT_REQUIRED: the consent is missing, revoked, expired or foreign."""

    code = "consent_required"


class BankRejectedError(BankError):
    """Any other 4xx: the bank refused this request; retrying will not help."""

    code = "bank_rejected"


class BankNotFoundError(BankRejectedError):
    """404: unknown client, account, consent or agreement."""

    code = "bank_not_found"


class BankResponseError(BankError):
    """A 2xx body we cannot parse or that lacks what the contract promises."""

    code = "bank_bad_response"
