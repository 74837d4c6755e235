"""Ketenzorg 3.0 query responses: an `organizer` with the patient (recordTarget) and one component per
clinical statement; the interaction decides what the statements are."""

from __future__ import annotations

from typing import Any

from gateway.adapters.hap import alerts, encounters, medication, observations, problems, reports
from gateway.adapters.hap.context import MappingContext, identifier_reference
from gateway.adapters.hap.model import TranslationError
from gateway.adapters.hap.parties import patient
from gateway.adapters.hap.statements import participant_professional, status_code
from gateway.adapters.hl7v3.codes import codeable_concept
from gateway.adapters.hl7v3.identifiers import identifier
from gateway.adapters.hl7v3.times import ts_value
from gateway.adapters.hl7v3.xml import Element, child, children, local_name


def map_organizer(ctx: MappingContext, organizer: Element, interaction: str, patient_key: str) -> None:
    if local_name(organizer) != "organizer":
        raise TranslationError("structure", f"{interaction}: expected an organizer, found {local_name(organizer)}")
    ctx.visit(organizer)
    ctx.take(child(organizer, "code"))
    ctx.take(child(organizer, "statusCode"))
    target = ctx.visit(child(organizer, "recordTarget"))
    role = child(target, "patientRole")
    if role is None:
        raise TranslationError("required", f"{interaction}: the organizer has no recordTarget/patientRole")
    patient(ctx, role, child(role, "patient"), patient_key)
    statement = STATEMENTS[interaction]
    for index, component in enumerate(children(organizer, "component")):
        ctx.visit(component)
        for item in component:
            if isinstance(item.tag, str):
                statement(ctx, item, f"{interaction}|{index}")


def _alert(ctx: MappingContext, item: Element, where: str) -> None:
    alerts.alert(ctx, item, where)


def _allergy_concern(ctx: MappingContext, act: Element, where: str) -> None:
    ctx.visit(act)
    ctx.take(child(act, "id"))
    ctx.take(child(act, "code"))
    status = status_code(ctx, act)
    for index, relation in enumerate(children(act, "entryRelationship")):
        ctx.visit(relation)
        found = child(relation, "observation")
        if found is not None:
            alerts.allergy(ctx, found, f"{where}|{index}", status)


def _contact(ctx: MappingContext, item: Element, where: str) -> None:
    encounters.encounter(ctx, item, where)


def _episode(ctx: MappingContext, act: Element, where: str) -> None:
    status = child(act, "statusCode")
    conditions = []
    for index, relation in enumerate(children(act, "entryRelationship")):
        ctx.visit(relation)
        found = child(relation, "observation")
        if found is not None:
            conditions.append(problems.problem(ctx, found, f"{where}|{index}",
                                               status.get("code") if status is not None else None))
    ctx.take(child(act, "code"))
    problems.episode(ctx, act, where, conditions)


def _measurement(ctx: MappingContext, item: Element, where: str) -> None:
    observations.observation(ctx, item, where, laboratory=False)


def _lab(ctx: MappingContext, item: Element, where: str) -> None:
    observations.observation(ctx, item, where, laboratory=True)


def _medication(ctx: MappingContext, item: Element, where: str) -> None:
    medication.medication_agreement(ctx, item, where)


def _report(ctx: MappingContext, act: Element, where: str) -> None:
    """A contact report act: S/O/E/P acts as lines, the diagnosis of the E line as problem and line code."""
    ctx.visit(act)
    key = f"Composition|{where}"
    id_element = ctx.take(child(act, "id"))
    if id_element is not None and id_element.get("root"):
        key = f"Composition|{id_element.get('root')}|{id_element.get('extension', '')}"
    ctx.take(child(act, "code"))
    ctx.take(child(act, "statusCode"))
    when = ts_value(ctx.take(child(act, "effectiveTime")))
    author = participant_professional(ctx, act, {"RESP", "AUT"})
    contact: dict[str, Any] | None = None
    lines: list[tuple[str, dict[str, Any]]] = []
    for index, relation in enumerate(children(act, "entryRelationship")):
        ctx.visit(relation)
        found_contact = child(relation, "encounter")
        if found_contact is not None:
            ctx.take(found_contact)
            contact = identifier_reference("Encounter", child(found_contact, "id"))
            continue
        line = child(relation, "act")
        if line is None:
            continue
        kind = reports.soap_kind(ctx, line)
        if kind is None:  # a REFR to the concern
            alerts.concern_reference(ctx, line)
            continue
        line_code = None
        for inner in children(line, "entryRelationship"):
            ctx.visit(inner)
            diagnosis = child(inner, "observation")
            if diagnosis is not None:
                problems.problem(ctx, diagnosis, f"{where}|{index}|dx")
                line_code = codeable_concept(child(diagnosis, "value"))
        reference = reports.soap_line(ctx, line, kind, f"{where}|{index}", when, line_code)
        if reference:
            lines.append((kind, reference))
    reports.soap_report(ctx, key, lines, when, author, contact, "Contactverslag " + (when or "")[:10],
                        identifier(id_element))


STATEMENTS = {
    "REPC_IN990121NL": _alert,
    "REPC_IN990131NL": _allergy_concern,
    "REPC_EX990131NL": _allergy_concern,
    "PRPA_IN900350NL": _contact,
    "REPC_IN990101NL": _report,
    "REPC_IN990111NL": _episode,
    "REPC_EX990111NL": _episode,
    "POOB_IN990003NL": _measurement,
    "POLB_IN364001NL03": _lab,
    "QUMA_IN991203NL02": _medication,
}
