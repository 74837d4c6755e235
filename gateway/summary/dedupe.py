"""Deduplication across sources: the same allergy (problem, medication, procedure) from HAP and VVT is shown
once, with both sources. Two resources are the same finding when they are of one type, share a code
(`system|code`) and have the same onset date (both missing counts as the same). When they disagree on status,
verification or criticality, the conflict is shown — every version stays in the section, nothing is hidden."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

COMPARED = ("clinicalStatus", "verificationStatus", "criticality", "status")
_ONSET = ("onsetDateTime", "performedDateTime", "effectiveDateTime", "authoredOn", "recordedDate")
_ONSET_PERIOD = ("onsetPeriod", "performedPeriod", "effectivePeriod")


@dataclass
class Finding:
    """One row of a section: a resource, plus the same finding from other sources."""

    primary: dict[str, Any]
    duplicates: list[dict[str, Any]] = field(default_factory=list)
    conflicts: dict[str, list[str]] = field(default_factory=dict)  # element -> the differing values

    @property
    def members(self) -> list[dict[str, Any]]:
        return [self.primary, *self.duplicates]

    @property
    def entries(self) -> list[dict[str, Any]]:
        """What the section lists: one resource, or all of them when the sources disagree."""
        return self.members if self.conflicts else [self.primary]


CodeOf = Callable[[dict[str, Any]], set[str]]


def group_findings(resources: Iterable[dict[str, Any]], code_of: CodeOf) -> list[Finding]:
    findings: list[Finding] = []
    index: dict[tuple[str, str | None, str], Finding] = {}  # (type, onset, code) -> the finding holding it
    for resource in resources:
        codes, onset = code_of(resource), onset_date(resource)
        resource_type = str(resource.get("resourceType"))
        keys = [(resource_type, onset, code) for code in sorted(codes)]
        finding = next((index[key] for key in keys if key in index), None)
        if finding is None:
            finding = Finding(resource)
            findings.append(finding)
        else:
            finding.duplicates.append(resource)
        for key in keys:
            index.setdefault(key, finding)
    for finding in findings:
        if finding.duplicates:
            first, *others = sorted(finding.members, key=_first_reported)
            finding.primary, finding.duplicates = first, others
            finding.conflicts = _conflicts(finding.members)
    return findings


def _first_reported(resource: Mapping[str, Any]) -> tuple[str, str]:
    """The finding's primary is the source that reported it first (then by id): the same row whatever order
    the store returned the resources in."""
    meta = resource.get("meta")
    updated = meta.get("lastUpdated") if isinstance(meta, Mapping) else None
    return str(updated or ""), str(resource.get("id") or "")


def coding_tokens(concept: Any) -> set[str]:
    if not isinstance(concept, Mapping):
        return set()
    return {
        f"{coding.get('system')}|{coding.get('code')}"
        for coding in concept.get("coding") or ()
        if isinstance(coding, Mapping) and coding.get("code")
    }


def onset_date(resource: Mapping[str, Any]) -> str | None:
    for element in _ONSET:
        if isinstance(resource.get(element), str):
            return str(resource[element])[:10]
    for element in _ONSET_PERIOD:
        period = resource.get(element)
        if isinstance(period, Mapping) and isinstance(period.get("start"), str):
            return str(period["start"])[:10]
    return None


def status_text(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping):
        codes = [str(c.get("code")) for c in value.get("coding") or () if isinstance(c, Mapping) and c.get("code")]
        return ",".join(codes) or value.get("text")
    return None


def _conflicts(members: list[dict[str, Any]]) -> dict[str, list[str]]:
    conflicts = {}
    for element in COMPARED:
        values = [status_text(member.get(element)) or "-" for member in members]
        if any(member.get(element) is not None for member in members) and len(set(values)) > 1:
            conflicts[element] = values
    return conflicts
