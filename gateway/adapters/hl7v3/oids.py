"""OID -> URI tables for identifier systems and code systems. Unknown OIDs become `urn:oid:` URIs, which is
what FHIR prescribes when no URI is registered."""

from __future__ import annotations

BSN_OID = "2.16.840.1.113883.2.4.6.3"
URA_OID = "2.16.528.1.1007.3.3"
AGB_OID = "2.16.840.1.113883.2.4.6.1"
UZI_PERSON_OID = "2.16.528.1.1007.3.1"
UZI_SYSTEM_OID = "2.16.528.1.1007.3.2"
BIG_OID = "2.16.528.1.1007.5.1"

BSN_SYSTEM = "http://fhir.nl/fhir/NamingSystem/bsn"
URA_SYSTEM = "http://fhir.nl/fhir/NamingSystem/ura"
AGB_SYSTEM = "http://fhir.nl/fhir/NamingSystem/agb-z"
UZI_PERSON_SYSTEM = "http://fhir.nl/fhir/NamingSystem/uzi-nr-pers"
UZI_SYSTEM_SYSTEM = "http://fhir.nl/fhir/NamingSystem/uzi-nr-sys"
BIG_SYSTEM = "http://fhir.nl/fhir/NamingSystem/big"

IDENTIFIER_SYSTEMS: dict[str, str] = {
    BSN_OID: BSN_SYSTEM,
    URA_OID: URA_SYSTEM,
    AGB_OID: AGB_SYSTEM,
    UZI_PERSON_OID: UZI_PERSON_SYSTEM,
    UZI_SYSTEM_OID: UZI_SYSTEM_SYSTEM,
    BIG_OID: BIG_SYSTEM,
}

SNOMED = "http://snomed.info/sct"
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
ICPC_1_NL = "http://hl7.org/fhir/sid/icpc-1-nl"
NHG_TABLE_45 = "https://referentiemodel.nhg.org/tabellen/nhg-tabel-45-diagnostische-bepalingen"
NHG_TABLE_14 = "https://referentiemodel.nhg.org/tabellen/nhg-tabel-14-contactwijze"
JOURNAL_LINE_TYPES = "http://fhir.nl/fhir/NamingSystem/journaalregeltypen"
V3_NULL_FLAVOR = "http://terminology.hl7.org/CodeSystem/v3-NullFlavor"

CODE_SYSTEMS: dict[str, str] = {
    "2.16.840.1.113883.6.96": SNOMED,
    "2.16.840.1.113883.6.1": LOINC,
    "2.16.840.1.113883.6.8": UCUM,
    "2.16.840.1.113883.2.4.4.31.1": ICPC_1_NL,
    "2.16.840.1.113883.2.4.4.30.45": NHG_TABLE_45,
    "2.16.840.1.113883.2.4.4.30.14": NHG_TABLE_14,
    "2.16.840.1.113883.2.4.4.30.49": "https://referentiemodel.nhg.org/tabellen/nhg-tabel-49-ingrepen-en-behandelingen",
    "2.16.840.1.113883.2.4.4.32.2": JOURNAL_LINE_TYPES,
    "2.16.840.1.113883.5.1": "http://terminology.hl7.org/CodeSystem/v3-AdministrativeGender",
    "2.16.840.1.113883.5.4": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
    "2.16.840.1.113883.5.6": "http://terminology.hl7.org/CodeSystem/v3-ActClass",
    "2.16.840.1.113883.5.14": "http://terminology.hl7.org/CodeSystem/v3-ActStatus",
    "2.16.840.1.113883.5.83": "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation",
    "2.16.840.1.113883.5.88": "http://terminology.hl7.org/CodeSystem/v3-ParticipationFunction",
    "2.16.840.1.113883.5.90": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
    "2.16.840.1.113883.5.110": "http://terminology.hl7.org/CodeSystem/v3-RoleClass",
    "2.16.840.1.113883.5.111": "http://terminology.hl7.org/CodeSystem/v3-RoleCode",
    "2.16.840.1.113883.5.112": "http://terminology.hl7.org/CodeSystem/v3-RouteOfAdministration",
    "2.16.840.1.113883.5.1008": V3_NULL_FLAVOR,
    "2.16.840.1.113883.5.1119": "http://terminology.hl7.org/CodeSystem/v3-AddressUse",
    # G-Standaard (Z-Index) tables and the Vektis specialism table have no registered URI: Nictiz uses
    # their urn:oid: form, which is the fallback below.
}


def oid_uri(oid: str) -> str:
    return oid if oid.startswith("urn:") else f"urn:oid:{oid}"


def identifier_system(root: str) -> str:
    return IDENTIFIER_SYSTEMS.get(root) or oid_uri(root)


def code_system(oid: str) -> str:
    return CODE_SYSTEMS.get(oid) or oid_uri(oid)
