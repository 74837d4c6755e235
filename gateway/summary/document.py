"""Assemble the summary `document` Bundle from released resources only: a Composition (LOINC 60591-5) with one
section per definition, each with a generated narrative, its entries, and an `emptyReason` when it has none
(`unavailable`: nothing known here; `withheld`: withheld by policy), then every entry, the resources they
need (medication, general practitioner), and the Provenance that traces them to source and message."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import uuid4

from gateway.summary.collect import PatientRecord
from gateway.summary.dedupe import Finding, coding_tokens, group_findings, onset_date
from gateway.summary.narrative import describe, document_div, section_div
from gateway.summary.screen import Screening
from gateway.summary.sections import Section, SummaryDefinition
from gateway.summary.sources import sources_by_target

EMPTY_REASON = "http://terminology.hl7.org/CodeSystem/list-empty-reason"


@dataclass
class SummaryDocument:
    bundle: dict[str, Any]
    withheld: int  # resources withheld visibly (the client may be told how many)


@dataclass(frozen=True)
class Assembled:
    """Everything of a document but its identity and time: the same record screened the same way in the same
    language assembles to the same content, so it can be kept (never changed: it is shared between requests)."""

    sections: list[dict[str, Any]]
    text: str  # the Composition's narrative
    subject: dict[str, Any]  # Composition.subject
    entries: list[dict[str, Any]]  # the Bundle entries after the Composition: the patient and all included
    withheld: int


def build_document(
    definition: SummaryDefinition,
    record: PatientRecord,
    screening: Screening,
    language: str,
    base_url: str,
    now: datetime,
) -> SummaryDocument:
    return wrap(definition, assemble(definition, record, screening, language, base_url), language, base_url, now)


def assemble(
    definition: SummaryDefinition,
    record: PatientRecord,
    screening: Screening,
    language: str,
    base_url: str,
) -> Assembled:
    base = base_url.rstrip("/")
    released = [r for r in record.resources if screening.allows(r)]
    supporting = {ref: r for ref, r in record.supporting.items() if screening.allows(r)}
    provenances = [r for r in released if r.get("resourceType") == "Provenance"]
    sources = sources_by_target(provenances, supporting, base)
    included: dict[str, dict[str, Any]] = {}
    sections, total_withheld = [], 0

    by_type: dict[str, list[dict[str, Any]]] = {}
    for resource in record.resources:
        by_type.setdefault(str(resource.get("resourceType")), []).append(resource)
    for section in definition.sections:
        candidates = [r for t in sorted(section.resource_types) for r in by_type.get(t, ()) if section.takes(r)]
        withheld = sum(1 for r in candidates if screening.visibly_withheld(r))
        shown = _selected(section, [r for r in candidates if screening.allows(r)])
        findings = (group_findings(shown, lambda r: _codes(r, supporting)) if section.dedupe
                    else [Finding(r) for r in shown])
        extra = _general_practitioners(record.patient, supporting) if section.general_practitioner else []
        entries = [r for finding in findings for r in finding.entries] + extra
        for resource in [r for finding in findings for r in finding.members] + extra:
            included[_ref(resource)] = resource
        total_withheld += withheld
        sections.append(_section(definition, section, language, findings, entries, extra, sources, supporting,
                                 withheld))

    needed_provenance = {s.provenance for ref in included for s in sources.get(ref, ())}
    for provenance in provenances:
        if _ref(provenance) in needed_provenance:
            included[_ref(provenance)] = provenance
    available = {**{_ref(r): r for r in released}, **supporting}
    _add_referenced(included, available, record.references, [f"Patient/{record.patient_id}", *included])

    patient = record.patient
    name = describe(patient, {})
    filled = sum(1 for section in sections if section.get("entry"))
    text = definition.phrase("summary_of", language, name=name, n=len(included), s=filled)
    return Assembled(
        sections=sections,
        text=document_div(text),
        subject={"reference": f"Patient/{patient['id']}", "display": name},
        entries=[{"fullUrl": f"{base}/{_ref(resource)}", "resource": resource}
                 for resource in [patient, *included.values()]],
        withheld=total_withheld,
    )


def wrap(definition: SummaryDefinition, assembled: Assembled, language: str, base_url: str,
         now: datetime) -> SummaryDocument:
    """A new document (own ids, timestamp, Composition) around assembled content."""
    when = now.isoformat(timespec="seconds")
    composition = {
        "resourceType": "Composition",
        "id": str(uuid4()),
        "language": language,
        "text": {"status": "generated", "div": assembled.text},
        "status": "final",
        "type": {"coding": [definition.document_type]},
        "subject": assembled.subject,
        "date": when,
        "author": [{"display": "zcc-gateway"}],
        "title": definition.document_title[language],
        "section": assembled.sections,
    }
    bundle = {
        "resourceType": "Bundle",
        "id": str(uuid4()),
        "meta": {"lastUpdated": when},
        "language": language,
        "identifier": {"system": "urn:ietf:rfc:3986", "value": f"urn:uuid:{uuid4()}"},
        "type": "document",
        "timestamp": when,
        "entry": [{"fullUrl": f"{base_url.rstrip('/')}/Composition/{composition['id']}", "resource": composition},
                  *assembled.entries],
    }
    return SummaryDocument(bundle, assembled.withheld)


def _selected(section: Section, resources: list[dict[str, Any]]) -> list[dict[str, Any]]:
    newest_first = sorted(resources, key=_when, reverse=True)
    if section.latest_per_code:
        latest: dict[frozenset[str], dict[str, Any]] = {}
        for resource in newest_first:
            latest.setdefault(frozenset(coding_tokens(resource.get("code"))) or frozenset({_ref(resource)}), resource)
        newest_first = list(latest.values())
    if section.limit is not None:
        newest_first = newest_first[: section.limit]
    return newest_first


def _section(
    definition: SummaryDefinition,
    section: Section,
    language: str,
    findings: list[Finding],
    entries: list[dict[str, Any]],
    extra: list[dict[str, Any]],
    sources: Mapping[str, Any],
    supporting: Mapping[str, dict[str, Any]],
    withheld: int,
) -> dict[str, Any]:
    built: dict[str, Any] = {
        "title": section.title[language],
        "code": {"coding": [section.code], "text": section.title[language]},
        "text": {"status": "generated",
                 "div": section_div(definition, language, findings, sources, supporting, withheld, extra)},
    }
    if entries:
        built["entry"] = [{"reference": _ref(r), "display": describe(r, supporting)} for r in entries]
    else:
        code = "withheld" if withheld else "unavailable"
        display = {"withheld": "Information Withheld", "unavailable": "Unavailable"}[code]
        built["emptyReason"] = {"coding": [{"system": EMPTY_REASON, "code": code, "display": display}]}
    return built


def _general_practitioners(patient: dict[str, Any], supporting: Mapping[str, dict[str, Any]]) -> list[dict[str, Any]]:
    found = []
    for reference in patient.get("generalPractitioner") or ():
        resource = supporting.get(str((reference or {}).get("reference")))
        if resource is not None:
            found.append(resource)
    return found


def _codes(resource: dict[str, Any], supporting: Mapping[str, dict[str, Any]]) -> set[str]:
    codes = coding_tokens(resource.get("code")) | coding_tokens(resource.get("medicationCodeableConcept"))
    medication = supporting.get(str((resource.get("medicationReference") or {}).get("reference")))
    if medication is not None:
        codes |= coding_tokens(medication.get("code"))
    return codes


def _add_referenced(
    included: dict[str, dict[str, Any]],
    available: Mapping[str, dict[str, Any]],
    references: Mapping[str, set[str]],
    roots: list[str],
) -> None:
    """A document carries what its entries (and the patient) reference, as far as it is released (transitively)."""
    pending = list(roots)
    while pending:
        for reference in sorted(references.get(pending.pop(), ())):  # the same order in every process
            if reference not in included and reference in available:
                included[reference] = available[reference]
                pending.append(reference)


def _when(resource: dict[str, Any]) -> str:
    period = resource.get("period")
    if isinstance(period, dict) and period.get("start"):
        return str(period["start"])
    return onset_date(resource) or str(resource.get("issued") or (resource.get("meta") or {}).get("lastUpdated") or "")


def _ref(resource: Mapping[str, Any]) -> str:
    return f"{resource.get('resourceType')}/{resource.get('id')}"
