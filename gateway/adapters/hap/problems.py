"""Problems (nl-core-Problem), concerns/episodes (nl-core-EpisodeOfCare)."""

from __future__ import annotations

from typing import Any

from gateway.adapters.hap import profiles
from gateway.adapters.hap.context import MappingContext
from gateway.adapters.hap.statements import author, identifier_list, statement_key, status_code, text
from gateway.adapters.hl7v3.codes import codeable_concept, coding
from gateway.adapters.hl7v3.oids import SNOMED
from gateway.adapters.hl7v3.times import period
from gateway.adapters.hl7v3.xml import Element, child

CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
VERIFICATION = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
# zib VerificatieStatusCodelijst code for `confirmed` (Nictiz ConceptMap
# VerificatieStatusCodelijst-to-ConditionVerificationStatus); nl-core-Problem requires it next to the FHIR code
CONFIRMED_PRESENT = {"system": SNOMED, "code": "410605003", "display": "Confirmed present"}
EPISODE_NAME = "http://nictiz.nl/fhir/StructureDefinition/ext-EpisodeOfCare.EpisodeOfCareName"
DIAGNOSIS = {"system": SNOMED, "code": "282291009", "display": "Diagnose"}
# v3 act/concern status -> Condition.clinicalStatus and EpisodeOfCare.status
CLINICAL_STATUS = {"active": "active", "completed": "inactive", "suspended": "inactive", "aborted": "inactive"}
EPISODE_STATUS = {"active": "active", "completed": "finished", "suspended": "onhold", "aborted": "cancelled",
                  "nullified": "entered-in-error"}


def problem(ctx: MappingContext, element: Element, fallback: str, concern_status: str | None = None) -> dict[str, Any]:
    """ObservationDx / a diagnosis observation -> Condition (nl-core-Problem); returns its reference."""
    ctx.visit(element)
    key = statement_key(ctx, "Condition", element, fallback)
    resource: dict[str, Any] = {"resourceType": "Condition", "meta": profiles.meta(profiles.PROBLEM)}
    idents = identifier_list(element)
    if idents:
        resource["identifier"] = idents
    status = concern_status or status_code(ctx, element)
    clinical = CLINICAL_STATUS.get(status or "", "active")
    kind = ctx.take(child(element, "code"))
    category = coding(kind)
    if category and category.get("code") in {"DISDX", "282291009"}:
        category = DIAGNOSIS
    if category:
        resource["category"] = [{"coding": [category]}]
    code = codeable_concept(ctx.take(child(element, "value")))
    description = text(ctx, element)
    if code is None and description:
        code = {"text": description}
    elif code is not None and description:
        code["text"] = description
    if code:
        resource["code"] = code
    resource["subject"] = ctx.patient_reference()
    when = period(ctx.take(child(element, "effectiveTime")))
    if when and when.get("start"):
        resource["onsetDateTime"] = when["start"]
    if when and when.get("end") and when.get("end") != when.get("start"):
        resource["abatementDateTime"] = when["end"]
        clinical = "inactive" if clinical == "active" else clinical
    resource["clinicalStatus"] = {"coding": [{"system": CLINICAL, "code": clinical}]}
    resource["verificationStatus"] = {"coding": [CONFIRMED_PRESENT, {"system": VERIFICATION, "code": "confirmed"}]}
    recorder, recorded = author(ctx, element)
    if recorder:
        resource["recorder"] = recorder
    if recorded:
        resource["recordedDate"] = recorded
    resource = _ordered(resource)
    ctx.add(key, resource)
    display = (code or {}).get("text") or next((c.get("display") for c in (code or {}).get("coding", [])), None)
    return ctx.reference(key, display)


def _ordered(resource: dict[str, Any]) -> dict[str, Any]:
    order = ["resourceType", "meta", "identifier", "clinicalStatus", "verificationStatus", "category", "code",
             "subject", "onsetDateTime", "abatementDateTime", "recordedDate", "recorder"]
    return {k: resource[k] for k in order if k in resource} | {k: v for k, v in resource.items() if k not in order}


def episode(ctx: MappingContext, element: Element, fallback: str, conditions: list[dict[str, Any]],
            care_manager: dict[str, Any] | None = None) -> dict[str, Any]:
    """episodeOfCondition / a concern act -> EpisodeOfCare (nl-core-EpisodeOfCare)."""
    ctx.visit(element)
    key = statement_key(ctx, "EpisodeOfCare", element, fallback)
    resource: dict[str, Any] = {"resourceType": "EpisodeOfCare", "meta": profiles.meta(profiles.EPISODE_OF_CARE)}
    title = text(ctx, element)
    if title:
        resource["extension"] = [{"url": EPISODE_NAME, "valueString": title}]
    idents = identifier_list(element)
    if idents:
        resource["identifier"] = idents
    status = status_code(ctx, element)
    when = period(ctx.take(child(element, "effectiveTime")))
    resource["status"] = EPISODE_STATUS.get(status or "", "active")
    if conditions:
        resource["diagnosis"] = [{"condition": c} for c in conditions]
    resource["patient"] = ctx.patient_reference()
    if when:
        resource["period"] = when
    if care_manager:
        resource["careManager"] = care_manager
    ctx.add(key, resource)
    return ctx.reference(key, title)
