"""FHIRPath functions fhirpathpy lacks or gets wrong, in its invocation-table format.

Each function receives the evaluation context (`ctx["environment"]` is our `Environment`), the input
collection and its evaluated parameters, and returns a collection.
"""

from __future__ import annotations

from collections import abc
from decimal import Decimal
from typing import Any

from fhirpathpy.engine import nodes, util
from fhirpathpy.engine.invocations import equality, existence, math, navigation

from conformance.fhirpath import boundaries, text_functions, types

ResourceNode = nodes.ResourceNode
_PRIMITIVE_DATA = (str, int, float, Decimal, bool, nodes.FP_Type)


def _environment(ctx: dict[str, Any]) -> Any:
    return ctx["environment"]


def has_value(ctx: dict[str, Any], coll: list) -> list:
    if len(coll) != 1:
        return [False]
    data = util.get_data(coll[0])
    return [data is not None and isinstance(data, _PRIMITIVE_DATA)]


def get_value(ctx: dict[str, Any], coll: list) -> list:
    if len(coll) == 1:
        data = util.get_data(coll[0])
        if data is not None and isinstance(data, _PRIMITIVE_DATA):
            return [data]
    return []


def extension(ctx: dict[str, Any], coll: list, url: Any) -> list:
    result = []
    for item in coll:
        node = ResourceNode.create_node(item)
        holder = node.data if isinstance(node.data, abc.Mapping) else node._data
        if isinstance(holder, abc.Mapping):
            for index, ext in enumerate(holder.get("extension", ())):
                if isinstance(ext, abc.Mapping) and ext.get("url") == url:
                    result.append(ResourceNode(ext, "Extension", None, None, index))
    return result


def children(ctx: dict[str, Any], coll: list) -> list:
    return navigation.children(ctx, coll)


def resolve(ctx: dict[str, Any], coll: list) -> list:
    environment = _environment(ctx)
    result = []
    for item in coll:
        data = util.get_data(item)
        reference = data.get("reference") if isinstance(data, abc.Mapping) else data
        if not isinstance(reference, str) or environment.resolve is None:
            continue
        target = environment.resolve(reference)
        if isinstance(target, abc.Mapping):
            result.append(ResourceNode.create_node(target, target.get("resourceType")))
    return result


def member_of(ctx: dict[str, Any], coll: list, value_set: Any) -> list:
    environment = _environment(ctx)
    if len(coll) != 1 or environment.member_of is None or not isinstance(value_set, str):
        return []
    verdict = environment.member_of(util.get_data(coll[0]), value_set)
    return [] if verdict is None else [verdict]


def conforms_to(ctx: dict[str, Any], coll: list, url: Any) -> list:
    environment = _environment(ctx)
    if len(coll) != 1 or environment.conforms_to is None or not isinstance(url, str):
        return []
    verdict = environment.conforms_to(util.get_data(coll[0]), url)
    return [] if verdict is None else [verdict]


def html_checks(ctx: dict[str, Any], coll: list) -> list:
    """The narrative rules (txt-1/txt-2): basic HTML only, no active content."""
    from conformance.validator.checks.narrative import html_checks as check

    return [all(check(util.get_data(item)) for item in coll)] if coll else []


def low_boundary(ctx: dict[str, Any], coll: list, precision: Any = None) -> list:
    return _boundary(coll, precision, low=True)


def high_boundary(ctx: dict[str, Any], coll: list, precision: Any = None) -> list:
    return _boundary(coll, precision, low=False)


def _boundary(coll: list, precision: Any, low: bool) -> list:
    if len(coll) != 1:
        return []
    if isinstance(precision, list):
        precision = precision[0] if precision else None
    value = boundaries.boundary(coll[0], precision, low)
    return [] if value is None else [value]


def precision(ctx: dict[str, Any], coll: list) -> list:
    if len(coll) != 1:
        return []
    value = boundaries.precision_of(coll[0])
    return [] if value is None else [value]


def comparable(ctx: dict[str, Any], coll: list, other: Any) -> list:
    if len(coll) != 1:
        return []
    left = util.get_data(coll[0])
    right = util.get_data(other[0] if isinstance(other, list) and other else other)
    if isinstance(left, nodes.FP_Quantity) and isinstance(right, nodes.FP_Quantity):
        return [nodes.FP_Quantity.conv_unit_to(left.unit, right.value, right.unit) is not None
                or left.unit == right.unit]
    return []


def _quantity_order(left: nodes.FP_Quantity, right: nodes.FP_Quantity) -> int | None:
    """-1/0/1, or None when the units cannot be compared."""
    value = right.value
    if left.unit != right.unit:
        value = nodes.FP_Quantity.conv_unit_to(right.unit, right.value, left.unit)
        if value is None:
            return None
        value = value.value if isinstance(value, nodes.FP_Quantity) else value
    a, b = Decimal(str(left.value)), Decimal(str(value))
    return (a > b) - (a < b)


def _as_datetime(item: Any) -> nodes.FP_DateTime | None:
    data = util.get_data(item)
    if isinstance(data, nodes.FP_DateTime):
        return data
    if isinstance(item, ResourceNode) and item.path in ("date", "dateTime", "instant") and isinstance(data, str):
        return nodes.FP_DateTime(data)
    return None


_ORDER_TESTS = {"<": lambda o: o < 0, ">": lambda o: o > 0, "<=": lambda o: o <= 0, ">=": lambda o: o >= 0}


def _with_quantities(operator: Any, symbol: str) -> Any:
    """Comparison operators that also order quantities (FHIR Quantity elements included)."""

    def compare(ctx: dict[str, Any], left: list, right: list) -> Any:
        left = [types.as_quantity(i) for i in left]
        right = [types.as_quantity(i) for i in right]
        if len(left) == 1 and len(right) == 1:
            a, b = util.get_data(left[0]), util.get_data(right[0])
            if isinstance(a, nodes.FP_Quantity) and isinstance(b, nodes.FP_Quantity):
                order = _quantity_order(a, b)
                return [] if order is None else [_ORDER_TESTS[symbol](order)]
            a, b = _as_datetime(left[0]), _as_datetime(right[0])
            if a is not None and b is not None and ("T" in a.asStr) != ("T" in b.asStr):
                # a date against a date-time: decided on the date alone, or unknown (empty) when the dates are equal
                day_a, day_b = a.asStr.split("T")[0], b.asStr.split("T")[0]
                if len(day_a) == len(day_b) and day_a != day_b:
                    return [_ORDER_TESTS[symbol]((day_a > day_b) - (day_a < day_b))]
                if day_a == day_b:
                    return []
        return operator(ctx, left, right)

    return compare


def _keeping_offset(operator: Any) -> Any:
    """Date arithmetic that keeps the time-zone offset of the date (fhirpathpy converts to UTC)."""

    def calculate(ctx: dict[str, Any], left: list, right: list) -> Any:
        result = operator(ctx, left, right)
        original = util.get_data(left[0]) if len(left) == 1 else None
        if isinstance(original, nodes.FP_DateTime) and isinstance(result, str | nodes.FP_DateTime):
            return boundaries.with_offset_of(nodes.FP_DateTime(str(getattr(result, "asStr", result))), original)
        return result

    return calculate


def _equivalent_collections(ctx: dict[str, Any], left: list, right: list) -> bool:
    """`~` on collections: the same items in any order."""
    if len(left) != len(right):
        return False
    remaining = list(right)
    for item in left:
        for index, candidate in enumerate(remaining):
            if equality.equivalence(ctx, [item], [candidate]):
                del remaining[index]
                break
        else:
            return False
    return True


def equivalent(ctx: dict[str, Any], left: list, right: list) -> list:
    return [_equivalent_collections(ctx, left, right)]


def not_equivalent(ctx: dict[str, Any], left: list, right: list) -> list:
    return [not _equivalent_collections(ctx, left, right)]


def single(ctx: dict[str, Any], coll: list) -> list:
    if len(coll) > 1:
        raise ValueError(f"single() on a collection of {len(coll)} items")
    return coll


def not_fn(ctx: dict[str, Any], coll: list) -> list:
    if len(coll) > 1:
        raise ValueError("not() on a collection of several items")
    return existence.not_fn(ctx, coll)


def to_boolean(ctx: dict[str, Any], coll: list) -> list:
    if len(coll) != 1:
        return []
    value = util.get_data(coll[0])
    if isinstance(value, bool):
        return [value]
    if isinstance(value, int | Decimal):
        return [True] if value == 1 else [False] if value == 0 else []
    if isinstance(value, str):
        lowered = value.lower()
        if lowered in ("true", "t", "yes", "y", "1", "1.0"):
            return [True]
        if lowered in ("false", "f", "no", "n", "0", "0.0"):
            return [False]
    return []


def converts_to_boolean(ctx: dict[str, Any], coll: list) -> list:
    if len(coll) != 1:
        return []
    return [bool(to_boolean(ctx, coll))]


_BINARY = {2: ["Any", "Any"]}

FUNCTIONS: dict[str, dict[str, Any]] = {
    "<": {"fn": _with_quantities(equality.lt, "<"), "arity": _BINARY, "nullable": True},
    ">": {"fn": _with_quantities(equality.gt, ">"), "arity": _BINARY, "nullable": True},
    "<=": {"fn": _with_quantities(equality.lte, "<="), "arity": _BINARY, "nullable": True},
    ">=": {"fn": _with_quantities(equality.gte, ">="), "arity": _BINARY, "nullable": True},
    "+": {"fn": _keeping_offset(math.plus), "arity": _BINARY, "nullable": True},
    "-": {"fn": _keeping_offset(math.minus), "arity": _BINARY, "nullable": True},
    "~": {"fn": equivalent, "arity": _BINARY},
    "!~": {"fn": not_equivalent, "arity": _BINARY},
    "single": {"fn": single},
    "not": {"fn": not_fn},
    "toBoolean": {"fn": to_boolean},
    "convertsToBoolean": {"fn": converts_to_boolean},
    "matchesFull": {"fn": text_functions.matches_full, "arity": {1: ["String"]}},
    "escape": {"fn": text_functions.escape, "arity": {1: ["String"]}},
    "unescape": {"fn": text_functions.unescape, "arity": {1: ["String"]}},
    "toString": {"fn": text_functions.to_string},
    "replaceMatches": {"fn": text_functions.replace_matches, "arity": {2: ["String", "String"]}},
    "replace": {"fn": text_functions.replace, "arity": {2: ["String", "String"]}},
    "indexOf": {"fn": text_functions.index_of, "arity": {1: ["String"]}},
    "startsWith": {"fn": text_functions.starts_with, "arity": {1: ["String"]}},
    "round": {"fn": lambda ctx, coll, digits=0: math.rround(ctx, coll, digits), "arity": {0: [], 1: ["Integer"]}},
    "sort": {"fn": text_functions.sort, "variadic": "Expr"},
    "ofType": {"fn": types.of_type_fn, "arity": {1: ["TypeSpecifier"]}},
    "trace": {"fn": lambda ctx, coll, *args: coll, "arity": {0: [], 1: ["String"], 2: ["String", "Expr"]}},
    "hasValue": {"fn": has_value},
    "getValue": {"fn": get_value},
    "as": {"fn": types.as_fn, "arity": {1: ["TypeSpecifier"]}},
    "asOp": {"fn": types.as_fn, "arity": {2: ["Any", "TypeSpecifier"]}},
    "is": {"fn": types.is_fn, "arity": {1: ["TypeSpecifier"]}},
    "isOp": {"fn": types.is_fn, "arity": {2: ["Any", "TypeSpecifier"]}},
    "extension": {"fn": extension, "arity": {1: ["String"]}},
    "resolve": {"fn": resolve},
    "memberOf": {"fn": member_of, "arity": {1: ["String"]}},
    "conformsTo": {"fn": conforms_to, "arity": {1: ["String"]}},
    "htmlChecks": {"fn": html_checks},
    "htmlchecks": {"fn": html_checks},
    "lowBoundary": {"fn": low_boundary, "arity": {0: [], 1: ["Integer"]}},
    "highBoundary": {"fn": high_boundary, "arity": {0: [], 1: ["Integer"]}},
    "precision": {"fn": precision},
    "comparable": {"fn": comparable, "arity": {1: ["Any"]}},
}
