"""Base-specification structural checks of FHIR JSON, the minimum every write needs.

`check_structure` answers "is this well-formed R4 JSON?" before (and independently of) profile validation:
known resourceType, no unknown properties, arrays exactly where the definition allows repetition, primitives
with the right JSON type and the lexical format of their type (the regexes in the core StructureDefinitions),
no empty objects/arrays/strings, well-formed `_name` companions, base minimum cardinalities, one choice
variant at most, and the same for every nested resource. Invariants, bindings and profiles are the
validator's job.

It is a walk over a plan compiled once per `TypeModel` (lookups only, paths built only for issues), because
it runs on every write: a typical Patient takes well under a millisecond.
"""

from __future__ import annotations

import re
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from conformance.typemodel import TypeInfo, TypeModel, default_model

INT32 = (-(2**31), 2**31 - 1)  # datatypes.html#integer: 32-bit signed
# Base minimum cardinality is reported, but as a warning: profiles (the validator) are the authority on
# cardinality, and the R4 examples package itself has a dozen resources that miss a base-required element.
MIN_CARDINALITY_SEVERITY = "warning"


@dataclass(frozen=True, slots=True)
class StructureIssue:
    """One problem, shaped like an OperationOutcome issue (`code` is a FHIR issue-type)."""

    severity: str  # error | warning
    code: str  # structure | invalid | value | required | not-supported | too-long
    message: str
    expression: str  # FHIRPath-like location, e.g. `Patient.name[0].given[1]`


# A primitive check returns None or (issue code, message) for a non-null JSON value.
PrimitiveCheck = Callable[[Any], "tuple[str, str] | None"]


@dataclass(slots=True)
class _Field:
    name: str
    many: bool
    kind: str  # primitive | complex | backbone | resource
    type: str
    check: PrimitiveCheck | None  # primitives
    xhtml: bool
    attribute: bool  # XML attribute (Element.id, Extension.url): no `_name` companion possible


@dataclass(slots=True)
class _Plan:
    fields: dict[str, _Field]
    required: tuple[tuple[str, tuple[str, ...]], ...]  # (shown name, names of which one must be present)
    choices: tuple[tuple[str, ...], ...]  # groups of which at most one may be present


class _CompiledModel:
    def __init__(self, model: TypeModel) -> None:
        self.model = model
        self.plans: dict[str, _Plan] = {}
        self.primitive_checks: dict[str, PrimitiveCheck] = {}
        self.extra_plan: dict[str, _Plan] = {}  # `_name` objects: id + extension of the primitive type

    def plan(self, type_name: str) -> _Plan:
        plan = self.plans.get(type_name)
        if plan is None:
            plan = self.plans[type_name] = self._compile(self.model.types[type_name])
        return plan

    def _compile(self, info: TypeInfo) -> _Plan:
        fields = {}
        required: dict[str, list[str]] = {}
        for name, element in info.elements.items():
            check = self.primitive_check(element.type) if element.kind == "primitive" else None
            fields[name] = _Field(
                name, element.many, element.kind, element.type, check, element.xhtml, element.attribute
            )
            if element.min > 0:
                required.setdefault(f"{element.choice}[x]" if element.choice else name, []).append(name)
        choices = tuple(names for names in info.choices.values() if len(names) > 1)
        return _Plan(fields, tuple((shown, tuple(names)) for shown, names in required.items()), choices)

    def primitive_check(self, type_name: str) -> PrimitiveCheck:
        check = self.primitive_checks.get(type_name)
        if check is None:
            check = self.primitive_checks[type_name] = _primitive_check(self.model.types[type_name])
        return check


def _primitive_check(ptype: TypeInfo) -> PrimitiveCheck:
    """Build the value check for one primitive type from its JSON type, regex and maxLength."""
    name, regex, max_length = ptype.name, ptype.regex, ptype.max_length
    fullmatch = _fast_fullmatch(name, regex)
    if ptype.json_type == "boolean":
        def check_boolean(value: Any) -> tuple[str, str] | None:
            if value is True or value is False:
                return None
            return "structure", f"{name} must be a JSON boolean (true/false), not {_describe(value)}"
        return check_boolean
    if ptype.json_type == "integer":
        def check_integer(value: Any) -> tuple[str, str] | None:
            if type(value) is not int:
                return "structure", f"{name} must be a JSON integer number, not {_describe(value)}"
            if not INT32[0] <= value <= INT32[1]:
                return "value", f"{name} {value} is outside the 32-bit integer range"
            if fullmatch is not None and not fullmatch(str(value)):
                return "value", f"{value} is not a valid {name}"
            return None
        return check_integer
    if ptype.json_type == "decimal":
        def check_decimal(value: Any) -> tuple[str, str] | None:
            if type(value) is int or (isinstance(value, Decimal) and value.is_finite()):
                if fullmatch is not None and not fullmatch(str(value)):
                    return "value", f"{value} is not a valid {name}"
                return None
            if type(value) is float and value == value and abs(value) != float("inf"):
                return None
            return "structure", f"{name} must be a JSON number, not {_describe(value)}"
        return check_decimal

    def check_string(value: Any) -> tuple[str, str] | None:
        if type(value) is not str:
            return "structure", f"{name} must be a JSON string, not {_describe(value)}"
        if not value:
            return "value", f"{name} must not be an empty string"
        if max_length is not None and len(value) > max_length:
            return "too-long", f"{name} is longer than {max_length} characters"
        if fullmatch is not None and not fullmatch(value):
            shown = value if len(value) <= 60 else value[:57] + "..."
            return "value", f"{shown!r} is not a valid {name}"
        return None
    return check_string


_BASE64_PLAIN = re.compile(r"[0-9a-zA-Z+/=]+")


def _fast_fullmatch(name: str, regex: re.Pattern[str] | None) -> Callable[[str], Any] | None:
    """The SD regex's fullmatch, with a linear shortcut for base64 without whitespace (large attachments);
    that shortcut accepts exactly the whitespace-free strings the SD regex accepts."""
    if regex is None:
        return None
    if name != "base64Binary":
        return regex.fullmatch

    def base64_fullmatch(text: str) -> bool:
        if _BASE64_PLAIN.fullmatch(text):
            return len(text) % 4 == 0
        return regex.fullmatch(text) is not None
    return base64_fullmatch


def _describe(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"boolean {str(value).lower()}"
    if isinstance(value, int | float | Decimal):
        return f"number {value}"
    if isinstance(value, str):
        return f"string {value[:40]!r}"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


_COMPILED: weakref.WeakKeyDictionary[TypeModel, _CompiledModel] = weakref.WeakKeyDictionary()


def _compiled(model: TypeModel) -> _CompiledModel:
    compiled = _COMPILED.get(model)
    if compiled is None:
        compiled = _COMPILED[model] = _CompiledModel(model)
    return compiled


def check_structure(resource: Any, model: TypeModel | None = None) -> list[StructureIssue]:
    """All structural problems of a resource in FHIR JSON form (empty list when it is well-formed)."""
    walker = _Walker(_compiled(model or default_model()))
    walker.resource(resource, "")
    return walker.issues


class _Walker:
    def __init__(self, compiled: _CompiledModel) -> None:
        self.compiled = compiled
        self.model = compiled.model
        self.issues: list[StructureIssue] = []

    def issue(self, code: str, message: str, expression: str, severity: str = "error") -> None:
        self.issues.append(StructureIssue(severity, code, message, expression))

    def resource(self, obj: Any, path: str) -> None:
        if not isinstance(obj, dict):
            self.issue("structure", f"a resource must be a JSON object, not {_describe(obj)}", path or "$")
            return
        resource_type = obj.get("resourceType")
        if resource_type is None:
            self.issue("required", "the resource has no resourceType", path or "resourceType")
            return
        if not isinstance(resource_type, str) or self.model.resource(resource_type) is None:
            shown = resource_type if isinstance(resource_type, str) else _describe(resource_type)
            self.issue("not-supported", f"unknown resourceType {shown!r}", path or "resourceType")
            return
        self.object(obj, self.compiled.plan(resource_type), path or resource_type, skip="resourceType")

    def object(self, obj: dict[str, Any], plan: _Plan, path: str, skip: str = "") -> None:
        """The properties of one JSON object (resource, data type, backbone element or `_name` companion)."""
        if not obj:
            self.issue("structure", "empty object: an element must have a value or children", path)
            return
        fields = plan.fields
        for key, value in obj.items():
            if key == skip:
                continue
            field = fields.get(key)
            if field is not None:
                if field.kind == "primitive":
                    companion = None if field.attribute or field.xhtml else obj.get("_" + key)
                    self.primitive(field, value, companion, path)
                elif field.many:
                    self.array(field, value, path)
                elif isinstance(value, list):
                    self.issue("structure", f"'{key}' must be a single value, not an array", f"{path}.{key}")
                else:
                    self.complex(field, value, f"{path}.{key}")
            elif (
                key[:1] == "_" and (base := fields.get(key[1:])) is not None
                and base.kind == "primitive" and not base.attribute and not base.xhtml
            ):
                if key[1:] not in obj:
                    self.primitive(base, None, value, path)
            else:
                self.issue("structure", f"unknown property '{key}'", f"{path}.{key}")
        for shown, names in plan.required:
            if not any(name in obj or "_" + name in obj for name in names):
                self.issue(
                    "required", f"missing required element '{shown}'", f"{path}.{shown}", MIN_CARDINALITY_SEVERITY
                )
        for names in plan.choices:
            present = [name for name in names if name in obj or "_" + name in obj]
            if len(present) > 1:
                self.issue("structure", f"only one of {', '.join(present)} may be present", f"{path}.{present[1]}")

    def array(self, field: _Field, value: Any, path: str) -> None:
        name = field.name
        if not isinstance(value, list):
            self.issue("structure", f"'{name}' must be an array", f"{path}.{name}")
            return
        if not value:
            self.issue("structure", f"'{name}' must not be an empty array", f"{path}.{name}")
            return
        for index, item in enumerate(value):
            self.complex(field, item, f"{path}.{name}[{index}]")

    def complex(self, field: _Field, value: Any, path: str) -> None:
        if not isinstance(value, dict):
            self.issue("structure", f"'{field.name}' must be a JSON object, not {_describe(value)}", path)
        elif field.kind == "resource":
            self.resource(value, path)
        else:
            self.object(value, self.compiled.plan(field.type), path)

    def primitive(self, field: _Field, value: Any, extra: Any, path: str) -> None:
        """A primitive and its `_name` companion (arrays zipped, nulls where one side is absent)."""
        name = field.name
        if not field.many:
            if isinstance(value, list) or isinstance(extra, list):
                self.issue("structure", f"'{name}' must be a single value, not an array", f"{path}.{name}")
                return
            self.one_primitive(field, value, extra, f"{path}.{name}", value is None and extra is None)
            return
        if value is None and extra is None:
            self.issue("structure", f"'{name}' must be an array, not null", f"{path}.{name}")
            return
        if value is not None and not isinstance(value, list):
            self.issue("structure", f"'{name}' must be an array", f"{path}.{name}")
            return
        if extra is not None and not isinstance(extra, list):
            self.issue("structure", f"'_{name}' must be an array", f"{path}.{name}")
            return
        values = value if value is not None else [None] * len(extra)
        extras = extra if extra is not None else [None] * len(values)
        if not values:
            self.issue("structure", f"'{name}' must not be an empty array", f"{path}.{name}")
            return
        if len(values) != len(extras):
            self.issue("structure", f"'{name}' and '_{name}' must have the same length", f"{path}.{name}")
            return
        for index, (item, item_extra) in enumerate(zip(values, extras, strict=True)):
            self.one_primitive(field, item, item_extra, f"{path}.{name}[{index}]", item is None and item_extra is None)

    def one_primitive(self, field: _Field, value: Any, extra: Any, path: str, both_null: bool) -> None:
        if both_null:
            self.issue("structure", "null is only allowed when '_' carries an id or extension", path)
            return
        if value is not None:
            if field.xhtml:
                if not isinstance(value, str) or not value.startswith("<div") or not value.endswith(">"):
                    self.issue("structure", "the narrative must be an XHTML <div> element as a string", path)
            else:
                problem = field.check(value)  # type: ignore[misc]
                if problem is not None:
                    self.issue(problem[0], problem[1], path)
        if extra is not None:
            if not isinstance(extra, dict):
                self.issue("structure", f"'_{field.name}' must be a JSON object, not {_describe(extra)}", path)
            else:
                self.object(extra, self.compiled.plan(field.type), path)

