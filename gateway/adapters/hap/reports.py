"""Contact reports / journal entries (nl-core-SOAPReport Composition with nl-core-SOAPReport.SOAPLine
Observations, one per S, O, E or P line)."""

from __future__ import annotations

from typing import Any

from gateway.adapters.hap import profiles
from gateway.adapters.hap.context import MappingContext
from gateway.adapters.hap.statements import statement_key, text
from gateway.adapters.hl7v3.codes import code_of, coding
from gateway.adapters.hl7v3.oids import JOURNAL_LINE_TYPES, LOINC, SNOMED
from gateway.adapters.hl7v3.xml import Element, child, text_of

SOAP_LINE_CODE = "http://nictiz.nl/fhir/StructureDefinition/ext-SOAPReport.SOAPLineCode"
REPORT_TYPE = {"system": SNOMED, "code": "11591000146107", "display": "patiëntcontactverslag"}
SOAP = {
    "S": {"system": SNOMED, "code": "255362007", "display": "Subjective"},
    "O": {"system": SNOMED, "code": "260224007", "display": "Objective"},
    "E": {"system": SNOMED, "code": "129265001", "display": "Evaluation"},
    "P": {"system": SNOMED, "code": "129271007", "display": "Plan"},  # SOEPRegelNaamCodelijst 'beleid'
}
LINE_TYPES = {
    (JOURNAL_LINE_TYPES, "S"): "S", (JOURNAL_LINE_TYPES, "O"): "O", (JOURNAL_LINE_TYPES, "E"): "E",
    (JOURNAL_LINE_TYPES, "P"): "P", (LOINC, "61150-9"): "S", (LOINC, "61149-1"): "O", (LOINC, "51848-0"): "E",
    (LOINC, "18776-5"): "P",
}


def soap_kind(ctx: MappingContext, element: Element) -> str | None:
    return LINE_TYPES.get(code_of(ctx.take(child(element, "code"))))  # type: ignore[arg-type]


def _source_coding(element: Element) -> dict[str, Any] | None:
    found = coding(child(element, "code"))
    return {k: v for k, v in found.items() if k != "display"} if found else None


def soap_line(ctx: MappingContext, element: Element, kind: str, fallback: str, when: str | None,
              line_code: dict[str, Any] | None = None) -> dict[str, Any] | None:
    """A JournalEntry (value) or a Ketenzorg S/O/E/P act (text) -> SOAPLine Observation."""
    ctx.visit(element)
    content = text_of(ctx.take(child(element, "value"))) or text(ctx, element)
    ctx.take(child(element, "statusCode"))
    if not content:
        return None
    key = statement_key(ctx, "Observation", element, fallback)
    resource: dict[str, Any] = {"resourceType": "Observation", "meta": profiles.meta(profiles.SOAP_LINE)}
    if line_code:
        resource["extension"] = [{"url": SOAP_LINE_CODE, "valueCodeableConcept": line_code}]
    resource["status"] = "final"
    source = _source_coding(element)  # the journal line type as sent, next to the SNOMED SOAP code
    resource["code"] = {"coding": [SOAP[kind], *([source] if source else [])]}
    resource["subject"] = ctx.patient_reference()
    if when:
        resource["effectiveDateTime"] = when
    resource["valueString"] = content
    ctx.add(key, resource)
    return ctx.reference(key)


def soap_report(ctx: MappingContext, key: str, lines: list[tuple[str, dict[str, Any]]], when: str | None,
                author: dict[str, Any] | None, encounter: dict[str, Any] | None, title: str,
                identifier: dict[str, Any] | None = None) -> dict[str, Any]:
    """The Composition that groups the lines of one contact, in S, O, E, P order."""
    resource: dict[str, Any] = {
        "resourceType": "Composition", "meta": profiles.meta(profiles.SOAP_REPORT),
        **({"identifier": identifier} if identifier else {}), "status": "final",
        "type": {"coding": [REPORT_TYPE]}, "subject": ctx.patient_reference(),
    }
    if encounter:
        resource["encounter"] = encounter
    resource["date"] = when or "unknown"
    resource["author"] = [author or {"display": "onbekend"}]
    resource["title"] = title
    sections = []
    for kind in "SOEP":
        entries = [ref for line_kind, ref in lines if line_kind == kind]
        if entries:
            sections.append({"code": {"coding": [SOAP[kind]]}, "entry": entries})
    if sections:
        resource["section"] = sections
    if not when:
        del resource["date"]
    ctx.add(key, resource)
    return ctx.reference(key)
