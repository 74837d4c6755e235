"""The profiles RAV output claims, and the vital-sign codes (LOINC and IEEE 11073 MDC) ambulance monitors send,
each with the profile it selects, the LOINC code the profile requires and the UCUM unit it expects."""

from __future__ import annotations

from dataclasses import dataclass

from gateway.adapters.hl7v2.codes import MDC
from gateway.adapters.hl7v3.oids import LOINC, SNOMED

NL_CORE = "http://nictiz.nl/fhir/StructureDefinition/nl-core-"
PATIENT = NL_CORE + "Patient"
ORGANIZATION = NL_CORE + "HealthcareProvider-Organization"
PRACTITIONER = NL_CORE + "HealthProfessional-Practitioner"
PRACTITIONER_ROLE = NL_CORE + "HealthProfessional-PractitionerRole"
ENCOUNTER = NL_CORE + "Encounter"
BLOOD_PRESSURE = NL_CORE + "BloodPressure"
HEART_RATE = NL_CORE + "HeartRate"
O2_SATURATION = NL_CORE + "O2Saturation"
BODY_TEMPERATURE = NL_CORE + "BodyTemperature"
GLASGOW_COMA_SCALE = NL_CORE + "GlasgowComaScale"
RESPIRATORY_RATE = "http://hl7.org/fhir/StructureDefinition/resprate"  # no nl-core profile: the core one
ORGANIZATION_TYPE = "http://nictiz.nl/fhir/NamingSystem/organization-type"
AMBULANCE_ORGANIZATION_TYPE = "AMB"
VITAL_SIGNS_CATEGORY = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category",
                                    "code": "vital-signs", "display": "Vital Signs"}]}


@dataclass(frozen=True)
class VitalSign:
    kind: str  # the Observation it belongs to: one per kind per OBR group
    profile: str
    loinc: str
    loinc_display: str
    unit: str | None  # UCUM code the profile expects
    part: str | None = None  # blood pressure: systolic/diastolic/mean; GCS: eye/verbal/motor/total

    def codings(self) -> list[dict[str, str]]:
        """The Observation.code codings the profile requires (O2Saturation fixes two LOINC codes)."""
        main = {"system": LOINC, "code": self.loinc, "display": self.loinc_display}
        return [{"system": LOINC, "code": "2708-6"}, main] if self.profile == O2_SATURATION else [main]


_BP = (BLOOD_PRESSURE, "85354-9", "Blood pressure panel with all children optional", "mm[Hg]")
_GCS = (GLASGOW_COMA_SCALE, "35088-4", "Glasgow coma scale", None)
# (code system, code) -> what it is
VITAL_SIGNS: dict[tuple[str, str], VitalSign] = {
    (LOINC, "8480-6"): VitalSign("blood-pressure", *_BP, "systolic"),
    (LOINC, "8462-4"): VitalSign("blood-pressure", *_BP, "diastolic"),
    (LOINC, "8478-0"): VitalSign("blood-pressure", *_BP, "mean"),
    (MDC, "150021"): VitalSign("blood-pressure", *_BP, "systolic"),  # MDC_PRESS_BLD_NONINV_SYS
    (MDC, "150022"): VitalSign("blood-pressure", *_BP, "diastolic"),  # MDC_PRESS_BLD_NONINV_DIA
    (MDC, "150023"): VitalSign("blood-pressure", *_BP, "mean"),  # MDC_PRESS_BLD_NONINV_MEAN
    (LOINC, "8867-4"): VitalSign("heart-rate", HEART_RATE, "8867-4", "Heart rate", "/min"),
    (MDC, "147842"): VitalSign("heart-rate", HEART_RATE, "8867-4", "Heart rate", "/min"),  # MDC_ECG_HEART_RATE
    (LOINC, "59408-5"): VitalSign("spo2", O2_SATURATION, "59408-5",
                                  "Oxygen saturation in Arterial blood by Pulse oximetry", "%"),
    (LOINC, "2708-6"): VitalSign("spo2", O2_SATURATION, "59408-5",
                                 "Oxygen saturation in Arterial blood by Pulse oximetry", "%"),
    (MDC, "150456"): VitalSign("spo2", O2_SATURATION, "59408-5",  # MDC_PULS_OXIM_SAT_O2
                               "Oxygen saturation in Arterial blood by Pulse oximetry", "%"),
    (LOINC, "8310-5"): VitalSign("temperature", BODY_TEMPERATURE, "8310-5", "Body temperature", "Cel"),
    (MDC, "150364"): VitalSign("temperature", BODY_TEMPERATURE, "8310-5", "Body temperature", "Cel"),  # MDC_TEMP_BODY
    (LOINC, "9279-1"): VitalSign("respiratory-rate", RESPIRATORY_RATE, "9279-1", "Respiratory rate", "/min"),
    # MDC_RESP_RATE
    (MDC, "151562"): VitalSign("respiratory-rate", RESPIRATORY_RATE, "9279-1", "Respiratory rate", "/min"),
    (LOINC, "9267-6"): VitalSign("gcs", *_GCS, "eye"),
    (LOINC, "9270-0"): VitalSign("gcs", *_GCS, "verbal"),
    (LOINC, "9268-4"): VitalSign("gcs", *_GCS, "motor"),
    (LOINC, "9269-2"): VitalSign("gcs", *_GCS, "total"),
}
# IEEE 11073 MDC units (and common spellings) -> UCUM
UNITS = {"266016": "mm[Hg]", "MDC_DIM_MMHG": "mm[Hg]", "mmHg": "mm[Hg]", "262688": "%", "MDC_DIM_PERCENT": "%",
         "264864": "/min", "MDC_DIM_BEAT_PER_MIN": "/min", "bpm": "/min", "{beats}/min": "/min", "268192": "Cel",
         "MDC_DIM_DEGC": "Cel", "°C": "Cel", "degC": "Cel", "264928": "/min", "MDC_DIM_RESP_PER_MIN": "/min",
         "{breaths}/min": "/min"}
# GCS component -> (SNOMED code of the component in nl-core-GlasgowComaScale, answer prefix, answer code system)
GCS_COMPONENTS = {
    "eye": ("281395000", "E", "urn:oid:2.16.840.1.113883.2.4.3.11.60.40.4.2.1", range(1, 5)),
    "motor": ("281396004", "M", "urn:oid:2.16.840.1.113883.2.4.3.11.60.40.4.2.2", range(1, 7)),
    "verbal": ("281397008", "V", "urn:oid:2.16.840.1.113883.2.4.3.11.60.40.4.2.3", range(1, 6)),
}
# blood pressure part -> the component code nl-core-BloodPressure slices on
BLOOD_PRESSURE_COMPONENTS = {"systolic": {"system": LOINC, "code": "8480-6", "display": "Systolic blood pressure"},
                             "diastolic": {"system": LOINC, "code": "8462-4", "display": "Diastolic blood pressure"},
                             "mean": {"system": SNOMED, "code": "6797001"}}
