"""Errors the consents app raises on purpose, rendered in the standard error shape."""

from fintrack.core.exceptions import ApplicationError, Conflict, NotFound


class ConsentNotFound(NotFound):
    code = "consent_not_found"
    default_message = "No such consent."


class ConsentNotPending(Conflict):
    code = "consent_not_pending"
    default_message = "Only a consent that waits for approval can be approved."


class DemoSigningDisabled(ApplicationError):
    code = "demo_signing_disabled"
    http_status = 403
    default_message = "Approving consents on the client's behalf is disabled on this server."


class NoBankClientId(Conflict):
    code = "no_bank_client_id"
    default_message = (
        "No bank client id is set for this bank: connect it with your client id "
        "(POST /api/banks/{bank_code}/connect)."
    )


class UnknownConsentKind(ApplicationError):
    code = "unknown_consent_kind"
    http_status = 400
    default_message = "Unknown consent kind."


class NotADemoClient(ApplicationError):
    """Self-signing is for the demo clients FinTrack proposed; a user's own client approves in
    the bank's app (FinTrack polls the request)."""

    code = "not_a_demo_client"
    http_status = 403
    default_message = "Approve FinTrack's request in the bank's app: this client is not a demo one."


class NoConsentToRenew(Conflict):
    code = "no_consent_to_renew"
    default_message = "There is no authorised consent at this bank to renew: connect it first."


class NothingToRequestAgain(Conflict):
    """Request-again replaces a pending or lost request; there is none (renew or connect)."""

    code = "nothing_to_request_again"
    default_message = "Nothing at this bank waits for approval or needs a new consent."
