"""HL7v2 coding system names (table 0396, MSH/OBX CE.3 and CWE.3) -> FHIR code system URIs, and CE/CWE ->
CodeableConcept. An unknown name keeps its code and text, and is reported, never guessed."""

from __future__ import annotations

import re
from typing import Any

from gateway.adapters.hl7v2.message import Repetition, component
from gateway.adapters.hl7v3.oids import LOINC, SNOMED, UCUM

MDC = "urn:iso:std:iso:11073:10101"
CODE_SYSTEMS = {"LN": LOINC, "SCT": SNOMED, "SNM": SNOMED, "SNOMED": SNOMED, "UCUM": UCUM, "MDC": MDC,
                "ISO+": UCUM}
_V2_TABLE = re.compile(r"HL7(\d{4})")


def code_system_uri(name: str) -> str | None:
    name = name.strip()
    if name in CODE_SYSTEMS:
        return CODE_SYSTEMS[name]
    table = _V2_TABLE.fullmatch(name)
    if table:
        return f"http://terminology.hl7.org/CodeSystem/v2-{table.group(1)}"
    return None


def coding(code: str, display: str, system_name: str) -> tuple[dict[str, Any] | None, str | None]:
    """(Coding or None, the system name when it is not known)."""
    if not code:
        return None, None
    result: dict[str, Any] = {}
    system = code_system_uri(system_name)
    if system:
        result["system"] = system
    result["code"] = code
    if display:
        result["display"] = display
    return result, (system_name or "(none)") if system is None else None


def codeable_concept(rep: Repetition) -> tuple[dict[str, Any] | None, list[str]]:
    """CE/CWE: the primary (components 1-3) and alternate (4-6) coding, text from component 2 (or 9 of CWE).
    Returns the concept and the coding system names that are not known."""
    codings, unknown = [], []
    for start in (1, 4):
        found, unknown_name = coding(component(rep, start), component(rep, start + 1), component(rep, start + 2))
        if found:
            codings.append(found)
        if unknown_name:
            unknown.append(unknown_name)
    text = component(rep, 9) or component(rep, 2)
    if not codings and not text:
        return None, []
    concept: dict[str, Any] = {}
    if codings:
        concept["coding"] = codings
    if text and not codings:
        concept["text"] = text
    return concept, unknown
