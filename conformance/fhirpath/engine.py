"""Compile and evaluate FHIRPath expressions on canonical FHIR JSON.

fhirpathpy parses an expression into a tree and walks it with a table of functions. We parse once per
expression text (cached), build the evaluation context ourselves so our own function table (`functions`) is
used with full access to the context, and replace fhirpathpy's member navigation: it returned a primitive's
value and its `_name` companion as two separate nodes, so `given.count()` counted extensions as names and
`given.extension` found nothing. Here a primitive is one node whose `_data` holds the companion.
"""

from __future__ import annotations

import threading
from collections import abc
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from functools import lru_cache
from typing import Any

from fhirpathpy.engine import do_eval, make_param, nodes, util
from fhirpathpy.engine.evaluators import evaluators
from fhirpathpy.engine.invocations import logic
from fhirpathpy.models import models
from fhirpathpy.parser import parse

R4_MODEL: dict[str, Any] = models["r4"]
ResourceNode = nodes.ResourceNode


class FhirPathError(ValueError):
    """The expression cannot be parsed, or its evaluation failed (e.g. a singleton was expected)."""


@dataclass
class Environment:
    """What an evaluation may see beyond its focus: the resources for %resource/%rootResource, variables,
    and callbacks for the functions that need the outside world (all optional)."""

    resource: Any = None
    root_resource: Any = None
    variables: dict[str, Any] = field(default_factory=dict)
    resolve: Callable[[str], dict[str, Any] | None] | None = None
    member_of: Callable[[Any, str], bool | None] | None = None
    conforms_to: Callable[[Any, str], bool | None] | None = None


_VARIABLE_PREFIXES = {
    "vs-": "http://hl7.org/fhir/ValueSet/",
    "ext-": "http://hl7.org/fhir/StructureDefinition/",
}
_FIXED_VARIABLES = {
    "ucum": "http://unitsofmeasure.org",
    "sct": "http://snomed.info/sct",
    "loinc": "http://loinc.org",
}


class _Variables(dict):
    """%name lookup: explicit variables first, then the spec's fixed names and `%vs-x`/`%ext-x` forms."""

    def __contains__(self, name: object) -> bool:
        return super().__contains__(name) or (isinstance(name, str) and self._derived(name) is not None)

    def __getitem__(self, name: str) -> Any:
        if super().__contains__(name):
            return super().__getitem__(name)
        derived = self._derived(name)
        if derived is None:
            raise KeyError(name)
        return derived

    @staticmethod
    def _derived(name: str) -> str | None:
        if name in _FIXED_VARIABLES:
            return _FIXED_VARIABLES[name]
        for prefix, base in _VARIABLE_PREFIXES.items():
            if name.startswith(prefix):
                return base + name[len(prefix):]
        return None


class CompiledExpression:
    """One parsed expression; `evaluate` may be called from several threads."""

    __slots__ = ("text", "_tree")

    def __init__(self, text: str) -> None:
        self.text = text
        try:
            self._tree = parse(text)
        except Exception as error:  # fhirpathpy raises bare Exceptions for syntax errors
            raise FhirPathError(f"cannot parse FHIRPath {text!r}: {error}") from None

    def evaluate_nodes(self, focus: Any, environment: Environment | None = None, type_name: str | None = None) -> list:
        """The result collection as fhirpathpy nodes (keeps type information)."""
        from conformance.fhirpath.functions import FUNCTIONS

        environment = environment or Environment()
        if isinstance(focus, list):
            root = [_node(item, type_name) for item in focus]
        else:
            root = [] if focus is None else [_node(focus, type_name)]
        variables = _Variables(environment.variables)
        variables["context"] = root
        resource = environment.resource if environment.resource is not None else focus
        variables["resource"] = [_node(resource, None)] if isinstance(resource, dict) else root
        root_resource = environment.root_resource if environment.root_resource is not None else resource
        variables["rootResource"] = [_node(root_resource, None)] if isinstance(root_resource, dict) else root
        ctx = {
            "dataRoot": root,
            "vars": variables,
            "model": R4_MODEL,
            "userInvocationTable": FUNCTIONS,
            "environment": environment,
        }
        with _TYPE_MODEL_LOCK:  # fhirpathpy keeps the model in a class attribute
            nodes.TypeInfo.model = R4_MODEL
        try:
            return do_eval(ctx, root, self._tree["children"][0])
        except FhirPathError:
            raise
        except RecursionError:
            raise FhirPathError(f"{self.text}: expression nests too deeply") from None
        except Exception as error:
            raise FhirPathError(f"{self.text}: {error}") from None

    def evaluate(self, focus: Any, environment: Environment | None = None, type_name: str | None = None) -> list:
        """The result collection as plain values (dicts, strings, numbers, booleans, date/time objects)."""
        return [unwrap(item) for item in self.evaluate_nodes(focus, environment, type_name)]

    def is_true(self, focus: Any, environment: Environment | None = None, type_name: str | None = None) -> bool:
        """Invariant semantics (as the HL7 validator): a single boolean is its value, any other non-empty result
        holds, and an empty result fails (e.g. per-1 comparing a date with a date-time of the same day)."""
        result = self.evaluate_nodes(focus, environment, type_name)
        if len(result) == 1:
            value = util.get_data(result[0])
            if isinstance(value, bool):
                return value
        return bool(result)


_TYPE_MODEL_LOCK = threading.Lock()


@lru_cache(maxsize=4096)
def compile_expression(text: str) -> CompiledExpression:
    """Parse once; the same text returns the same compiled expression."""
    return CompiledExpression(text)


def evaluate(focus: Any, text: str, environment: Environment | None = None) -> list:
    return compile_expression(text).evaluate(focus, environment)


def unwrap(item: Any) -> Any:
    if isinstance(item, ResourceNode):
        data = item.data
        if data is None and isinstance(item._data, dict):
            return item._data
        return data
    return item


def _node(data: Any, type_name: str | None) -> Any:
    if isinstance(data, ResourceNode):
        return data
    if isinstance(data, dict) and "resourceType" in data:
        return ResourceNode.create_node(data, data["resourceType"])
    if isinstance(data, dict | list) or type_name is not None:
        return ResourceNode.create_node(data, type_name)
    return data


# -- member navigation -----------------------------------------------------------------------------------------

def _children_of(model: dict[str, Any], parent: Any, key: str) -> list:
    """`parent.key` as nodes: arrays flattened, primitives paired with their `_key` companion."""
    parent = ResourceNode.create_node(parent)
    data = parent.data
    if not isinstance(data, abc.Mapping):
        # a primitive's id/extension live in its companion
        if isinstance(parent._data, abc.Mapping) and key in ("extension", "id"):
            data = parent._data
        elif isinstance(data, nodes.FP_Quantity) and key == "value":
            return [data.value]
        else:
            return []
    child_path = f"{parent.path}.{key}" if parent.path else f"_.{key}"
    full_path = f"{parent.propName}.{key}" if parent.propName else child_path
    child_path = model["pathsDefinedElsewhere"].get(child_path, child_path)
    value = data.get(key)
    extra = data.get(f"_{key}")
    choice_types = model["choiceTypePaths"].get(child_path)
    if choice_types and value is None and extra is None:
        for choice_type in choice_types:
            name = f"{key}{choice_type}"
            if name in data or f"_{name}" in data:
                value, extra = data.get(name), data.get(f"_{name}")
                child_path += choice_type
                break
    if key == "extension":
        child_path = "Extension"
    child_path = model["path2Type"].get(child_path, child_path)
    if value is None and extra is None:
        return []
    if isinstance(value, list) or isinstance(extra, list):
        values = value if isinstance(value, list) else [None] * len(extra or [])
        extras = extra if isinstance(extra, list) else [None] * len(values)
        result = []
        for index, item in enumerate(values):
            item_extra = extras[index] if index < len(extras) else None
            if item is None and item_extra is None:
                continue
            result.append(ResourceNode(item, child_path, item_extra, f"{full_path}[{index}]", index))
        return result
    return [ResourceNode(value, child_path, extra, full_path)]


def _member_invocation(ctx: dict[str, Any], parent_data: Any, node: dict[str, Any]) -> list:
    key = do_eval(ctx, parent_data, node["children"][0])[0].replace("`", "")
    if not isinstance(parent_data, list):
        return []
    if key[:1].isupper():
        typed = [item for item in parent_data if isinstance(util.get_data(item), dict)
                 and util.get_data(item).get("resourceType") == key]
        if typed or any(isinstance(util.get_data(i), dict) and "resourceType" in util.get_data(i)
                        for i in parent_data):
            return [ResourceNode.create_node(util.get_data(item), key) for item in typed]
    result: list = []
    for item in parent_data:
        result.extend(_children_of(ctx["model"] or R4_MODEL, item, key))
    return result


def _polarity_expression(ctx: dict[str, Any], parent_data: Any, node: dict[str, Any]) -> list:
    """Unary minus; on a non-number (only meaningful as a sort() key) it marks the key as descending."""
    from conformance.fhirpath.text_functions import Descending

    sign = node["terminalNodeText"][0]
    result = do_eval(ctx, parent_data, node["children"][0])
    if len(result) > 1:
        raise FhirPathError(f"unary {sign} needs a single value")
    value = util.get_data(result[0]) if result else None
    if isinstance(value, bool):
        raise FhirPathError(f"unary {sign} cannot be applied to a boolean")
    if sign != "-":
        return result
    if isinstance(value, nodes.FP_Quantity):
        return [nodes.FP_Quantity(-value.value, value.unit)]
    if util.is_number(value) and not isinstance(value, bool):
        return [-value]
    return [Descending(value)]


def _number_literal(ctx: dict[str, Any], parent_data: Any, node: dict[str, Any]) -> list:
    """`1.0` is a Decimal, `1` an Integer (fhirpathpy turned every whole number into an int)."""
    text = node["text"]
    return [Decimal(text)] if "." in text else [int(text)]


_LOGIC = {"or": logic.or_op, "and": logic.and_op, "implies": logic.implies_op}
_DECIDES = {"or": (True, True), "and": (False, False), "implies": (False, True)}  # left value -> result
_BOTH_SIDES = evaluators["OrExpression"]  # fhirpathpy's: both operands first (also for xor)


def _logical_expression(ctx: dict[str, Any], parent_data: Any, node: dict[str, Any]) -> list:
    """`or`, `and`, `implies` with the right operand evaluated only when the left does not decide (true or ...,
    false and ..., false implies ...), as the HL7 Java engine does; fhirpathpy evaluates both. An invariant
    such as `abatement.empty() or clinicalStatus.coding.where(...)` then costs its cheap left side on almost
    every element. Three-valued results otherwise unchanged (fhirpathpy's operators combine the two sides)."""
    operator = node["terminalNodeText"][0]
    combine = _LOGIC.get(operator)
    if combine is None:
        return _BOTH_SIDES(ctx, parent_data, node)
    left = make_param(ctx, parent_data, ["Boolean"], node["children"][0])
    deciding, result = _DECIDES[operator]
    if left is deciding:
        return [result]
    right = make_param(ctx, parent_data, ["Boolean"], node["children"][1])
    return util.arraify(combine(ctx, left, right))


evaluators["OrExpression"] = _logical_expression
evaluators["AndExpression"] = _logical_expression
evaluators["ImpliesExpression"] = _logical_expression
evaluators["MemberInvocation"] = _member_invocation
evaluators["NumberLiteral"] = _number_literal
evaluators["PolarityExpression"] = _polarity_expression
