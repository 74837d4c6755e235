"""A StructureDefinition snapshot compiled into a tree of element nodes (done once per profile).

Each `ElementNode` carries what the checks need, already parsed: cardinality, allowed types (with profiles
and target profiles), fixed/pattern value, binding, invariants, slicing and its slices, children by name.
A bad *profile* raises `ProfileError`; a bad *instance* is only ever reported as issues.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from conformance.typemodel import SYSTEM_TYPES

CORE_PREFIX = "http://hl7.org/fhir/StructureDefinition/"
FHIR_TYPE_EXT = "http://hl7.org/fhir/StructureDefinition/structuredefinition-fhir-type"
BEST_PRACTICE_EXT = "http://hl7.org/fhir/StructureDefinition/elementdefinition-bestpractice"


# invariants checked structurally, never by their FHIRPath (ele-1: an element has a value or children)
NATIVE_INVARIANTS = frozenset({"ele-1"})


class ProfileError(ValueError):
    """The StructureDefinition cannot be used for validation (no snapshot, broken element ids...)."""


@dataclass(slots=True, frozen=True)
class TypeRef:
    code: str
    profiles: tuple[str, ...] = ()
    target_profiles: tuple[str, ...] = ()


@dataclass(slots=True, frozen=True)
class Constraint:
    key: str
    severity: str  # error | warning
    human: str
    expression: str
    source: str | None


@dataclass(slots=True, frozen=True)
class Binding:
    strength: str
    value_set: str | None
    description: str | None


@dataclass(slots=True, frozen=True)
class Discriminator:
    type: str  # value | pattern | type | profile | exists
    path: str


@dataclass(slots=True, frozen=True)
class Slicing:
    discriminators: tuple[Discriminator, ...]
    rules: str  # open | closed | openAtEnd
    ordered: bool


@dataclass(slots=True, eq=False)
class ElementNode:
    id: str
    path: str
    name: str  # local name as in the definition: `given`, `value[x]`
    min: int
    max: int | None  # None: unbounded
    types: tuple[TypeRef, ...]
    slice_name: str | None = None
    children: dict[str, ElementNode] = field(default_factory=dict)  # by JSON base name (`value` for value[x])
    slicing: Slicing | None = None
    slices: list[ElementNode] = field(default_factory=list)
    fixed: Any = None
    pattern: Any = None
    binding: Binding | None = None
    constraints: tuple[Constraint, ...] = ()
    content_reference: str | None = None
    max_length: int | None = None
    is_modifier: bool = False
    min_value: Any = None
    max_value: Any = None
    # derived from `name` once (the walker asks for them for every element of every instance object)
    _is_choice: bool = field(init=False, repr=False)
    _json_name: str = field(init=False, repr=False)
    _companion: str = field(init=False, repr=False)  # `_name`: a primitive's id/extension companion
    _invariants: tuple[Constraint, ...] = field(init=False, repr=False)  # the constraints but the native ones
    _item_rules: bool = field(init=False, repr=False)  # whether a value here has anything to check itself
    _choice_codes: dict[str, str] = field(init=False, repr=False)  # a choice's JSON suffixes -> type codes
    _single_code: str | None = field(init=False, repr=False)  # the type code when there is exactly one type

    def __post_init__(self) -> None:
        self._is_choice = self.name.endswith("[x]")
        self._json_name = self.name[:-3] if self._is_choice else self.name
        self._companion = "_" + self._json_name
        self._choice_codes = {t.code[:1].upper() + t.code[1:]: t.code for t in self.types} if self._is_choice else {}
        self._single_code = self.types[0].code if len(self.types) == 1 else None
        self._invariants = tuple(c for c in self.constraints if c.key not in NATIVE_INVARIANTS)
        self._item_rules = (self.fixed is not None or self.pattern is not None or self.max_length is not None
                            or self.min_value is not None or self.max_value is not None or self.binding is not None
                            or bool(self._invariants))

    @property
    def is_choice(self) -> bool:
        return self._is_choice

    @property
    def json_name(self) -> str:
        return self._json_name

    @property
    def type_codes(self) -> tuple[str, ...]:
        return tuple(t.code for t in self.types)

    def child(self, name: str) -> ElementNode | None:
        return self.children.get(name)


@dataclass(slots=True, eq=False)
class CompiledProfile:
    url: str
    version: str | None
    name: str
    type: str
    kind: str
    root: ElementNode
    by_id: dict[str, ElementNode]
    context: tuple[dict[str, Any], ...] = ()  # extension contexts
    context_invariants: tuple[str, ...] = ()
    abstract: bool = False
    derivation: str | None = None

    @property
    def label(self) -> str:
        return f"{self.url}|{self.version}" if self.version else self.url


def _type_code(entry: dict[str, Any]) -> str:
    for ext in entry.get("extension", ()):
        if ext.get("url") == FHIR_TYPE_EXT:
            return ext.get("valueUrl") or ext.get("valueUri") or "string"
    code = entry.get("code", "")
    return SYSTEM_TYPES.get(code, code)


def _fixed_and_pattern(element: dict[str, Any]) -> tuple[Any, Any]:
    fixed = pattern = None
    for key, value in element.items():
        if key.startswith("fixed") and key != "fixed":
            fixed = value
        elif key.startswith("pattern") and key != "pattern":
            pattern = value
    return fixed, pattern


def _bound(element: dict[str, Any], prefix: str) -> Any:
    for key, value in element.items():
        if key.startswith(prefix) and len(key) > len(prefix):
            return value
    return None


# Published R4 invariants whose FHIRPath contradicts their own human text, corrected as the HL7 validator does
# (its `fixExpr`); keyed by key and the exact published expression, so a profile's own wording is left alone.
INVARIANT_ERRATA: dict[tuple[str, str], str] = {
    # "If there are more than one enableWhen, enableBehavior must be specified"
    ("que-12", "enableWhen.count() > 2 implies enableBehavior.exists()"):
        "enableWhen.count() > 1 implies enableBehavior.exists()",
}


def _constraints(element: dict[str, Any]) -> tuple[Constraint, ...]:
    result = []
    for constraint in element.get("constraint", ()):
        expression = constraint.get("expression")
        if not expression:
            continue
        expression = INVARIANT_ERRATA.get((constraint.get("key"), expression), expression)
        severity = constraint.get("severity", "error")
        if any(e.get("url") == BEST_PRACTICE_EXT and e.get("valueBoolean") for e in constraint.get("extension", ())):
            severity = "warning"
        result.append(Constraint(constraint.get("key", "?"), severity, constraint.get("human", ""), expression,
                                 constraint.get("source")))
    return tuple(result)


def compile_element(element: dict[str, Any]) -> ElementNode:
    path = element["path"]
    maximum = element.get("max", "*")
    types = tuple(
        TypeRef(_type_code(t), tuple(t.get("profile", ())), tuple(t.get("targetProfile", ())))
        for t in element.get("type", ())
    )
    fixed, pattern = _fixed_and_pattern(element)
    binding = element.get("binding")
    slicing = element.get("slicing")
    content_reference = element.get("contentReference")
    return ElementNode(
        id=element.get("id") or path,
        path=path,
        name=path.rsplit(".", 1)[-1],
        min=int(element.get("min", 0)),
        max=None if maximum == "*" else int(maximum),
        types=types,
        slice_name=element.get("sliceName"),
        slicing=Slicing(
            tuple(Discriminator(d.get("type", "value"), d.get("path", "$this"))
                  for d in slicing.get("discriminator", ())),
            slicing.get("rules", "open"),
            bool(slicing.get("ordered", False)),
        ) if slicing else None,
        fixed=fixed,
        pattern=pattern,
        binding=Binding(binding.get("strength", "example"), binding.get("valueSet"), binding.get("description"))
        if binding else None,
        constraints=_constraints(element),
        content_reference=content_reference.split("#", 1)[1] if content_reference else None,
        max_length=element.get("maxLength"),
        is_modifier=bool(element.get("isModifier")),
        min_value=_bound(element, "minValue"),
        max_value=_bound(element, "maxValue"),
    )


def split_id(element_id: str, path: str) -> list[tuple[str, str | None]]:
    """`Observation.component:systolic.code` (path `Observation.component.code`) ->
    [(Observation, None), (component, systolic), (code, None)]. Slice names may contain dots."""
    segments = path.split(".")
    result: list[tuple[str, str | None]] = []
    position = 0
    for index, segment in enumerate(segments):
        if not element_id.startswith(segment, position):
            raise ProfileError(f"element id {element_id!r} does not match its path {path!r}")
        position += len(segment)
        slice_name = None
        if position < len(element_id) and element_id[position] == ":":
            if index + 1 < len(segments):
                end = element_id.find("." + segments[index + 1], position)
                while end != -1 and not _id_rest_matches(element_id, end + 1, segments[index + 1:]):
                    end = element_id.find("." + segments[index + 1], end + 1)
                if end == -1:
                    raise ProfileError(f"element id {element_id!r} does not match its path {path!r}")
            else:
                end = len(element_id)
            slice_name = element_id[position + 1:end]
            position = end
        result.append((segment, slice_name))
        position += 1
    return result


def _id_rest_matches(element_id: str, position: int, segments: list[str]) -> bool:
    """Whether the id from `position` on can spell the remaining path segments (with optional slices)."""
    rest = element_id[position:]
    for segment in segments:
        if not rest.startswith(segment):
            return False
        rest = rest[len(segment):]
        if rest.startswith(":"):
            cut = rest.find(".")
            rest = "" if cut == -1 else rest[cut:]
        if rest.startswith("."):
            rest = rest[1:]
    return rest == ""


def compile_profile(sd: dict[str, Any]) -> CompiledProfile:
    """Compile a StructureDefinition that has a snapshot."""
    elements = sd.get("snapshot", {}).get("element")
    if not elements:
        raise ProfileError(f"StructureDefinition {sd.get('url')} has no snapshot")
    by_key: dict[tuple[tuple[str, str | None], ...], ElementNode] = {}
    by_id: dict[str, ElementNode] = {}
    root: ElementNode | None = None
    for element in elements:
        node = compile_element(element)
        key = tuple(split_id(node.id, node.path)) if element.get("id") else _key_from_path(node, by_key)
        by_key[key] = node
        by_id[node.id] = node
        if len(key) == 1:
            if root is None:
                root = node
            continue
        *parent_key, (segment, slice_name) = key
        if slice_name is not None:
            base_slice = slice_name.rsplit("/", 1)[0] if "/" in slice_name else None
            sliced = by_key.get((*parent_key, (segment, base_slice)))
            if sliced is None:
                raise ProfileError(f"{sd.get('url')}: slice {node.id} has no sliced element")
            sliced.slices.append(node)
            continue
        parent = by_key.get(tuple(parent_key))
        if parent is None:
            raise ProfileError(f"{sd.get('url')}: element {node.id} has no parent")
        parent.children[node.json_name] = node
    if root is None:
        raise ProfileError(f"StructureDefinition {sd.get('url')} has an empty snapshot")
    return CompiledProfile(
        url=sd.get("url", ""),
        version=sd.get("version"),
        name=sd.get("name", ""),
        type=sd.get("type", root.path),
        kind=sd.get("kind", ""),
        root=root,
        by_id=by_id,
        context=tuple(sd.get("context", ())),
        context_invariants=tuple(sd.get("contextInvariant", ())),
        abstract=bool(sd.get("abstract")),
        derivation=sd.get("derivation"),
    )


def _key_from_path(node: ElementNode, by_key: dict[tuple, ElementNode]) -> tuple[tuple[str, str | None], ...]:
    """Old snapshots without ids: slices inherit nothing, so key by path plus slice name on the last part."""
    parts: list[tuple[str, str | None]] = [(segment, None) for segment in node.path.split(".")]
    if node.slice_name:
        parts[-1] = (parts[-1][0], node.slice_name)
    return tuple(parts)
