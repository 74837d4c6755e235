"""Terminology used in AuditEvents, in one place (IHE BALP, DICOM, HL7 v3, FHIR code systems)."""

from __future__ import annotations

from typing import Any

BALP = "https://profiles.ihe.net/ITI/BALP/StructureDefinition/IHE.BasicAudit."
_BALP_KINDS = frozenset(
    {
        "Read",
        "Query",
        "Create",
        "Update",
        "Delete",
        "PatientRead",
        "PatientQuery",
        "PatientCreate",
        "PatientUpdate",
        "PatientDelete",
        "AuthZconsent",
    }
)

DCM = "http://dicom.nema.org/resources/ontology/DCM"
REST_TYPE = {
    "system": "http://terminology.hl7.org/CodeSystem/audit-event-type",
    "code": "rest",
    "display": "Restful Operation",
}
RESTFUL_INTERACTION = "http://hl7.org/fhir/restful-interaction"
# A consent decision about access to a patient's record (see the report: to be checked against the BALP package).
CONSENT_DECISION_TYPE = {"system": DCM, "code": "110110", "display": "Patient Record"}
CONSENT_DECISION_SYSTEM = "http://zcc-gateway.nl/fhir/CodeSystem/consent-decision"

ACTIONS = {"create": "C", "read": "R", "vread": "R", "update": "U", "delete": "D"}

AGENT_SOURCE = {"coding": [{"system": DCM, "code": "110153", "display": "Source Role ID"}]}
AGENT_DESTINATION = {"coding": [{"system": DCM, "code": "110152", "display": "Destination Role ID"}]}
AGENT_USER = {
    "coding": [
        {
            "system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
            "code": "IRCP",
            "display": "information recipient",
        }
    ]
}
AGENT_ORGANISATION = {
    "coding": [
        {
            "system": "http://terminology.hl7.org/CodeSystem/v3-RoleClass",
            "code": "PROV",
            "display": "healthcare provider",
        }
    ]
}
SOURCE_APPLICATION_SERVER = {
    "system": "http://terminology.hl7.org/CodeSystem/security-source-type",
    "code": "4",
    "display": "Application Server",
}

ENTITY_PERSON = {"system": "http://terminology.hl7.org/CodeSystem/audit-entity-type", "code": "1", "display": "Person"}
ENTITY_SYSTEM_OBJECT = {
    "system": "http://terminology.hl7.org/CodeSystem/audit-entity-type",
    "code": "2",
    "display": "System Object",
}
_OBJECT_ROLE = "http://terminology.hl7.org/CodeSystem/object-role"
ROLE_PATIENT = {"system": _OBJECT_ROLE, "code": "1", "display": "Patient"}
ROLE_DOMAIN_RESOURCE = {"system": _OBJECT_ROLE, "code": "4", "display": "Domain Resource"}
ROLE_JOB = {"system": _OBJECT_ROLE, "code": "20", "display": "Job"}
ROLE_QUERY = {"system": _OBJECT_ROLE, "code": "24", "display": "Query"}
ROLE_SECURITY_RESOURCE = {"system": _OBJECT_ROLE, "code": "13", "display": "Security Resource"}

PURPOSE_SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
CLIENT_ID_SYSTEM = "urn:ietf:params:oauth:client-id"
USER_ID_SYSTEM = "http://fhir.nl/fhir/NamingSystem/uzi-nr-pers"
ROLE_SYSTEM = "http://zcc-gateway.nl/fhir/CodeSystem/user-role"
URA_SYSTEM = "http://fhir.nl/fhir/NamingSystem/ura"
ORGANIZATION_TYPE = "http://nictiz.nl/fhir/NamingSystem/organization-type"


def balp_profile(kind: str) -> str | None:
    return BALP + kind if kind in _BALP_KINDS else None


def coding(value: dict[str, Any]) -> dict[str, Any]:
    return {"coding": [value]}
