"""Which patient(s) a resource is about, read from the core CompartmentDefinition for Patient.

For every resource type the CompartmentDefinition names search parameters (`Observation: subject, performer`);
the SearchParameter resources give their FHIRPath expressions, which for these parameters are plain paths
(`Observation.subject`, `Condition.subject.where(resolve() is Patient)`). We keep the paths and, for a resource,
collect every `Patient/<id>` reference found along them. Nothing is hand-listed except what the policy adds
(`extra_paths`, e.g. `Task.for`, which R4 leaves out of the compartment).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Protocol

from gateway.memo import Memo

PATIENT_COMPARTMENT = "http://hl7.org/fhir/CompartmentDefinition/patient"
_WHERE = re.compile(r"\.where\(resolve\(\) is Patient\)$")
_PATH = re.compile(r"^[A-Za-z]+(\.[A-Za-z]+)+$")
_NOBODY: frozenset[str] = frozenset()
_REMEMBERED_REFERENCES = 4096  # reference text -> patient (see PatientCompartment._named)


class DefinitionSource(Protocol):
    """What conformance.packages.PackageSet offers (kept structural so tests can pass a dict-backed fake)."""

    def resolve(self, canonical: str) -> dict[str, Any] | None: ...

    def of_type(self, resource_type: str) -> Iterable[dict[str, Any]]: ...


@dataclass(frozen=True)
class PatientCompartment:
    paths: Mapping[str, tuple[tuple[str, ...], ...]]  # resource type -> element paths (without the type)
    base_url: str = ""  # absolute references under this base are local; other absolute ones stay opaque
    params: Mapping[str, frozenset[str]] = field(default_factory=dict)  # type -> compartment search params
    _references: Memo[str, frozenset[str]] = field(
        default_factory=lambda: Memo(_REMEMBERED_REFERENCES), init=False, repr=False, compare=False
    )

    @classmethod
    def from_definitions(
        cls,
        source: DefinitionSource,
        extra_paths: Mapping[str, Iterable[str]] | None = None,
        base_url: str = "",
    ) -> PatientCompartment:
        compartment = source.resolve(PATIENT_COMPARTMENT)
        if compartment is None:
            raise LookupError(f"{PATIENT_COMPARTMENT} is not in the loaded packages")
        wanted = {
            (entry["code"], param) for entry in compartment.get("resource", ()) for param in entry.get("param", ())
        }
        expressions: dict[tuple[str, str], str] = {}
        for definition in source.of_type("SearchParameter"):
            for base in definition.get("base") or ():
                key = (base, definition.get("code", ""))
                if key in wanted and isinstance(definition.get("expression"), str):
                    expressions.setdefault(key, definition["expression"])
        paths: dict[str, set[tuple[str, ...]]] = {}
        for (resource_type, _param), expression in expressions.items():
            for part in expression.split("|"):
                path = _WHERE.sub("", _unparenthesised(part.strip()))
                if path.startswith(resource_type + ".") and _PATH.match(path):
                    paths.setdefault(resource_type, set()).add(tuple(path.split(".")[1:]))
        for resource_type, extra in (extra_paths or {}).items():
            for path in extra:
                paths.setdefault(resource_type, set()).add(tuple(path.split(".")))
        params: dict[str, set[str]] = {}
        for resource_type, param in wanted:
            params.setdefault(resource_type, set()).add(param)
        return cls(
            {rtype: tuple(sorted(found)) for rtype, found in paths.items()},
            base_url.rstrip("/"),
            {rtype: frozenset(codes) for rtype, codes in params.items()},
        )

    @cached_property
    def resource_types(self) -> frozenset[str]:
        """Types that can be about a patient (Patient itself included); asked on every request, made once."""
        return frozenset(self.paths) | {"Patient"}

    def patients_of(self, resource: Mapping[str, Any]) -> frozenset[str]:
        resource_type = resource.get("resourceType")
        if resource_type == "Patient" and isinstance(resource.get("id"), str):
            return frozenset((resource["id"],))  # a Patient is its own compartment (links are not followed)
        paths = self.paths.get(resource_type if type(resource_type) is str else str(resource_type))
        if not paths or not isinstance(resource, dict):
            return _NOBODY
        found = _NOBODY
        for path in paths:
            if len(path) == 1:  # most compartment paths (`subject`, `patient`, `performer`): no walk needed
                child = resource.get(path[0])
                if child is None:
                    continue
                nodes: Iterable[Any] = child if isinstance(child, list) else (child,)
            else:
                nodes = _walk(resource, path)
            for node in nodes:
                if isinstance(node, dict):
                    named = self._named(node.get("reference"))
                    if named and named is not found:
                        found = named if not found else found | named
        return found

    def _named(self, reference: object) -> frozenset[str]:
        """The patient a reference names, as a set of one (or none): remembered per reference text, since a
        page of results names the same few patients hundreds of times."""
        if type(reference) is not str:
            patient = patient_id(reference, self.base_url)  # a str subclass, or (not a reference) None
            return frozenset((patient,)) if patient else _NOBODY
        named = self._references.get(reference)
        if named is None:
            patient = patient_id(reference, self.base_url)
            named = self._references.keep(reference, frozenset((patient,)) if patient else _NOBODY)
        return named


def patient_id(reference: object, base_url: str = "") -> str | None:
    """`Patient/1`, `<base>/Patient/1`, `Patient/1/_history/2` -> `1`; not a Patient reference -> None.

    An absolute reference to a Patient on another server is returned whole: it names a patient (so the resource
    is patient data) whom this gateway has no facts for, which makes every rule that needs facts fail closed."""
    if not isinstance(reference, str) or "Patient/" not in reference:
        return None
    head, _, tail = reference.rpartition("Patient/")
    if head and not head.endswith("/"):
        return None  # e.g. "RelatedPatient/1"
    local = tail.split("/")[0] or None
    if not head or (base_url and head == base_url + "/"):
        return local
    return reference


def _unparenthesised(text: str) -> str:
    return text[1:-1].strip() if text.startswith("(") and text.endswith(")") else text


def _walk(node: Any, path: tuple[str, ...]) -> Iterable[Any]:
    if not path:
        yield node
        return
    if isinstance(node, list):
        for item in node:
            yield from _walk(item, path)
        return
    if isinstance(node, dict) and path[0] in node:
        child = node[path[0]]
        for item in child if isinstance(child, list) else [child]:
            yield from _walk(item, path[1:])
