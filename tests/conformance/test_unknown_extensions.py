"""Extensions whose definition is not loaded: an error by default (as the HL7 validator), a warning on request
(the gateway, which cannot check definitions it has not loaded) — but never for a modifier extension."""

from __future__ import annotations

from functools import cache

from conformance.validator import Validator

UNKNOWN = "http://example.nl/fhir/StructureDefinition/not-loaded"


@cache
def validators() -> tuple[Validator, Validator]:
    strict = Validator()
    return strict, Validator(strict.packages, unknown_extensions="warning")


def found(validator: Validator, resource: dict) -> list[tuple[str, str]]:
    return [(i.severity, i.expression) for i in validator.validate_issues(resource) if i.rule == "extension"]


def test_unknown_extension_is_an_error_by_default_and_a_warning_on_request() -> None:
    patient = {"resourceType": "Patient", "extension": [{"url": UNKNOWN, "valueString": "x"}]}
    strict, lenient = validators()
    assert found(strict, patient) == [("error", "Patient.extension[0]")]
    assert found(lenient, patient) == [("warning", "Patient.extension[0]")]


def test_unknown_modifier_extension_stays_an_error() -> None:
    patient = {"resourceType": "Patient", "modifierExtension": [{"url": UNKNOWN, "valueString": "x"}]}
    assert found(validators()[1], patient) == [("error", "Patient.modifierExtension[0]")]
