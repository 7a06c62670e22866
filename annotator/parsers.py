"""Request body parsing for the API: JSON with a nesting limit.

Python's JSON decoder recurses once per level, so a 2 KB body of ``[[[[…`` raises ``RecursionError``
(a 500) before any view code runs; serializers and the database adapter recurse again on whatever
gets through. Bodies nested deeper than :data:`MAX_JSON_DEPTH` are refused as ``invalid_json`` (400),
as is anything the decoder cannot read.
"""

from __future__ import annotations

from django.conf import settings
from rest_framework import parsers
from rest_framework.exceptions import ParseError
from rest_framework.utils import json

#: The deepest nesting of arrays and objects accepted. The API's deepest documented body (an
#: annotation's points: object → list → object → value) is 4 levels deep.
MAX_JSON_DEPTH = 32


def json_depth_exceeds(text: str, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether arrays/objects in ``text`` nest deeper than ``limit`` (brackets inside strings ignored).

    A linear scan without recursion, run before the decoder so that it never recurses past ``limit``.
    """
    if text.count("[") + text.count("{") <= limit:  # the common case, at C speed
        return False
    depth = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > limit:
                return True
        elif char in "]}":
            depth -= 1
    return False


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser with a nesting limit; every refusal is a ``ParseError`` coded ``invalid_json``."""

    def parse(self, stream, media_type=None, parser_context=None):
        encoding = (parser_context or {}).get("encoding") or settings.DEFAULT_CHARSET
        raw = stream.read() if stream is not None else b""
        try:
            text = raw.decode(encoding)
        except (UnicodeDecodeError, LookupError):
            raise ParseError(f"The body is not valid {encoding} text.", code="invalid_json") from None
        if json_depth_exceeds(text):
            raise ParseError(f"JSON is nested more than {MAX_JSON_DEPTH} levels deep.", code="invalid_json")
        try:
            return json.loads(text, parse_constant=json.strict_constant if self.strict else None)
        except ValueError as exc:
            raise ParseError(f"JSON parse error - {exc}", code="invalid_json") from None
        except RecursionError:  # unreachable after the scan above; kept as the last line of defence
            raise ParseError("JSON is nested too deeply.", code="invalid_json") from None
