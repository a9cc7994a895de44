"""Errors the banking app raises on purpose, rendered in the standard error shape."""

from django.conf import settings

from banking.clients.errors import BankError, BankUnavailableError
from fintrack.core.exceptions import ApplicationError, Conflict, NotFound, ServiceUnavailable


class UnknownBank(NotFound):
    code = "unknown_bank"
    default_message = "No such bank."


class InvalidConnectionTransition(Conflict):
    code = "invalid_connection_transition"
    default_message = "The bank connection cannot move to that status now."


class BankUnavailable(ServiceUnavailable):
    code = "bank_unavailable"
    default_message = "The bank is not answering right now; try again in a minute."


class BankCallFailed(ApplicationError):
    """A bank call made on the user's behalf was refused; `code` is the bank error's own code."""

    code = "bank_error"
    http_status = 502
    default_message = "The bank refused or failed the request."


def application_error_from_bank_error(exc: BankError) -> ApplicationError:
    """A typed bank error as an API error: 503 when retryable (with retry_after), else 502."""
    name = settings.BANKS.get(exc.bank_code, {}).get("name", exc.bank_code or "The bank")
    extra = {"bank_code": exc.bank_code, "bank_error": exc.code, "bank_status": exc.status_code}
    if isinstance(exc, BankUnavailableError):
        if exc.retry_after is not None:
            extra["retry_after_seconds"] = max(1, int(exc.retry_after))
        return BankUnavailable(f"{name} is not answering right now; try again later.", extra=extra)
    error = BankCallFailed(f"{name}: {exc.message}", extra=extra)
    error.code = exc.code
    return error
