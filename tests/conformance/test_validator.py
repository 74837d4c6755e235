"""The validator's checks, one behaviour per test, on small instances and profiles written here."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from conformance.packages import PackageSet, default_package_paths
from conformance.validator import Validator
from conformance.validator.issues import count

ROOT = Path(__file__).resolve().parents[2]
CORE = "http://hl7.org/fhir/StructureDefinition/"
DIV = {"status": "generated", "div": '<div xmlns="http://www.w3.org/1999/xhtml">x</div>'}


@cache
def packages() -> PackageSet:
    return PackageSet.from_paths(p for p in default_package_paths(ROOT) if p.exists())


def profile(url: str, elements: list[dict[str, Any]], type_: str = "Patient", base: str | None = None) -> dict:
    return {"resourceType": "StructureDefinition", "url": url, "name": "P", "status": "draft", "kind": "resource",
            "abstract": False, "type": type_, "baseDefinition": base or CORE + type_, "derivation": "constraint",
            "differential": {"element": elements}}


PATIENT_PROFILE = profile("http://example.org/StructureDefinition/patient", [
    {"id": "Patient.identifier", "path": "Patient.identifier", "min": 1,
     "slicing": {"discriminator": [{"type": "value", "path": "system"}], "rules": "closed"}},
    {"id": "Patient.identifier:bsn", "path": "Patient.identifier", "sliceName": "bsn", "min": 1, "max": "1"},
    {"id": "Patient.identifier:bsn.system", "path": "Patient.identifier.system", "min": 1,
     "fixedUri": "http://fhir.nl/fhir/NamingSystem/bsn"},
    {"id": "Patient.identifier:local", "path": "Patient.identifier", "sliceName": "local"},
    {"id": "Patient.identifier:local.system", "path": "Patient.identifier.system", "fixedUri": "urn:oid:1.2.3"},
    {"id": "Patient.maritalStatus", "path": "Patient.maritalStatus",
     "patternCodeableConcept": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-MaritalStatus",
                                            "code": "M"}]}},
    {"id": "Patient.photo", "path": "Patient.photo", "max": "0"},
    {"id": "Patient.deceased[x]", "path": "Patient.deceased[x]", "type": [{"code": "boolean"}]},
    {"id": "Patient.managingOrganization", "path": "Patient.managingOrganization",
     "type": [{"code": "Reference", "targetProfile": [CORE + "Organization"]}]},
])


SNOMED_VALUE_SET = {"resourceType": "ValueSet", "url": "http://example.org/ValueSet/sites", "status": "draft",
                    "compose": {"include": [{"system": "http://snomed.info/sct",
                                             "filter": [{"property": "concept", "op": "is-a", "value": "442083009"}]}]}}
OBSERVATION_PROFILE = profile("http://example.org/StructureDefinition/observation", [
    {"id": "Observation.bodySite", "path": "Observation.bodySite",
     "binding": {"strength": "required", "valueSet": "http://example.org/ValueSet/sites"}},
], type_="Observation")


@pytest.fixture(scope="module")
def validator() -> Validator:
    v = Validator(packages())
    v.add_definitions([PATIENT_PROFILE, OBSERVATION_PROFILE, SNOMED_VALUE_SET])
    return v


def good_patient(**extra: Any) -> dict[str, Any]:
    patient = {"resourceType": "Patient", "id": "p1", "text": DIV,
               "identifier": [{"system": "http://fhir.nl/fhir/NamingSystem/bsn", "value": "999999990"}],
               "gender": "female", "birthDate": "1980-02-03"}
    patient.update(extra)
    return patient


def errors(v: Validator, resource: Any, profiles: tuple[str, ...] = ()) -> list[tuple[str, str]]:
    return [(i.expression, i.message) for i in v.validate_issues(resource, profiles) if i.is_error]


def expressions(v: Validator, resource: Any, profiles: tuple[str, ...] = ()) -> set[str]:
    return {expression for expression, _ in errors(v, resource, profiles)}


PROFILE = ("http://example.org/StructureDefinition/patient",)


def test_a_valid_resource_gives_all_ok(validator: Validator) -> None:
    outcome = validator.validate(good_patient(), PROFILE)
    assert outcome["issue"] == [{"severity": "information", "code": "informational", "details": {"text": "All OK"}}]


def test_structure_unknown_elements_and_formats(validator: Validator) -> None:
    found = expressions(validator, good_patient(birthDate="1980-13-01", foo=1, active="true"))
    assert {"Patient.birthDate", "Patient.foo", "Patient.active"} <= found


def test_base_cardinality_and_invariants(validator: Validator) -> None:
    patient = good_patient(contact=[{"gender": "male"}], link=[{"type": "seealso"}])
    found = errors(validator, patient)
    assert ("Patient.contact[0]", "Constraint failed: pat-1: 'SHALL at least contain a contact's details or a "
            "reference to an organization'") in found
    assert any(e == "Patient.link[0]" and "Patient.link.other: minimum required = 1" in m for e, m in found)


def test_profile_cardinality_max_zero_and_choice_types(validator: Validator) -> None:
    patient = good_patient(photo=[{"contentType": "image/png"}], deceasedDateTime="2020-01-01")
    found = errors(validator, patient, PROFILE)
    assert any(e == "Patient" and "Patient.photo: max allowed = 0, but found 1" in m for e, m in found)
    assert any(e == "Patient.deceased.ofType(dateTime)" and "found type dateTime" in m for e, m in found)


def test_fixed_and_pattern_values(validator: Validator) -> None:
    married = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-MaritalStatus", "code": "M"}]}
    assert errors(validator, good_patient(maritalStatus=married), PROFILE) == []
    single = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-MaritalStatus", "code": "S"}]}
    assert "Patient.maritalStatus" in expressions(validator, good_patient(maritalStatus=single), PROFILE)


def test_slicing_by_value_closed_and_minimum(validator: Validator) -> None:
    both = good_patient(identifier=[{"system": "http://fhir.nl/fhir/NamingSystem/bsn", "value": "1"},
                                    {"system": "urn:oid:1.2.3", "value": "2"}])
    assert errors(validator, both, PROFILE) == []
    no_bsn = good_patient(identifier=[{"system": "urn:oid:1.2.3", "value": "2"}])
    assert any("Patient.identifier:bsn: minimum required = 1" in m for _, m in errors(validator, no_bsn, PROFILE))
    stranger = good_patient(identifier=[{"system": "http://fhir.nl/fhir/NamingSystem/bsn", "value": "1"},
                                        {"system": "urn:other", "value": "3"}])
    assert "Patient.identifier[1]" in expressions(validator, stranger, PROFILE)
    two_bsn = good_patient(identifier=[{"system": "http://fhir.nl/fhir/NamingSystem/bsn", "value": "1"}] * 2)
    assert any("max allowed = 1, but found 2" in m for _, m in errors(validator, two_bsn, PROFILE))


def test_bindings_required_extensible_and_not_checkable(validator: Validator) -> None:
    assert "Patient.gender" in expressions(validator, good_patient(gender="vrouw"))
    observation = {"resourceType": "Observation", "id": "o", "text": DIV, "status": "final",
                   "code": {"coding": [{"system": "http://loinc.org", "code": "718-7"}]},
                   "interpretation": [{"coding": [{"system": "urn:local", "code": "x"}]}]}
    issues = validator.validate_issues(observation)
    assert not [i for i in issues if i.is_error]
    assert any(i.severity == "warning" and i.expression == "Observation.interpretation[0]" for i in issues)
    snomed = dict(observation, bodySite={"coding": [{"system": "http://snomed.info/sct", "code": "281302008"}]})
    issues = validator.validate_issues(snomed, ("http://example.org/StructureDefinition/observation",))
    assert any(i.severity == "information" and "cannot be checked" in i.message for i in issues)
    assert not [i for i in issues if i.severity in ("error", "warning") and "bodySite" in i.expression]
    local = dict(observation, bodySite={"coding": [{"system": "urn:local", "code": "x"}]})
    assert "Observation.bodySite" in expressions(validator, local, ("http://example.org/StructureDefinition/observation",))


def test_unknown_code_in_a_local_code_system(validator: Validator) -> None:
    patient = good_patient(maritalStatus={"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-MaritalStatus",
                                                      "code": "ZZZ"}]})
    assert any("Unknown code 'ZZZ'" in m for _, m in errors(validator, patient))


def test_references_contained_and_target_types(validator: Validator) -> None:
    dangling = good_patient(managingOrganization={"reference": "#org"})
    assert "Patient.managingOrganization" in expressions(validator, dangling)
    wrong_type = good_patient(managingOrganization={"reference": "Practitioner/1"})
    assert any("not a valid Target" in m for _, m in errors(validator, wrong_type))
    contained = good_patient(contained=[{"resourceType": "Organization", "id": "org", "name": "HAP", "active": "yes"}],
                             managingOrganization={"reference": "#org"})
    assert expressions(validator, contained) == {"Patient.contained[0].active"}


def test_dom_3_contained_resources_must_be_referenced(validator: Validator) -> None:
    """dom-3 is skipped without evaluation when nothing is contained; with a contained resource it is evaluated."""
    unreferenced = good_patient(contained=[{"resourceType": "Organization", "id": "org", "name": "HAP"}])
    assert any("dom-3" in m for _, m in errors(validator, unreferenced))
    referenced = good_patient(contained=[{"resourceType": "Organization", "id": "org", "name": "HAP"}],
                              managingOrganization={"reference": "#org"})
    assert not any("dom-3" in m for _, m in errors(validator, referenced))
    assert errors(validator, good_patient()) == []


def test_extensions_definition_context_and_value_type(validator: Validator) -> None:
    unknown = good_patient(extension=[{"url": "http://example.org/unknown", "valueString": "x"}])
    assert "Patient.extension[0]" in expressions(validator, unknown)
    wrong_place = {"resourceType": "Observation", "id": "o", "text": DIV, "status": "final", "code": {"text": "x"},
                   "extension": [{"url": CORE + "patient-birthPlace", "valueAddress": {"city": "Utrecht"}}]}
    assert any("is not allowed to be used at this point" in m for _, m in errors(validator, wrong_place))
    wrong_type = good_patient(extension=[{"url": CORE + "patient-birthPlace", "valueString": "Utrecht"}])
    assert any("found type string" in m for _, m in errors(validator, wrong_type))
    fine = good_patient(extension=[{"url": CORE + "patient-birthPlace", "valueAddress": {"city": "Utrecht"}}])
    assert errors(validator, fine) == []


def test_meta_profile_drives_validation(validator: Validator) -> None:
    claimed = good_patient(meta={"profile": PROFILE}, photo=[{"contentType": "image/png"}])
    assert any("Patient.photo: max allowed = 0" in m for _, m in errors(validator, claimed))
    unknown = good_patient(meta={"profile": ["http://example.org/not-loaded"]})
    issues = validator.validate_issues(unknown)
    assert not [i for i in issues if i.is_error]
    assert any(i.severity == "warning" and "not-loaded" in i.message for i in issues)


def test_bundle_entries_and_full_url_resolution(validator: Validator) -> None:
    bundle = {"resourceType": "Bundle", "id": "b", "type": "collection", "entry": [
        {"fullUrl": "urn:uuid:0d1b2c3a-0000-4000-8000-000000000001",
         "resource": good_patient(managingOrganization={"reference": "urn:uuid:0d1b2c3a-0000-4000-8000-000000000002"})},
        {"fullUrl": "urn:uuid:0d1b2c3a-0000-4000-8000-000000000002",
         "resource": {"resourceType": "Practitioner", "id": "pr"}},
        {"fullUrl": "Patient/relative", "resource": good_patient(id="relative", gender="x")},
    ]}
    found = errors(validator, bundle)
    assert any(e == "Bundle.entry[0].resource.managingOrganization" and "'Practitioner' of the resource" in m
               for e, m in found)
    assert ("Bundle.entry[2]", "The fullUrl must be an absolute URL (not 'Patient/relative')") in found
    assert any(e == "Bundle.entry[2].resource.gender" for e, _ in found)


def test_line_and_column_from_json_text(validator: Validator) -> None:
    text = json.dumps(good_patient(gender="vrouw"), indent=2)
    outcome = validator.validate(text.encode())
    issue = next(i for i in outcome["issue"] if i["severity"] == "error")
    assert issue["expression"] == ["Patient.gender"]
    line = next(n for n, row in enumerate(text.splitlines(), 1) if '"gender"' in row)
    assert issue["diagnostics"] == f"[{line},3]"
    assert {"url": "http://hl7.org/fhir/StructureDefinition/operationoutcome-issue-line", "valueInteger": line} \
        in issue["extension"]


def test_parse_errors_are_fatal(validator: Validator) -> None:
    outcome = validator.validate(b'{"resourceType": "Patient", "id": "a", "id": "b"}')
    assert count(outcome, "fatal") == 1
    assert count(validator.validate(b'{"not": "a resource"}'), "fatal") == 1


def test_xml_input(validator: Validator) -> None:
    xml = (b'<Patient xmlns="http://hl7.org/fhir"><id value="x"/><gender value="vrouw"/>'
           b'<birthDate value="1980-01-01"/></Patient>')
    outcome = validator.validate(xml, content_type="xml")
    assert [i["expression"] for i in outcome["issue"] if i["severity"] == "error"] == [["Patient.gender"]]


def test_conforms(validator: Validator) -> None:
    assert validator.conforms(good_patient(), PROFILE[0])
    assert not validator.conforms(good_patient(photo=[{"contentType": "image/png"}]), PROFILE[0])
