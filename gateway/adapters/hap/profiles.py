"""The nl-core profiles the HAP adapter claims, and the measurement codes that select a vital-sign profile."""

from __future__ import annotations

from gateway.adapters.hl7v3.oids import LOINC, NHG_TABLE_45, UCUM

NL_CORE = "http://nictiz.nl/fhir/StructureDefinition/nl-core-"
PATIENT = NL_CORE + "Patient"
PRACTITIONER = NL_CORE + "HealthProfessional-Practitioner"
PRACTITIONER_ROLE = NL_CORE + "HealthProfessional-PractitionerRole"
ORGANIZATION = NL_CORE + "HealthcareProvider-Organization"
ENCOUNTER = NL_CORE + "Encounter"
EPISODE_OF_CARE = NL_CORE + "EpisodeOfCare"
PROBLEM = NL_CORE + "Problem"
ALERT = NL_CORE + "Alert"
ALLERGY = NL_CORE + "AllergyIntolerance"
MEDICATION_CONTRA_INDICATION = NL_CORE + "MedicationContraIndication"
SOAP_REPORT = NL_CORE + "SOAPReport"
SOAP_LINE = NL_CORE + "SOAPReport.SOAPLine"
LABORATORY_TEST_RESULT = NL_CORE + "LaboratoryTestResult"
PHARMACEUTICAL_PRODUCT = NL_CORE + "PharmaceuticalProduct"


def meta(profile: str) -> dict[str, list[str]]:
    return {"profile": [profile]}


O2_PULSE_OXIMETRY = "Oxygen saturation in Arterial blood by Pulse oximetry"
# NHG table 45 code -> (profile, LOINC code, LOINC display, UCUM unit the profile expects or None)
VITAL_SIGNS: dict[tuple[str, str], tuple[str, str, str, str | None]] = {
    (NHG_TABLE_45, "1915"): (NL_CORE + "BodyTemperature", "8310-5", "Body temperature", "Cel"),
    (NHG_TABLE_45, "1913"): (NL_CORE + "BodyTemperature", "8310-5", "Body temperature", "Cel"),
    (NHG_TABLE_45, "357"): (NL_CORE + "BodyWeight", "29463-7", "Body weight", None),
    (NHG_TABLE_45, "560"): (NL_CORE + "BodyHeight", "8302-2", "Body height", "cm"),
    (NHG_TABLE_45, "2680"): (NL_CORE + "O2Saturation", "59408-5", O2_PULSE_OXIMETRY, "%"),
    (LOINC, "8310-5"): (NL_CORE + "BodyTemperature", "8310-5", "Body temperature", "Cel"),
    (LOINC, "29463-7"): (NL_CORE + "BodyWeight", "29463-7", "Body weight", None),
    (LOINC, "8302-2"): (NL_CORE + "BodyHeight", "8302-2", "Body height", "cm"),
    (LOINC, "59408-5"): (NL_CORE + "O2Saturation", "59408-5", O2_PULSE_OXIMETRY, "%"),
}
# Codings a profile's `code` pattern requires next to the measurement's own LOINC code
PATTERN_CODINGS: dict[str, list[dict[str, str]]] = {
    NL_CORE + "O2Saturation": [{"system": LOINC, "code": "2708-6", "display": "Oxygen saturation in Arterial blood"}],
}
# Unit conversions (as powers of ten) to the UCUM unit a profile's required binding allows (ucum-bodylength: cm)
UNIT_SHIFTS: dict[tuple[str, str], int] = {("m", "cm"): 2, ("mm", "cm"): -1}
VITAL_SIGNS_CATEGORY = {
    "coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "vital-signs",
                "display": "Vital Signs"}]
}
LABORATORY_CATEGORY = {
    "coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "laboratory",
                "display": "Laboratory"}]
}
UCUM_SYSTEM = UCUM
