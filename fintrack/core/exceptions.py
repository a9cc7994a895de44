"""Application errors with a stable `code` and HTTP status, rendered by one exception handler."""

from typing import Any


class ApplicationError(Exception):
    """Base of every error FinTrack raises on purpose. Rendered as {code, message, extra}."""

    code = "error"
    http_status = 400
    default_message = "The request could not be processed."

    def __init__(self, message: str | None = None, *, extra: dict[str, Any] | None = None):
        self.message = message or self.default_message
        self.extra = extra or {}
        super().__init__(self.message)


class ValidationFailed(ApplicationError):
    code = "validation_error"
    http_status = 400
    default_message = "The input is not valid."


class NotFound(ApplicationError):
    code = "not_found"
    http_status = 404
    default_message = "Not found."


class Conflict(ApplicationError):
    code = "conflict"
    http_status = 409
    default_message = "The request conflicts with the current state."


class ServiceUnavailable(ApplicationError):
    code = "service_unavailable"
    http_status = 503
    default_message = "A service FinTrack depends on is unavailable."
