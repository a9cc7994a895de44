"""One error shape for every API error: {"code": ..., "message": ..., "extra": {...}}.

Errors of the services FinTrack calls (`UpstreamError`, e.g. every bank client error) are mapped
here and only here: call sites let them propagate.
"""

import logging

from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from rest_framework import exceptions as drf_exceptions
from rest_framework.response import Response
from rest_framework.serializers import as_serializer_error
from rest_framework.views import exception_handler as drf_exception_handler

from fintrack.core.exceptions import ApplicationError, UpstreamError

logger = logging.getLogger(__name__)

# DRF's default codes are mostly fine; a few are renamed so clients see one vocabulary.
_CODE_OVERRIDES = {
    "invalid": "validation_error",
    "parse_error": "malformed_request",
    "not_authenticated": "not_authenticated",
    "authentication_failed": "not_authenticated",
    "token_not_valid": "not_authenticated",
    "permission_denied": "permission_denied",
    "not_found": "not_found",
    "method_not_allowed": "method_not_allowed",
    "throttled": "throttled",
    "unsupported_media_type": "unsupported_media_type",
    "not_acceptable": "not_acceptable",
}


def _first_message(detail) -> str:
    if isinstance(detail, dict):
        for value in detail.values():
            return _first_message(value)
        return ""
    if isinstance(detail, list):
        return _first_message(detail[0]) if detail else ""
    return str(detail)


def upstream_error_body(exc: UpstreamError) -> tuple[int, dict]:
    """(status, body) of a failed upstream call: 503 `<kind>_unavailable` when retryable (with
    retry_after_seconds when the service said when), else 502 with the service's own code."""
    kind = exc.kind
    extra: dict = {
        f"{kind}_code": exc.service,
        f"{kind}_error": exc.code,
        f"{kind}_status": exc.status_code,
    }
    name = exc.service_name
    if exc.retryable:
        if exc.retry_after is not None:
            extra["retry_after_seconds"] = max(1, int(exc.retry_after))
        message = f"{name} is not answering right now; try again later."
        return 503, {"code": f"{kind}_unavailable", "message": message, "extra": extra}
    return 502, {"code": exc.code, "message": f"{name}: {exc.message}", "extra": extra}


def exception_handler(exc, context):
    """Turn ApplicationError, UpstreamError, Django and DRF errors into the standard shape;
    leave anything else to Django (logged, 500)."""
    if isinstance(exc, ApplicationError):
        return Response(
            {"code": exc.code, "message": exc.message, "extra": exc.extra},
            status=exc.http_status,
        )
    if isinstance(exc, UpstreamError):
        status, body = upstream_error_body(exc)
        return Response(body, status=status)
    if isinstance(exc, DjangoValidationError):
        exc = drf_exceptions.ValidationError(as_serializer_error(exc))
    elif isinstance(exc, Http404):
        exc = drf_exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = drf_exceptions.PermissionDenied()

    response = drf_exception_handler(exc, context)
    if response is None:
        # Unknown errors are not swallowed: Django logs them and answers 500.
        return None

    if isinstance(exc, drf_exceptions.ValidationError):
        fields = exc.detail if isinstance(exc.detail, dict) else {"non_field_errors": exc.detail}
        message = _first_message(fields) or "The input is not valid."
        field_name = next(iter(fields), None) if isinstance(fields, dict) else None
        if field_name and field_name != "non_field_errors":
            message = f"{field_name}: {message}"
        response.data = {
            "code": "validation_error",
            "message": message,
            "extra": {"fields": fields},
        }
        return response

    detail = getattr(exc, "detail", None)
    codes = exc.get_codes() if hasattr(exc, "get_codes") else None
    code = codes if isinstance(codes, str) else getattr(exc, "default_code", "error")
    if isinstance(detail, dict):
        # simplejwt puts {"detail", "code", "messages"} here; keep its words, drop token internals.
        message = str(detail.get("detail") or _first_message(detail))
        code = str(detail.get("code", code)) if not isinstance(detail.get("code"), list) else code
    else:
        message = str(detail) if detail is not None else response.status_text
    extra = {}
    wait = getattr(exc, "wait", None)  # Throttled sets it in __init__ (not in the stubs)
    if isinstance(exc, drf_exceptions.Throttled) and wait is not None:
        extra["retry_after_seconds"] = int(wait)
    response.data = {"code": _CODE_OVERRIDES.get(code, code), "message": message, "extra": extra}
    return response
