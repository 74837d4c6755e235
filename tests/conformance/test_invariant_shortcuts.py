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
from conformance.validator.checks.core_invariants import _PRIMITIVE_SHORTCUTS, _SHORTCUTS

CODING = {"coding": [{"system": "http://snomed.info/sct", "code": "1"}]}
VERIFICATION = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
SOAP = "http://nictiz.nl/fhir/StructureDefinition/ext-SOAPReport.SOAPLineCode"
FLAG_DETAIL = "http://hl7.org/fhir/StructureDefinition/flag-detail"
ALLERGY_VERIFICATION = "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification"
NAME = "http://hl7.org/fhir/StructureDefinition/humanname-"
OWN_PREFIX = {"url": NAME + "own-prefix", "valueString": "van"}
OWN_NAME = {"url": NAME + "own-name", "valueString": "Berg"}
PARTNER_PREFIX = {"url": NAME + "partner-prefix", "valueString": "de"}
PARTNER_NAME = {"url": NAME + "partner-name", "valueString": "Jong"}
# for each element an expression reads: the values it may take in the samples (None: absent)
VALUES: dict[str, list[Any]] = {
    "value": [None, "x", {"value": 1}],
    "valueQuantity": [None, {"value": 1, "unit": "kg"}],
    "_value": [None, {"extension": [{"url": "u", "valueString": "s"}]}],
    "component": [None, [{"code": CODING, "valueQuantity": {"value": 1}}], []],
    "hasMember": [None, [{"reference": "Observation/1"}]],
    "dataAbsentReason": [None, CODING],
    "verificationStatus": [None, CODING, {"coding": [{"system": VERIFICATION, "code": "entered-in-error"}]},
                           {"coding": [{"system": ALLERGY_VERIFICATION, "code": "entered-in-error"}]},
                           {"coding": [{"system": VERIFICATION, "code": "Entered-in-error"}, {"code": "x"}]},
                           {"coding": [{"system": VERIFICATION + " ", "code": "entered-in-error"}]},
                           {"coding": [{"system": VERIFICATION, "_code": {"extension": []}}]},
                           {"coding": [{"system": [VERIFICATION], "code": "entered-in-error"}]}, {"text": "t"}],
    "extension": [None, [{"url": SOAP, "valueCodeableConcept": CODING}], [{"url": "other", "valueString": "s"}],
                  [{"url": [SOAP]}], {"url": SOAP}, [{"url": FLAG_DETAIL, "valueString": "d"}],
                  [{"url": [FLAG_DETAIL]}]],
    "clinicalStatus": [None, CODING, {}],
    "abatement": [None, "2020"],
    "abatementDateTime": [None, "2020-01-01"],
    "start": [None, "2020-01-01", "2021", ["x"], "2020-01-01T10:00:00+01:00", "2020-01-01T10:00:00.5+02:00",
              "2020-13-01", "2020-01-01T10:00:00"],
    "_start": [None, {"extension": [{"url": "u", "valueString": "s"}]}],
    "end": [None, "2019-01-01", "2021-02", "2020-01-02", "2020-01-01T09:30:00Z", "2020-01-01T08:00:00.25Z",
            "2020-01-01T10:00:00", "2020-01-01T10:00:00.5+01:00", "2020-01-01T11:00:00+02:00",
            "2020-01-01T09:00:00+01:00"],
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
    "valueString": [None, "x", ""],
    "family": [None, "Berg", ["Berg"]],
    "_family": [None, {"extension": [OWN_PREFIX]}, {"extension": [OWN_PREFIX, OWN_NAME]}, {"extension": [OWN_NAME]},
                {"extension": [PARTNER_PREFIX]}, {"extension": [PARTNER_NAME, PARTNER_PREFIX]},
                {"extension": [{"url": [NAME + "own-prefix"]}]}, {"extension": OWN_PREFIX},
                [{"extension": [OWN_PREFIX]}]],
    "given": [None, ["Jan"]],
    "use": [None, "home", "work", ["home"], ""],
    "duration": [None, 1, -1],
    "durationUnit": [None, "h"],
    "period": [None, 1, -1],
    "periodUnit": [None, "d"],
    "periodMax": [None, 2],
    "durationMax": [None, 2],
    "countMax": [None, 3],
    "count": [None, 1],
    "offset": [None, 10],
    "when": [None, ["C"], ["MORN"]],
    "timeOfDay": [None, ["10:00:00"]],
}


def _type_for(expression: str) -> str:
    if "humanname" in expression or "EN-qualifier" in expression:
        return "HumanName"
    if "allergyintolerance" in expression:
        return "AllergyIntolerance"
    if "flag-detail" in expression:
        return "Flag"
    if "use = 'home'" in expression:
        return "ContactPoint"
    if any(word in expression for word in ("duration", "period", "countMax", "offset", "timeOfDay")):
        return "Timing"
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
             if re.search(rf"\b{re.sub(r'(Quantity|DateTime|String)$', '', name.lstrip('_'))}\b", expression)]
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
                                                                          "Organization", "Flag",
                                                                          "AllergyIntolerance") else None
        focus = resource if resource is not None else ResourceNode.create_node(sample, type_name)
        environment = Environment(resource=resource or sample, root_resource=resource or sample)
        assert compiled.is_true(focus, environment), (expression, sample)
    assert decided > 0


def test_a_shortcut_never_decides_on_anything_but_an_object() -> None:
    for shortcut in _SHORTCUTS.values():
        assert not shortcut("text") and not shortcut(None) and not shortcut([{}])


@pytest.mark.parametrize("expression", sorted(_PRIMITIVE_SHORTCUTS))
def test_a_primitive_shortcut_holds_only_where_the_invariant_does(expression: str) -> None:
    compiled = compile_expression(expression)
    shortcut = _PRIMITIVE_SHORTCUTS[expression]
    decided = 0
    for value, extra in itertools.product([None, "Berg", "", 1, True, ["Berg"], {"value": "Berg"}], VALUES["_family"]):
        if not shortcut(value):
            continue
        decided += 1
        for type_name in ("string", "code", "dateTime"):
            focus = ResourceNode.create_node(value, type_name, extra)
            assert compiled.is_true(focus, Environment()), (expression, value, extra, type_name)
    assert decided > 0
    assert not shortcut(None) and not shortcut({"value": "Berg"}) and not shortcut([{}])


def test_per_1_is_decided_for_dates_and_for_date_times_in_one_zone() -> None:
    per_1 = _SHORTCUTS["start.hasValue().not() or end.hasValue().not() or (start <= end)"]
    assert per_1({"start": "2020-01-01", "end": "2020-01-02"})
    assert per_1({"start": "2020-01-01T10:00:00+01:00", "end": "2020-01-01T10:00:00.5+01:00"})
    assert per_1({"start": "2020-01-01T10:00:00.5+02:00", "end": "2020-01-01T11:00:00+02:00"})
    assert not per_1({"start": "2020-01-01T10:00:00+01:00", "end": "2020-01-01T09:00:00+01:00"})  # fails: the engine
    assert not per_1({"start": "2020-01-01T10:00:00+01:00", "end": "2020-01-01T09:30:00Z"})  # other zones: the engine
    assert not per_1({"start": "2020-01-01", "end": "2020-01-01T10:00:00+01:00"})  # other precisions: the engine
