"""Patient compartment (from the core CompartmentDefinition), labels, categories, query-shape checks."""

from __future__ import annotations

import pytest

from gateway.consent.compartment import PatientCompartment, patient_id
from gateway.consent.describe import Describer
from gateway.consent.query_safety import unsafe_search

BASE = "http://gw/fhir"


@pytest.fixture(scope="module")
def describer(packages, policy) -> Describer:  # type: ignore[no-untyped-def]
    compartment = PatientCompartment.from_definitions(packages, policy.parameters.extra_compartment_paths, BASE)
    return Describer(compartment, policy.parameters)


def test_compartment_paths_come_from_the_definitions(describer: Describer) -> None:
    paths = describer.compartment.paths
    assert ("subject",) in paths["Condition"]  # from `Condition.subject.where(resolve() is Patient)`
    assert ("patient",) in paths["AllergyIntolerance"] and ("recorder",) in paths["AllergyIntolerance"]
    assert ("for",) in paths["Task"]  # added by the policy: R4 leaves Task out
    assert "Organization" not in paths


@pytest.mark.parametrize(
    ("reference", "expected"),
    [
        ("Patient/1", "1"),
        (f"{BASE}/Patient/1", "1"),
        ("Patient/1/_history/3", "1"),
        ("http://elsewhere/fhir/Patient/1", "http://elsewhere/fhir/Patient/1"),
        ("Practitioner/1", None),
        ("RelatedPatient/1", None),
        (None, None),
    ],
)
def test_patient_id(reference: object, expected: str | None) -> None:
    assert patient_id(reference, BASE) == expected


def test_describe_observation(describer: Describer) -> None:
    described = describer.describe(
        {
            "resourceType": "Observation",
            "id": "o1",
            "status": "final",
            "subject": {"reference": "Patient/p1"},
            "performer": [{"reference": "Patient/p2"}, {"reference": "Practitioner/x"}],
            "meta": {
                "security": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "PSY"}],
                "tag": [{"system": "http://nictiz.nl/fhir/NamingSystem/organization-type", "code": "G5"}],
            },
            "contained": [{"resourceType": "Medication", "id": "m", "meta": {"security": [{"code": "R"}]}}],
        }
    )
    assert described.patients == {"p1", "p2"}
    assert described.labels == {"PSY", "R"}
    assert (described.data_category, described.holder_category, described.status) == ("results", "G5", "final")


def test_describe_consent_category_by_scope(describer: Describer) -> None:
    directive = {
        "resourceType": "Consent",
        "scope": {"coding": [{"code": "treatment"}]},
        "patient": {"reference": "Patient/p1"},
    }
    assert describer.describe(directive).data_category == "treatment-directives"


def test_non_patient_and_unattributed(describer: Describer) -> None:
    assert not describer.describe({"resourceType": "Organization", "id": "o"}).patient_data
    binary = describer.describe({"resourceType": "Binary", "id": "b"})
    assert binary.patient_data and not binary.patients
    assert describer.patient_data_type("Observation") and not describer.patient_data_type("Slot")


KNOWN = {("Observation", "code"), ("Observation", "subject"), ("Observation", "performer"), ("Observation", "patient")}


def _refusal(resource_type: str | None, params: list[tuple[str, str]]):  # type: ignore[no-untyped-def]
    return unsafe_search(
        resource_type,
        params,
        lambda t: t in {None, "Observation", "Patient"},
        lambda t, code: (t, code) in KNOWN,
    )


@pytest.mark.parametrize(
    ("resource_type", "params", "status"),
    [
        ("Observation", [("code", "x"), ("_count", "10"), ("_include", "Observation:subject")], None),
        ("Observation", [("subject:Patient.identifier", "bsn|1")], None),
        ("Observation", [("patient.name", "Jansen")], None),
        ("Observation", [("_has:Condition:subject:code", "x")], 403),
        ("Observation", [("performer:Patient.name", "x")], 403),
        ("Observation", [("subject.organization.name", "x")], 403),
        ("Observation", [("bogus", "1")], 400),
        ("Observation", [("_summary", "count")], 403),
        (None, [("code", "x")], 403),
        (None, [("_type", "Observation,Slot")], 403),
        (None, [("_type", "Slot")], None),
        ("Slot", [("bogus", "1"), ("_has:x:y:z", "1")], None),  # not patient data: the search layer decides
    ],
)
def test_query_shapes(resource_type: str | None, params: list[tuple[str, str]], status: int | None) -> None:
    refusal = _refusal(resource_type, params)
    assert (refusal.status if refusal else None) == status


SHAPED = [
    {"resourceType": "Observation", "id": "o1", "status": "final", "subject": {"reference": "Patient/p1"}},
    {"resourceType": "Observation", "id": "o2", "subject": {"reference": f"{BASE}/Patient/p1"},
     "performer": [{"reference": "Patient/p2"}, [{"reference": "Patient/nested"}], "junk"],
     "meta": {"security": [{"code": "PSY"}, {"code": 3}, "x"], "tag": [
         {"system": "http://nictiz.nl/fhir/NamingSystem/organization-type", "code": "G5"},
         {"system": "http://fhir.nl/fhir/NamingSystem/ura", "code": "00001111"}]}},
    {"resourceType": "Observation", "id": "o3", "subject": {"reference": "http://elsewhere/Patient/9"},
     "contained": [{"resourceType": "Patient", "id": "c"}, {"resourceType": "Medication", "meta": {"security": [
         {"code": "R"}]}}, "not a resource"]},
    {"resourceType": "Condition", "id": 7, "subject": {"reference": "Patient/p1"},
     "clinicalStatus": {"coding": [{"code": "active"}]}},
    {"resourceType": "Consent", "id": "c1", "scope": {"coding": [{"code": "treatment"}]},
     "patient": {"reference": "Patient/p1"}, "status": "active"},
    {"resourceType": "Task", "id": "t1", "for": {"reference": "Patient/p3"}, "meta": "not a dict"},
    {"resourceType": "Patient", "id": "p1"},
    {"resourceType": "Patient"},
    {"resourceType": "Organization", "id": "org"},
    {"resourceType": "Binary", "id": ""},
    {"id": "no-type"},
]


@pytest.mark.parametrize("resource", SHAPED)
def test_shape_is_the_shape_of_the_description(describer: Describer, resource: dict) -> None:  # type: ignore[type-arg]
    """The consent stage keys its decisions on `shape` without describing; it must agree with `describe`."""
    described = describer.describe(resource)
    shape = describer.shape(resource)
    assert shape == described.shape == _reference_shape(describer, resource)
    assert type(described).from_shape(shape, described.id) == described


def test_shape_reads_every_compartment_path(describer: Describer) -> None:
    shape = describer.shape(SHAPED[1])
    assert shape[1] == {"p1", "p2"}  # absolute under the base and relative; a nested list is not a reference
    assert shape[3] == {"PSY"} and (shape[5], shape[6]) == ("G5", "00001111")
    assert describer.shape(SHAPED[2])[1] == {"http://elsewhere/Patient/9", "c"}


def _reference_shape(describer: Describer, resource: dict) -> tuple:  # type: ignore[type-arg]
    """The description as written before the fast path (generic path walk, every helper called)."""
    from gateway.consent import describe as module
    from gateway.consent.compartment import _walk

    def patients_of(node: dict) -> set[str]:  # type: ignore[type-arg]
        if node.get("resourceType") == "Patient" and isinstance(node.get("id"), str):
            return {node["id"]}
        found = set()
        for path in describer.compartment.paths.get(str(node.get("resourceType")), ()):
            for item in _walk(node, path):
                patient = patient_id(item.get("reference") if isinstance(item, dict) else None, BASE)
                if patient:
                    found.add(patient)
        return found

    resource_type = str(resource.get("resourceType", ""))
    patients = patients_of(resource)
    for contained in resource.get("contained") or ():
        if isinstance(contained, dict):
            patients |= patients_of(contained)
            if contained.get("resourceType") == "Patient":
                patients.add(str(contained.get("id", "#contained")))
    return (resource_type, frozenset(patients),
            bool(patients) or resource_type in describer.params.always_patient_data_types,
            module.security_labels(resource), describer.data_category(resource), *module._holder(resource),
            module._status(resource))
