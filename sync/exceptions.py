"""Errors the sync APIs answer with; each has a stable code and HTTP status."""

from banking.exceptions import UnknownBank
from fintrack.core.exceptions import Conflict

__all__ = [
    "ConsentRequired",
    "SyncAlreadyRunning",
    "UnknownBank",
]


class ConsentRequired(Conflict):
    code = "consent_required"
    default_message = "Connect the bank and approve FinTrack's access before syncing."


class SyncAlreadyRunning(Conflict):
    code = "sync_already_running"
    default_message = "A sync of this bank is already running; extra.sync_run is that run."
