"""Request hardening ahead of every view: a NUL byte anywhere a client controls is a 400.

PostgreSQL text cannot hold U+0000, so a NUL that reaches a query (a filter, a path segment, a
JSON field) fails deep in the database driver as a 500. No legitimate FinTrack input contains one:
the path, every query parameter (name and value) and every string of a JSON body is checked here
once, before any view, form or serializer sees it, and answered in the standard error shape:

- a NUL in the value of a query parameter or of a JSON body's field: `validation_error` naming the
  field, with DRF's own words for it (what the serializers answered before for their fields);
- a NUL in the path, in a parameter's or key's name, or a raw NUL byte in the body:
  `malformed_request`.
"""

import json
import logging
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse

from fintrack.core.parsers import json_nesting_exceeds

logger = logging.getLogger(__name__)

NUL = "\x00"
NUL_MESSAGE = "Null characters are not allowed."  # DRF's ProhibitNullCharactersValidator
_JSON_NUL_ESCAPE = b"\\u0000"


def malformed_request_response(message: str) -> JsonResponse:
    """The standard error body for a request FinTrack refuses to read."""
    return JsonResponse({"code": "malformed_request", "message": message, "extra": {}}, status=400)


def nul_in_field_response(field: str) -> JsonResponse:
    """The standard validation error for a field whose value holds a NUL."""
    return JsonResponse(
        {
            "code": "validation_error",
            "message": f"{field}: {NUL_MESSAGE}",
            "extra": {"fields": {field: [NUL_MESSAGE]}},
        },
        status=400,
    )


def _holds_nul(value) -> bool:
    """True when `value` (parsed JSON: dicts, lists, strings) has a NUL in any key or string."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if NUL in item:
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def _json_body_nul(request: HttpRequest) -> JsonResponse | None:
    """The answer to a JSON body with a NUL, or None (bodies within Django's upload limit only:
    a larger one is refused by that limit when a view reads it)."""
    if "json" not in (request.content_type or ""):
        return None
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return None
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    if length <= 0 or (limit is not None and length > limit):
        return None
    body = request.body
    if b"\x00" in body:
        return malformed_request_response("The request body contains a raw NUL byte.")
    if _JSON_NUL_ESCAPE not in body.lower() or json_nesting_exceeds(body):
        return None  # no NUL escape; or too deep to decode here: the parser answers it
    try:
        data = json.loads(body)
    except ValueError:
        return None  # not JSON: the parser answers it
    if not _holds_nul(data):
        return None
    if isinstance(data, dict) and not any(NUL in key for key in data):
        field = next(key for key, value in data.items() if _holds_nul(value))
        return nul_in_field_response(field)
    return malformed_request_response("The request body contains a NUL character (U+0000).")


class RejectNulBytesMiddleware:
    """400 for a NUL byte in the path, the query string or a JSON body (see the module)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        refusal = self._refusal(request)
        if refusal is not None:
            logger.info("refused a NUL byte in a request to %r", request.path[:200])
            return refusal
        return self.get_response(request)

    @staticmethod
    def _refusal(request: HttpRequest) -> HttpResponse | None:
        if NUL in request.path_info or NUL in request.path:
            return malformed_request_response("The request path contains a NUL byte (U+0000).")
        for name, values in request.GET.lists():
            if NUL in name:
                return malformed_request_response(
                    "A query parameter's name contains a NUL byte (U+0000)."
                )
            if any(NUL in value for value in values):
                return nul_in_field_response(name)
        return _json_body_nul(request)
