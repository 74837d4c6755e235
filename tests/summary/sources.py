"""A patient built from the real reference messages and fixtures of the four sources:

- HAP: every HL7v3 reference message ingested through the HAP adapter (real content: the professionele
  samenvatting of A. Direnç, BSN 555555914, plus the Ketenzorg messages for other patients);
- RAV: the ambulance ride (Encounter) of the Acute Zorg IG referral example (FHIR R4, read from the reference);
- VVT and ggz: R4 resources as the eOverdracht / BgGGZ conversion produces them (the STU3 adapters are built
  under another issue), each with its Provenance — one VVT allergy repeats a HAP allergy (same code and onset),
  one VVT problem contradicts a HAP problem (same code and onset, other clinical status), the ggz legal status
  and alert carry the PSY label and the ggz data-holder tag.
Plus the live zcc contact (an in-progress Encounter) that lets a triagist see the patient."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from gateway.ingest.actor import cli_identity
from tests.reference import REFERENCE_DIR

HAP = REFERENCE_DIR / "hap-hl7v3"
RAV_BUNDLE = REFERENCE_DIR / "rav-az-ig" / "Bundle-hg-ReferralBundle-AmbulanceHAP-referral.json"
BSN = "http://fhir.nl/fhir/NamingSystem/bsn"
DIRENC_BSN = "555555914"
HANSMAN_BSN = "012345672"
ACCEPTATIE_BSN = "999901163"
ORG_TYPE = "http://nictiz.nl/fhir/NamingSystem/organization-type"
URA = "http://fhir.nl/fhir/NamingSystem/ura"
PSY = {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "PSY"}


def hap_messages() -> list[Path]:
    return sorted((HAP / "ketenzorg").glob("*.xml")) + [HAP / "professionele-samenvatting" / "QUPC_IN990002NL_01.xml"]


def ingest_hap(ingest: Any) -> None:
    for path in hap_messages():
        result = ingest.ingest("hap", path.read_bytes(), cli_identity(), lenient=True)
        assert result.record.status == "accepted", (path.name, result.record.outcome)


def patient_id(store: Any, bsn: str) -> str:
    from gateway.summary.collect import find_patient_ids

    with store.read() as connection:
        (found,) = find_patient_ids(connection, f"{BSN}|{bsn}")
    return found


def first_of(store: Any, resource_type: str, patient: str, predicate: Any = lambda r: True) -> dict[str, Any]:
    from sqlalchemy import select

    from conformance import fhirjson
    from gateway.store.schema import resource

    with store.read() as connection:
        rows = connection.execute(select(resource.c.body).where(resource.c.type == resource_type))
        bodies = [fhirjson.loads_trusted(row.body) for row in rows if row.body]
    for body in bodies:
        if json.dumps(body).count(f"Patient/{patient}") and predicate(body):
            return body
    raise LookupError(f"no {resource_type} for {patient}")


def add_other_sources(store: Any, patient: str, hap_allergy: dict[str, Any], hap_problem: dict[str, Any]) -> dict:
    """Write the RAV, VVT and ggz resources for `patient`; returns their ids by role."""
    now = datetime.now(UTC)
    subject = {"reference": f"Patient/{patient}"}
    written: dict[str, str] = {}

    def save(body: dict[str, Any], role: str | None = None) -> str:
        with store.write() as connection:
            stored, _ = store.save(connection, body)
        if role:
            written[role] = stored.id
        return stored.id

    def organization(name: str, org_type: str, ura: str) -> str:
        return save({"resourceType": "Organization", "name": name, "identifier": [{"system": URA, "value": ura}],
                     "type": [{"coding": [{"system": ORG_TYPE, "code": org_type}]}]})

    def provenance(org: str, message: str, targets: list[str]) -> str:
        return save({
            "resourceType": "Provenance",
            "target": [subject] + [{"reference": target} for target in targets],
            "recorded": now.isoformat(timespec="seconds"),
            "agent": [{"who": {"reference": f"Organization/{org}"}}],
            "entity": [{"role": "source", "what": {"identifier": {"system": "urn:ietf:rfc:3986", "value": message}}}],
        })

    def tags(org_type: str, ura: str) -> dict[str, Any]:
        return {"tag": [{"system": ORG_TYPE, "code": org_type}, {"system": URA, "code": ura}]}

    # the GP practice that sent the professionele samenvatting is the patient's general practitioner
    hap_provenance = first_of(store, "Provenance", patient)
    with store.read() as connection:
        current = store.get(connection, "Patient", patient).resource()
    current["generalPractitioner"] = [hap_provenance["agent"][0]["who"]]
    with store.write() as connection:
        store.save(connection, current, patient)
    written["gp"] = hap_provenance["agent"][0]["who"]["reference"]

    # zcc contact: the call that is being handled now
    save({"resourceType": "Encounter", "status": "in-progress", "subject": subject,
          "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "EMER"},
          "period": {"start": (now - timedelta(minutes=5)).isoformat(timespec="seconds")}}, "contact")

    # RAV: the ride behind the AZ-IG ambulance -> HAP referral example (its reason, time and ambulance service)
    rav_bundle = json.loads(RAV_BUNDLE.read_text(encoding="utf-8"))
    parts = {e["resource"]["resourceType"] + ":" + e["resource"]["id"]: e["resource"] for e in rav_bundle["entry"]}
    referral = next(r for r in parts.values() if r["resourceType"] == "ServiceRequest")
    composition = next(r for r in parts.values() if r["resourceType"] == "Composition")
    ambulance = next(r for r in parts.values() if r["resourceType"] == "Organization" and r["id"].endswith("-rav"))
    ride = {
        "resourceType": "Encounter", "status": "finished", "subject": subject, "meta": tags("AMB", "90000401"),
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "EMER"},
        "type": [{"text": "Ambulancerit"}],
        "reasonCode": referral["reasonCode"],
        "period": {"start": composition["date"]},
    }
    rav = organization(ambulance["name"], "AMB", "90000401")
    ride_id = save(ride, "ride")
    provenance(rav, "urn:uuid:" + rav_bundle["id"], [f"Encounter/{ride_id}"])

    # VVT: the same allergy as the GP (code + onset), and a problem the GP recorded with another status
    vvt = organization("Zorgcentrum De Linde", "R5", "90000402")
    allergy = {key: value for key, value in hap_allergy.items() if key not in {"id", "meta", "identifier", "recorder"}}
    allergy["meta"] = tags("R5", "90000402")
    problem = {key: value for key, value in hap_problem.items() if key not in {"id", "meta", "identifier"}}
    problem["meta"] = tags("R5", "90000402")
    hap_status = problem["clinicalStatus"]["coding"][0]["code"]
    problem["clinicalStatus"] = {"coding": [{
        "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
        "code": "resolved" if hap_status != "resolved" else "active"}]}
    directive = {
        "resourceType": "Consent", "status": "active", "patient": subject, "meta": tags("R5", "90000402"),
        "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "treatment"}]},
        "category": [{"coding": [{"system": "http://snomed.info/sct", "code": "129125009",
                                  "display": "Procedure with explicit context"}],
                      "text": "Niet reanimeren"}],
        "dateTime": "2024-03-01", "policyRule": {"text": "Wet op de geneeskundige behandelingsovereenkomst"},
    }
    vvt_ids = [f"AllergyIntolerance/{save(allergy, 'vvt-allergy')}", f"Condition/{save(problem, 'vvt-problem')}",
               f"Consent/{save(directive, 'directive')}"]
    provenance(vvt, "urn:uuid:6f1e3c1a-eoverdracht-0001", vvt_ids)

    # ggz: a Wvggz crisis measure (legal status) and an alert, both PSY-labelled
    ggz = organization("GGZ Crisisdienst Rijnmond", "G5", "90000403")
    ggz_meta = {**tags("G5", "90000403"), "security": [PSY]}
    legal = {
        "resourceType": "Condition", "subject": subject, "meta": ggz_meta,
        "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                                       "code": "active"}]},
        "category": [{"coding": [{"system": "http://snomed.info/sct", "code": "303186005",
                                  "display": "juridische status van patiënt"}]}],
        "code": {"text": "Crisismaatregel (Wvggz)"},
        "onsetDateTime": "2025-01-10",
    }
    alert = {"resourceType": "Flag", "status": "active", "subject": subject, "meta": ggz_meta,
             "code": {"text": "Suïcidaliteit: niet alleen laten"}}
    ggz_ids = [f"Condition/{save(legal, 'legal')}", f"Flag/{save(alert, 'ggz-alert')}"]
    provenance(ggz, "urn:uuid:bgggz-0001", ggz_ids)
    return written


def add_contact(store: Any, patient: str) -> None:
    now = datetime.now(UTC)
    with store.write() as connection:
        store.save(connection, {
            "resourceType": "Encounter", "status": "in-progress", "subject": {"reference": f"Patient/{patient}"},
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "EMER"},
            "period": {"start": (now - timedelta(minutes=5)).isoformat(timespec="seconds")}})


def add_shared_provenance(store: Any, patient: str, other: str, target: str) -> str:
    """One message about two patients: its Provenance is in both compartments, so in neither summary."""
    with store.write() as connection:
        stored, _ = store.save(connection, {
            "resourceType": "Provenance", "recorded": datetime.now(UTC).isoformat(timespec="seconds"),
            "target": [{"reference": f"Patient/{patient}"}, {"reference": f"Patient/{other}"}, {"reference": target}],
            "agent": [{"who": {"display": "Regionaal uitwisselpunt"}}]})
    return stored.id
