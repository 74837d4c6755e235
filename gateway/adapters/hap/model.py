"""What the HAP adapter hands to the ingestion pipeline."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from gateway.adapters.hl7v3.consumed import Unmapped

_PLACEHOLDER_NS = uuid.UUID("6f1d3c2e-3b8a-4f53-9a39-2d1b5c1e7a10")


@lru_cache(maxsize=65536)
def placeholder_url(key: str) -> str:
    """The fullUrl a resource has inside the translation; the pipeline turns it into its stored id."""
    return f"urn:uuid:{uuid.uuid5(_PLACEHOLDER_NS, key)}"


@dataclass
class MappedResource:
    """A resource and its source identity `key` (e.g. `Condition|<root>|<extension>`): the pipeline derives
    the stored id from the key, so the same source entity always lands on the same resource."""

    key: str
    resource: dict[str, Any]

    @property
    def full_url(self) -> str:
        return placeholder_url(self.key)

    @property
    def resource_type(self) -> str:
        return str(self.resource["resourceType"])


@dataclass(frozen=True)
class TranslationIssue:
    severity: str  # error | warning | information
    code: str  # FHIR issue-type
    diagnostics: str
    xpath: str | None = None


@dataclass
class HapTranslation:
    interaction: str
    message_id: str | None  # root|extension of the message id
    created: str | None  # dateTime of the message
    sender_organization: dict[str, Any] | None  # Identifier (URA or AGB) of the sending organisation
    sender_name: str | None
    resources: list[MappedResource] = field(default_factory=list)
    patient_keys: list[str] = field(default_factory=list)
    unmapped: list[Unmapped] = field(default_factory=list)
    issues: list[TranslationIssue] = field(default_factory=list)


class TranslationError(ValueError):
    """The message cannot be translated at all (not XML, unknown interaction, no patient, ...)."""

    def __init__(self, code: str, diagnostics: str, xpath: str | None = None) -> None:
        super().__init__(diagnostics)
        self.code, self.diagnostics, self.xpath = code, diagnostics, xpath
