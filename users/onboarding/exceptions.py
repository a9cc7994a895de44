"""Errors connecting a bank answers with; each has a stable code and HTTP status."""

from fintrack.core.exceptions import Conflict, NotFound


class ConsentRejected(Conflict):
    code = "consent_rejected"
    default_message = "The bank did not grant access; connect again to send a new request."


class AlreadyConnected(Conflict):
    code = "already_connected"
    default_message = "This bank is already connected; use POST /api/banks/{bank_code}/sync."


class ConnectInProgress(Conflict):
    code = "connect_in_progress"
    default_message = (
        "A connect of this bank as another client is under way; wait for it to finish "
        "(GET /api/banks/{bank_code}/status) before connecting as another client."
    )


class RequestInProgress(Conflict):
    """Another action of this bank (a connect, renewal, fresh request or demo approval) is being
    carried out by a worker: one at a time per bank, so the bank is never asked twice at once."""

    code = "request_in_progress"
    default_message = (
        "Another request to this bank is under way; try again once it has finished "
        "(GET /api/banks/{bank_code}/status)."
    )


class ConnectRequestNotFound(NotFound):
    code = "connect_request_not_found"
    default_message = "No such connect request of yours."
