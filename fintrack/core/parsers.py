"""Request body parsers: DRF's JSON parser, hardened against bodies that crash the decoder."""

import io
import re

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

# No body our API takes nests deeper than a few levels; a hundred leaves room and stays far
# below the interpreter's recursion limit, which the decoder would otherwise run into.
MAX_JSON_DEPTH = 100

# A JSON string (skipped whole, brackets inside it do not count) or one bracket.
_TOKEN = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[\]{}]', re.DOTALL)
_OPENING = frozenset(b"[{")


def json_nesting_exceeds(body: bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether `body` opens more than `limit` arrays or objects inside one another, found
    without recursion (so without the RecursionError that decoding it would raise)."""
    if body.count(b"[") + body.count(b"{") <= limit:
        return False
    depth = 0
    for match in _TOKEN.finditer(body):
        token = match.group()
        if len(token) != 1:
            continue  # a string
        if token[0] in _OPENING:
            depth += 1
            if depth > limit:
                return True
        else:
            depth -= 1
    return False


class SafeJSONParser(JSONParser):
    """JSON parser whose deeply nested bodies are a 400, not a RecursionError and a 500."""

    def parse(self, stream, media_type=None, parser_context=None):
        body = stream.read() if stream is not None else b""
        if json_nesting_exceeds(body):
            raise ParseError(
                f"JSON parse error - the body is nested more than {MAX_JSON_DEPTH} levels deep."
            )
        return super().parse(io.BytesIO(body), media_type=media_type, parser_context=parser_context)
