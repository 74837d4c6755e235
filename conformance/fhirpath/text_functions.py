"""String, ordering and conversion functions that fhirpathpy lacks or renders wrongly (FHIRPath 2.0)."""

from __future__ import annotations

import html
import json
import re
from decimal import Decimal
from functools import cmp_to_key
from typing import Any

from fhirpathpy.engine import nodes, util


def _single_string(coll: list) -> str | None:
    if len(coll) != 1:
        return None
    value = util.get_data(coll[0])
    return value if isinstance(value, str) else None


def matches_full(ctx: dict[str, Any], coll: list, pattern: Any) -> list:
    text = _single_string(coll)
    if text is None or not isinstance(pattern, str):
        return []
    return [re.fullmatch(pattern, text, re.DOTALL) is not None]


def escape(ctx: dict[str, Any], coll: list, target: Any) -> list:
    text = _single_string(coll)
    if text is None:
        return []
    if target == "html":
        return [html.escape(text, quote=True).replace("&#x27;", "&#39;")]
    if target == "json":
        return [json.dumps(text)[1:-1]]
    return []


def unescape(ctx: dict[str, Any], coll: list, target: Any) -> list:
    text = _single_string(coll)
    if text is None:
        return []
    if target == "html":
        return [html.unescape(text)]
    if target == "json":
        try:
            return [json.loads(f'"{text}"')]
        except ValueError:  # nothing escaped left (the string literal was already unescaped)
            return [text]
    return []


def to_string(ctx: dict[str, Any], coll: list) -> list:
    if len(coll) != 1:
        return []
    value = util.get_data(coll[0])
    if isinstance(value, bool):
        return ["true" if value else "false"]
    if isinstance(value, nodes.FP_Quantity):
        return [f"{value.value} {value.unit}"]
    if isinstance(value, nodes.FP_TimeBase):
        return [value.asStr]
    if isinstance(value, dict | list) or value is None:
        return []
    return [str(value)]


def replace_matches(ctx: dict[str, Any], coll: list, pattern: Any, substitution: Any) -> list:
    text = _single_string(coll)
    if text is None or not isinstance(pattern, str) or not isinstance(substitution, str):
        return []
    if pattern == "":
        return [text]
    return [re.sub(pattern, re.sub(r"\$(\d)", r"\\\1", substitution), text)]


def replace(ctx: dict[str, Any], coll: list, pattern: Any, substitution: Any) -> list:
    text = _single_string(coll)
    if text is None or not isinstance(pattern, str) or not isinstance(substitution, str):
        return []
    if pattern == "":
        return [substitution + substitution.join(text) + substitution]
    return [text.replace(pattern, substitution)]


def index_of(ctx: dict[str, Any], coll: list, part: Any) -> list:
    text = _single_string(coll)
    if text is None or not isinstance(part, str):
        return []
    return [text.find(part)]


def starts_with(ctx: dict[str, Any], coll: list, prefix: Any) -> list:
    text = _single_string(coll)
    if text is None or not isinstance(prefix, str):
        return []
    return [text.startswith(prefix)]


def _compare(left: Any, right: Any) -> int:
    left, right = util.get_data(left), util.get_data(right)
    if left is None or right is None:
        return (left is None) - (right is None)
    if isinstance(left, nodes.FP_TimeBase) and isinstance(right, nodes.FP_TimeBase):
        result = left.compare(right)
        return 0 if result is None else int(result)
    if isinstance(left, int | Decimal | float) and isinstance(right, int | Decimal | float):
        return (left > right) - (left < right)
    return (str(left) > str(right)) - (str(left) < str(right))


class Descending:
    """`-key` on a non-number inside sort(): the key, sorted descending."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value


def sort(ctx: dict[str, Any], coll: list, *keys: Any) -> list:
    """sort() / sort(key, -key...): stable, ascending; a key written with a leading `-` sorts descending."""
    if not keys:
        return sorted(coll, key=cmp_to_key(_compare))
    decorated = []
    for item in coll:
        values = []
        for key in keys:
            result = key(item)
            first = result[0] if result else None
            if isinstance(first, Descending):
                values.append((first.value, True))
            else:
                values.append((first, False))
        decorated.append((item, values))

    def compare(a: tuple[Any, list], b: tuple[Any, list]) -> int:
        for (left, descending), (right, _) in zip(a[1], b[1], strict=True):
            result = _compare(left, right)
            if result:
                return -result if descending else result
        return 0

    return [item for item, _ in sorted(decorated, key=cmp_to_key(compare))]
