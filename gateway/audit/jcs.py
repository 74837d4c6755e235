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
from typing import Any

MAX_SAFE_INTEGER = 2**53
_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}


class CanonicalizationError(ValueError):
    pass


def canonicalize(value: Any) -> bytes:
    parts: list[str] = []
    _write(value, parts)
    return "".join(parts).encode("utf-8")


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
    out = ['"']
    for char in text:
        if char in _ESCAPES:
            out.append(_ESCAPES[char])
        elif ord(char) < 0x20:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(char)
    out.append('"')
    return "".join(out)


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
