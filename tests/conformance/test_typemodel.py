"""The type model compiled from the R4 core StructureDefinition snapshots."""

from __future__ import annotations

import pickle

import pytest

from conformance.packages import PackageSet, default_package_paths
from conformance.typemodel import TypeModel, default_model


@pytest.fixture(scope="module")
def model() -> TypeModel:
    return default_model()


def test_resource_types_come_from_the_definitions(model: TypeModel) -> None:
    assert len(model.resource_types) == 146  # R4 4.0.1: concrete resources (not Resource/DomainResource)
    assert {"Patient", "Bundle", "Parameters", "Observation"} <= model.resource_types
    assert "DomainResource" not in model.resource_types
    assert model.resource("HumanName") is None


def test_patient_children_in_definition_order(model: TypeModel) -> None:
    patient = model.type("Patient")
    assert patient is not None and patient.kind == "resource"
    names = list(patient.elements)
    assert names[:8] == [
        "id", "meta", "implicitRules", "language", "text", "contained", "extension", "modifierExtension"
    ]
    orders = [element.order for element in patient.elements.values()]
    assert orders == sorted(orders)
    assert names.index("name") < names.index("birthDate") < names.index("contact")


def test_cardinality_kinds_and_types(model: TypeModel) -> None:
    patient = model.type("Patient")
    assert patient is not None
    assert patient.elements["name"].many and patient.elements["name"].type == "HumanName"
    assert not patient.elements["gender"].many and patient.elements["gender"].kind == "primitive"
    assert patient.elements["contained"].kind == "resource"
    assert patient.elements["contact"].kind == "backbone" and patient.elements["contact"].type == "Patient.contact"
    assert patient.elements["id"].type == "id"  # Resource.id: System.String in the snapshot, `id` in the spec
    human_name = model.type("HumanName")
    assert human_name is not None and human_name.elements["given"].many


def test_choice_types_expand_to_json_names(model: TypeModel) -> None:
    observation = model.type("Observation")
    assert observation is not None
    value_quantity = observation.elements["valueQuantity"]
    assert value_quantity.type == "Quantity" and value_quantity.choice == "value"
    assert observation.elements["effectiveDateTime"].type == "dateTime"
    assert "valueQuantity" in observation.choices["value"] and "valueString" in observation.choices["value"]
    assert value_quantity.order == observation.elements["valueString"].order
    extension = model.type("Extension")
    assert extension is not None and len(extension.choices["value"]) == 50


def test_content_reference_and_nested_resources(model: TypeModel) -> None:
    item = model.type("Questionnaire.item")
    assert item is not None and item.elements["item"].type == "Questionnaire.item"
    assert item.elements["item"].kind == "backbone" and item.elements["item"].many
    entry = model.type("Bundle.entry")
    assert entry is not None and entry.elements["resource"].kind == "resource"
    assert entry.elements["link"].type == "Bundle.link"
    parameter = model.type("Parameters.parameter")
    assert parameter is not None and parameter.elements["resource"].type == "Resource"
    assert parameter.elements["part"].type == "Parameters.parameter"


def test_xml_attributes_and_xhtml(model: TypeModel) -> None:
    extension = model.type("Extension")
    assert extension is not None
    assert [a.name for a in extension.attributes] == ["id", "url"]
    assert extension.elements["url"].type == "uri"
    coding = model.type("Coding")
    assert coding is not None and [a.name for a in coding.attributes] == ["id"]
    narrative = model.type("Narrative")
    assert narrative is not None and narrative.elements["div"].xhtml
    assert "{http://www.w3.org/1999/xhtml}div" in narrative.by_tag
    patient = model.type("Patient")
    assert patient is not None and not patient.attributes  # Resource.id is an element, not an attribute


@pytest.mark.parametrize(
    ("name", "json_type"),
    [
        ("boolean", "boolean"), ("integer", "integer"), ("positiveInt", "integer"), ("unsignedInt", "integer"),
        ("decimal", "decimal"), ("string", "string"), ("code", "string"), ("date", "string"),
        ("instant", "string"), ("base64Binary", "string"),
    ],
)
def test_primitive_json_types_follow_the_base_chain(model: TypeModel, name: str, json_type: str) -> None:
    info = model.type(name)
    assert info is not None and info.kind == "primitive" and info.json_type == json_type


def test_primitive_regexes_from_the_definitions(model: TypeModel) -> None:
    id_type = model.type("id")
    assert id_type is not None and id_type.regex is not None
    assert id_type.regex.pattern == r"[A-Za-z0-9\-\.]{1,64}"
    string = model.type("string")
    assert string is not None and string.max_length == 1048576
    assert string.regex is not None and string.regex.fullmatch("a\u00a0b")  # \S is not Unicode-aware in the SD


def test_model_is_cached_per_package_set_and_pickles() -> None:
    packages = PackageSet.from_paths(default_package_paths())
    first = TypeModel.from_packages(packages)
    assert TypeModel.from_packages(packages) is first
    copy = pickle.loads(pickle.dumps(first))
    assert copy.types.keys() == first.types.keys()
    assert copy.type("Patient").elements.keys() == first.type("Patient").elements.keys()  # type: ignore[union-attr]
