"""The FHIRPath subset compiler: coverage of the R4 core expressions, semantics, a hand-compiled write path."""

from __future__ import annotations

import pytest

from conformance.packages import PackageSet
from conformance.typemodel import TypeModel
from gateway.search.definitions import SUPPORTED_TYPES, SearchParameterRegistry
from gateway.search.expressions import (
    UnsupportedExpressionError,
    compile_expression,
    parse_expression,
    reference_target_type,
)


@pytest.fixture(scope="module")
def model(packages: PackageSet) -> TypeModel:
    return TypeModel.from_packages(packages)


def values(expression: str, resource: dict, model: TypeModel) -> list:
    compiled = compile_expression(expression, resource["resourceType"], model)
    assert compiled.hand_compiled, expression
    return compiled(resource)


def test_hand_compiler_covers_the_r4_core_expressions(packages: PackageSet, model: TypeModel) -> None:
    """Every supported-type core expression, for every base type, is hand-compiled (the only exception is
    `Patient.deceased.exists() and Patient.deceased != false`, now handled by the boolean operators)."""
    total = fallback = 0
    for parameter in packages.of_type("SearchParameter"):
        if parameter.get("type") not in SUPPORTED_TYPES or not parameter.get("expression"):
            continue
        for base in parameter.get("base", []):
            resource_type = "Patient" if base in {"Resource", "DomainResource"} else base
            total += 1
            if not compile_expression(parameter["expression"], resource_type, model).hand_compiled:
                fallback += 1
    assert total > 1300
    assert fallback == 0


def test_choice_types_select_the_json_property(model: TypeModel) -> None:
    observation = {
        "resourceType": "Observation",
        "valueQuantity": {"value": 5},
        "effectiveDateTime": "2020",
        "component": [{"valueQuantity": {"value": 6}}, {"valueString": "x"}],
    }
    assert values("(Observation.value as Quantity)", observation, model) == [("Quantity", {"value": 5})]
    assert values("Observation.value.as(Quantity)", observation, model) == [("Quantity", {"value": 5})]
    assert values("Observation.component.value.ofType(Quantity)", observation, model) == [
        ("Quantity", {"value": 6})
    ]
    assert values("(Observation.value as CodeableConcept)", observation, model) == []
    assert values("Observation.effective", observation, model) == [("dateTime", "2020")]
    condition = {"resourceType": "Condition", "onsetAge": {"value": 3}}
    assert values("Condition.onset.as(Age) | Condition.onset.as(Range)", condition, model) == [
        ("Age", {"value": 3})
    ]


def test_where_resolve_is_filters_on_the_reference_target(model: TypeModel) -> None:
    observation = {"resourceType": "Observation", "subject": {"reference": "Group/g1"}}
    assert values("Observation.subject.where(resolve() is Patient)", observation, model) == []
    observation["subject"] = {"reference": "http://other.org/fhir/Patient/p1/_history/2"}
    assert values("Observation.subject.where(resolve() is Patient)", observation, model) == [
        ("Reference", {"reference": "http://other.org/fhir/Patient/p1/_history/2"})
    ]
    assert reference_target_type({"type": "Patient", "identifier": {"value": "1"}}) == "Patient"
    assert reference_target_type({"reference": "#contained"}) is None


def test_where_element_equals_literal_and_extension_url(model: TypeModel) -> None:
    patient = {
        "resourceType": "Patient",
        "telecom": [{"system": "phone", "value": "1"}, {"system": "email", "value": "a@b"}],
        "extension": [
            {"url": "http://x/other", "valueString": "no"},
            {
                "url": "http://hl7.org/fhir/StructureDefinition/patient-mothersMaidenName",
                "valueString": "Jones",
            },
        ],
    }
    assert values("Patient.telecom.where(system='email')", patient, model) == [
        ("ContactPoint", {"system": "email", "value": "a@b"})
    ]
    found = values(
        "Patient.extension('http://hl7.org/fhir/StructureDefinition/patient-mothersMaidenName')",
        patient,
        model,
    )
    assert [node[1]["valueString"] for node in found] == ["Jones"]


def test_union_branches_for_other_types_are_dropped(model: TypeModel) -> None:
    expression = "Practitioner.name.given | Patient.name.given"
    patient = {"resourceType": "Patient", "name": [{"given": ["A", "B"]}]}
    assert values(expression, patient, model) == [("string", "A"), ("string", "B")]
    assert values(expression, {"resourceType": "Practitioner"}, model) == []


def test_indexer_first_and_boolean_operators(model: TypeModel) -> None:
    bundle = {
        "resourceType": "Bundle",
        "entry": [
            {"resource": {"resourceType": "Composition", "id": "c"}},
            {"resource": {"resourceType": "Patient", "id": "p"}},
        ],
    }
    assert values("Bundle.entry[0].resource", bundle, model) == [
        ("Resource", {"resourceType": "Composition", "id": "c"})
    ]
    assert values("Bundle.entry.resource.first()", bundle, model)[0][1]["id"] == "c"
    deceased = "Patient.deceased.exists() and Patient.deceased != false"
    assert values(deceased, {"resourceType": "Patient"}, model) == [("boolean", False)]
    assert values(deceased, {"resourceType": "Patient", "deceasedBoolean": False}, model) == [
        ("boolean", False)
    ]
    assert values(deceased, {"resourceType": "Patient", "deceasedDateTime": "2020"}, model) == [
        ("boolean", True)
    ]


def test_resource_root_paths(model: TypeModel) -> None:
    patient = {"resourceType": "Patient", "id": "p1", "meta": {"profile": ["http://a", "http://b"]}}
    assert values("Resource.id", patient, model) == [("id", "p1")]
    assert values("Resource.meta.profile", patient, model) == [
        ("canonical", "http://a"),
        ("canonical", "http://b"),
    ]


def test_outside_the_subset_falls_back_to_fhirpathpy(model: TypeModel) -> None:
    with pytest.raises(UnsupportedExpressionError):
        parse_expression("Patient.name.given + 'x'")  # arithmetic is not in the subset
    assert not compile_expression("Patient.name.select(given | family)", "Patient", model).hand_compiled
    compiled = compile_expression("Patient.name.given.count()", "Patient", model)
    assert not compiled.hand_compiled
    assert compiled({"resourceType": "Patient", "name": [{"given": ["a", "b"]}]}) == [(None, 2)]


@pytest.mark.parametrize("resource_type", ["Patient", "Observation", "Encounter", "Slot", "Schedule"])
def test_the_write_path_indexes_without_the_fhirpath_interpreter(
    registry: SearchParameterRegistry, resource_type: str
) -> None:
    """Every index expression of the hot write-path types is hand-compiled (the interpreter fallback is ~100x
    slower); the time per resource is measured in bench/rest.py (create), not asserted here."""
    indexed = registry.indexed_params(resource_type)
    assert indexed
    assert [p.code for p in indexed if p.extractor is None or not p.extractor.hand_compiled] == []
