"""What the STU3 converter reports next to the R4 resource: the parts it could not carry over."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Unmapped:
    """An element of the STU3 input that has no place in the R4 output (FHIRPath-like location + value)."""

    path: str
    value: str

    def as_dict(self) -> dict[str, str]:
        return {"path": self.path, "value": self.value}

    @classmethod
    def of(cls, path: str, value: Any, why: str | None = None) -> Unmapped:
        text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, sort_keys=True)
        if len(text) > 500:
            text = text[:497] + "..."
        return cls(path, f"{text} ({why})" if why else text)


@dataclass
class Stu3Translation:
    """What a STU3 adapter hands to the ingestion pipeline (same shape as the HAP adapter's translation)."""

    interaction: str  # `Bundle.<type>` or the resource type of a single resource
    message_id: str | None  # Bundle.identifier as system|value
    created: str | None  # Bundle.meta.lastUpdated (STU3 has no Bundle.timestamp)
    sender_organization: dict[str, Any] | None  # Identifier (URA/AGB) of the sending organisation, if known
    sender_name: str | None
    resources: list[Any] = field(default_factory=list)  # MappedResource
    patient_keys: list[str] = field(default_factory=list)
    unmapped: list[Unmapped] = field(default_factory=list)
    issues: list[Any] = field(default_factory=list)  # TranslationIssue
