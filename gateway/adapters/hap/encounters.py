"""Contacts (nl-core-Encounter)."""

from __future__ import annotations

from typing import Any

from gateway.adapters.hap import profiles
from gateway.adapters.hap.alerts import concern_reference
from gateway.adapters.hap.context import MappingContext
from gateway.adapters.hap.statements import (
    author,
    identifier_list,
    participant_professional,
    statement_key,
    status_code,
)
from gateway.adapters.hl7v3.codes import codeable_concept
from gateway.adapters.hl7v3.times import period
from gateway.adapters.hl7v3.xml import Element, child, children

ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
PARTICIPATION = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
# Primary-care contacts are ambulatory; the NHG contact type (consult, visite, telephone) is kept in `type`.
AMBULATORY = {"system": ACT_CODE, "code": "AMB", "display": "ambulatory"}


def encounter(ctx: MappingContext, element: Element, fallback: str) -> dict[str, Any]:
    ctx.visit(element)
    key = statement_key(ctx, "Encounter", element, fallback)
    resource: dict[str, Any] = {"resourceType": "Encounter", "meta": profiles.meta(profiles.ENCOUNTER)}
    idents = identifier_list(element)
    if idents:
        resource["identifier"] = idents
    status = status_code(ctx, element)
    when = period(ctx.take(child(element, "effectiveTime")))
    resource["status"] = "finished" if status in {None, "completed"} and when and when.get("end") else (
        "in-progress" if status == "active" else "finished" if status == "completed" else "unknown")
    resource["class"] = AMBULATORY
    kind = codeable_concept(ctx.take(child(element, "code")))
    if kind:
        resource["type"] = [kind]
    resource["subject"] = ctx.patient_reference()
    participants = []
    professional, _ = author(ctx, element)
    if professional is None:
        professional = participant_professional(ctx, element, {"PRF", "RESP"})
    if professional:
        participants.append({
            "type": [{"coding": [{"system": PARTICIPATION, "code": "PPRF", "display": "primary performer"}]}],
            "individual": professional,
        })
    if participants:
        resource["participant"] = participants
    if when:
        resource["period"] = when
    reasons = []
    for relation in children(element, "entryRelationship"):
        ctx.visit(relation)
        act = child(relation, "act")
        if act is not None:
            reasons.append(concern_reference(ctx, act))
    if reasons:
        resource["episodeOfCare"] = [r for r in reasons if r.get("type") == "EpisodeOfCare" or "identifier" in r]
        problems = [r for r in reasons if r.get("type") == "Condition"]
        if problems:
            resource["reasonReference"] = problems
        if not resource["episodeOfCare"]:
            del resource["episodeOfCare"]
    ctx.add(key, resource)
    return ctx.reference(key)
