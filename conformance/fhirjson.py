"""FHIR JSON in canonical internal form: plain dicts, with decimals kept in their lexical form.

FHIR decimals carry precision (`1.50` is not `1.5`), so JSON numbers with a fraction or exponent are parsed
as `decimal.Decimal` and written back exactly as received. Parsing is strict: duplicate keys, NaN/Infinity
and nesting deeper than `MAX_DEPTH` are rejected with `FhirJsonError`.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import Any

import orjson

MAX_DEPTH = 100


class FhirDecimal(Decimal):
    """A decimal that remembers its lexical form (`1.50`, `1E3`), so serialisers write exactly that."""

    __slots__ = ("_text",)
    _text: str

    def __new__(cls, text: str) -> FhirDecimal:
        value = super().__new__(cls, text)
        value._text = text
        return value

    def __str__(self) -> str:
        return self._text

    def __repr__(self) -> str:
        return f"FhirDecimal('{self._text}')"

    def __reduce__(self) -> tuple[Any, ...]:
        return (FhirDecimal, (self._text,))

    def __copy__(self) -> FhirDecimal:
        return self

    def __deepcopy__(self, memo: Any) -> FhirDecimal:
        return self


def _parse_int(text: str) -> int | FhirDecimal:
    """JSON integers: Python ints, except forms an int would change (`-0`) or serialisers cannot hold (> 64 bit)."""
    value = int(text)
    if text == "-0" or not -(2**63) <= value < 2**64:
        return FhirDecimal(text)
    return value


class FhirJsonError(ValueError):
    """The bytes are not acceptable FHIR JSON; `str(error)` says why (and where, when known)."""


def _reject_constant(name: str) -> Any:
    raise FhirJsonError(f"{name} is not a valid JSON number in FHIR")


def _object_without_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise FhirJsonError(f"duplicate JSON property '{key}'")
        result[key] = value
    return result


def _check_depth(raw: bytes | str, limit: int) -> None:
    """Cheap scan for nesting depth before the recursive parser sees the text."""
    depth = 0
    in_string = False
    escaped = False
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
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
                raise FhirJsonError(f"JSON nesting deeper than {limit} levels")
        elif char in "]}":
            depth -= 1


_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


def _reject_lone_surrogates(value: Any) -> None:
    """`"\\ud800"` is valid JSON syntax but no Unicode text: it cannot be stored, hashed or sent on (pairs
    are joined by the parser, so only lone halves remain as surrogates)."""
    stack = [value]
    while stack:
        current = stack.pop()
        if isinstance(current, str):
            try:
                current.encode("utf-8")
            except UnicodeEncodeError:
                raise FhirJsonError("JSON string contains an unpaired UTF-16 surrogate escape") from None
        elif isinstance(current, dict):
            stack.extend(current.keys())
            stack.extend(current.values())
        elif isinstance(current, list):
            stack.extend(current)


def loads(raw: bytes | str, max_depth: int = MAX_DEPTH) -> Any:
    """Parse FHIR JSON strictly (see module doc)."""
    if isinstance(raw, bytes):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as error:
            raise FhirJsonError(f"body is not UTF-8: {error}") from None
    else:
        text = raw
    if text.startswith("\ufeff"):
        text = text[1:]
    _check_depth(text, max_depth)
    try:
        parsed = json.loads(
            text,
            parse_float=FhirDecimal,
            parse_int=_parse_int,
            parse_constant=_reject_constant,
            object_pairs_hook=_object_without_duplicates,
        )
        if _SURROGATE_ESCAPE.search(text):
            _reject_lone_surrogates(parsed)
        return parsed
    except FhirJsonError:
        raise
    except json.JSONDecodeError as error:
        raise FhirJsonError(f"malformed JSON: {error.msg} at line {error.lineno}, column {error.colno}") from None
    except RecursionError:
        raise FhirJsonError(f"JSON nesting deeper than {max_depth} levels") from None


def loads_trusted(raw: bytes | bytearray | str) -> Any:
    """Parse JSON the gateway wrote itself (stored resources, packages): fast, decimals kept. What
    `json.loads(raw, parse_float=FhirDecimal, parse_int=_parse_int)` does, with one decoder made once instead of
    one per call (a third of the time of parsing a ~1 KB resource)."""
    if isinstance(raw, str):
        if raw.startswith("\ufeff"):
            raise json.JSONDecodeError("Unexpected UTF-8 BOM (decode using utf-8-sig)", raw, 0)
        return _TRUSTED.decode(raw)
    return _TRUSTED.decode(raw.decode(json.detect_encoding(raw), "surrogatepass"))


_TRUSTED = json.JSONDecoder(parse_float=FhirDecimal, parse_int=_parse_int)


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return orjson.Fragment(str(value).encode())
    raise TypeError(f"cannot serialise {type(value).__name__} as FHIR JSON")


def dumps(value: Any, pretty: bool = False) -> bytes:
    """Serialise canonical form back to JSON bytes (decimals exactly as received)."""
    option = orjson.OPT_INDENT_2 if pretty else 0
    return orjson.dumps(value, default=_default, option=option)
