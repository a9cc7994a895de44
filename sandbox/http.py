"""Responses as the FastAPI banks write them: compact UTF-8 JSON, `detail` errors, 422 lists."""

import json

from django.http import HttpResponse


def json_response(data, status: int = 200, headers: dict | None = None) -> HttpResponse:
    body = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    response = HttpResponse(body, status=status, content_type="application/json")
    for name, value in (headers or {}).items():
        response[name] = value
    return response


def detail(status: int, message, headers: dict | None = None) -> HttpResponse:
    """`{"detail": …}` where detail is a string, an object or a list."""
    return json_response({"detail": message}, status=status, headers=headers)


def no_content() -> HttpResponse:
    return HttpResponse(status=204)


def server_error() -> HttpResponse:
    """What an unhandled exception in the bank looks like: plain text, no JSON."""
    return HttpResponse(
        "Internal Server Error", status=500, content_type="text/plain; charset=utf-8"
    )


def missing(location: str, name: str | None = None, given=None) -> dict:
    loc = [location, name] if name else [location]
    return {"type": "missing", "loc": loc, "msg": "Field required", "input": given}


def invalid(errors: list[dict]) -> HttpResponse:
    return detail(422, errors)


class Invalid(Exception):
    """A 422 to answer, raised while reading the request."""

    def __init__(self, errors: list[dict]):
        super().__init__("validation failed")
        self.errors = errors


def query_int(request, name: str, default: int, *, low: int | None = None, high: int | None = None):
    """An integer query parameter with FastAPI's 422 bodies for bad values."""
    raw = request.GET.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        message = "Input should be a valid integer, unable to parse string as an integer"
        raise Invalid(
            [{"type": "int_parsing", "loc": ["query", name], "msg": message, "input": raw}]
        ) from None
    if high is not None and value > high:
        raise Invalid(
            [
                {
                    "type": "less_than_equal",
                    "loc": ["query", name],
                    "msg": f"Input should be less than or equal to {high}",
                    "input": raw,
                    "ctx": {"le": high},
                }
            ]
        )
    if low is not None and value < low:
        raise Invalid(
            [
                {
                    "type": "greater_than_equal",
                    "loc": ["query", name],
                    "msg": f"Input should be greater than or equal to {low}",
                    "input": raw,
                    "ctx": {"ge": low},
                }
            ]
        )
    return value


def json_body(request, required: tuple[str, ...] = ()) -> dict:
    """The JSON object body, or Invalid with FastAPI's errors (bad JSON, missing fields)."""
    if not request.body:
        raise Invalid([missing("body")])
    try:
        body = json.loads(request.body)
    except (ValueError, UnicodeDecodeError) as exc:
        position = getattr(exc, "pos", 0)
        raise Invalid(
            [
                {
                    "type": "json_invalid",
                    "loc": ["body", position],
                    "msg": "JSON decode error",
                    "input": {},
                    "ctx": {"error": getattr(exc, "msg", "Invalid JSON")},
                }
            ]
        ) from None
    if not isinstance(body, dict):
        raise Invalid(
            [
                {
                    "type": "model_attributes_type",
                    "loc": ["body"],
                    "msg": "Input should be a valid dictionary or object to extract fields from",
                    "input": body,
                }
            ]
        )
    errors = [missing("body", name, body) for name in required if name not in body]
    if errors:
        raise Invalid(errors)
    return body
