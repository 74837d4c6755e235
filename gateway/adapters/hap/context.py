"""The state of one translation: the resources made so far (merged by source identity), what was consumed,
and the issues found."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from lxml import etree

from gateway.adapters.hap.model import MappedResource, TranslationIssue, placeholder_url
from gateway.adapters.hl7v3.consumed import Consumption, SubtreeMarks
from gateway.adapters.hl7v3.identifiers import identifier, identifier_key
from gateway.adapters.hl7v3.xml import Element


@dataclass(frozen=True)
class Remembered:
    result: dict[str, Any] | None
    marks: SubtreeMarks
    issues: tuple[TranslationIssue, ...]


@dataclass
class MappingContext:
    consumption: Consumption = field(default_factory=Consumption)
    resources: dict[str, MappedResource] = field(default_factory=dict)
    issues: list[TranslationIssue] = field(default_factory=list)
    patient_key: str | None = None
    patient_display: str | None = None
    _keys_by_url: dict[str, str] = field(default_factory=dict)
    # results of mappers for repeated identical parts of the message (e.g. the same author on every statement),
    # keyed on (mapper, serialised subtree); see `remembered`
    _remembered: dict[tuple[str, bytes], Remembered] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # the mappers' most frequent calls: bound straight to the consumption's methods (same behaviour)
        self.take = self.consumption.take  # type: ignore[method-assign]
        self.visit = self.consumption.visit  # type: ignore[method-assign]

    # -- consumption ---------------------------------------------------------------------------------------

    def take(self, element: Element | None) -> Element | None:
        return self.consumption.take(element)

    def visit(self, element: Element | None) -> Element | None:
        return self.consumption.visit(element)

    # -- resources -----------------------------------------------------------------------------------------

    def add(self, key: str, resource: dict[str, Any]) -> dict[str, Any]:
        """Add a resource under its source key; a second resource with the same key is merged into the first
        (identifiers united, missing elements filled), so that an entity mentioned twice is written once."""
        existing = self.resources.get(key)
        if existing is None:
            self.resources[key] = MappedResource(key, resource)
            self._keys_by_url[placeholder_url(key)] = key
            return resource
        merged = existing.resource
        for name, value in resource.items():
            if name == "identifier":
                for ident in value:
                    if ident not in merged.setdefault("identifier", []):
                        merged["identifier"].append(ident)
            elif name not in merged:
                merged[name] = value
        return merged

    def key_of(self, reference: dict[str, Any]) -> str:
        """The source key of a placeholder reference made by `reference`."""
        return self._keys_by_url[reference["reference"]]

    def reference(self, key: str, display: str | None = None) -> dict[str, Any]:
        ref: dict[str, Any] = {"reference": placeholder_url(key)}
        resource = self.resources.get(key)
        if resource is not None:
            ref["type"] = resource.resource_type
        if display:
            ref["display"] = display
        return ref

    def patient_reference(self) -> dict[str, Any]:
        if self.patient_key is None:
            raise AssertionError("the patient is mapped before any clinical statement")
        return self.reference(self.patient_key, self.patient_display)

    # -- repeated parts ------------------------------------------------------------------------------------

    def remembered(self, mapper: str, element: Element,
                   mapping: Callable[[], dict[str, Any] | None]) -> dict[str, Any] | None:
        """`mapping()` (which maps `element`, a subtree) once per distinct content of the subtree: for a byte-
        identical subtree the result is replayed: the same reference (a copy), the same elements consumed, the
        same issues. Only for mappers whose effects are that: resources added by key (re-adding identical content
        is a no-op merge), consumption inside `element`, and warnings."""
        signature = (mapper, etree.tostring(element, with_tail=False))
        found = self._remembered.get(signature)
        if found is not None:
            self.consumption.apply(element, found.marks)
            self.issues.extend(found.issues)
            return dict(found.result) if found.result is not None else None
        issues_before = len(self.issues)
        result = mapping()
        self._remembered[signature] = Remembered(
            dict(result) if result is not None else None, self.consumption.marks_within(element),
            tuple(self.issues[issues_before:]))
        return result

    def warn(self, diagnostics: str, code: str = "informational", xpath: str | None = None) -> None:
        self.issues.append(TranslationIssue("warning", code, diagnostics, xpath))


def source_key(resource_type: str, element: Element | None) -> str | None:
    """`Type|root|extension` for an id element, None without a usable id."""
    found = identifier_key(element)
    return f"{resource_type}|{found}" if found else None


def identifiers(elements: list[Element]) -> list[dict[str, Any]]:
    result = []
    for element in elements:
        found = identifier(element)
        if found and found not in result:
            result.append(found)
    return result


def identifier_reference(resource_type: str, element: Element | None, display: str | None = None) -> dict[str, Any]:
    """A reference to something the message only names by id (it is not part of this message)."""
    ref: dict[str, Any] = {"type": resource_type}
    found = identifier(element)
    if found:
        ref["identifier"] = found
    if display:
        ref["display"] = display
    return ref
