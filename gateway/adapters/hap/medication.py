"""Medication agreements -> MedicationRequest (intent order) with an nl-core-PharmaceuticalProduct
Medication; Ketenzorg `substanceAdministration` and professionele-samenvatting `Prescription` alike."""

from __future__ import annotations

from typing import Any

from gateway.adapters.hap import profiles
from gateway.adapters.hap.context import MappingContext, identifier_reference
from gateway.adapters.hap.statements import author, identifier_list, statement_key, status_code, text
from gateway.adapters.hl7v3.codes import codeable_concept
from gateway.adapters.hl7v3.quantities import decimal, quantity
from gateway.adapters.hl7v3.times import period
from gateway.adapters.hl7v3.xml import Element, child, children, local_name, path, text_of, xsi_type

HL7NL = "{urn:hl7-nl:v3}"
STATUS = {"active": "active", "completed": "completed", "aborted": "stopped", "suspended": "on-hold",
          "nullified": "entered-in-error"}
UNITS_OF_TIME = {"s": "s", "min": "min", "h": "h", "d": "d", "wk": "wk", "mo": "mo", "a": "a"}
MEDICATION_AGREEMENT = {"system": "http://snomed.info/sct", "code": "16076005", "display": "Medicatieafspraak"}


def _medication(ctx: MappingContext, material_code: Element | None, key: str) -> dict[str, Any] | None:
    code = codeable_concept(ctx.take(material_code))
    if code is None:
        return None
    first = code["coding"][0] if code.get("coding") else {}
    medication_key = f"Medication|{first.get('system')}|{first.get('code')}" if first else f"Medication|{key}"
    resource = {"resourceType": "Medication", "meta": profiles.meta(profiles.PHARMACEUTICAL_PRODUCT), "code": code}
    ctx.add(medication_key, resource)
    return ctx.reference(medication_key, first.get("display") or code.get("text"))


def _timing(ctx: MappingContext, effective_time: Element | None) -> dict[str, Any]:
    """PIVL_TS (period or hl7nl frequency) -> Timing.repeat; IVL_TS -> boundsPeriod; SXPR_TS combines them."""
    repeat: dict[str, Any] = {}
    if effective_time is None:
        return repeat
    ctx.take(effective_time)
    kind = xsi_type(effective_time)
    parts = children(effective_time, "comp") if kind == "SXPR_TS" else [effective_time]
    for part in parts:
        part_kind = xsi_type(part)
        every = child(part, "period")
        frequency = part.find(HL7NL + "frequency")
        if every is not None and decimal(every.get("value")) is not None:
            repeat.update({"frequency": 1, "period": decimal(every.get("value")),
                           "periodUnit": UNITS_OF_TIME.get(every.get("unit") or "d", "d")})
        elif frequency is not None:
            numerator, denominator = frequency.find(HL7NL + "numerator"), frequency.find(HL7NL + "denominator")
            count = decimal(numerator.get("value") if numerator is not None else None)
            per = decimal(denominator.get("value") if denominator is not None else None)
            if count is not None and per is not None:
                repeat.update({"frequency": int(count), "period": per,
                               "periodUnit": UNITS_OF_TIME.get(denominator.get("unit") or "d", "d")})
        elif part_kind in {None, "IVL_TS"}:
            bounds = period(part)
            if bounds:
                repeat["boundsPeriod"] = bounds
    return repeat


def _dosage(ctx: MappingContext, administration: Element, instruction: str | None) -> dict[str, Any]:
    dosage: dict[str, Any] = {}
    if instruction:
        dosage["text"] = instruction
    repeat = _timing(ctx, child(administration, "effectiveTime"))
    if repeat:
        dosage["timing"] = {"repeat": repeat}
    for condition in children(administration, "precondition"):
        ctx.take(condition)
        as_needed = codeable_concept(path(condition, "criterion", "code"))
        if as_needed:
            dosage["asNeededCodeableConcept"] = as_needed
    route = codeable_concept(ctx.take(child(administration, "routeCode")))
    if route:
        dosage["route"] = route
    dose = ctx.take(child(administration, "doseQuantity"))
    if dose is not None:
        center = child(dose, "center")
        found = quantity(center) if center is not None else None
        low_high = {p: quantity(child(dose, p)) for p in ("low", "high") if child(dose, p) is not None}
        if found:
            dosage["doseAndRate"] = [{"doseQuantity": found}]
        elif low_high:
            dosage["doseAndRate"] = [{"doseRange": {k: v for k, v in low_high.items() if v}}]
    ctx.take(child(administration, "consumable"))
    return dosage


def medication_agreement(ctx: MappingContext, element: Element, fallback: str) -> dict[str, Any]:
    """Ketenzorg substanceAdministration (moodCode RQO) or Prescription -> MedicationRequest."""
    ctx.visit(element)
    key = statement_key(ctx, "MedicationRequest", element, fallback)
    resource: dict[str, Any] = {"resourceType": "MedicationRequest"}
    idents = identifier_list(element)
    if idents:
        resource["identifier"] = idents
    status = status_code(ctx, element)
    resource["status"] = STATUS.get(status or "", "unknown")
    resource["intent"] = "order"
    category = codeable_concept(ctx.take(child(element, "code")))
    resource["category"] = [category or {"coding": [MEDICATION_AGREEMENT]}]
    instruction = text(ctx, element)
    if local_name(element) == "Prescription":
        medication, dosages, dispense = _prescription(ctx, element, key)
    else:
        material = path(element, "consumable", "manufacturedProduct", "manufacturedMaterial", "code")
        ctx.visit(child(element, "consumable"))
        ctx.visit(path(element, "consumable", "manufacturedProduct"))
        ctx.visit(path(element, "consumable", "manufacturedProduct", "manufacturedMaterial"))
        medication = _medication(ctx, material, key)
        bounds = period(ctx.take(child(element, "effectiveTime")))
        dosages = []
        for relation in children(element, "entryRelationship"):
            ctx.visit(relation)
            ctx.take(child(relation, "sequenceNumber"))
            administration = child(relation, "substanceAdministration")
            if administration is not None:
                ctx.visit(administration)
                dosage = _dosage(ctx, administration, instruction)
                if bounds:
                    dosage.setdefault("timing", {}).setdefault("repeat", {})["boundsPeriod"] = bounds
                dosages.append(dosage)
            procedure = child(relation, "procedure")
            if procedure is not None:
                ctx.take(procedure)
                resource["basedOn"] = [identifier_reference("CarePlan", child(procedure, "id"))]
        if not dosages and (instruction or bounds):
            dosages = [{"text": instruction} if instruction else {}]
            if bounds:
                dosages[0]["timing"] = {"repeat": {"boundsPeriod": bounds}}
        route = codeable_concept(ctx.take(child(element, "routeCode")))
        if route:
            for dosage in dosages:
                dosage.setdefault("route", route)
        dispense = None
    if medication:
        resource["medicationReference"] = medication
    else:
        resource["medicationCodeableConcept"] = {"text": instruction or "onbekend"}
    resource["subject"] = ctx.patient_reference()
    requester, authored = author(ctx, element)
    if authored:
        resource["authoredOn"] = authored
    if requester:
        resource["requester"] = requester
    if dosages:
        resource["dosageInstruction"] = dosages
    if dispense:
        resource["dispenseRequest"] = dispense
    ctx.add(key, resource)
    return ctx.reference(key)


def _prescription(ctx: MappingContext, element: Element, key: str
                  ) -> tuple[dict[str, Any] | None, list[dict[str, Any]], dict[str, Any] | None]:
    target = ctx.visit(child(element, "directTarget"))
    prescribed = ctx.visit(child(target, "prescribedMedication"))
    kind = ctx.visit(child(prescribed, "MedicationKind"))
    medication = _medication(ctx, child(kind, "code"), key)
    dispense = None
    request = path(prescribed, "productOf", "medicationDispenseRequest")
    if request is not None:
        ctx.visit(child(prescribed, "productOf"))
        ctx.visit(request)
        ctx.take(child(request, "statusCode"))
        amount = quantity(ctx.take(child(request, "quantity")))
        if amount:
            dispense = {"quantity": amount}
    dosages = []
    for agent in children(prescribed, "therapeuticAgentOf"):
        ctx.visit(agent)
        administration = ctx.visit(child(agent, "medicationAdministrationRequest"))
        if administration is None:
            continue
        ctx.take(child(administration, "id"))
        ctx.take(child(administration, "statusCode"))
        dosages.append(_dosage(ctx, administration, text_of(ctx.take(child(administration, "text")))))
    return medication, dosages, dispense
