"""The state of one translation: the resources made so far (merged by source identity), what was consumed,
and the issues found."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gateway.adapters.hap.model import MappedResource, TranslationIssue, placeholder_url
from gateway.adapters.hl7v3.consumed import Consumption
from gateway.adapters.hl7v3.identifiers import identifier, identifier_key
from gateway.adapters.hl7v3.xml import Element


@dataclass
class MappingContext:
    consumption: Consumption = field(default_factory=Consumption)
    resources: dict[str, MappedResource] = field(default_factory=dict)
    issues: list[TranslationIssue] = field(default_factory=list)
    patient_key: str | None = None
    patient_display: str | None = None

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
        return self._keys_by_url()[reference["reference"]]

    def _keys_by_url(self) -> dict[str, str]:
        return {placeholder_url(key): key for key in self.resources}

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
