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
    default_message = "This user has no bank client id, so no consent can be requested."


class UnknownConsentKind(ApplicationError):
    code = "unknown_consent_kind"
    http_status = 400
    default_message = "Unknown consent kind."
