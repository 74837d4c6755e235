"""Alerts (nl-core-Alert, Flag), medication contra-indications (nl-core-MedicationContraIndication, Flag) and
allergies / intolerances (nl-core-AllergyIntolerance)."""

from __future__ import annotations

from typing import Any

from gateway.adapters.hap import profiles
from gateway.adapters.hap.context import MappingContext, identifier_reference, source_key
from gateway.adapters.hap.statements import author, identifier_list, statement_key, status_code, text
from gateway.adapters.hl7v3.codes import codeable_concept
from gateway.adapters.hl7v3.oids import SNOMED
from gateway.adapters.hl7v3.times import period
from gateway.adapters.hl7v3.xml import Element, child, children, path

FLAG_DETAIL = "http://hl7.org/fhir/StructureDefinition/flag-detail"
NOT_APPLICABLE = {"system": "http://terminology.hl7.org/CodeSystem/data-absent-reason", "code": "not-applicable"}
ALLERGY_CLINICAL = "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical"
ALLERGY_VERIFICATION = "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification"
# SNOMED allergy/propensity types -> AllergyIntolerance.category
# zib MedicationContraIndication: Flag.category is fixed to this SNOMED concept
CONTRA_INDICATION_CATEGORY = {"coding": [{"system": SNOMED, "code": "140401000146105",
                                          "display": "contra-indicatie met betrekking op medicatiebewaking"}]}
ALLERGY_CATEGORIES = {"419511003": "medication", "416098002": "medication", "418471000": "food",
                      "414285001": "food", "419199007": "environment", "426232007": "environment"}


def concern_reference(ctx: MappingContext, act: Element, consume: bool = True) -> dict[str, Any]:
    """A REFR act (concern) -> reference to the episode/problem of this message, or by identifier
    (`consume=False` when the reference is only used for a key and the act stays unmapped)."""
    if consume:
        ctx.take(act)
    id_element = child(act, "id")
    for resource_type in ("EpisodeOfCare", "Condition"):
        key = source_key(resource_type, id_element)
        if key and key in ctx.resources:
            return ctx.reference(key)
    return identifier_reference("EpisodeOfCare", id_element)


def alert(ctx: MappingContext, element: Element, fallback: str) -> dict[str, Any]:
    """An alert observation (LOINC 74018-3) -> Flag (nl-core-Alert)."""
    ctx.visit(element)
    # zib-Alert-2: an alert names either the alert (code) or the condition it is about (flag-detail), never both;
    # a named alert's concern link has no place in nl-core-Alert and is reported as unmapped
    named = child(element, "value") is not None
    concerns = []
    for relation in children(element, "entryRelationship") + children(element, "sourceOf"):
        ctx.visit(relation)
        act = child(relation, "act")
        if act is not None:
            concerns.append(concern_reference(ctx, act, consume=not named))
    if child(element, "id") is None and concerns:
        first = concerns[0]
        fallback = f"{fallback}|concern|{first.get('reference') or first.get('identifier', {}).get('value')}"
    key = statement_key(ctx, "Flag", element, fallback)
    resource: dict[str, Any] = {"resourceType": "Flag", "meta": profiles.meta(profiles.ALERT)}
    if concerns and not named:
        resource["extension"] = [{"url": FLAG_DETAIL, "valueReference": c} for c in concerns]
    idents = identifier_list(element)
    if idents:
        resource["identifier"] = idents
    kind = codeable_concept(ctx.take(child(element, "code")))
    value = codeable_concept(ctx.take(child(element, "value")))
    description = text(ctx, element)
    status = status_code(ctx, element)
    when = period(ctx.take(child(element, "effectiveTime")))
    resource["status"] = "inactive" if status in {"aborted", "nullified"} or (when and when.get("end")) else "active"
    if kind and (value or (concerns and not named)):
        resource["category"] = [kind]
    code = value or kind or {"text": description or "alert"}
    if concerns and not named:  # the alert is its condition: Flag.code says so (zib-Alert-2)
        code = {"coding": [NOT_APPLICABLE], "text": description or (kind or {}).get("text") or "alert"}
    return _add_flag(ctx, element, key, resource, code, description, when)


def contra_indication(ctx: MappingContext, element: Element, fallback: str) -> dict[str, Any]:
    """A ContraIndication (G-Standaard thesaurus 40) -> Flag (nl-core-MedicationContraIndication).

    Nictiz' STU3 mapping made these AllergyIntolerances; zib2020 has its own zib for them, whose code is bound
    to thesaurus 40 (nl-core-AllergyIntolerance binds `code` to the substance lists, which thesaurus 40 is not)."""
    ctx.visit(element)
    key = statement_key(ctx, "Flag", element, fallback)
    resource: dict[str, Any] = {"resourceType": "Flag", "meta": profiles.meta(profiles.MEDICATION_CONTRA_INDICATION)}
    idents = identifier_list(element)
    if idents:
        resource["identifier"] = idents
    ctx.take(child(element, "code"))  # CI: the kind of statement, implied by the profile
    status = status_code(ctx, element)
    when = period(ctx.take(child(element, "effectiveTime")))
    value = codeable_concept(ctx.take(child(element, "value")))
    description = text(ctx, element)
    # statusCode `completed` is the observation's own state (recorded), not the end of the contra-indication
    ended = status in {"aborted", "nullified"} or bool(when and when.get("end"))
    resource["status"] = "inactive" if ended else "active"
    resource["category"] = [CONTRA_INDICATION_CATEGORY]
    code = value or {"text": description or "contra-indicatie"}
    return _add_flag(ctx, element, key, resource, code, description, when)


def allergy(ctx: MappingContext, element: Element, fallback: str, concern_status: str | None = None) -> dict[str, Any]:
    """ObservationIntolerance / an allergy assertion -> AllergyIntolerance."""
    ctx.visit(element)
    key = statement_key(ctx, "AllergyIntolerance", element, fallback)
    resource: dict[str, Any] = {"resourceType": "AllergyIntolerance", "meta": profiles.meta(profiles.ALLERGY)}
    idents = identifier_list(element)
    if idents:
        resource["identifier"] = idents
    ctx.take(child(element, "code"))  # INTLRNC / CI / ASSERTION: the kind of statement, implied by the type
    status = concern_status or status_code(ctx, element)
    when = period(ctx.take(child(element, "effectiveTime")))
    value = codeable_concept(ctx.take(child(element, "value")))
    agent_code = path(element, "participant", "participantRole", "playingEntity", "code")
    agent = codeable_concept(ctx.take(agent_code))
    participant = child(element, "participant")
    ctx.visit(participant)
    ctx.visit(child(participant, "participantRole"))
    ctx.visit(path(participant, "participantRole", "playingEntity"))
    ended = bool(when and when.get("end")) or (concern_status is not None and status in {"completed", "aborted"})
    clinical = "inactive" if ended else "active"
    resource["clinicalStatus"] = {"coding": [{"system": ALLERGY_CLINICAL, "code": clinical}]}
    resource["verificationStatus"] = {"coding": [{"system": ALLERGY_VERIFICATION, "code": "confirmed"}]}
    value_code = next((c for c in (value or {}).get("coding", []) if c.get("system") == SNOMED), None)
    if value_code and value_code.get("code") in ALLERGY_CATEGORIES:
        resource["category"] = [ALLERGY_CATEGORIES[value_code["code"]]]
        code = agent or {"text": "onbekend"}
    else:
        resource["category"] = ["medication"]
        code = value or agent or {}
    description = text(ctx, element)
    if description:
        code = {**code, "text": description}
    if code:
        resource["code"] = code
    resource["patient"] = ctx.patient_reference()
    if when and when.get("start"):
        resource["onsetDateTime"] = when["start"]
    if when and when.get("end"):
        resource["lastOccurrence"] = when["end"]
    recorder, recorded = author(ctx, element)
    if recorded:
        resource["recordedDate"] = recorded
    if recorder:
        resource["recorder"] = recorder
    ctx.add(key, resource)
    return ctx.reference(key)


def _add_flag(ctx: MappingContext, element: Element, key: str, resource: dict[str, Any], code: dict[str, Any],
              description: str | None, when: dict[str, Any] | None) -> dict[str, Any]:
    """What every Flag gets: its code (with the statement's text), the patient, the period, the author."""
    if description and "text" not in code:
        code = {**code, "text": description}
    resource["code"] = code
    resource["subject"] = ctx.patient_reference()
    if when:
        resource["period"] = when
    recorder, _ = author(ctx, element)
    if recorder:
        resource["author"] = recorder
    ctx.add(key, resource)
    return ctx.reference(key)
