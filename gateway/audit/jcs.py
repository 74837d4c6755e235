"""RFC 8785 JSON Canonicalization Scheme (JCS): the byte string every audit hash is computed over.

- object members sorted by their names as UTF-16 code-unit sequences (not by code point);
- strings serialised like ECMAScript JSON.stringify: `"` and `\\` escaped, control characters as \\b \\t \\n \\f \\r
  or \\u00xx (lower-case hex), everything else (incl. non-ASCII) as UTF-8;
- numbers as ECMAScript Number.prototype.toString of the IEEE 754 double (shortest round-trip digits);
  integers beyond 2^53 as the nearest double (as ECMAScript parses them); NaN and Infinity are rejected;
- no whitespace.
"""

from __future__ import annotations

import math
from decimal import Decimal
from json.encoder import encode_basestring  # type: ignore[attr-defined]
from typing import Any

import orjson

MAX_SAFE_INTEGER = 2**53


class CanonicalizationError(ValueError):
    pass


def canonicalize(value: Any) -> bytes:
    if _plain(value):  # no numbers that need ECMAScript formatting, keys that sort alike in UTF-16: orjson agrees
        try:
            return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
        except orjson.JSONEncodeError:
            pass  # e.g. a lone surrogate: let the reference path raise its own error
    return canonicalize_reference(value)


def canonicalize_built(value: Any) -> bytes:
    """JCS of a value that is JSON-plain by construction — strings, booleans, null, lists and objects with ASCII
    member names, no numbers — such as the AuditEvents gateway.audit.events builds: orjson's sorted compact form
    without the plain-value walk (which cost 5x the serialisation on a 200-entity event). The caller vouches for
    the shape; a lone surrogate still falls back to the reference path (which rejects it)."""
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
    except orjson.JSONEncodeError:
        return canonicalize_reference(value)


def canonicalize_reference(value: Any) -> bytes:
    """The rules above written out one by one (the fast path must always agree with this)."""
    parts: list[str] = []
    _write(value, parts)
    return "".join(parts).encode("utf-8")


def _plain(value: Any) -> bool:
    """True when orjson's sorted compact output is already the JCS form: only strings, booleans, null, safe
    integers, lists and objects whose member names are ASCII (UTF-16 and code-point order agree on those).
    Iterative with exact type checks (3-4x faster than recursion on a 200-entity AuditEvent); a subclass of
    str/int/dict/list simply takes the reference path."""
    stack = [value]
    while stack:
        node = stack.pop()
        kind = type(node)
        if kind is str or kind is bool or node is None:
            continue
        if kind is dict:
            for key, item in node.items():
                if type(key) is not str or not key.isascii():
                    return False
                stack.append(item)
        elif kind is list:
            stack.extend(node)
        elif kind is int:
            if not -MAX_SAFE_INTEGER <= node <= MAX_SAFE_INTEGER:
                return False
        else:
            return False
    return True


def _write(value: Any, out: list[str]) -> None:
    if value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, str):
        out.append(serialize_string(value))
    elif isinstance(value, int):
        if abs(value) <= MAX_SAFE_INTEGER:
            out.append(str(value))
        else:  # beyond 2^53 an ECMAScript parser holds the nearest double: serialise that
            try:
                out.append(serialize_number(float(value)))
            except OverflowError:
                raise CanonicalizationError(f"integer {value} is outside the IEEE 754 double range") from None
    elif isinstance(value, float):
        out.append(serialize_number(value))
    elif isinstance(value, dict):
        out.append("{")
        for index, key in enumerate(sorted(value, key=_utf16_key)):
            if not isinstance(key, str):
                raise CanonicalizationError(f"object member names must be strings, not {type(key).__name__}")
            if index:
                out.append(",")
            out.append(serialize_string(key))
            out.append(":")
            _write(value[key], out)
        out.append("}")
    elif isinstance(value, list | tuple):
        out.append("[")
        for index, item in enumerate(value):
            if index:
                out.append(",")
            _write(item, out)
        out.append("]")
    else:
        raise CanonicalizationError(f"{type(value).__name__} is not a JSON value")


def _utf16_key(key: Any) -> bytes:
    return str(key).encode("utf-16-be")


def serialize_string(text: str) -> str:
    """JSON.stringify's escaping is exactly that of the json module's (C-accelerated) non-ASCII encoder:
    `"`, `\\`, \\b \\t \\n \\f \\r, other control characters as \\u00xx in lower-case hex, nothing else."""
    return encode_basestring(text)


def serialize_number(number: float) -> str:
    """ECMAScript Number::toString for a finite double."""
    if math.isnan(number) or math.isinf(number):
        raise CanonicalizationError("NaN and Infinity are not JSON numbers")
    if number == 0:
        return "0"  # also -0
    sign = "-" if number < 0 else ""
    _, digit_tuple, exponent = Decimal(repr(abs(number))).as_tuple()
    digits = "".join(map(str, digit_tuple)).rstrip("0")
    exponent += len(digit_tuple) - len(digits)  # account for stripped trailing zeros
    k = len(digits)
    n = exponent + k  # value = 0.digits * 10^n
    if k <= n <= 21:
        text = digits + "0" * (n - k)
    elif 0 < n <= 21:
        text = digits[:n] + "." + digits[n:]
    elif -6 < n <= 0:
        text = "0." + "0" * (-n) + digits
    else:
        power = n - 1
        mantissa = digits if k == 1 else digits[0] + "." + digits[1:]
        text = f"{mantissa}e{'+' if power > 0 else '-'}{abs(power)}"
    return sign + text
