"""Errors the banking app raises on purpose, rendered in the standard error shape.

The bank clients' own errors (banking.clients.errors) are not translated here: each is an
UpstreamError, which the API exception handler renders once (fintrack.core.exception_handler).
"""

from fintrack.core.exceptions import ApplicationError, Conflict, NotFound


class UnknownBank(NotFound):
    code = "unknown_bank"
    default_message = "No such bank."


class InvalidConnectionTransition(Conflict):
    code = "invalid_connection_transition"
    default_message = "The bank connection cannot move to that status now."


class ClientIdTaken(Conflict):
    """Another FinTrack user holds this client at the bank; whose is never said."""

    code = "client_id_taken"
    default_message = (
        "This bank client is already connected to another FinTrack account; "
        "give the client id you have at this bank."
    )


class ClientIdLocked(Conflict):
    code = "client_id_locked"
    default_message = (
        "This connection holds a consent for its current bank client: revoke the consent "
        "(or disconnect the bank) before connecting another client."
    )


class BankClientUnknown(ApplicationError):
    """The bank answered that it knows no such client (SPEC §3.1: 404 "Client … not found")."""

    code = "bank_client_unknown"
    http_status = 422
    default_message = "The bank knows no client with this id; check the client id at the bank."
