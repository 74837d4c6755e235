"""FHIRPath type tests: `is` follows inheritance, `as`/`ofType` match the type exactly for FHIR primitives
(`gender.as(string)` is empty: a code is not cast to its base), System values have System type names
(`@2015.is(Date)`), and unknown type names are errors."""

from __future__ import annotations

from collections import abc
from decimal import Decimal
from functools import cache
from typing import Any

from fhirpathpy.engine import nodes, util
from fhirpathpy.models import models

_MODEL = models["r4"]
_SYSTEM_TYPES = frozenset({"Boolean", "String", "Integer", "Decimal", "Date", "DateTime", "Time", "Quantity"})
_QUANTITY_TYPES = frozenset({"Quantity", "Age", "Duration", "Distance", "Count", "SimpleQuantity", "MoneyQuantity"})


@cache
def known_type_names() -> frozenset[str]:
    names = set(_MODEL["type2Parent"]) | set(_MODEL["type2Parent"].values()) | set(_MODEL["path2Type"].values())
    return frozenset(names | _SYSTEM_TYPES | {"Resource", "DomainResource", "Element", "BackboneElement"})


def system_type_name(value: Any) -> str | None:
    if isinstance(value, bool):
        return "Boolean"
    if isinstance(value, int):
        return "Integer"
    if isinstance(value, Decimal | float):
        return "Decimal"
    if isinstance(value, str):
        return "String"
    if isinstance(value, nodes.FP_Quantity):
        return "Quantity"
    if isinstance(value, nodes.FP_DateTime):
        return "DateTime" if "T" in (value.asStr or "") else "Date"
    if isinstance(value, nodes.FP_Time):
        return "Time"
    return None


def type_of(item: Any) -> tuple[str, str | None]:
    """(namespace, name) of an item of a collection."""
    if isinstance(item, nodes.ResourceNode) and item.path is not None:
        data = item.data
        if isinstance(data, abc.Mapping) and isinstance(data.get("resourceType"), str):
            return "FHIR", data["resourceType"]
        path = item.path
        if path.startswith("System."):
            return "System", path[7:]
        if "." in path:
            return "FHIR", "BackboneElement"
        return "FHIR", path
    data = util.get_data(item)
    return "System", system_type_name(data)


def _check_known(type_info: nodes.TypeInfo) -> None:
    if type_info.name not in known_type_names():
        raise ValueError(f"unknown type '{type_info.name}'")


def _inherits(name: str, wanted: str) -> bool:
    parents = _MODEL["type2Parent"]
    seen = 0
    while name and seen < 20:
        if name == wanted:
            return True
        name = parents.get(name)
        seen += 1
    return False


def matches(item: Any, type_info: nodes.TypeInfo, exact_primitive: bool) -> bool:
    namespace, name = type_of(item)
    if name is None:
        return False
    wanted_namespace = type_info.namespace
    if wanted_namespace and wanted_namespace != namespace:
        return False
    if namespace == "System":
        return name == type_info.name
    if exact_primitive and name[:1].islower():
        return name == type_info.name
    return _inherits(name, type_info.name)


def is_fn(ctx: dict[str, Any], coll: list, type_info: nodes.TypeInfo) -> list:
    _check_known(type_info)
    if not coll:
        return []
    if len(coll) > 1:
        raise ValueError("'is' expects a single item on its left side")
    return [matches(coll[0], type_info, exact_primitive=False)]


def as_fn(ctx: dict[str, Any], coll: list, type_info: nodes.TypeInfo) -> list:
    """Lenient `as`: on a collection it filters (as the HL7 validator does for dom-3) instead of failing."""
    _check_known(type_info)
    return [item for item in coll if matches(item, type_info, exact_primitive=True)]


def of_type_fn(ctx: dict[str, Any], coll: list, type_info: nodes.TypeInfo) -> list:
    _check_known(type_info)
    return [item for item in coll if matches(item, type_info, exact_primitive=True)]


def as_quantity(item: Any) -> Any:
    """A FHIR Quantity element as a FHIRPath quantity, so it compares with quantity literals."""
    if not isinstance(item, nodes.ResourceNode) or item.path not in _QUANTITY_TYPES:
        return item
    data = item.data
    if not isinstance(data, abc.Mapping) or "value" not in data:
        return item
    code = data.get("code") or data.get("unit")
    if code is None:
        return item
    unit = nodes.FP_Quantity.timeUnitsToUCUM.get(code, f"'{code}'")
    return nodes.FP_Quantity(data["value"], unit)
