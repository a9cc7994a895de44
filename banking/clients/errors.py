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


class BankCircuitOpenError(BankUnavailableError):
    """The bank failed too many calls in a row: its circuit is open (circuit.py), so calls fail
    at once, without reaching it, until `retry_after` seconds from now, when one probe is let
    through. A sync waits that long (its task's countdown) instead of hammering the bank."""

    code = "bank_circuit_open"


class BankRateLimitedError(BankUnavailableError):
    """FinTrack's own per-bank rate limit (ratelimit.py): the bank's next free call slot is
    further away than this call may wait (its deadline, BANK_RATE_LIMIT_MAX_WAIT_SECONDS)."""

    code = "bank_rate_limited"


class BankAuthError(BankError):
    """401 from the bank refusing our credentials: the team secret at /auth/bank-token, a
    client's password, or a bank token still refused after one refresh (SPEC §2.3)."""

    code = "bank_auth_failed"


class ConsentRequiredError(BankError):
    """403 CONSENT_REQUIRED: the consent is missing, revoked, expired or foreign."""

    code = "consent_required"


class BankRejectedError(BankError):
    """Any other 4xx: the bank refused this request; retrying will not help."""

    code = "bank_rejected"


class BankPermissionError(BankRejectedError):
    """A 401 that is not a token expiry (SPEC §2.3, §9): the bank knows the token but refuses
    this caller this route (`Insufficient permissions`, `Invalid client_id`, `Client token
    required …`). A new token would change nothing, so none is fetched and nothing is retried."""

    code = "bank_permission_denied"


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
