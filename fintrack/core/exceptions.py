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


class UpstreamError(Exception):
    """Base of the errors of a service FinTrack calls on the user's behalf (the banks).

    Raised as it is, never translated at the call site: the exception handler renders it once,
    503 `<kind>_unavailable` (with `retry_after_seconds`) when retrying later may help, else 502
    with the service's own `code`; `extra` carries `<kind>_code`, `<kind>_error`, `<kind>_status`.
    """

    kind = "upstream"  # names the service family in the API error: code and extra keys
    code = "upstream_error"
    retryable = False

    def __init__(
        self,
        message: str,
        *,
        service: str = "",
        status_code: int | None = None,
        retry_after: float | None = None,
    ):
        super().__init__(message)
        self.message = message
        self.service = service
        self.status_code = status_code
        self.retry_after = retry_after

    @property
    def service_name(self) -> str:
        """The service as a user reads it in a message."""
        return self.service or "The service"
