"""The invariants the validator decides by a look at the focus (`core_invariants.HOLDS_WHEN`): wherever a shortcut
says an invariant holds, the FHIRPath engine evaluates it to true, on every combination of the elements the
expression reads being absent, empty-ish, present or malformed."""

from __future__ import annotations

import itertools
import re
from typing import Any

import pytest
from fhirpathpy.engine.nodes import ResourceNode

from conformance.fhirpath import Environment, compile_expression
from conformance.validator.checks.core_invariants import _SHORTCUTS

CODING = {"coding": [{"system": "http://snomed.info/sct", "code": "1"}]}
VERIFICATION = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
SOAP = "http://nictiz.nl/fhir/StructureDefinition/ext-SOAPReport.SOAPLineCode"
# for each element an expression reads: the values it may take in the samples (None: absent)
VALUES: dict[str, list[Any]] = {
    "value": [None, "x", {"value": 1}],
    "valueQuantity": [None, {"value": 1, "unit": "kg"}],
    "_value": [None, {"extension": [{"url": "u", "valueString": "s"}]}],
    "component": [None, [{"code": CODING, "valueQuantity": {"value": 1}}], []],
    "hasMember": [None, [{"reference": "Observation/1"}]],
    "dataAbsentReason": [None, CODING],
    "verificationStatus": [None, CODING, {"coding": [{"system": VERIFICATION, "code": "entered-in-error"}]},
                           {"coding": [{"system": VERIFICATION, "code": "Entered-in-error"}, {"code": "x"}]},
                           {"coding": [{"system": VERIFICATION + " ", "code": "entered-in-error"}]},
                           {"coding": [{"system": VERIFICATION, "_code": {"extension": []}}]},
                           {"coding": [{"system": [VERIFICATION], "code": "entered-in-error"}]}, {"text": "t"}],
    "extension": [None, [{"url": SOAP, "valueCodeableConcept": CODING}], [{"url": "other", "valueString": "s"}],
                  [{"url": [SOAP]}], {"url": SOAP}],
    "clinicalStatus": [None, CODING, {}],
    "abatement": [None, "2020"],
    "abatementDateTime": [None, "2020-01-01"],
    "start": [None, "2020-01-01", "2021", ["x"]],
    "_start": [None, {"extension": [{"url": "u", "valueString": "s"}]}],
    "end": [None, "2019-01-01", "2021-02"],
    "code": [None, "kg", CODING],
    "system": [None, "http://unitsofmeasure.org", ["x"], ""],
    "text": [None, "t", {"status": "generated", "div": "<div>x</div>"}],
    "entry": [None, [{"reference": "Observation/1"}], []],
    "section": [None, [{"title": "s"}]],
    "emptyReason": [None, CODING],
    "comparator": [None, "<"],
    "low": [None, {"value": 1}],
    "high": [None, {"value": 2}, {}],
    "identifier": [None, [{"system": "http://fhir.nl/fhir/NamingSystem/ura", "value": "1"}], [], [{}],
                   {"value": "1"}, [None]],
    "name": [None, "Huisartsenpost", "", ["Huisartsenpost"], [""]],
}


def _type_for(expression: str) -> str:
    if "identifier" in expression:
        return "Organization"
    if "SOAPLineCode" in expression:
        return "Composition"
    if "component" in expression or "dataAbsentReason" in expression:
        return "Observation"
    if "Status" in expression or "abatement" in expression:
        return "Condition"
    if "start" in expression:
        return "Period"
    if "section" in expression or "emptyReason" in expression:
        return "Composition"
    if "low" in expression:
        return "Range"
    if expression.startswith("value"):
        return "ContactPoint"
    return "Quantity"


def _samples(expression: str) -> list[dict[str, Any]]:
    names = [name for name in VALUES
             if re.search(rf"\b{re.sub(r'(Quantity|DateTime)$', '', name.lstrip('_'))}\b", expression)]
    samples = []
    for combination in itertools.product(*(VALUES[name] for name in names)):
        samples.append({name: value for name, value in zip(names, combination, strict=True) if value is not None})
    return samples


@pytest.mark.parametrize("expression", sorted(_SHORTCUTS))
def test_a_shortcut_holds_only_where_the_invariant_does(expression: str) -> None:
    compiled = compile_expression(expression)
    shortcut = _SHORTCUTS[expression]
    type_name = _type_for(expression)
    decided = 0
    for sample in _samples(expression):
        if not shortcut(sample):
            continue
        decided += 1
        resource = {"resourceType": type_name, **sample} if type_name in ("Observation", "Condition", "Composition",
                                                                          "Organization") else None
        focus = resource if resource is not None else ResourceNode.create_node(sample, type_name)
        environment = Environment(resource=resource or sample, root_resource=resource or sample)
        assert compiled.is_true(focus, environment), (expression, sample)
    assert decided > 0


def test_a_shortcut_never_decides_on_anything_but_an_object() -> None:
    for shortcut in _SHORTCUTS.values():
        assert not shortcut("text") and not shortcut(None) and not shortcut([{}])
