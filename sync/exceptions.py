"""Errors the sync and connect APIs answer with; each has a stable code and HTTP status."""

from banking.exceptions import UnknownBank
from fintrack.core.exceptions import Conflict

__all__ = [
    "AlreadyConnected",
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
