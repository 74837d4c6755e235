"""Walk an instance against a compiled profile and report issues.

The walk goes element by element: for every element definition under the current node it gathers the
instance values (arrays, choice types, primitive `_name` companions), checks cardinality, matches slices,
and checks each value (fixed/pattern, binding, invariants, references, extensions), then descends into its
children — defined inline in the profile, by a content reference, by a type profile, or by the base type.
Cheap checks run first; FHIRPath invariants last.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from conformance.fhirpath import Environment, FhirPathError, compile_expression
from conformance.validator.checks import bindings, core_invariants, narrative, ranges, references, slicing
from conformance.validator.checks.questionnaire import check_attachment_size
from conformance.validator.checks.values import describe, matches_fixed, matches_pattern
from conformance.validator.issues import Issue
from conformance.validator.model import CORE_PREFIX, CompiledProfile, ElementNode, TypeRef
from conformance.validator.registry import ProfileRegistry

PRIMITIVE_TYPES = frozenset({
    "boolean", "integer", "string", "decimal", "uri", "url", "canonical", "base64Binary", "instant", "date",
    "dateTime", "time", "code", "oid", "id", "markdown", "unsignedInt", "positiveInt", "uuid", "xhtml",
})
_CODED_TYPES = frozenset({"Coding"})


@dataclass(slots=True)
class Item:
    value: Any
    extra: Any  # the `_name` companion of a primitive
    type_code: str | None
    expression: str
    index: int


@dataclass
class ResourceScope:
    """The resource being walked and what references in it may resolve to."""

    resource: dict[str, Any]
    expression: str
    root: dict[str, Any]
    resolve_reference: Callable[[str], dict[str, Any] | None]
    in_bundle_kind: str | None = None  # document, message, ... when inside a Bundle
    contained_by_id: dict[str, dict[str, Any]] = field(default_factory=dict)
    # invariants already evaluated here (a profile repeats its base's constraints): (location, key, expression)
    evaluated: set[tuple[str, str, str]] = field(default_factory=set)
    own_bundle_index: Any = None  # when this resource is a Bundle: its entries by fullUrl (built once)
    # why a reference into the surrounding Bundle is ambiguous or names a missing version (None: fine)
    reference_problem: Callable[[str], tuple[str, str] | None] | None = None


class Walker:
    def __init__(self, registry: ProfileRegistry, sink: list[Issue], validate_nested: Callable[..., None],
                 conforms: Callable[[Any, str], bool], unknown_extensions: str = "error",
                 skip_invariants: frozenset[str] = frozenset(), display_severity: str = "warning",
                 allowed_extension_domains: tuple[str, ...] = ()) -> None:
        self.allowed_extension_domains = allowed_extension_domains
        self.skip_invariants = skip_invariants
        self.display_severity = display_severity
        self.registry = registry
        self.unknown_extensions = unknown_extensions  # severity for extensions whose definition is not loaded
        self.issues = sink
        self.validate_nested = validate_nested
        self.conforms = conforms

    # -- reporting ------------------------------------------------------------------------------------------

    def report(self, severity: str, code: str, message: str, expression: str, profile: CompiledProfile | None,
               rule: str | None = None) -> None:
        self.issues.append(Issue(severity, code, message, expression, profile.label if profile else None, rule))

    # -- entry ----------------------------------------------------------------------------------------------

    def walk_resource(self, resource: dict[str, Any], profile: CompiledProfile, scope: ResourceScope,
                      is_base: bool) -> None:
        self.check_item_rules(Item(resource, None, resource.get("resourceType"), scope.expression, 0),
                              profile.root, profile, scope)
        self.walk_object(resource, profile.root, profile, scope, scope.expression, is_base)

    # -- objects and elements -------------------------------------------------------------------------------

    def walk_object(self, obj: dict[str, Any], node: ElementNode, profile: CompiledProfile, scope: ResourceScope,
                    expression: str, is_base: bool) -> None:
        for child in node.children.values():
            if child._is_choice:
                items = self.gather(obj, child, expression, profile)
            else:  # `gather` inlined for the common case
                value, extra = obj.get(child._json_name), obj.get(child._companion)
                if value is None and extra is None:
                    if child.min > 0:  # absent: only a minimum to report
                        self.check_cardinality(child, 0, expression, profile)
                    continue
                items = _items(value, extra, child._single_code, f"{expression}.{child._json_name}")
            self.check_cardinality(child, len(items), expression, profile)
            if not items:
                continue
            if child.slicing is not None or child.slices:
                self.walk_sliced(items, child, profile, scope, is_base, expression)
            else:
                for item in items:
                    self.walk_item(item, child, profile, scope, is_base)

    def gather(self, obj: dict[str, Any], node: ElementNode, expression: str, profile: CompiledProfile) -> list[Item]:
        name = node.json_name
        if node.is_choice:
            items: list[Item] = []
            allowed = node._choice_codes  # JSON suffix (`Quantity`, `String`) -> type code
            for key in obj:
                bare = key[1:] if key.startswith("_") else key
                if not bare.startswith(name) or not bare[len(name):][:1].isupper():
                    continue
                if key.startswith("_") and bare in obj:
                    continue
                suffix = bare[len(name):]
                code = allowed.get(suffix)
                item_expression = f"{expression}.{name}.ofType({_type_name(suffix)})"
                if code is None:
                    if node.types:
                        self.report("error", "structure",
                                    f"The {_kind(profile)} '{profile.label}' definition allows for the type"
                                    f"{'s' if len(node.types) > 1 else ''} {', '.join(node.type_codes)} but found type "
                                    f"{_type_name(suffix)}", item_expression, profile)
                    continue
                items.extend(_items(obj.get(bare), obj.get("_" + bare), code, item_expression))
            return items
        code = node._single_code
        if name not in obj and "_" + name not in obj:
            return []
        return _items(obj.get(name), obj.get("_" + name), code, f"{expression}.{name}")

    def check_cardinality(self, node: ElementNode, found: int, expression: str, profile: CompiledProfile,
                          label: str | None = None) -> None:
        shown = label or node.path
        if found < node.min:
            self.report("error", "required",
                        f"{shown}: minimum required = {node.min}, but only found {found} (from {profile.label})",
                        expression, profile, "cardinality")
        elif node.max is not None and found > node.max:
            self.report("error", "structure",
                        f"{shown}: max allowed = {node.max}, but found {found} (from {profile.label})",
                        expression, profile, "cardinality")

    # -- slicing ----------------------------------------------------------------------------------------------

    def walk_sliced(self, items: list[Item], node: ElementNode, profile: CompiledProfile, scope: ResourceScope,
                    is_base: bool, parent_expression: str) -> None:
        discriminators = node.slicing.discriminators if node.slicing else ()
        rules = node.slicing.rules if node.slicing else "open"
        matched: dict[int, list[Item]] = {i: [] for i in range(len(node.slices))}
        last_slice = -1
        unmatched_seen = False
        for item in items:
            slice_index = self._match(item, node, discriminators, scope)
            if slice_index is None:
                unmatched_seen = True
                if rules == "closed":
                    self.report("error", "structure",
                                f"This element does not match any known slice defined in the profile {profile.label}",
                                item.expression, profile, "slicing")
                self.walk_item(item, node, profile, scope, is_base)
                continue
            if node.slicing and node.slicing.ordered and slice_index < last_slice:
                self.report("error", "structure",
                            f"As specified by profile {profile.label}, Element '{node.path}' is out of order",
                            item.expression, profile, "slicing")
            if rules == "openAtEnd" and unmatched_seen:
                self.report("error", "structure",
                            f"The slices of {node.path} are openAtEnd, but an unmatched element comes before a slice",
                            item.expression, profile, "slicing")
            last_slice = max(last_slice, slice_index)
            matched[slice_index].append(item)
            slice_node = node.slices[slice_index]
            self.walk_item(item, slice_node, profile, scope, is_base, base_node=node)
        for index, slice_node in enumerate(node.slices):
            self.check_cardinality(slice_node, len(matched[index]), parent_expression, profile,
                                   label=f"{node.path}:{slice_node.slice_name}")

    def _match(self, item: Item, node: ElementNode, discriminators: tuple, scope: ResourceScope) -> int | None:
        for index, slice_node in enumerate(node.slices):
            if not discriminators:
                continue
            if slicing.slice_matches(item.value, item.type_code, slice_node, discriminators, self.type_root,
                                     lambda v: self._resolve_value(v, scope), self.conforms, self._member_of):
                return index
        return None

    def _resolve_value(self, value: Any, scope: ResourceScope) -> Any:
        if isinstance(value, dict) and isinstance(value.get("reference"), str):
            return scope.resolve_reference(value["reference"])
        if isinstance(value, str):
            return scope.resolve_reference(value)
        return None

    def type_root(self, node: ElementNode) -> ElementNode | None:
        """The element tree that describes the children of `node` when the profile does not list them."""
        if node.content_reference:
            return None
        if len(node.types) != 1:
            return None
        type_ref = node.types[0]
        for url in type_ref.profiles:
            compiled = self.registry.profile(url)
            if compiled is not None:
                return compiled.root
        compiled = self.registry.base(type_ref.code)
        return compiled.root if compiled is not None else None

    # -- one value --------------------------------------------------------------------------------------------

    def walk_item(self, item: Item, node: ElementNode, profile: CompiledProfile, scope: ResourceScope,
                  is_base: bool, base_node: ElementNode | None = None) -> None:
        self.check_item_rules(item, node, profile, scope)
        type_code = item.type_code
        if type_code is None:
            type_code = node._single_code
        value = item.value
        type_ref = _type_ref(node, type_code) or (_type_ref(base_node, type_code) if base_node else None)
        if type_code == "xhtml" and is_base and isinstance(value, str):
            for problem in narrative.problems(value):
                self.report("error", "value", problem, item.expression, profile, "xhtml")
        if type_code in PRIMITIVE_TYPES or (type_code and type_code.startswith("http://hl7.org/fhirpath/")):
            if isinstance(item.extra, dict):
                primitive = self.registry.base(type_code) if type_code in PRIMITIVE_TYPES else None
                if primitive is not None:
                    self.walk_object(item.extra, primitive.root, primitive, scope, item.expression, is_base)
            return
        if not isinstance(value, dict):
            return
        if type_code == "Resource" or (type_code in self.registry.resource_types and "resourceType" in value):
            profiles = [p for p in (type_ref.profiles if type_ref else ())]
            if is_base or profiles:
                self.validate_nested(value, item.expression, scope, profiles, is_base)
            return
        if type_code == "Reference" and (is_base or (type_ref and type_ref.target_profiles)):
            self.check_reference(value, type_ref, item.expression, profile, scope)
        if type_code == "Extension" and is_base and node.path.endswith("xtension") and not node.slice_name:
            self.check_extension(value, item.expression, scope, profile)
        if type_code == "Attachment" and is_base:
            check_attachment_size(value, lambda s, c, m: self.report(s, c, m, item.expression, profile))
        if type_code in _CODED_TYPES and is_base:
            bindings.check_coding_known(value, self.registry.terminology,
                                        lambda s, c, m: self.report(s, c, m, item.expression, profile),
                                        self.display_severity)
        if node.children:
            self.walk_object(value, node, profile, scope, item.expression, is_base)
            if type_ref is not None and type_ref.profiles:
                self.walk_type_profiles(value, type_ref, item.expression, scope)
            return
        if node.content_reference:
            target = profile.by_id.get(node.content_reference) or _find_by_path(profile, node.content_reference)
            if target is not None:
                self.walk_object(value, target, profile, scope, item.expression, is_base)
            return
        if type_ref is not None and type_ref.profiles and not (type_code == "Extension" and is_base):
            self.walk_type_profiles(value, type_ref, item.expression, scope)
        if is_base and type_code:  # the base pass descends into the data type's own definition
            base = self.registry.base(type_code)
            if base is not None:
                if base.root.constraints:
                    self.check_item_rules(Item(value, None, type_code, item.expression, 0), base.root, base, scope)
                self.walk_object(value, base.root, base, scope, item.expression, True)

    def walk_type_profiles(self, value: dict[str, Any], type_ref: TypeRef, expression: str,
                           scope: ResourceScope) -> None:
        for url in type_ref.profiles:
            compiled = self.registry.profile(url)
            if compiled is not None and compiled.derivation != "constraint":
                continue  # a base type: the base pass walks it
            if compiled is None:
                self.report("warning", "not-found", f"Profile {url} could not be found, so it is not checked",
                            expression, None)
                continue
            self.walk_object(value, compiled.root, compiled, scope, expression, False)
            self.check_item_rules(Item(value, None, compiled.type, expression, 0), compiled.root, compiled, scope)

    # -- rules on one value -------------------------------------------------------------------------------------

    def check_item_rules(self, item: Item, node: ElementNode, profile: CompiledProfile, scope: ResourceScope) -> None:
        if not node._item_rules:  # no fixed/pattern value, length, range, binding or (non-native) invariant
            return
        value = item.value
        expression = item.expression
        if node.fixed is not None and value is not None and not matches_fixed(value, node.fixed):
            self.report("error", "value",
                        f"Value is {describe(value)} but is fixed to {describe(node.fixed)} in the profile "
                        f"{profile.label}", expression, profile, "fixed")
        if node.pattern is not None and value is not None and not matches_pattern(value, node.pattern):
            self.report("error", "value",
                        f"The pattern {describe(node.pattern)} defined in the profile {profile.label} is not "
                        f"found. Issues: value is {describe(value)}", expression, profile, "pattern")
        if node.max_length is not None and isinstance(value, str) and len(value) > node.max_length:
            self.report("error", "too-long",
                        f"value is longer than permitted maximum length of {node.max_length}", expression, profile)
        if node.min_value is not None or node.max_value is not None:
            self._check_range(value, node, expression, profile)
        type_code = item.type_code or node._single_code
        if node.binding is not None and type_code is not None and value is not None:
            binding = node.binding
            if type_code == "Quantity" and binding.strength == "required" and len(node.types) > 1:
                # a unit binding on an open choice (vital signs' component.value[x]) is taken as extensible by
                # the HL7 validator: the other types it allows carry no unit
                binding = replace(binding, strength="extensible")
            bindings.check_binding(value, type_code, binding, self.registry.terminology,
                                   lambda s, c, m: self.report(s, c, m, expression, profile, "binding"))
        if node._invariants:
            self.check_invariants(item, node, profile, scope, type_code)

    def _check_range(self, value: Any, node: ElementNode, expression: str, profile: CompiledProfile) -> None:
        ranges.check_range(value, node.min_value, node.max_value,
                           lambda code, message: self.report("error", code, message, expression, profile, "range"))

    def check_invariants(self, item: Item, node: ElementNode, profile: CompiledProfile, scope: ResourceScope,
                         type_code: str | None) -> None:

        if item.value is None and item.extra is None:
            return
        focus: Any = None
        environment: Environment | None = None
        for constraint in node._invariants:  # the native ones (ele-1) left out
            if constraint.key in self.skip_invariants:
                continue
            done = (item.expression, constraint.key, constraint.expression)
            if done in scope.evaluated:
                continue
            scope.evaluated.add(done)
            holds = core_invariants.HOLDS_WHEN.get(constraint.expression)
            if holds is not None and holds(item.value):
                continue
            native = core_invariants.NATIVE.get(constraint.expression)
            if native is not None:
                if not native(item.value, scope.root):
                    self.report(constraint.severity, "invariant",
                                f"Constraint failed: {constraint.key}: '{constraint.human}'", item.expression,
                                profile, constraint.key)
                continue
            if environment is None:
                focus, environment = self._fhirpath_context(item, node, scope, type_code)
            try:
                expression = compile_expression(constraint.expression)
                ok = expression.is_true(focus, environment)
            except FhirPathError as error:
                self.report("warning", "invariant",
                            f"Unable to check constraint {constraint.key}: {error}", item.expression, profile,
                            constraint.key)
                continue
            if not ok:
                self.report(constraint.severity, "invariant",
                            f"Constraint failed: {constraint.key}: '{constraint.human}'", item.expression, profile,
                            constraint.key)

    def _fhirpath_context(self, item: Item, node: ElementNode, scope: ResourceScope,
                          type_code: str | None) -> tuple[Any, Environment]:
        from fhirpathpy.engine.nodes import ResourceNode

        if type_code in PRIMITIVE_TYPES:
            focus: Any = ResourceNode.create_node(item.value, type_code, item.extra)
        elif isinstance(item.value, dict) and "resourceType" in item.value:
            focus = item.value
        elif type_code in (None, "BackboneElement", "Element"):
            focus = ResourceNode.create_node(item.value, node.path)
        else:
            focus = ResourceNode.create_node(item.value, type_code)
        environment = Environment(
            resource=scope.resource,
            root_resource=scope.root,
            resolve=scope.resolve_reference,
            member_of=self._member_of,
            conforms_to=self.conforms,
        )
        return focus, environment

    def _member_of(self, value: Any, value_set: str) -> bool | None:
        terminology = self.registry.terminology
        if isinstance(value, str):
            return terminology.validate_code(None, value, value_set)
        if isinstance(value, dict):
            codings = value.get("coding") if "coding" in value else [value]
            verdicts = [terminology.validate_code(c.get("system"), c.get("code"), value_set)
                        for c in codings or () if isinstance(c, dict) and isinstance(c.get("code"), str)]
            if any(v is True for v in verdicts):
                return True
            if any(v is None for v in verdicts):
                return None
            return False
        return None

    # -- references and extensions ------------------------------------------------------------------------------

    def check_reference(self, value: dict[str, Any], type_ref: TypeRef | None, expression: str,
                        profile: CompiledProfile, scope: ResourceScope) -> None:
        reference = value.get("reference")
        if scope.reference_problem is not None and isinstance(reference, str):
            problem = scope.reference_problem(reference)
            if problem is not None:
                self.report(problem[0], "invalid", problem[1], expression, profile, "reference")
                if problem[0] == "error":
                    return
        target = references.check_reference(
            value, type_ref, self.registry.resource_types, scope.resolve_reference, self.registry.profile_type,
            lambda s, c, m: self.report(s, c, m, expression, profile, "reference"),
            must_resolve_local=scope.in_bundle_kind in ("document", "message"),
        )
        if target is None or type_ref is None:
            return
        wanted = [url for url in type_ref.target_profiles if not url.startswith(CORE_PREFIX)
                  and self.registry.profile_type(url) == target.get("resourceType")]
        if wanted and not any(self.conforms(target, url) for url in wanted):
            self.report("error", "structure",
                        f"The resource referenced does not conform to the target profile "
                        f"{' or '.join(wanted)}", expression, profile, "reference")

    def check_extension(self, value: dict[str, Any], expression: str, scope: ResourceScope,
                        profile: CompiledProfile) -> None:
        url = value.get("url")
        if not isinstance(url, str):
            return
        definition = self.registry.profile(url)
        if definition is None:
            if "://" not in url:
                return  # a relative url names a nested extension inside a complex one, checked by its parent
            if any(url.startswith(domain) for domain in self.allowed_extension_domains):
                self.report("information", "informational", f"The extension {url} is in an allowed domain; its "
                            "definition is not loaded, so it is not checked", expression, None, "extension")
                return
            if url.startswith("http://hl7.org/fhir/"):
                # HL7's own extensions live in packages not loaded here (extensions pack, other versions)
                self.report("warning", "not-found", f"The extension {url} is not available here, so it is not checked",
                            expression, None, "extension")
                return
            if self.unknown_extensions == "warning" and not _is_modifier(expression):
                self.report("warning", "not-found", f"The extension {url} is not loaded here, so it is not checked",
                            expression, None, "extension")
                return
            self.report("error", "structure",
                        f"The extension {url} could not be found so is not allowed here", expression, None,
                        "extension")
            return
        as_modifier = _is_modifier(expression)
        if definition.root.is_modifier != as_modifier:
            used, really = ("a modifierExtension", "a regular extension") if as_modifier else \
                ("an extension", "a modifierExtension")
            self.report("error", "structure", f"The Extension '{url}' must not be used as {used} (it's {really})",
                        expression, definition, "extension-modifier")
        if not _context_allows(definition, expression, scope, self.registry.resource_types):
            self.report("error", "structure",
                        f"The extension {url} is not allowed to be used at this point (allowed = "
                        f"{', '.join(c.get('expression', '') for c in definition.context)})", expression, definition,
                        "extension-context")
        self.walk_object(value, definition.root, definition, scope, expression, False)
        self.check_item_rules(Item(value, None, "Extension", expression, 0), definition.root, definition, scope)


def _context_allows(definition: CompiledProfile, expression: str, scope: ResourceScope,
                    resource_types: frozenset[str]) -> bool:
    if not definition.context:
        return True
    element_path = _definition_path(expression, scope)
    for context in definition.context:
        if context.get("type") != "element":
            return True
        allowed = context.get("expression", "")
        if allowed in ("Element", "Resource", "DomainResource", "Base", "BackboneElement"):
            return True
        if element_path == allowed or element_path.startswith(allowed + ".") or allowed.startswith(element_path):
            return True
        if "." not in allowed and element_path.split(".", 1)[0] == allowed:
            return True
        if allowed.split(".", 1)[0] not in resource_types:
            return True  # a data type context (HumanName.family): the owning element's type is not tracked here
    return False


def _definition_path(expression: str, scope: ResourceScope) -> str:
    """`Patient.name[0].extension[1]` -> `Patient.name` (the element that carries the extension)."""
    import re

    relative = expression[len(scope.expression):] if expression.startswith(scope.expression) else expression
    bare = re.sub(r"\[\d+\]", "", relative)
    bare = re.sub(r"\.ofType\(\w+\)", "", bare)
    parts = [p for p in bare.split(".") if p]
    if parts and parts[-1] in ("extension", "modifierExtension"):
        parts = parts[:-1]
    return ".".join([scope.resource.get("resourceType", ""), *parts])


def _items(value: Any, extra: Any, type_code: str | None, expression: str) -> list[Item]:
    if isinstance(value, list) or isinstance(extra, list):
        values = value if isinstance(value, list) else [None] * (len(extra) if isinstance(extra, list) else 0)
        extras = extra if isinstance(extra, list) else [None] * len(values)
        return [Item(v, extras[i] if i < len(extras) else None, type_code, f"{expression}[{i}]", i)
                for i, v in enumerate(values) if v is not None or (i < len(extras) and extras[i] is not None)]
    if value is None and extra is None:
        return []
    return [Item(value, extra, type_code, expression, 0)]


def _type_name(suffix: str) -> str:
    lowered = suffix[:1].lower() + suffix[1:]
    return lowered if lowered in PRIMITIVE_TYPES else suffix


def _type_ref(node: ElementNode | None, type_code: str | None) -> TypeRef | None:
    if node is None:
        return None
    for type_ref in node.types:
        if type_ref.code == type_code:
            return type_ref
    return node.types[0] if len(node.types) == 1 else None


def _find_by_path(profile: CompiledProfile, path: str) -> ElementNode | None:
    for node in profile.by_id.values():
        if node.path == path and node.slice_name is None:
            return node
    return None


def _kind(profile: CompiledProfile) -> str:
    return "Extension" if profile.type == "Extension" and profile.derivation == "constraint" else "Profile"


def _is_modifier(expression: str) -> bool:
    """A modifier extension changes the meaning of its element: one that cannot be checked is never let through."""
    return expression.rsplit(".", 1)[-1].startswith("modifierExtension")
