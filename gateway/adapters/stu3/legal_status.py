"""zib2017 Patient LegalStatus -> zib2020 LegalSituation LegalStatus.

zib2017 (BgGGZ 2.x) carries the patient's legal status as an extension on the Patient
(`zib-patient-legalstatus`, a CodeableConcept); zib2020 models it as a Condition of its own
(nl-core-LegalSituation-LegalStatus: category SNOMED 303186005, `code` bound required to the
JuridischeStatusCodelijst, subject the patient). The codes are mapped by the ConceptMap in
profiles/nictiz/legal-status (the data, not a copy of it). Only targets with equivalence `equal` or
`equivalent` are converted: a legal status decides whether a patient may be held, so an approximate code is
never written. Everything else - a code the map does not know, an `unmatched` or inexact target, other codings
of the concept, extensions on the value - is reported as unmapped with the reason, never dropped silently."""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

CONCEPT_MAP = (Path(__file__).resolve().parents[3] / "profiles" / "nictiz" / "legal-status"
               / "ConceptMap-zib2017-legalstatus-to-zib2020.json")
PROFILE = "http://nictiz.nl/fhir/StructureDefinition/nl-core-LegalSituation-LegalStatus"
CATEGORY = {"system": "http://snomed.info/sct", "code": "303186005", "display": "juridische status van patiënt"}
FAITHFUL = ("equal", "equivalent")

Lost = Callable[[str, Any, str], None]


@cache
def concept_map() -> dict[str, Any]:
    return json.loads(CONCEPT_MAP.read_text(encoding="utf-8"))


def _groups() -> dict[str, dict[str, Any]]:
    return {group["source"]: group for group in concept_map()["group"]}


def map_code(system: str, code: str) -> tuple[dict[str, Any] | None, str]:
    """The target Coding of a source (system, code), or None with the reason it is not converted."""
    group = _groups().get(system)
    if group is None:
        return None, f"code system {system} is not a source of ConceptMap {concept_map()['url']}"
    element = next((e for e in group["element"] if e["code"] == code), None)
    if element is None:
        return None, f"code {code} of {system} is not in ConceptMap {concept_map()['url']}"
    for target in element.get("target", []):
        if target.get("equivalence") in FAITHFUL and target.get("code"):
            return {"system": group["target"], "code": target["code"], "display": target["display"]}, ""
    equivalences = ", ".join(t.get("equivalence", "?") for t in element.get("target", [])) or "no target"
    comment = next((t["comment"] for t in element.get("target", []) if t.get("comment")), "")
    why = f"no faithful zib2020 legal status for {system}|{code} ({equivalences})"
    return None, f"{why}: {comment}" if comment else why


def legal_status_condition(extension: dict[str, Any], subject: str, where: str, lost: Lost) -> dict[str, Any] | None:
    """The nl-core-LegalSituation-LegalStatus Condition for the value of a `zib-patient-legalstatus` extension
    about the patient `subject` (a reference), or None (and the reason reported) when no code maps faithfully."""
    concept = extension.get("valueCodeableConcept")
    if not isinstance(concept, dict):
        lost(where, extension, "a legal status without a valueCodeableConcept")
        return None
    codings = [c for c in concept.get("coding", []) if isinstance(c, dict)]
    target: dict[str, Any] | None = None
    sources: list[dict[str, Any]] = []  # the sender's codings that map to the target: kept beside it
    reasons: list[tuple[int, str]] = []
    for index, coding in enumerate(codings):
        mapped, why = map_code(str(coding.get("system", "")), str(coding.get("code", "")))
        if mapped is None:
            reasons.append((index, why))
        elif target is None or mapped == target:
            target = mapped
            if (coding.get("system"), coding.get("code")) != (mapped["system"], mapped["code"]):
                sources.append(coding)
        else:
            reasons.append((index, f"a second, different legal status ({mapped['code']}); zib2020 has one code"))
    if target is None:
        lost(where, extension, "; ".join(why for _, why in reasons) or "a legal status without a coding")
        return None
    for index, why in reasons:
        lost(f"{where}.valueCodeableConcept.coding[{index}]", codings[index], why)
    for key, value in extension.items():
        if key not in ("url", "valueCodeableConcept", "fhir_comments"):  # XML comments are not content
            lost(f"{where}.{key}", value, "not carried by the legal status Condition")
    for key, value in concept.items():
        if key not in ("coding", "text", "fhir_comments"):
            lost(f"{where}.valueCodeableConcept.{key}", value, "not carried by the legal status Condition")
    code: dict[str, Any] = {"coding": [target, *sources]}
    if isinstance(concept.get("text"), str):
        code["text"] = concept["text"]
    return {"resourceType": "Condition", "meta": {"profile": [PROFILE]}, "category": [{"coding": [dict(CATEGORY)]}],
            "code": code, "subject": {"reference": subject, "type": "Patient"}}
