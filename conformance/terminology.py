"""Local terminology: ValueSet expansion and code membership from the CodeSystems and ValueSets in a PackageSet.

No terminology server is consulted. A ValueSet is expanded from its `compose` (include/exclude of concept
lists, whole code systems, `is-a`/`descendent-of`/`=` filters, nested value sets) as far as the needed
CodeSystems are present locally. Membership answers True, False, or None ("not checkable here": the code's
system, e.g. SNOMED CT or LOINC, is not available, or the ValueSet is unknown).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from conformance.packages import PackageSet

# Systems whose codes may be anything in practice (no enumerable CodeSystem): never "not in value set".
_GRAMMAR_SYSTEMS = frozenset({
    "http://unitsofmeasure.org", "urn:ietf:bcp:47", "urn:ietf:bcp:13", "urn:iso:std:iso:3166",
    "http://snomed.info/sct", "http://loinc.org", "http://www.nlm.nih.gov/research/umls/rxnorm",
})


@dataclass
class Expansion:
    """The codes of a ValueSet as far as they could be enumerated locally."""

    codes: dict[str, set[str]] = field(default_factory=dict)  # system -> codes
    open_systems: set[str] = field(default_factory=set)  # systems included without a checkable list
    complete: bool = True  # False when some part could not be expanded

    def contains(self, system: str | None, code: str) -> bool | None:
        if system is None:
            if any(code in codes for codes in self.codes.values()):
                return True
            return None if (self.open_systems or not self.complete) else False
        if code in self.codes.get(system, ()):
            return True
        if system in self.open_systems:
            return None
        if not self.complete:
            return None
        return False


@dataclass
class CodeInfo:
    display: str | None
    parents: tuple[str, ...]
    inactive: bool = False
    designations: tuple[str, ...] = ()  # displays in other languages / uses


class CodeSystemIndex:
    """A local CodeSystem's concepts (hierarchy flattened) for lookups and subsumption filters."""

    def __init__(self, resource: dict[str, Any]) -> None:
        self.url: str = resource.get("url", "")
        self.content: str = resource.get("content", "complete")
        self.case_sensitive: bool = resource.get("caseSensitive", True) is not False
        self.concepts: dict[str, CodeInfo] = {}
        self._children: dict[str, list[str]] = {}
        self._add(resource.get("concept", ()), None)

    def _add(self, concepts: Iterable[dict[str, Any]], parent: str | None) -> None:
        for concept in concepts:
            code = concept.get("code")
            if not isinstance(code, str):
                continue
            parents = [parent] if parent else []
            for prop in concept.get("property", ()):
                if prop.get("code") in ("parent", "subsumedBy") and isinstance(prop.get("valueCode"), str):
                    parents.append(prop["valueCode"])
            inactive = any(
                prop.get("code") in ("status", "inactive")
                and (prop.get("valueCode") in ("retired", "inactive") or prop.get("valueBoolean") is True)
                for prop in concept.get("property", ())
            )
            designations = tuple(d["value"] for d in concept.get("designation", ()) if isinstance(d.get("value"), str))
            self.concepts[code] = CodeInfo(concept.get("display"), tuple(parents), inactive, designations)
            for p in parents:
                self._children.setdefault(p, []).append(code)
            self._add(concept.get("concept", ()), code)

    @property
    def enumerable(self) -> bool:
        return self.content == "complete" and bool(self.concepts)

    def has(self, code: str) -> bool:
        if code in self.concepts:
            return True
        if not self.case_sensitive:
            lowered = code.lower()
            return any(c.lower() == lowered for c in self.concepts)
        return False

    def descendants(self, code: str) -> set[str]:
        found: set[str] = set()
        stack = list(self._children.get(code, ()))
        while stack:
            current = stack.pop()
            if current not in found:
                found.add(current)
                stack.extend(self._children.get(current, ()))
        return found


class Terminology:
    """Expansions and lookups over one PackageSet (plus resources added at run time), cached."""

    def __init__(self, packages: PackageSet | None = None) -> None:
        self.packages = packages
        self._extra: dict[str, dict[str, Any]] = {}
        self._systems: dict[str, CodeSystemIndex | None] = {}
        self._expansions: dict[str, Expansion | None] = {}
        self._lock = threading.RLock()

    def add(self, resource: dict[str, Any]) -> None:
        """Make a CodeSystem or ValueSet available (e.g. from a test case or a contained resource)."""
        url = resource.get("url")
        if isinstance(url, str):
            with self._lock:
                self._extra[url] = resource
                self._systems.pop(url, None)
                self._expansions.clear()

    def _resolve(self, canonical: str) -> dict[str, Any] | None:
        url = canonical.split("|", 1)[0]
        if url in self._extra:
            return self._extra[url]
        if self.packages is None:
            return None
        return self.packages.resolve(canonical) or self.packages.resolve(url)

    def code_system(self, url: str) -> CodeSystemIndex | None:
        with self._lock:
            if url not in self._systems:
                resource = self._resolve(url)
                ok = resource is not None and resource.get("resourceType") == "CodeSystem"
                self._systems[url] = CodeSystemIndex(resource) if ok else None
            return self._systems[url]

    def value_set(self, canonical: str) -> dict[str, Any] | None:
        resource = self._resolve(canonical)
        return resource if resource is not None and resource.get("resourceType") == "ValueSet" else None

    def expand(self, canonical: str) -> Expansion | None:
        """None when the ValueSet itself is unknown."""
        with self._lock:
            if canonical not in self._expansions:
                self._expansions[canonical] = None  # guards against cycles
                resource = self.value_set(canonical)
                self._expansions[canonical] = None if resource is None else self._expand(resource)
            return self._expansions[canonical]

    def _expand(self, value_set: dict[str, Any]) -> Expansion:
        expansion = Expansion()
        compose = value_set.get("compose")
        if not compose:
            contains = value_set.get("expansion", {}).get("contains")
            if contains:
                for system, code in _flatten_contains(contains):
                    expansion.codes.setdefault(system, set()).add(code)
            else:
                expansion.complete = False
            return expansion
        for include in compose.get("include", ()):
            self._include(include, expansion)
        for exclude in compose.get("exclude", ()):
            removed = Expansion()
            self._include(exclude, removed)
            for system, codes in removed.codes.items():
                expansion.codes.get(system, set()).difference_update(codes)
        return expansion

    def _include(self, include: dict[str, Any], into: Expansion) -> None:
        system = include.get("system")
        parts: list[Expansion] = []
        if system:
            parts.append(self._system_part(system, include))
        for nested in include.get("valueSet", ()):
            inner = self.expand(nested)
            if inner is None:
                parts.append(Expansion(complete=False))
            else:
                parts.append(inner)
        if not parts:
            return
        combined = parts[0] if len(parts) == 1 else _intersect(parts)
        for sys, codes in combined.codes.items():
            into.codes.setdefault(sys, set()).update(codes)
        into.open_systems.update(combined.open_systems)
        into.complete = into.complete and combined.complete

    def _system_part(self, system: str, include: dict[str, Any]) -> Expansion:
        part = Expansion()
        concepts = include.get("concept")
        filters = include.get("filter")
        if concepts:
            part.codes[system] = {c["code"] for c in concepts if isinstance(c.get("code"), str)}
            return part
        index = self.code_system(system)
        if index is None or not index.enumerable:
            part.open_systems.add(system)
            if system not in _GRAMMAR_SYSTEMS and index is None:
                part.complete = False
            return part
        codes = set(index.concepts)
        for flt in filters or ():
            selected = _apply_filter(index, flt)
            if selected is None:
                part.open_systems.add(system)
                return part
            codes &= selected
        part.codes[system] = codes
        return part

    # -- questions the validator asks ----------------------------------------------------------------------

    def validate_code(self, system: str | None, code: str, value_set: str) -> bool | None:
        expansion = self.expand(value_set)
        if expansion is None:
            return None
        return expansion.contains(system, code)

    def code_known(self, system: str, code: str) -> bool | None:
        """Whether `code` exists in `system` (None when the system is not available or not enumerable)."""
        index = self.code_system(system)
        if index is None or not index.enumerable:
            return None
        return index.has(code)

    def display_of(self, system: str, code: str) -> str | None:
        index = self.code_system(system)
        if index is None:
            return None
        info = index.concepts.get(code)
        return info.display if info else None

    def displays_of(self, system: str, code: str) -> tuple[str, ...]:
        """The display and every designation of a code (empty when unknown)."""
        index = self.code_system(system)
        info = index.concepts.get(code) if index is not None else None
        if info is None:
            return ()
        return ((info.display,) if info.display else ()) + info.designations


def _intersect(parts: list[Expansion]) -> Expansion:
    result = Expansion()
    systems = set.intersection(*(set(p.codes) for p in parts)) if parts else set()
    for system in systems:
        result.codes[system] = set.intersection(*(p.codes[system] for p in parts))
    result.complete = all(p.complete for p in parts)
    return result


def _apply_filter(index: CodeSystemIndex, flt: dict[str, Any]) -> set[str] | None:
    prop, op, value = flt.get("property"), flt.get("op"), flt.get("value")
    if prop in ("concept", "code") and op == "is-a":
        return index.descendants(value) | ({value} if value in index.concepts else set())
    if prop in ("concept", "code") and op == "descendent-of":
        return index.descendants(value)
    if prop in ("concept", "code") and op == "is-not-a":
        return set(index.concepts) - index.descendants(value) - {value}
    if prop in ("concept", "code") and op == "in":
        return set(value.split(",")) & set(index.concepts)
    if prop in ("concept", "code") and op == "=":
        return {value} & set(index.concepts)
    return None


def _flatten_contains(contains: Iterable[dict[str, Any]]) -> Iterator[tuple[str, str]]:
    for item in contains:
        if isinstance(item.get("system"), str) and isinstance(item.get("code"), str):
            yield item["system"], item["code"]
        yield from _flatten_contains(item.get("contains", ()))
