"""Typed bank errors: what went wrong decides what the caller does next.

Each is an `UpstreamError` (fintrack.core.exceptions): raised through a view as it is, the API
exception handler renders it once (503 bank_unavailable when retryable, else 502 with the code).
"""

from typing import Any

from django.conf import settings

from fintrack.core.exceptions import UpstreamError


class BankError(UpstreamError):
    """Base of every error a bank client raises."""

    kind = "bank"
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
    ) -> None:
        super().__init__(
            message, service=bank_code, status_code=status_code, retry_after=retry_after
        )
        self.bank_code = bank_code
        self.detail = detail

    @property
    def service_name(self) -> str:
        """The bank's display name (settings.BANKS), else its code, else "The bank"."""
        return str(settings.BANKS.get(self.bank_code, {}).get("name", self.bank_code or "The bank"))


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


class BankPagingError(BankResponseError):
    """Pages that do not advance (a page repeating, `links.next` pointing back) or that go on
    past the bank's own count: the read stops instead of asking again and again."""

    code = "bank_paging_error"
