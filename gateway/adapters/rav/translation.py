"""What the RAV adapter hands to the ingestion pipeline (the same contract as the HAP adapter's translation:
resources keyed by source identity, the patient keys, unmapped parts, issues), and the builder that collects it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gateway.adapters.hap.model import MappedResource, TranslationError, TranslationIssue, placeholder_url
from gateway.adapters.hl7v3.consumed import Unmapped

__all__ = ["MappedResource", "RavTranslation", "TranslationBuilder", "TranslationError", "TranslationIssue"]


@dataclass
class RavTranslation:
    interaction: str  # "ADT^A04", "ORU^R01", "hg-message-event#145"
    message_id: str | None
    created: str | None
    sender_organization: dict[str, Any] | None
    sender_name: str | None
    resources: list[MappedResource] = field(default_factory=list)
    patient_keys: list[str] = field(default_factory=list)
    unmapped: list[Unmapped] = field(default_factory=list)
    issues: list[TranslationIssue] = field(default_factory=list)


@dataclass
class TranslationBuilder:
    resources: dict[str, MappedResource] = field(default_factory=dict)
    issues: list[TranslationIssue] = field(default_factory=list)
    unmapped: list[Unmapped] = field(default_factory=list)

    def add(self, key: str, resource: dict[str, Any]) -> dict[str, Any]:
        """One resource per source identity: a second one with the same key adds what the first lacks."""
        existing = self.resources.get(key)
        if existing is None:
            self.resources[key] = MappedResource(key, resource)
            return resource
        for name, value in resource.items():
            existing.resource.setdefault(name, value)
        return existing.resource

    def reference(self, key: str, display: str | None = None) -> dict[str, Any]:
        ref: dict[str, Any] = {"reference": placeholder_url(key), "type": self.resources[key].resource_type}
        if display:
            ref["display"] = display
        return ref

    def warn(self, diagnostics: str, code: str = "informational", location: str | None = None) -> None:
        self.issues.append(TranslationIssue("warning", code, diagnostics, location))

    def leave_unmapped(self, location: str, value: str) -> None:
        self.unmapped.append(Unmapped(location, value))

    def translation(self, interaction: str, message_id: str | None, created: str | None,
                    sender: dict[str, Any] | None, sender_name: str | None, patient_keys: list[str]) -> RavTranslation:
        return RavTranslation(interaction, message_id, created, sender, sender_name, list(self.resources.values()),
                              patient_keys, self.unmapped, self.issues)
