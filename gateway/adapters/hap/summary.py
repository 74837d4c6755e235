"""QUPC_IN990002NL, the professionele samenvatting: PrimaryCareProvision -> patient, GP, episodes with their
problems, contacts with journal (SOAP) and diagnoses and prescriptions, measurements, alerts,
medication contra-indications and intolerances."""

from __future__ import annotations

from typing import Any

from gateway.adapters.hap import alerts, encounters, medication, observations, problems, reports
from gateway.adapters.hap.context import MappingContext
from gateway.adapters.hap.model import TranslationError
from gateway.adapters.hap.parties import patient
from gateway.adapters.hap.statements import author
from gateway.adapters.hl7v3.addresses import address
from gateway.adapters.hl7v3.codes import code_of
from gateway.adapters.hl7v3.times import period
from gateway.adapters.hl7v3.xml import Element, child, children, local_name

ALERT_CODE = ("http://loinc.org", "74018-3")


def map_summary(ctx: MappingContext, provision: Element, patient_key: str) -> None:
    ctx.visit(provision)
    ctx.take(child(provision, "id"))  # the care provision (GP registration) itself
    ctx.take(child(provision, "statusCode"))
    ctx.take(child(provision, "effectiveTime"))
    subject = ctx.visit(child(provision, "subject"))
    role = child(subject, "Patient")
    if role is None:
        raise TranslationError("required", "the professionele samenvatting names no Patient")
    patient(ctx, role, child(role, "Person"), patient_key)
    _birthplace(ctx, child(role, "Person"))
    gp, _ = author(ctx, provision)
    for index, component in enumerate(children(provision, "component7")):
        ctx.visit(component)
        _episode(ctx, child(component, "episodeOfCondition"), f"episode|{index}", gp)
    for index, component in enumerate(children(provision, "component1")):
        ctx.visit(component)
        _contact(ctx, child(component, "encounter"), f"contact|{index}")
    for index, component in enumerate(children(provision, "component2")):
        ctx.visit(component)
        found = child(component, "observation")
        if found is None:
            continue
        if code_of(child(found, "code")) == ALERT_CODE and child(found, "value") is None:
            alerts.alert(ctx, found, f"summary|alert|{index}")
        else:
            lab = child(found, "templateId") is not None and any(
                t.get("root") == "2.16.840.1.113883.2.4.3.11.60.66.10.203" for t in children(found, "templateId"))
            observations.observation(ctx, found, f"summary|observation|{index}", laboratory=lab)
    for index, component in enumerate(children(provision, "component3")):
        ctx.visit(component)
        found = child(component, "ContraIndication")
        if found is not None:
            alerts.contra_indication(ctx, found, f"summary|ContraIndication|{index}")
    for index, component in enumerate(children(provision, "component4")):
        ctx.visit(component)
        found = child(component, "ObservationIntolerance")
        if found is not None:
            alerts.allergy(ctx, found, f"summary|ObservationIntolerance|{index}")


def _birthplace(ctx: MappingContext, person: Element | None) -> None:
    """birthplace/addr -> the patient-birthPlace extension."""
    place = child(child(person, "birthplace"), "addr")
    if place is None or ctx.patient_key is None:
        return
    ctx.visit(child(person, "birthplace"))
    found = address(ctx.take(place))
    if found:
        resource = ctx.resources[ctx.patient_key].resource
        resource.setdefault("extension", []).append(
            {"url": "http://hl7.org/fhir/StructureDefinition/patient-birthPlace", "valueAddress": found})


def _episode(ctx: MappingContext, element: Element | None, fallback: str, gp: dict[str, Any] | None) -> None:
    if element is None:
        return
    ctx.visit(element)
    conditions = []
    status = child(element, "statusCode")
    for reason in children(element, "reason"):
        ctx.visit(reason)
        diagnosis = child(reason, "ObservationDx")
        if diagnosis is not None:
            concern_status = status.get("code") if status is not None else None
            conditions.append(problems.problem(ctx, diagnosis, f"{fallback}|dx", concern_status))
    for part in children(element, "component2"):
        # the episode's care period and the acts it groups (references by id to contacts in this message)
        ctx.take(part)
    problems.episode(ctx, element, fallback, conditions, gp)


def _contact(ctx: MappingContext, element: Element | None, fallback: str) -> None:
    if element is None:
        return
    contact = encounters.encounter(ctx, element, fallback)
    contact_resource = ctx.resources[ctx.key_of(contact)].resource
    when = (contact_resource.get("period") or {}).get("start")
    professional = next((p["individual"] for p in contact_resource.get("participant", [])), None)
    lines: list[tuple[str, dict[str, Any]]] = []
    for index, component in enumerate(children(element, "component")):
        ctx.visit(component)
        ctx.take(child(component, "sequenceNumber"))
        for item in component:
            if not isinstance(item.tag, str) or local_name(item) == "sequenceNumber":
                continue
            name = local_name(item)
            where = f"{fallback}|{index}"
            if name == "JournalEntry":
                kind = reports.soap_kind(ctx, item)
                if kind:
                    line = reports.soap_line(ctx, item, kind, where, when)
                    if line:
                        lines.append((kind, line))
            elif name == "ObservationDx":
                reference = problems.problem(ctx, item, where)
                contact_resource.setdefault("reasonReference", []).append(reference)
            elif name == "Prescription":
                medication.medication_agreement(ctx, item, where)
    if lines:
        title = "Contactverslag " + (period(child(element, "effectiveTime")) or {}).get("start", "")[:10]
        reports.soap_report(ctx, f"Composition|{ctx.key_of(contact)}", lines, when, professional, contact,
                            title.strip())
