"""A compact model of the FHIR R4 types, compiled once from the core StructureDefinition snapshots.

JSON<->XML conversion and the structural checks need, for every resource, data type and backbone element,
the ordered child elements with their JSON names, cardinality and types. Reading that out of the snapshots
on every call would be slow, so it is compiled here into small slotted objects and cached (in memory per
`PackageSet`, and pickled under `var/cache` for the default packages). Nothing is hand-listed: the names,
order, choice types, XML attributes (`representation: xmlAttr`), primitive regexes and JSON value types all
come from the definitions.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import re
import threading
import weakref
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from conformance.packages import Package, PackageSet, default_package_paths, load_package

CORE_PREFIX = "http://hl7.org/fhir/StructureDefinition/"
FHIR_TYPE_EXT = "http://hl7.org/fhir/StructureDefinition/structuredefinition-fhir-type"
REGEX_EXT = "http://hl7.org/fhir/StructureDefinition/regex"
_FORMAT = 3  # bump when the pickled layout changes

Kind = Literal["primitive", "complex", "resource", "backbone"]
JsonType = Literal["boolean", "integer", "decimal", "string"]

# FHIRPath system types appear as element types only in the primitive and id/url places; the fhir-type
# extension normally names the FHIR type, this is the fallback.
SYSTEM_TYPES = {
    "http://hl7.org/fhirpath/System.String": "string",
    "http://hl7.org/fhirpath/System.Boolean": "boolean",
    "http://hl7.org/fhirpath/System.Integer": "integer",
    "http://hl7.org/fhirpath/System.Decimal": "decimal",
    "http://hl7.org/fhirpath/System.Date": "date",
    "http://hl7.org/fhirpath/System.DateTime": "dateTime",
    "http://hl7.org/fhirpath/System.Time": "time",
}
_JSON_ROOTS: dict[str, JsonType] = {"boolean": "boolean", "integer": "integer", "decimal": "decimal"}


@dataclass(slots=True)
class ElementInfo:
    """One child element as it appears in JSON (a choice `value[x]` yields one per type: `valueQuantity`)."""

    name: str  # JSON property / XML element name
    path: str  # definition path, e.g. `Patient.contact.name` or `Observation.value[x]`
    type: str  # FHIR type code, a backbone type name (`Patient.contact`), or `Resource`
    many: bool  # max cardinality > 1: a JSON array, repeated XML elements
    order: int  # position in the definition; the XML order
    kind: Kind  # kind of `type`
    attribute: bool = False  # XML attribute (Element.id, Extension.url)
    xhtml: bool = False  # Narrative.div
    choice: str | None = None  # `value` for `valueQuantity`
    min: int = 0


@dataclass(slots=True)
class TypeInfo:
    """A resource, data type or backbone element: its children by JSON name, in definition order."""

    name: str
    kind: Kind
    elements: dict[str, ElementInfo] = field(default_factory=dict)
    json_type: JsonType | None = None  # primitives only
    regex: re.Pattern[str] | None = None  # primitives only: the full-match pattern from the SD
    max_length: int | None = None  # primitives only: `maxLength` of the value (string: 1 MiB)
    attributes: tuple[ElementInfo, ...] = ()  # elements carried as XML attributes
    xml_children: dict[str, ElementInfo] = field(default_factory=dict)  # non-attribute elements
    choices: dict[str, tuple[str, ...]] = field(default_factory=dict)  # `value` -> JSON names
    by_tag: dict[str, ElementInfo] = field(default_factory=dict)  # XML child elements by Clark name

    def finish(self) -> None:
        """Derive the XML views once all elements are known."""
        self.attributes = tuple(e for e in self.elements.values() if e.attribute)
        self.xml_children = {n: e for n, e in self.elements.items() if not e.attribute}
        self.by_tag = {
            ("{http://www.w3.org/1999/xhtml}" if e.xhtml else "{http://hl7.org/fhir}") + n: e
            for n, e in self.xml_children.items()
        }


class TypeModel:
    """All types compiled from the core StructureDefinitions of one or more packages (first wins)."""

    def __init__(self) -> None:
        self.types: dict[str, TypeInfo] = {}
        self.resource_types: frozenset[str] = frozenset()

    # -- construction -------------------------------------------------------------------------------------

    @classmethod
    def from_packages(cls, packages: PackageSet) -> TypeModel:
        """The model for a PackageSet, compiled once and kept as long as the PackageSet lives."""
        cached = _BY_PACKAGE_SET.get(packages)
        if cached is None:
            cached = cls.from_structure_definitions(packages.of_type("StructureDefinition"))
            _BY_PACKAGE_SET[packages] = cached
        return cached

    @classmethod
    def from_structure_definitions(cls, definitions: Iterable[dict[str, Any]]) -> TypeModel:
        model = cls()
        model.add_definitions(definitions)
        return model

    def add_definitions(self, definitions: Iterable[dict[str, Any]]) -> None:
        """Compile base type definitions (core specialisations; profiles and logical models are skipped)."""
        base_of: dict[str, str] = {}
        wanted = []
        for sd in definitions:
            if not _is_base_definition(sd) or sd["type"] in self.types:
                continue
            if any(existing.get("type") == sd["type"] for existing in wanted):
                continue  # first wins
            wanted.append(sd)
        for sd in wanted:
            base = sd.get("baseDefinition", "")
            if base.startswith(CORE_PREFIX):
                base_of[sd["type"]] = base[len(CORE_PREFIX):]
        for sd in wanted:
            self._compile(sd, base_of)
        self._fix_kinds()
        self.resource_types = frozenset(
            info.name for info in self.types.values()
            if info.kind == "resource" and info.name not in {"Resource", "DomainResource"}
        )

    def _compile(self, sd: dict[str, Any], base_of: dict[str, str]) -> None:
        type_name = sd["type"]
        elements = sd.get("snapshot", {}).get("element", [])
        if sd["kind"] == "primitive-type":
            self.types[type_name] = _compile_primitive(type_name, elements, base_of, self.types)
            return
        kind: Kind = "resource" if sd["kind"] == "resource" else "complex"
        paths_with_children = {e["path"].rsplit(".", 1)[0] for e in elements if "." in e["path"]}
        infos: dict[str, TypeInfo] = {type_name: TypeInfo(type_name, kind)}
        for order, element in enumerate(elements):
            path = element["path"]
            if "." not in path:
                continue
            parent_path, local = path.rsplit(".", 1)
            parent = infos.get(parent_path)
            if parent is None:
                continue  # children of a choice or of a slice; not part of the base structure
            for info in _element_infos(element, local, order, path in paths_with_children, type_name):
                parent.elements[info.name] = info
                if info.choice:
                    parent.choices[info.choice] = (*parent.choices.get(info.choice, ()), info.name)
            if path in paths_with_children:
                infos[path] = TypeInfo(path, "backbone")
        for path, info in infos.items():
            info.finish()
            self.types.setdefault(path, info)

    def _fix_kinds(self) -> None:
        """Element kinds depend on other types that may be compiled later; resolve them lazily by name."""
        for info in self.types.values():
            for element in info.elements.values():
                target = self.types.get(element.type)
                if target is not None and element.kind != "backbone":
                    element.kind = target.kind

    # -- queries ------------------------------------------------------------------------------------------

    def type(self, name: str) -> TypeInfo | None:
        return self.types.get(name)

    def resource(self, name: str) -> TypeInfo | None:
        info = self.types.get(name)
        return info if info is not None and name in self.resource_types else None

    def is_primitive(self, name: str) -> bool:
        info = self.types.get(name)
        return info is not None and info.kind == "primitive"


def _is_base_definition(sd: dict[str, Any]) -> bool:
    return (
        sd.get("url", "").startswith(CORE_PREFIX)
        and sd.get("derivation") != "constraint"
        and sd.get("kind") in {"primitive-type", "complex-type", "resource"}
        and "snapshot" in sd
    )


def _fhir_type(type_entry: dict[str, Any]) -> str:
    for ext in type_entry.get("extension", ()):
        if ext.get("url") == FHIR_TYPE_EXT:
            return ext.get("valueUrl") or ext.get("valueUri") or "string"
    code = type_entry["code"]
    return SYSTEM_TYPES.get(code, code)


def _element_infos(
    element: dict[str, Any], local: str, order: int, has_children: bool, root: str
) -> list[ElementInfo]:
    path = element["path"]
    many = element.get("max", "1") not in {"0", "1"}
    attribute = "xmlAttr" in element.get("representation", ())
    minimum = int(element.get("min", 0))
    if "contentReference" in element:
        target = element["contentReference"].split("#", 1)[1]
        return [ElementInfo(local, path, target, many, order, "backbone", min=minimum)]
    if has_children:
        return [ElementInfo(local, path, path, many, order, "backbone", min=minimum)]
    types = element.get("type", [])
    if local.endswith("[x]"):
        base = local[:-3]
        return [
            ElementInfo(base + _upper_first(t["code"]), path, t["code"], many, order, "complex",
                        choice=base, min=minimum)
            for t in types
        ]
    if not types:
        return []
    type_code = _fhir_type(types[0])
    if local == "id" and path.count(".") == 1 and not attribute and types[0]["code"].startswith("http"):
        # Resource.id: the R4 snapshots say System.String / fhir-type `string`, but the specification
        # (resource.html) defines it as `id`, and servers must enforce the id syntax.
        type_code = "id"
    xhtml = "xhtml" in element.get("representation", ()) or type_code == "xhtml"
    return [ElementInfo(local, path, type_code, many, order, "complex", attribute, xhtml, min=minimum)]


def _upper_first(code: str) -> str:
    return code[:1].upper() + code[1:]


def _compile_primitive(
    name: str, elements: list[dict[str, Any]], base_of: dict[str, str], known: dict[str, TypeInfo]
) -> TypeInfo:
    value = next((e for e in elements if e["path"] == f"{name}.value"), None)
    pattern = None
    if value is not None and value.get("type"):
        for ext in value["type"][0].get("extension", ()):
            if ext.get("url") == REGEX_EXT:
                # ASCII classes: `\\S` in the (Java/XML Schema) regexes does not exclude U+00A0 etc.
                pattern = re.compile(ext["valueString"], re.ASCII)
    # The JSON representation follows the primitive's root ancestor: positiveInt -> integer -> number.
    json_type: JsonType = "string"
    cursor: str | None = name
    while cursor:
        if cursor in _JSON_ROOTS:
            json_type = _JSON_ROOTS[cursor]
            break
        cursor = base_of.get(cursor)
    max_length = value.get("maxLength") if value is not None else None
    info = TypeInfo(name, "primitive", json_type=json_type, regex=pattern, max_length=max_length)
    for element in elements:  # id and extension, as for any Element
        if element["path"].count(".") == 1 and not element["path"].endswith(".value"):
            local = element["path"].split(".", 1)[1]
            for child in _element_infos(element, local, 0, False, name):
                info.elements[child.name] = child
    info.finish()
    return info


# -- caches ---------------------------------------------------------------------------------------------------

_BY_PACKAGE_SET: weakref.WeakKeyDictionary[PackageSet, TypeModel] = weakref.WeakKeyDictionary()
_default: TypeModel | None = None
_building: TypeModel | None = None  # partial model visible to re-entrant calls while packages load
_lock = threading.RLock()


class ModelUnavailableError(RuntimeError):
    """No core StructureDefinitions are available to build the type model."""


def package_paths_from_environment() -> list[Path]:
    """`ZCC_PACKAGE_PATH` (`:`-separated, first wins) or the default R4 core package."""
    raw = os.environ.get("ZCC_PACKAGE_PATH", "")
    if raw.strip():
        return [Path(part) for part in raw.split(":") if part.strip()]
    paths = default_package_paths()
    if not any(path.exists() for path in paths):  # not started from the repository root
        paths = default_package_paths(Path(__file__).resolve().parents[1])
    return paths


def default_model() -> TypeModel:
    """The model for `package_paths_from_environment()`, built once per process (and pickled on disk).

    Packages may themselves contain XML that needs the model to be parsed (Nictiz folders); while they
    load, re-entrant calls get the model of the packages loaded before them, hence "first wins".
    """
    global _default, _building
    if _default is not None:
        return _default
    with _lock:
        if _default is not None:
            return _default
        if _building is not None:
            if not _building.types:
                raise ModelUnavailableError(
                    "reading XML packages needs the R4 core definitions: list the core package first"
                )
            return _building
        paths = package_paths_from_environment()
        cache_file = _cache_file(paths)
        model = _read_cache(cache_file)
        if model is None:
            _building = TypeModel()
            try:
                for path in paths:
                    _building.add_definitions(_core_definitions(load_package(path)))
                model = _building
            finally:
                _building = None
            if not model.types:
                raise ModelUnavailableError(f"no core StructureDefinitions found in {[str(p) for p in paths]}")
            _write_cache(cache_file, model)
        _default = model
        return model


def _core_definitions(package: Package) -> Iterable[dict[str, Any]]:
    """Only core definitions are read: profiles (often XML) are never parsed to build the model."""
    for entry in package.entries:
        if entry.resource_type == "StructureDefinition" and (entry.url or "").startswith(CORE_PREFIX):
            yield package.resource(entry)


def _cache_file(paths: list[Path]) -> Path:
    parts = [str(_FORMAT), str(Path(__file__).stat().st_mtime_ns)]
    for path in paths:
        marker = path / "package.json" if (path / "package.json").exists() else path
        parts.append(f"{path.resolve()}:{marker.stat().st_mtime_ns if marker.exists() else 0}")
    stamp = hashlib.sha256("\n".join(parts).encode()).hexdigest()[:24]
    return Path(os.environ.get("ZCC_CACHE_DIR", "var/cache")) / "typemodel" / f"{stamp}.pickle"


def _read_cache(path: Path) -> TypeModel | None:
    try:
        with path.open("rb") as handle:
            model = pickle.load(handle)  # our own cache file, written below
    except (OSError, pickle.PickleError, EOFError, AttributeError):
        return None
    return model if isinstance(model, TypeModel) else None


def _write_cache(path: Path, model: TypeModel) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temp = path.with_suffix(f".{os.getpid()}.tmp")
        temp.write_bytes(pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL))
        temp.replace(path)
    except OSError:
        pass  # a read-only cache only costs start-up time
