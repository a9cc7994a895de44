"""Errors the sync and connect APIs answer with; each has a stable code and HTTP status."""

from banking.exceptions import UnknownBank
from fintrack.core.exceptions import ApplicationError, Conflict

__all__ = [
    "AlreadyConnected",
    "BankRequestFailed",
    "BankUnavailable",
    "ConsentRejected",
    "ConsentRequired",
    "SyncAlreadyRunning",
    "UnknownBank",
]


class ConsentRequired(Conflict):
    code = "consent_required"
    default_message = "Connect the bank and approve FinTrack's access before syncing."


class ConsentRejected(Conflict):
    code = "consent_rejected"
    default_message = "The bank did not grant access; connect again to send a new request."


class AlreadyConnected(Conflict):
    code = "already_connected"
    default_message = "This bank is already connected; use POST /api/banks/{bank_code}/sync."


class SyncAlreadyRunning(Conflict):
    code = "sync_already_running"
    default_message = "A sync of this bank is already running; extra.sync_run is that run."


class BankRequestFailed(ApplicationError):
    """A bank call made on the user's behalf failed; `code` is the bank error's code."""

    code = "bank_error"
    http_status = 502
    default_message = "The bank did not accept the request."


class BankUnavailable(BankRequestFailed):
    code = "bank_unavailable"
    http_status = 503
    default_message = "The bank is not answering right now; try again in a minute."
