"""Rules beyond the profiles that the HL7 validator applies (and the validator's run-time settings), one
behaviour per test on small instances written here."""

from __future__ import annotations

import base64
import json
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from conformance.packages import PackageSet, default_package_paths
from conformance.validator import Validator

ROOT = Path(__file__).resolve().parents[2]
CORE = "http://hl7.org/fhir/StructureDefinition/"
DIV = {"status": "generated", "div": '<div xmlns="http://www.w3.org/1999/xhtml">x</div>'}

pytestmark = pytest.mark.skipif(not default_package_paths(ROOT)[0].exists(), reason="R4 core package not installed")


@cache
def packages() -> PackageSet:
    return PackageSet.from_paths(p for p in default_package_paths(ROOT) if p.exists())


@pytest.fixture(scope="module")
def validator() -> Validator:
    return Validator(packages())


def errors(v: Validator, resource: Any, profiles: tuple[str, ...] = ()) -> list[tuple[str, str]]:
    return [(i.expression, i.message) for i in v.validate_issues(resource, profiles) if i.is_error]


def observation(code: str, system: str = "http://loinc.org", **extra: Any) -> dict[str, Any]:
    resource = {"resourceType": "Observation", "id": "o", "text": DIV, "status": "final",
                "code": {"coding": [{"system": system, "code": code}]}, "subject": {"reference": "Patient/p"},
                "effectiveDateTime": "2024-01-02T10:00:00Z"}
    resource.update(extra)
    return resource


def test_vital_signs_profile_applies_by_code() -> None:
    validator = Validator(packages(), vital_signs_by_code=True)
    temperature = observation("276885007", "http://snomed.info/sct", valueQuantity={
        "value": 36.5, "unit": "Cel", "system": "http://unitsofmeasure.org", "code": "Cel"})
    issues = validator.validate_issues(temperature)
    assert any(i.severity == "information" and "bodytemp" in i.message for i in issues)
    assert any("BodyTempCode" in m for _, m in errors(validator, temperature))
    assert errors(validator, observation("718-7")) == []  # haemoglobin: not a vital sign
    assert errors(Validator(packages()), temperature) == []  # off by default


def test_a_claimed_loaded_profile_replaces_the_vital_signs_rule() -> None:
    v = Validator(packages(), vital_signs_by_code=True)
    v.add_definitions([{"resourceType": "StructureDefinition", "url": "http://example.org/StructureDefinition/temp",
                        "name": "T", "status": "draft", "kind": "resource", "abstract": False, "type": "Observation",
                        "baseDefinition": CORE + "Observation", "derivation": "constraint",
                        "differential": {"element": [{"id": "Observation", "path": "Observation"}]}}])
    claimed = observation("8310-5", meta={"profile": ["http://example.org/StructureDefinition/temp"]})
    assert errors(v, claimed) == []
    assert errors(v, observation("8310-5")) != []  # no category, no value: not a body temperature


def test_searchset_entry_modes_and_types(validator: Validator) -> None:
    bundle = {"resourceType": "Bundle", "id": "b", "type": "searchset",
              "link": [{"relation": "self", "url": "http://x/fhir/Observation?code=1"}], "entry": [
                  {"fullUrl": "http://x/fhir/Patient/p", "resource": {"resourceType": "Patient", "id": "p"},
                   "search": {"mode": "match"}},
                  {"fullUrl": "urn:uuid:8a3c0e1c-0000-4000-8000-000000000001",
                   "resource": {"resourceType": "Patient", "id": "q"}, "search": {"mode": "outcome"}},
                  {"fullUrl": "http://x/fhir/Patient/r", "resource": {"resourceType": "Patient", "id": "r"},
                   "search": {"mode": "include"}}]}
    found = errors(validator, bundle)
    assert ("Bundle.entry[0].resource", "This is not a matching resource type for the specified search "
            "(Patient expecting [Observation])") in found
    assert ("Bundle.entry[1].resource", "This is not an OperationOutcome (Patient)") in found
    assert not [e for e, _ in found if e.startswith("Bundle.entry[2]")]


def test_ambiguous_and_versioned_references_in_a_document(validator: Validator) -> None:
    def obs(version: str) -> dict[str, Any]:
        return {"fullUrl": "http://x/Observation/o", "resource": observation(
            "718-7", meta={"versionId": version}, valueString="x")}
    composition = {"resourceType": "Composition", "id": "c", "text": DIV, "status": "final",
                   "type": {"text": "x"}, "date": "2024-01-01", "author": [{"display": "x"}], "title": "x",
                   "section": [{"title": "s", "text": DIV, "entry": [{"reference": "Observation/o"},
                                                                      {"reference": "Observation/o/_history/2"},
                                                                      {"reference": "Observation/o/_history/7"}]}]}
    bundle = {"resourceType": "Bundle", "id": "b", "type": "document", "identifier": {"value": "1"},
              "timestamp": "2024-01-01T00:00:00Z",
              "entry": [{"fullUrl": "http://x/Composition/c", "resource": composition}, obs("1"), obs("2")]}
    issues = validator.validate_issues(bundle)
    where = "Bundle.entry[0].resource.section[0].entry"
    assert any(i.is_error and i.expression == f"{where}[0]" and "Multiple matches" in i.message for i in issues)
    assert not any(i.expression == f"{where}[1]" and i.severity in ("error", "warning") for i in issues)
    assert any(i.severity == "warning" and i.expression == f"{where}[2]" for i in issues)


def test_extension_and_modifier_extension_not_swapped(validator: Validator) -> None:
    patient = {"resourceType": "Patient", "id": "p", "text": DIV,
               "modifierExtension": [{"url": CORE + "patient-birthPlace", "valueAddress": {"city": "Utrecht"}}]}
    assert any("must not be used as a modifierExtension" in m for _, m in errors(validator, patient))


def test_contained_resources_can_be_ignored() -> None:
    condition = {"resourceType": "Condition", "id": "c", "text": DIV, "subject": {"reference": "Patient/p"},
                 "contained": [{"resourceType": "Practitioner", "id": "x" * 65}]}
    assert errors(Validator(packages()), condition) != []
    assert errors(Validator(packages(), contained="ignore"), condition) == []
    with pytest.raises(ValueError):
        Validator(packages(), contained="sometimes")


def test_display_issues_severity() -> None:
    patient = {"resourceType": "Patient", "id": "p", "text": DIV, "maritalStatus": {"coding": [
        {"system": "http://terminology.hl7.org/CodeSystem/v3-MaritalStatus", "code": "M", "display": "Getrouwd"}]}}
    assert errors(Validator(packages()), patient) == []
    assert any("Wrong Display Name" in m for _, m in errors(Validator(packages(), display_issues="error"), patient))


def test_que_12_as_its_human_text_says(validator: Validator) -> None:
    questionnaire = {"resourceType": "Questionnaire", "id": "q", "text": DIV, "status": "draft", "item": [
        {"linkId": "a", "type": "boolean"}, {"linkId": "b", "type": "boolean"},
        {"linkId": "c", "type": "string", "enableWhen": [
            {"question": "a", "operator": "=", "answerBoolean": True},
            {"question": "b", "operator": "=", "answerBoolean": True}]}]}
    assert any("que-12" in m for _, m in errors(validator, questionnaire))
    questionnaire["item"][2]["enableBehavior"] = "any"
    assert not any("que-12" in m for _, m in errors(validator, questionnaire))


def test_several_type_profiles_are_alternatives() -> None:
    v = Validator(packages())

    def patient_profile(name: str, element: dict[str, Any]) -> dict[str, Any]:
        return {"resourceType": "StructureDefinition", "url": f"http://example.org/StructureDefinition/{name}",
                "name": name, "status": "draft", "kind": "resource", "abstract": False, "type": "Patient",
                "baseDefinition": CORE + "Patient", "derivation": "constraint",
                "differential": {"element": [element]}}
    v.add_definitions([
        patient_profile("named", {"id": "Patient.name", "path": "Patient.name", "min": 1}),
        patient_profile("born", {"id": "Patient.birthDate", "path": "Patient.birthDate", "min": 1}),
        {"resourceType": "StructureDefinition", "url": "http://example.org/StructureDefinition/params",
         "name": "params", "status": "draft", "kind": "resource", "abstract": False, "type": "Parameters",
         "baseDefinition": CORE + "Parameters", "derivation": "constraint", "differential": {"element": [
             {"id": "Parameters.parameter.resource", "path": "Parameters.parameter.resource", "type": [
                 {"code": "Resource", "profile": ["http://example.org/StructureDefinition/named",
                                                  "http://example.org/StructureDefinition/born"]}]}]}},
    ])
    profiles = ("http://example.org/StructureDefinition/params",)

    def params(patient: dict[str, Any]) -> dict[str, Any]:
        return {"resourceType": "Parameters", "parameter": [{"name": "p", "resource": patient}]}
    assert errors(v, params({"resourceType": "Patient", "birthDate": "1980-01-01"}), profiles) == []
    assert errors(v, params({"resourceType": "Patient", "name": [{"family": "X"}]}), profiles) == []
    assert any("does not conform to any of the profiles" in m
               for _, m in errors(v, params({"resourceType": "Patient", "gender": "male"}), profiles))


def test_measure_report_against_a_cohort_measure() -> None:
    v = Validator(packages())
    v.add_definitions([{"resourceType": "Measure", "url": "http://example.org/Measure/m", "status": "draft",
                        "scoring": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/measure-scoring",
                                                "code": "cohort"}]}}])
    report = {"resourceType": "MeasureReport", "id": "r", "text": DIV, "status": "complete", "type": "summary",
              "measure": "http://example.org/Measure/m", "period": {"start": "2024-01-01"},
              "group": [{"population": [{"count": 3}], "measureScore": {"value": 3}}]}
    assert ("MeasureReport.group[0].measureScore", "No measureScore when the scoring of the message is 'cohort'") \
        in errors(v, report)
    del report["group"][0]["measureScore"]
    assert errors(v, report) == []


def test_search_parameter_derived_from_another(validator: Validator) -> None:
    parameter = {"resourceType": "SearchParameter", "id": "s", "text": DIV, "url": "http://example.org/sp",
                 "name": "n", "status": "draft", "description": "d", "code": "name", "base": ["Organization"],
                 "type": "string", "expression": "Organization.name",
                 "derivedFrom": "http://hl7.org/fhir/SearchParameter/Organization-name"}
    assert errors(validator, parameter) == []
    wrong = dict(parameter, base=["Patient"])
    messages = [m for _, m in errors(validator, wrong)]
    assert any("not listed as a base" in m for m in messages)
    assert any("The name 'Organization' is not valid" in m for m in messages)


def test_structure_definition_differential_rules(validator: Validator) -> None:
    def sd(elements: list[dict[str, Any]], type_: str = "Observation", base: str | None = None) -> dict[str, Any]:
        return {"resourceType": "StructureDefinition", "id": "x", "text": DIV, "url": "http://example.org/sd",
                "name": "X", "status": "draft", "kind": "resource", "abstract": False, "type": type_,
                "baseDefinition": base or CORE + type_, "derivation": "constraint",
                "differential": {"element": elements}}
    good = sd([{"id": "Observation.valueQuantity", "path": "Observation.valueQuantity"},
               {"id": "Observation.valueQuantity.code", "path": "Observation.valueQuantity.code", "min": 1},
               {"id": "Observation.component.code.coding", "path": "Observation.component.code.coding",
                "slicing": {"discriminator": [{"type": "value", "path": "system"}], "rules": "open"}}])
    assert errors(validator, good) == []
    bad_path = sd([{"id": "Observation.valueQuantity", "path": "Observation.valueBla"}])
    assert [e for e, _ in errors(validator, bad_path)] == ["StructureDefinition.differential.element[0].path"]
    bad_discriminator = sd([{"id": "Observation.extension", "path": "Observation.extension",
                             "slicing": {"discriminator": [{"type": "value", "path": "type"}], "rules": "open"}}])
    assert any("discriminator path 'type'" in m for _, m in errors(validator, bad_discriminator))
    refixed = sd([{"id": "Extension.url", "path": "Extension.url", "fixedUri": "http://example.org/other"}],
                 "Extension", CORE + "patient-birthPlace")
    refixed["kind"] = "complex-type"
    assert any("but is fixed to" in m for _, m in errors(validator, refixed))


def _jws(header: dict[str, Any], payload: bytes, signature: bytes = b"sig") -> str:
    def b64(raw: bytes) -> str:
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
    compact = f"{b64(json.dumps(header).encode())}.{b64(payload)}.{b64(signature)}"
    return base64.b64encode(compact.encode()).decode()


def test_signature_payload_must_be_the_bundle(validator: Validator) -> None:
    bundle: dict[str, Any] = {"resourceType": "Bundle", "id": "b", "type": "collection",
                              "entry": [{"fullUrl": "urn:uuid:8a3c0e1c-0000-4000-8000-000000000001",
                                         "resource": {"resourceType": "Basic", "id": "x", "code": {"text": "x"}}}]}
    signed = dict(bundle)

    def with_payload(payload: dict[str, Any]) -> dict[str, Any]:
        return dict(bundle, signature={
            "type": [{"system": "urn:iso-astm:E1762-95:2013", "code": "1.2.840.10065.1.12.1.1"}],
            "when": "2024-01-01T00:00:00Z", "who": {"display": "x"}, "sigFormat": "application/jose",
            "targetFormat": "application/fhir+json;canonicalization=http://hl7.org/fhir/canonicalization/json",
            "data": _jws({"alg": "RS256"}, json.dumps(payload).encode())})
    assert not [m for _, m in errors(validator, with_payload(signed)) if "signed content" in m]
    changed = dict(signed, type="batch")
    assert any("not the same as the signed content" in m for _, m in errors(validator, with_payload(changed)))


def test_allowed_extension_domain_accepts_unknown_extensions_unchecked() -> None:
    patient = {"resourceType": "Patient", "id": "p", "text": DIV,
               "extension": [{"url": "https://fhir.example.org/StructureDefinition/x", "valueString": "x"}]}
    assert errors(Validator(packages()), patient) != []
    allowed = Validator(packages(), allowed_extension_domains=["https://fhir.example.org/StructureDefinition"])
    issues = allowed.validate_issues(patient)
    assert not [i for i in issues if i.is_error]
    assert any(i.severity == "information" and "allowed domain" in i.message for i in issues)
