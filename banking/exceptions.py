"""Errors the banking app raises on purpose, rendered in the standard error shape."""

from banking.clients.errors import BankError, BankUnavailableError
from fintrack.core.exceptions import ApplicationError, Conflict, NotFound, ServiceUnavailable


class UnknownBank(NotFound):
    code = "unknown_bank"
    default_message = "No such bank."


class InvalidConnectionTransition(Conflict):
    code = "invalid_connection_transition"
    default_message = "The bank connection cannot move to that status now."


class BankCallFailed(ApplicationError):
    code = "bank_error"
    http_status = 502
    default_message = "The bank refused or failed the request."


def application_error_from_bank_error(exc: BankError) -> ApplicationError:
    """A typed bank error as an API error: 503 when retryable (with retry_after), else 502."""
    extra = {"bank_code": exc.bank_code, "bank_error": exc.code, "bank_status": exc.status_code}
    if isinstance(exc, BankUnavailableError):
        if exc.retry_after is not None:
            extra["retry_after_seconds"] = max(1, int(exc.retry_after))
        return ServiceUnavailable("The bank is unavailable; try again later.", extra=extra)
    return BankCallFailed(exc.message, extra=extra)
