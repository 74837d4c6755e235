"""The BgZ (Basisgegevensset Zorg) as R4 searches for a zcc client: the Dutch summary is still defined as a
set of queries. `{bsn}` is filled in with the patient's BSN; every query goes through the normal search pipeline
(scopes, consent, audit). docs/summary.md lists them with examples; tests/summary runs each one."""

from __future__ import annotations

BSN_SYSTEM = "http://fhir.nl/fhir/NamingSystem/bsn"
PATIENT = f"patient.identifier={BSN_SYSTEM}|{{bsn}}"

# (what, relative search URL) — in BgZ order
BGZ_QUERIES: tuple[tuple[str, str], ...] = (
    ("Patient and general practitioner",
     f"Patient?identifier={BSN_SYSTEM}|{{bsn}}&_include=Patient:general-practitioner"),
    ("Problems", f"Condition?{PATIENT}"),
    ("Alerts", f"Flag?{PATIENT}"),
    ("Allergies", f"AllergyIntolerance?{PATIENT}"),
    ("Treatment directives", f"Consent?{PATIENT}&category=http://snomed.info/sct|129125009"),
    ("Advance directives",
     f"Consent?{PATIENT}&category=http://terminology.hl7.org/CodeSystem/consentcategorycodes|acd"),
    ("Vital signs", f"Observation?{PATIENT}&category=http://terminology.hl7.org/CodeSystem/observation-category"
                    "|vital-signs"),
    ("Blood pressure", f"Observation?{PATIENT}&code=http://loinc.org|85354-9"),
    ("Laboratory results", f"Observation?{PATIENT}&category=http://terminology.hl7.org/CodeSystem/"
                           "observation-category|laboratory"),
    ("Encounters (contacts, ambulance rides)", f"Encounter?{PATIENT}"),
    ("Procedures", f"Procedure?{PATIENT}"),
    ("Medication use", f"MedicationStatement?{PATIENT}&_include=MedicationStatement:medication"),
    ("Medication agreements", f"MedicationRequest?{PATIENT}&_include=MedicationRequest:medication"),
    ("Care team", f"CareTeam?{PATIENT}"),
    ("Contact persons", f"RelatedPerson?{PATIENT}"),
    ("Payer", f"Coverage?{PATIENT}&_include=Coverage:payor"),
    ("Provenance of the problems", f"Condition?{PATIENT}&_revinclude=Provenance:target"),
)
