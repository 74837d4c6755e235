"""Measurements and lab results -> Observation: a vital-sign profile chosen by code, nl-core-
LaboratoryTestResult for lab results, otherwise a plain Observation (no profile claimed)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from gateway.adapters.hap import profiles
from gateway.adapters.hap.alerts import concern_reference
from gateway.adapters.hap.context import MappingContext, identifier_reference
from gateway.adapters.hap.statements import identifier_list, participant_professional, statement_key, status_code
from gateway.adapters.hl7v3.codes import code_of, codeable_concept
from gateway.adapters.hl7v3.nullflavor import data_absent_reason
from gateway.adapters.hl7v3.oids import LOINC
from gateway.adapters.hl7v3.quantities import decimal, quantity
from gateway.adapters.hl7v3.times import effective
from gateway.adapters.hl7v3.xml import Element, child, children, path, text_of, xsi_type

CONTEXT_EPISODE = "http://nictiz.nl/fhir/StructureDefinition/ext-Context-EpisodeOfCare"
STATUS = {"completed": "final", "active": "preliminary", "aborted": "cancelled", "nullified": "entered-in-error"}


def observation(ctx: MappingContext, element: Element, fallback: str, laboratory: bool) -> dict[str, Any]:
    ctx.visit(element)
    key = statement_key(ctx, "Observation", element, fallback)
    resource: dict[str, Any] = {"resourceType": "Observation"}
    code_element = ctx.take(child(element, "code"))
    code = codeable_concept(code_element) or {"text": "onbekend"}
    vital = profiles.VITAL_SIGNS.get(code_of(code_element))  # type: ignore[arg-type]
    if vital:
        resource["meta"] = profiles.meta(vital[0])
        resource["category"] = [profiles.VITAL_SIGNS_CATEGORY]
        loinc = {"system": LOINC, "code": vital[1], "display": vital[2]}
        for required in [*profiles.PATTERN_CODINGS.get(vital[0], []), loinc][::-1]:
            if not any(c.get("system") == required["system"] and c.get("code") == required["code"]
                       for c in code.get("coding", [])):
                code = {**code, "coding": [required, *code.get("coding", [])]}
    elif laboratory:
        resource["meta"] = profiles.meta(profiles.LABORATORY_TEST_RESULT)
        resource["category"] = [profiles.LABORATORY_CATEGORY]
    idents = identifier_list(element)
    if idents:
        resource["identifier"] = idents
    status = status_code(ctx, element)
    resource["status"] = STATUS.get(status or "completed", "final")
    resource = {"resourceType": "Observation", **{k: v for k, v in resource.items() if k != "resourceType"}}
    resource["code"] = code
    resource["subject"] = ctx.patient_reference()
    _links(ctx, element, resource)
    when = effective(ctx.take(child(element, "effectiveTime")))
    if when:
        resource[when[0]] = when[1]
    performer = participant_professional(ctx, element, {"RESP", "PRF", "AUT"})
    if performer:
        resource["performer"] = [performer]
    _value(ctx, element, resource)
    if vital and vital[3] and "valueQuantity" in resource:
        resource["valueQuantity"] = _in_unit(resource["valueQuantity"], vital[3])
    interpretations = [c for c in (codeable_concept(ctx.take(e)) for e in children(element, "interpretationCode")) if c]
    if interpretations:
        resource["interpretation"] = interpretations
    ranges = [r for r in (_reference_range(ctx, e) for e in children(element, "referenceRange")) if r]
    if ranges:
        resource["referenceRange"] = ranges
    ctx.add(key, resource)
    return ctx.reference(key)


def _in_unit(value: dict[str, Any], unit: str) -> dict[str, Any]:
    """A quantity in the UCUM unit the profile requires, when a conversion is known (1.72 m -> 172 cm)."""
    shift = profiles.UNIT_SHIFTS.get((value.get("code", ""), unit))
    if shift is None or not isinstance(value.get("value"), Decimal):
        return value
    return {**value, "value": value["value"].scaleb(shift), "unit": unit, "code": unit}


def _value(ctx: MappingContext, element: Element, resource: dict[str, Any]) -> None:
    value = ctx.take(child(element, "value"))
    if element.get("nullFlavor") and value is None:
        resource["dataAbsentReason"] = {"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/data-absent-reason",
            "code": data_absent_reason(element.get("nullFlavor", ""))["valueCode"]}]}
        return
    if value is None:
        return
    kind = xsi_type(value) or "PQ"
    if value.get("nullFlavor"):
        resource["dataAbsentReason"] = {"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/data-absent-reason",
            "code": data_absent_reason(value.get("nullFlavor", ""))["valueCode"]}]}
    elif kind in {"PQ", "IVL_PQ"} and value.get("value"):
        found = quantity(value)
        if found:
            resource["valueQuantity"] = found
    elif kind in {"CD", "CE", "CV", "CO"}:
        found = codeable_concept(value)
        if found:
            resource["valueCodeableConcept"] = found
    elif kind == "BL" and value.get("value") in {"true", "false"}:
        resource["valueBoolean"] = value.get("value") == "true"
    elif kind == "INT" and value.get("value"):
        resource["valueInteger"] = int(value.get("value", "0"))
    elif kind in {"REAL", "MO"} and decimal(value.get("value")) is not None:
        resource["valueQuantity"] = {"value": decimal(value.get("value"))}
    elif text_of(value):
        resource["valueString"] = text_of(value)
    else:
        ctx.warn(f"observation value of type {kind} is not mapped", "not-supported")


def _reference_range(ctx: MappingContext, element: Element) -> dict[str, Any] | None:
    ctx.visit(element)
    observation_range = ctx.visit(child(element, "observationRange"))
    value = ctx.take(child(observation_range, "value"))
    ctx.take(child(observation_range, "interpretationCode"))  # always N(ormal) for a reference range
    result: dict[str, Any] = {}
    for part in ("low", "high"):
        bound = quantity(child(value, part))
        if bound and "value" in bound:
            result[part] = bound
    text = text_of(ctx.take(path(observation_range, "text")))
    if text:
        result["text"] = text
    return result or None


def _links(ctx: MappingContext, element: Element, resource: dict[str, Any]) -> None:
    """REFR relations: the concern (episode) and the contact the measurement belongs to."""
    for relation in children(element, "entryRelationship") + children(element, "sourceOf"):
        ctx.visit(relation)
        act, contact = child(relation, "act"), child(relation, "encounter")
        if act is not None:
            resource.setdefault("extension", []).append(
                {"url": CONTEXT_EPISODE, "valueReference": concern_reference(ctx, act)})
        if contact is not None:
            ctx.take(contact)
            resource["encounter"] = identifier_reference("Encounter", child(contact, "id"))
