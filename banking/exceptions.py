"""Errors the banking app raises on purpose, rendered in the standard error shape.

The bank clients' own errors (banking.clients.errors) are not translated here: each is an
UpstreamError, which the API exception handler renders once (fintrack.core.exception_handler).
"""

from fintrack.core.exceptions import Conflict, NotFound


class UnknownBank(NotFound):
    code = "unknown_bank"
    default_message = "No such bank."


class InvalidConnectionTransition(Conflict):
    code = "invalid_connection_transition"
    default_message = "The bank connection cannot move to that status now."
