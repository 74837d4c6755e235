"""The HAP adapter against Nictiz' own extractions: every clinical statement of each Ketenzorg message's
ADA content appears as a resource (counts, identifiers, codes, values with units), and the professionele
samenvatting gives the same numbers and codes as Nictiz' STU3 bundle."""

from __future__ import annotations

from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from gateway.adapters.hap import translate_hap
from gateway.adapters.hl7v3.oids import code_system
from tests.reference import REFERENCE_DIR, requires_reference

REFERENCE = REFERENCE_DIR / "hap-hl7v3"
KETENZORG = REFERENCE / "ketenzorg"
pytestmark = requires_reference
ADA = KETENZORG / "ada-content"
SUMMARY = REFERENCE / "professionele-samenvatting"
FHIR = "{http://hl7.org/fhir}"


def translated(path: Path) -> dict[str, list[dict[str, Any]]]:
    by_type: dict[str, list[dict[str, Any]]] = {}
    for mapped in translate_hap(path.read_bytes()).resources:
        by_type.setdefault(mapped.resource_type, []).append(mapped.resource)
    return by_type


def codings(resources: list[dict[str, Any]]) -> set[tuple[str, str]]:
    found: set[tuple[str, str]] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if "code" in node and "system" in node and isinstance(node["code"], str):
                found.add((node["system"], node["code"]))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(resources)
    return found


def identifier_values(resources: list[dict[str, Any]]) -> set[str]:
    found = set()
    for resource in resources:
        idents = resource.get("identifier", [])
        found |= {i["value"] for i in (idents if isinstance(idents, list) else [idents])}
    return found


def ada(name: str) -> etree._Element:
    return etree.parse(str(ADA / name)).getroot()


def ada_codes(root: etree._Element, tag: str) -> set[tuple[str, str]]:
    return {(code_system(e.get("codeSystem")), e.get("code")) for e in root.iter(tag) if e.get("code")}


def ada_ids(root: etree._Element, statement: str) -> set[str]:
    return {e.get("value") for s in root.iter(statement) for e in s.findall("hcimroot/identification_number")}


# message, resource type, ADA statement element, ADA element carrying the statement's code
KETENZORG_CASES = [
    ("alerts_REPC_IN990121NL_01.xml", "Flag", "alert", "alert_name"),
    ("algemene_bepalingen_POOB_IN990003NL_01.xml", "Observation", "measurement_result", "measurement_name"),
    ("allergieintoleranties_REPC_IN990131NL_02.xml", "AllergyIntolerance", "allergy_intolerance", "causative_agent"),
    ("contactmomenten_PRPA_IN900350NL_01.xml", "Encounter", "encounter", "contact_type"),
    ("contactverslag_REPC_IN990101NL_01.xml", "Composition", "encounter_note", None),
    ("labbepalingen_POLB_IN364001NL03_01.xml", "Observation", "laboratory_test", "test_code"),
]


@pytest.mark.parametrize(("message", "resource_type", "statement", "code_tag"), KETENZORG_CASES)
def test_every_ada_statement_is_a_resource(message: str, resource_type: str, statement: str,
                                           code_tag: str | None) -> None:
    resources = translated(KETENZORG / message)[resource_type]
    root = ada(message)
    statements = [s for s in root.iter(statement) if s.find("hcimroot") is not None]
    assert len(resources) == len(statements)
    assert ada_ids(root, statement) <= identifier_values(resources)
    if code_tag:
        assert ada_codes(root, code_tag) <= codings(resources)


def _in_profile_unit(value: Decimal, unit: str) -> tuple[Decimal, str]:
    """The oracle's lengths in metres become centimetres: nl-core-BodyHeight binds its unit (required) to
    ucum-bodylength (cm, [in_i])."""
    return (value.scaleb(2), "cm") if unit == "m" else (value, unit)


@pytest.mark.parametrize(("message", "value_tag"), [
    ("algemene_bepalingen_POOB_IN990003NL_01.xml", "result_value"),
    ("labbepalingen_POLB_IN364001NL03_01.xml", "test_result"),
])
def test_measured_values_keep_value_and_unit(message: str, value_tag: str) -> None:
    resources = translated(KETENZORG / message)["Observation"]
    expected = Counter(_in_profile_unit(Decimal(e.get("value")), e.get("unit"))
                       for e in ada(message).iter(value_tag) if e.get("unit"))
    actual = Counter((Decimal(str(r["valueQuantity"]["value"])), r["valueQuantity"]["unit"])
                     for r in resources if "valueQuantity" in r)
    assert actual == expected
    coded = {(code_system(e.get("codeSystem")), e.get("code")) for e in ada(message).iter(value_tag)
             if e.get("datatype") == "code"}
    assert coded <= codings(resources)


def test_vital_signs_claim_their_profile_by_code() -> None:
    resources = translated(KETENZORG / "algemene_bepalingen_POOB_IN990003NL_01.xml")["Observation"]
    profiles = Counter(p for r in resources for p in r.get("meta", {}).get("profile", []))
    nl = "http://nictiz.nl/fhir/StructureDefinition/nl-core-"
    assert profiles == {nl + "BodyTemperature": 1, nl + "BodyWeight": 1, nl + "BodyHeight": 1}
    temperature = next(r for r in resources if nl + "BodyTemperature" in r.get("meta", {}).get("profile", []))
    loinc = {"system": "http://loinc.org", "code": "8310-5", "display": "Body temperature"}
    assert loinc in temperature["code"]["coding"]


def test_contact_reports_keep_every_journal_line_and_problem() -> None:
    message = "contactverslag_REPC_IN990101NL_01.xml"
    by_type = translated(KETENZORG / message)
    root = ada(message)
    texts = {e.get("value").strip() for e in root.iter("text") if e.getparent().tag == "journal_entry"}
    lines = [r for r in by_type["Observation"] if "SOAPReport.SOAPLine" in r["meta"]["profile"][0]]
    assert len(lines) == len(list(root.iter("journal_entry")))
    assert texts == {r["valueString"] for r in lines}
    assert len(by_type["Condition"]) == len([p for p in root.iter("problem") if p.find("hcimroot") is not None])
    entries = [e for c in by_type["Composition"] for s in c["section"] for e in s["entry"]]
    assert len(entries) == len(lines)


def test_episode_and_problem() -> None:
    message = "episodes_REPC_EX990111NL_01.xml"
    by_type = translated(KETENZORG / message)
    root = ada(message)
    (episode,) = by_type["EpisodeOfCare"]
    (problem,) = by_type["Condition"]
    assert episode["identifier"][0]["value"] == root.find(".//episode/identifier").get("value")
    assert episode["period"]["start"] == root.find(".//episode/start_date").get("value")
    assert ("http://hl7.org/fhir/sid/icpc-1-nl", "R95") in codings([problem])
    assert episode["diagnosis"][0]["condition"]["reference"].startswith("urn:uuid:")
    assert problem["onsetDateTime"] == root.find(".//problem_start_date").get("value")


def test_medication_agreement() -> None:
    message = "medicatieafspraken_QUMA_IN991203NL02_01.xml"
    by_type = translated(KETENZORG / message)
    (request,) = by_type["MedicationRequest"]
    (medication,) = by_type["Medication"]
    root = ada(message)
    assert request["identifier"][0]["value"] == root.find(".//medicatieafspraak/identificatie").get("value")
    assert request["authoredOn"] == "2016-06-23T16:54:23+02:00"
    prk, gpk = ("urn:oid:2.16.840.1.113883.2.4.4.10", "6939"), ("urn:oid:2.16.840.1.113883.2.4.4.1", "63630")
    assert {prk, gpk} <= codings([medication])
    dosage = request["dosageInstruction"][0]
    assert dosage["timing"]["repeat"]["frequency"] == 1 and dosage["timing"]["repeat"]["periodUnit"] == "d"
    assert dosage["timing"]["repeat"]["boundsPeriod"]["start"] == "2017-06-12"


@pytest.mark.parametrize("message", sorted(p.name for p in KETENZORG.glob("*.xml")))
def test_patient_identity_and_name(message: str) -> None:
    (patient,) = translated(KETENZORG / message)["Patient"]
    root = ada(message)
    bsn = next((e.get("value") for e in root.iter() if e.get("root") == "2.16.840.1.113883.2.4.6.3"), None)
    assert {"system": "http://fhir.nl/fhir/NamingSystem/bsn", "value": bsn} in patient["identifier"]
    family = next((e.get("value") for e in root.iter("last_name", "geslachtsnaam") if e.get("value")), None)
    if family is None:
        family = next(e.get("value") for e in root.iter("achternaam") if e.get("value"))
    assert family in patient["name"][0]["family"]


THESAURUS_40 = "urn:oid:2.16.840.1.113883.2.4.4.1.902.40"  # G-Standaard contra-indications
CONTRA_INDICATION = "http://nictiz.nl/fhir/StructureDefinition/nl-core-MedicationContraIndication"


def stu3_summary() -> dict[str, list[etree._Element]]:
    """Nictiz' STU3 resources by type. Its AllergyIntolerances coded in thesaurus 40 are medication
    contra-indications, which zib2020 models as their own zib (nl-core-MedicationContraIndication, a Flag): they
    are listed as `ContraIndication`."""
    root = etree.parse(str(SUMMARY / "expected-stu3-bundle" / "QUPC_IN990002NL_01.xml")).getroot()
    by_type: dict[str, list[etree._Element]] = {}
    for holder in root.iter(FHIR + "resource"):
        resource = holder[0]
        kind = resource.tag.removeprefix(FHIR)
        if kind == "AllergyIntolerance" and any(system for system, _ in stu3_codes([resource])
                                                if system == THESAURUS_40):
            kind = "ContraIndication"
        by_type.setdefault(kind, []).append(resource)
    return by_type


def translated_summary() -> dict[str, list[dict[str, Any]]]:
    """The R4 resources by type, the nl-core-MedicationContraIndication Flags as `ContraIndication`."""
    by_type = translated(SUMMARY / "QUPC_IN990002NL_01.xml")
    flags = by_type.pop("Flag", [])
    by_type["Flag"] = [f for f in flags if f["meta"]["profile"] != [CONTRA_INDICATION]]
    by_type["ContraIndication"] = [f for f in flags if f["meta"]["profile"] == [CONTRA_INDICATION]]
    return by_type


def stu3_codes(resources: list[etree._Element]) -> set[tuple[str, str]]:
    found = set()
    for resource in resources:
        for coding in resource.iter(FHIR + "coding"):
            system, code = coding.find(FHIR + "system"), coding.find(FHIR + "code")
            if system is not None and code is not None:
                found.add((system.get("value"), code.get("value")))
    return found


@pytest.mark.parametrize(("stu3_type", "r4_type"), [
    ("Condition", "Condition"), ("EpisodeOfCare", "EpisodeOfCare"), ("Encounter", "Encounter"),
    ("AllergyIntolerance", "AllergyIntolerance"), ("Flag", "Flag"), ("ContraIndication", "ContraIndication"),
    ("MedicationRequest", "MedicationRequest"), ("Medication", "Medication"), ("Composition", "Composition"),
    ("Patient", "Patient"),
])
def test_professionele_samenvatting_matches_the_stu3_oracle(stu3_type: str, r4_type: str) -> None:
    expected = stu3_summary()[stu3_type]
    by_type = translated_summary()
    assert expected
    actual = by_type[r4_type]
    assert len(actual) == len(expected)
    if r4_type == "Composition":  # in R4 the journal lines are SOAPLine Observations the sections point at
        actual = actual + [r for r in by_type["Observation"] if "SOAPLine" in str(r.get("meta"))]
    # STU3 used the old v3 URIs (http://hl7.org/fhir/v3/...); compare the clinical code systems. The STU3
    # gp-EncounterReport document type (LOINC 67781-5) is replaced by the nl-core-SOAPReport type in R4.
    clinical = {c for c in stu3_codes(expected) if not c[0].startswith("http://hl7.org/fhir/v3/")}
    clinical -= {("http://loinc.org", "67781-5")}
    assert clinical <= codings(actual)
    stu3_ids = {i.get("value") for r in expected for i in r.iterfind(f"{FHIR}identifier/{FHIR}value")}
    assert stu3_ids <= identifier_values(actual) | {None}


def test_professionele_samenvatting_measurements_match_the_stu3_oracle() -> None:
    expected = stu3_summary()["Observation"]
    actual = [r for r in translated_summary()["Observation"]
              if "SOAPReport.SOAPLine" not in (r.get("meta", {}).get("profile") or [""])[0]]
    assert len(actual) == len(expected)
    assert stu3_codes(expected) - {c for c in stu3_codes(expected) if "ObservationInterpretation" in c[0]} \
        <= codings(actual)


def test_repeated_professional_is_mapped_once_and_unmapped_parts_listed_at_each_occurrence() -> None:
    """The measurements name the same professional on every statement (mapped once, replayed after): an element
    of it that the adapter does not map is still listed at every occurrence, with its own path."""
    raw = (KETENZORG / "algemene_bepalingen_POOB_IN990003NL_01.xml").read_bytes()
    responsible = b'<id extension="900014718" root="2.16.528.1.1007.3.1"/>'
    occurrences = raw.count(responsible)
    assert occurrences > 2
    planted = raw.replace(responsible, responsible + b"<certificateText>planted</certificateText>")
    translation = translate_hap(planted)
    listed = [u for u in translation.unmapped if u.value == "planted"]
    assert len(listed) == occurrences
    assert len({u.xpath for u in listed}) == occurrences
    assert all(u.xpath.endswith("/hl7:participantRole/hl7:certificateText") for u in listed)
    professionals = [m for m in translation.resources if m.resource_type == "Practitioner"
                     and {"system": "http://fhir.nl/fhir/NamingSystem/uzi-nr-pers", "value": "900014718"}
                     in m.resource.get("identifier", [])]
    assert len(professionals) == 1
    original = {m.key: m.resource for m in translate_hap(raw).resources}
    assert {m.key: m.resource for m in translation.resources} == original
