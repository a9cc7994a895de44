"""Cut secrets out of what the raw API log stores: headers, query strings, JSON bodies and text.

Sensitive keys (authorization, *_token, *secret*, password, signature, cookies, api keys) are
replaced wherever they appear, nested or not; any JWT-looking string and any `Bearer …` value is
replaced too, and so is any literal secret the caller names (the team secret).
"""

import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import parse_qsl, urlencode

REDACTED = "[REDACTED]"

_SENSITIVE_EXACT = frozenset(
    {
        "authorization",
        "proxy_authorization",
        "cookie",
        "set_cookie",
        "token",
        "access_token",
        "refresh_token",
        "id_token",
        "client_secret",
        "secret",
        "password",
        "passwd",
        "signature",
        "api_key",
        "apikey",
        "x_api_key",
        "private_key",
    }
)
_SENSITIVE_PARTS = ("secret", "password", "passwd", "signature", "authorization", "api_key")

_JWT = re.compile(r"eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*")
_BEARER = re.compile(r"(?i)\b(bearer\s+)[A-Za-z0-9._~+/=-]+")
# "key": "value" pairs inside JSON-ish text, and key=value pairs inside query strings.
_KEY_NAMES = (
    r"[A-Za-z_-]*(?:token|secret|password|passwd|signature|authorization|api[_-]?key)"
    r"[A-Za-z_-]*"
)
_JSON_PAIR = re.compile(r'("' + _KEY_NAMES + r'"\s*:\s*)"(?:[^"\\]|\\.)*"', re.IGNORECASE)
_QUERY_PAIR = re.compile(r"(?i)\b(" + _KEY_NAMES + r")=([^&\s\"']+)")


# Lower-cased fragments without which no sensitive key or secret-looking value can be present.
# Each is a pass over the text (~2 GB/s): the api-key and private-key spellings are looked for
# only where their common stem is there, which costs one pass each instead of three and two.
_NEEDLES = (
    b"token",
    b"secret",
    b"passw",
    b"signature",
    b"authoriz",
    b"cookie",
    b"eyj",
    b"bearer",
)
_STEMMED_NEEDLES = (
    (b"api", (b"api_key", b"api-key", b"apikey")),
    (b"private", (b"private_key", b"private-key")),
)


def might_contain_secrets(text: str | bytes, *, secrets: Iterable[str] = ()) -> bool:
    """A cheap pre-check on raw text (or its UTF-8 bytes): False means redaction would change
    nothing."""
    # Bytes search is several times faster than str search on non-ASCII (Cyrillic, emoji) text;
    # a body read as bytes is searched as it is.
    raw = text if isinstance(text, bytes) else text.encode("utf-8", "ignore")
    if any(secret and secret.encode("utf-8", "ignore") in raw for secret in secrets):
        return True
    lowered = raw.lower()
    if any(needle in lowered for needle in _NEEDLES):
        return True
    return any(
        stem in lowered and any(needle in lowered for needle in needles)
        for stem, needles in _STEMMED_NEEDLES
    )


def is_sensitive_key(key: Any) -> bool:
    """Whether a header, query or JSON key names a secret."""
    name = str(key).strip().lower().replace("-", "_")
    if name in _SENSITIVE_EXACT or name.endswith("_token"):
        return True
    return any(part in name for part in _SENSITIVE_PARTS)


def _redact_string(value: str, secrets: tuple[str, ...]) -> str:
    for secret in secrets:
        if secret and secret in value:
            value = value.replace(secret, REDACTED)
    if "eyJ" in value:
        value = _JWT.sub(REDACTED, value)
    if "earer" in value:
        value = _BEARER.sub(r"\1" + REDACTED, value)
    return value


def redact_json(value: Any, *, secrets: Iterable[str] = ()) -> Any:
    """A copy of a JSON value with sensitive keys and secret-looking strings replaced."""
    known = tuple(secret for secret in secrets if secret)
    return _redact_value(value, known)


def _redact_value(value: Any, secrets: tuple[str, ...]) -> Any:
    if isinstance(value, dict):
        return {
            key: (REDACTED if is_sensitive_key(key) else _redact_value(item, secrets))
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [_redact_value(item, secrets) for item in value]
    if isinstance(value, str):
        return _redact_string(value, secrets)
    return value


def redact_headers(headers: Mapping[str, Any], *, secrets: Iterable[str] = ()) -> dict[str, str]:
    """Headers as a plain dict with Authorization, cookies and secret values replaced."""
    known = tuple(secret for secret in secrets if secret)
    return {
        str(name): (REDACTED if is_sensitive_key(name) else _redact_string(str(value), known))
        for name, value in headers.items()
    }


def redact_query(query: Mapping[str, Any], *, secrets: Iterable[str] = ()) -> dict[str, Any]:
    """Query parameters with sensitive values replaced."""
    known = tuple(secret for secret in secrets if secret)
    return {
        str(name): (REDACTED if is_sensitive_key(name) else _redact_string(str(value), known))
        for name, value in query.items()
    }


def redact_query_string(query_string: str, *, secrets: Iterable[str] = ()) -> str:
    """A `a=1&client_secret=…` query string with sensitive values replaced."""
    pairs = parse_qsl(query_string, keep_blank_values=True)
    return urlencode(list(redact_query(dict(pairs), secrets=secrets).items()), safe="[]")


def redact_text(text: str, *, secrets: Iterable[str] = ()) -> str:
    """Free text (a body that is not JSON, or JSON too big to walk): regex-based redaction."""
    known = tuple(secret for secret in secrets if secret)
    if not might_contain_secrets(text, secrets=known):
        return text
    text = _redact_string(text, known)
    text = _JSON_PAIR.sub(r'\1"' + REDACTED + '"', text)
    return _QUERY_PAIR.sub(r"\1=" + REDACTED, text)
