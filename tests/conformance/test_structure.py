"""Base-spec structural checks of FHIR JSON: each bad case reports the right code and exact expression."""

from __future__ import annotations

import copy
import time
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conformance.packages import PackageSet, default_package_paths
from conformance.structure import StructureIssue, check_structure
from conformance.typemodel import TypeModel, default_model

# Resources of the R4 package with genuine base-spec defects (all warnings except the over-long id).
KNOWN_DEFECTS = {
    "SearchParameter-questionnaireresponse-extensions-QuestionnaireResponse-item-subject.json": {
        ("error", "value", "SearchParameter.id")},  # 67-character id
    "ImplementationGuide-fhir.json": {
        ("warning", "required", "ImplementationGuide.name"), ("warning", "required", "ImplementationGuide.status")},
    "ig-r4.json": {
        ("warning", "required", "ImplementationGuide.name"), ("warning", "required", "ImplementationGuide.status")},
}


@pytest.fixture(scope="module")
def model() -> TypeModel:
    return default_model()


def errors(resource: Any, model: TypeModel) -> list[tuple[str, str]]:
    return [(issue.code, issue.expression) for issue in check_structure(resource, model) if issue.severity == "error"]


def patient(**elements: Any) -> dict[str, Any]:
    return {"resourceType": "Patient", **elements}


def test_every_r4_package_resource_is_structurally_sound(model: TypeModel) -> None:
    packages = PackageSet.from_paths(default_package_paths())
    resources = [(entry.source, package.resource(entry)) for package in packages.packages for entry in package.entries]
    started = time.perf_counter()
    found: dict[str, set[tuple[str, str, str]]] = {}
    for name, resource in resources:
        issues = check_structure(resource, model)
        if issues:
            found[name] = {(issue.severity, issue.code, issue.expression) for issue in issues}
    print(f"\n{len(resources)} resources checked in {time.perf_counter() - started:.1f} s; {len(found)} with issues")
    for name, expected in KNOWN_DEFECTS.items():
        assert found.pop(name) == expected
    # The remaining ones only miss base-required elements (warnings): Questionnaire linkIds, SearchParameter.base.
    assert {issue[:2] for issues in found.values() for issue in issues} == {("warning", "required")}
    assert len(found) == 11


def test_valid_resource_has_no_issues(model: TypeModel) -> None:
    resource = patient(
        id="p-1.a", active=True, name=[{"given": ["A", None], "_given": [None, {"extension": [
            {"url": "http://x.org/e", "valueString": "b"}]}]}],
        birthDate="1970-03", _birthDate={"id": "bd"}, multipleBirthInteger=2,
        contained=[{"resourceType": "Organization", "id": "o", "name": "Org"}],
        text={"status": "generated", "div": '<div xmlns="http://www.w3.org/1999/xhtml">x</div>'},
    )
    assert check_structure(resource, model) == []


@pytest.mark.parametrize(
    ("resource", "expected"),
    [
        ({"id": "x"}, [("required", "resourceType")]),
        ({"resourceType": "Nope"}, [("not-supported", "resourceType")]),
        ({"resourceType": 5}, [("not-supported", "resourceType")]),
        ([], [("structure", "$")]),
        (patient(nickname="x"), [("structure", "Patient.nickname")]),
        (patient(name=[{"given": ["A"], "middle": "B"}]), [("structure", "Patient.name[0].middle")]),
        (patient(name={"family": "x"}), [("structure", "Patient.name")]),
        (patient(gender=["male"]), [("structure", "Patient.gender")]),
        (patient(maritalStatus=[{"text": "x"}]), [("structure", "Patient.maritalStatus")]),
        (patient(name=[{"given": "A"}]), [("structure", "Patient.name[0].given")]),
        (patient(active="true"), [("structure", "Patient.active")]),
        (patient(active=1), [("structure", "Patient.active")]),
        (patient(multipleBirthInteger="2"), [("structure", "Patient.multipleBirthInteger")]),
        (patient(multipleBirthInteger=2.5), [("structure", "Patient.multipleBirthInteger")]),
        (patient(multipleBirthInteger=True), [("structure", "Patient.multipleBirthInteger")]),
        (patient(multipleBirthInteger=2**31), [("value", "Patient.multipleBirthInteger")]),
        (patient(gender=5), [("structure", "Patient.gender")]),
        (patient(name=[{"given": ["A", 7]}]), [("structure", "Patient.name[0].given[1]")]),
        (patient(id="has space"), [("value", "Patient.id")]),
        (patient(id="x" * 65), [("value", "Patient.id")]),
        (patient(id="a_b"), [("value", "Patient.id")]),
        (patient(birthDate="1970-13-01"), [("value", "Patient.birthDate")]),
        (patient(birthDate="1970-1-1"), [("value", "Patient.birthDate")]),
        (patient(birthDate="1970-01-01T10:00:00Z"), [("value", "Patient.birthDate")]),
        (patient(deceasedDateTime="2020-01-01T10:00:00"), [("value", "Patient.deceasedDateTime")]),
        (patient(deceasedDateTime="2020-01-01T10:00"), [("value", "Patient.deceasedDateTime")]),
        (patient(meta={"lastUpdated": "2020-01-01"}), [("value", "Patient.meta.lastUpdated")]),
        (patient(meta={"lastUpdated": "2020-01-01T10:00:00"}), [("value", "Patient.meta.lastUpdated")]),
        (patient(gender=" male"), [("value", "Patient.gender")]),
        (patient(gender="male "), [("value", "Patient.gender")]),
        (patient(implicitRules="http://x.org/a b"), [("value", "Patient.implicitRules")]),
        (patient(photo=[{"data": "not base64!"}]), [("value", "Patient.photo[0].data")]),
        (patient(photo=[{"size": 0, "data": "AAAA"}]), []),
        (patient(photo=[{"size": -1}]), [("value", "Patient.photo[0].size")]),
        (patient(contact=[{"name": {"text": ""}}]), [("value", "Patient.contact[0].name.text")]),
        (patient(name=[]), [("structure", "Patient.name")]),
        (patient(name=[{}]), [("structure", "Patient.name[0]")]),
        (patient(maritalStatus={}), [("structure", "Patient.maritalStatus")]),
        (patient(name=[None]), [("structure", "Patient.name[0]")]),
        (patient(name=["Smith"]), [("structure", "Patient.name[0]")]),
        (patient(gender=None), [("structure", "Patient.gender")]),
        (patient(name=[{"given": None}]), [("structure", "Patient.name[0].given")]),
        (patient(name=None), [("structure", "Patient.name")]),
    ],
)
def test_bad_cases_report_code_and_exact_expression(
    model: TypeModel, resource: Any, expected: list[tuple[str, str]]
) -> None:
    assert errors(resource, model) == expected


def test_decimal_values(model: TypeModel) -> None:
    def quantity(value: Any) -> dict[str, Any]:
        return {"resourceType": "Observation", "status": "final", "code": {"text": "x"},
                "valueQuantity": {"value": value}}
    for good in (10, Decimal("1.50"), Decimal("1E+3"), Decimal("-0.0"), 1.5):
        assert errors(quantity(good), model) == []
    for bad in ("1.5", True, None, Decimal("NaN"), float("inf")):
        assert errors(quantity(bad), model) == [("structure", "Observation.valueQuantity.value")]


@pytest.mark.parametrize(
    ("resource", "expected"),
    [
        (patient(_birthDate={"id": "x", "foo": 1}), [("structure", "Patient.birthDate.foo")]),
        (patient(_birthDate="x"), [("structure", "Patient.birthDate")]),
        (patient(_birthDate={}), [("structure", "Patient.birthDate")]),
        (patient(_birthDate={"id": 5}), [("structure", "Patient.birthDate.id")]),
        (patient(_birthDate=[{"id": "x"}]), [("structure", "Patient.birthDate")]),
        (patient(name=[{"given": ["A", "B"], "_given": [None]}]), [("structure", "Patient.name[0].given")]),
        (patient(name=[{"given": ["A", None]}]), [("structure", "Patient.name[0].given[1]")]),
        (patient(name=[{"given": ["A", None], "_given": [None, None]}]), [("structure", "Patient.name[0].given[1]")]),
        (patient(name=[{"_given": {"id": "x"}}]), [("structure", "Patient.name[0].given")]),
        (patient(_name=[{"id": "x"}]), [("structure", "Patient._name")]),
        (patient(extension=[{"url": "http://x.org", "_url": {"id": "a"}, "valueString": "v"}]),
         [("structure", "Patient.extension[0]._url")]),
        (patient(text={"status": "generated", "div": "<p>x</p>"}), [("structure", "Patient.text.div")]),
        (patient(text={"status": "generated", "div": '<div xmlns="http://www.w3.org/1999/xhtml"/>',
                       "_div": {"id": "d"}}),
         [("structure", "Patient.text._div")]),
    ],
)
def test_companion_shapes(model: TypeModel, resource: Any, expected: list[tuple[str, str]]) -> None:
    assert errors(resource, model) == expected


def test_choice_and_required(model: TypeModel) -> None:
    observation = {"resourceType": "Observation", "status": "final", "code": {"text": "x"},
                   "valueString": "a", "valueBoolean": True}
    assert errors(observation, model) == [("structure", "Observation.valueBoolean")]
    missing = check_structure({"resourceType": "Observation", "code": {"text": "x"}}, model)
    assert [(i.severity, i.code, i.expression) for i in missing] == [("warning", "required", "Observation.status")]
    extension = check_structure(patient(extension=[{"valueString": "x"}]), model)
    assert [(i.code, i.expression) for i in extension] == [("required", "Patient.extension[0].url")]
    absent = patient(link=[{"type": "seealso"}])  # link.other is 1..1 and a reference
    assert [(i.code, i.expression) for i in check_structure(absent, model)] == [("required", "Patient.link[0].other")]
    data_absent = {"resourceType": "Observation", "_status": {"extension": [
        {"url": "http://hl7.org/fhir/StructureDefinition/data-absent-reason", "valueCode": "unknown"}]},
        "code": {"text": "x"}}
    assert check_structure(data_absent, model) == []


def test_nested_resources_are_checked_with_their_path(model: TypeModel) -> None:
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [
        {"resource": patient(active="yes")},
        {"resource": {"resourceType": "Parameters", "parameter": [
            {"name": "p", "resource": patient(name=[{"given": ["A", 1]}])},
            {"name": "q", "part": [{"name": "r", "valueInteger": "1"}]}]}},
        {"resource": {"resourceType": "Observation", "status": "final", "code": {"text": "x"},
                      "contained": [{"resourceType": "Nope"}, patient(birthDate="x")]}},
        {"resource": "Patient/1"},
    ]}
    assert errors(bundle, model) == [
        ("structure", "Bundle.entry[0].resource.active"),
        ("structure", "Bundle.entry[1].resource.parameter[0].resource.name[0].given[1]"),
        ("structure", "Bundle.entry[1].resource.parameter[1].part[0].valueInteger"),
        ("not-supported", "Bundle.entry[2].resource.contained[0]"),
        ("value", "Bundle.entry[2].resource.contained[1].birthDate"),
        ("structure", "Bundle.entry[3].resource"),
    ]


def test_issue_shape(model: TypeModel) -> None:
    [issue] = check_structure(patient(active="yes"), model)
    assert issue == StructureIssue(
        "error", "structure", "boolean must be a JSON boolean (true/false), not string 'yes'", "Patient.active"
    )


def test_checking_does_not_modify_the_resource(model: TypeModel) -> None:
    resource = patient(name=[{"given": ["A", None], "_given": [None, {"id": "x"}]}], active="x")
    before = copy.deepcopy(resource)
    check_structure(resource, model)
    assert resource == before


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
        st.sampled_from(["name", "given", "_given", "active", "id", "extension", "url", "valueString", "text", "x"]),
        inner, max_size=3,
    ),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.dictionaries(st.sampled_from(["name", "active", "id", "_active", "extension", "contained", "bogus"]),
                            JSON_VALUES, max_size=4))
def test_arbitrary_json_never_crashes_and_issues_are_well_formed(model: TypeModel, body: dict[str, Any]) -> None:
    for issue in check_structure({"resourceType": "Patient", **body}, model):
        assert issue.severity in {"error", "warning"}
        assert issue.code in {"structure", "value", "required", "not-supported", "too-long", "invalid"}
        assert issue.expression.startswith("Patient") or issue.expression == "$"
