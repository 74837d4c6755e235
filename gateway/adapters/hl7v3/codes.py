"""CD/CE/CV/CO -> Coding / CodeableConcept. Code system OIDs become URIs (SNOMED CT, LOINC, ICPC-1-NL, NHG
tables, UCUM, HL7 v3), G-Standaard and unknown systems `urn:oid:`; translations become extra codings;
a nullFlavor becomes a v3-NullFlavor coding (with originalText, if any, as text)."""

from __future__ import annotations

from typing import Any

from gateway.adapters.hl7v3.oids import V3_NULL_FLAVOR, code_system
from gateway.adapters.hl7v3.xml import Element, child, children, text_of


def coding(element: Element | None) -> dict[str, Any] | None:
    if element is None:
        return None
    code = element.get("code")
    if not code:
        return None
    result: dict[str, Any] = {}
    system = element.get("codeSystem")
    if system:
        result["system"] = code_system(system)
    version = element.get("codeSystemVersion")
    if version:
        result["version"] = version
    result["code"] = code.strip()
    display = element.get("displayName")
    if display:
        result["display"] = display
    return result


def codeable_concept(element: Element | None) -> dict[str, Any] | None:
    if element is None:
        return None
    codings: list[dict[str, Any]] = []
    first = coding(element)
    if first:
        codings.append(first)
    elif element.get("nullFlavor"):
        codings.append({"system": V3_NULL_FLAVOR, "code": element.get("nullFlavor")})
    for translation in children(element, "translation"):
        extra = coding(translation)
        if extra and extra not in codings:
            codings.append(extra)
    result: dict[str, Any] = {}
    if codings:
        result["coding"] = codings
    original = text_of(child(element, "originalText"))
    if original:
        result["text"] = original
    return result or None


def code_of(element: Element | None) -> tuple[str | None, str | None]:
    """(system URI, code) of a coded element, for look-ups."""
    found = coding(element)
    return (found.get("system"), found.get("code")) if found else (None, None)
