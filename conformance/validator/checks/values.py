"""Fixed and pattern values: `fixed[x]` must equal the instance exactly, `pattern[x]` must be contained in it."""

from __future__ import annotations

from decimal import Decimal
from typing import Any


def _same_primitive(instance: Any, expected: Any) -> bool:
    if isinstance(expected, bool) or isinstance(instance, bool):
        return instance is expected
    if isinstance(expected, int | Decimal) and isinstance(instance, int | Decimal):
        return Decimal(str(instance)) == Decimal(str(expected))
    return instance == expected


def matches_fixed(instance: Any, expected: Any) -> bool:
    """Exact equality (extensions and ids of the instance are ignored only when the fixed value has none)."""
    if isinstance(expected, dict):
        if not isinstance(instance, dict):
            return False
        keys = {k for k in instance if k not in ("id", "extension")} | set(expected)
        return all(k in expected and k in instance and matches_fixed(instance[k], expected[k]) for k in keys)
    if isinstance(expected, list):
        if not isinstance(instance, list) or len(instance) != len(expected):
            return False
        return all(matches_fixed(i, e) for i, e in zip(instance, expected, strict=True))
    return _same_primitive(instance, expected)


def matches_pattern(instance: Any, expected: Any) -> bool:
    """Every property in the pattern is present with a matching value; every pattern list item is matched
    by some item of the instance list."""
    if isinstance(expected, dict):
        if not isinstance(instance, dict):
            return False
        return all(k in instance and matches_pattern(instance[k], v) for k, v in expected.items())
    if isinstance(expected, list):
        if not isinstance(instance, list):
            instance = [instance]
        return all(any(matches_pattern(i, e) for i in instance) for e in expected)
    return _same_primitive(instance, expected)


def describe(value: Any) -> str:
    from conformance.fhirjson import dumps

    try:
        return dumps(value).decode()
    except TypeError:
        return repr(value)
