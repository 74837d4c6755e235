"""The gateway's profile validator: one `conformance.validator.Validator` per process over the loaded packages,
warmed at start-up, used by the write checks (every create, update and transaction entry), by `$validate` and by
ingestion. Issues come back in the FHIR layer's form (`gateway.fhir.errors.Issue`)."""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import Any

from conformance.packages import PackageSet
from conformance.structure import check_structure
from conformance.validator import Issue as ValidationIssue
from conformance.validator import Validator
from gateway.fhir.errors import Issue

# A small resource that touches the base walk, bindings and invariants, so the definitions they need are compiled
# before the first request rather than during it.
_WARM_UP = {
    "resourceType": "Patient",
    "identifier": [{"system": "http://fhir.nl/fhir/NamingSystem/bsn", "value": "999911120"}],
    "name": [{"family": "Jansen", "given": ["Jan"]}],
    "gender": "male",
    "birthDate": "1970-01-01",
}


class ProfileValidation:
    def __init__(self, packages: PackageSet, type_model: Any = None) -> None:
        # definitions the gateway has not loaded cannot be checked: a warning, like a claimed profile not loaded
        self.validator = Validator(packages, unknown_extensions="warning", type_model=type_model)
        # the validator's structure check, for the write checks to share: a caller that ran it already hands its
        # result to `validation_issues` (ingestion checks each resource's structure once, not twice)
        self.structure_checker = partial(check_structure, model=type_model)

    def warm(self, resource_types: Sequence[str] = ("Patient", "Observation", "Condition", "Encounter")) -> None:
        """Compile the base definitions of the most written types and the terminology behind them."""
        self.validator.validate_issues(_WARM_UP)
        for resource_type in resource_types:
            self.validator.registry.base(resource_type)

    def knows_profile(self, url: str) -> bool:
        return self.validator.registry.profile(url) is not None

    def validation_issues(self, resource: dict[str, Any], profiles: Sequence[str] = (),
                          structure: Sequence[Any] | None = None) -> list[ValidationIssue]:
        """The validator's own issues: the base spec, every profile in `meta.profile`, and `profiles`.
        `structure`: what `structure_checker` found for `resource`, when the caller ran it already."""
        return self.validator.validate_issues(resource, profiles, structure=structure)

    def outcome(self, resource: dict[str, Any], profiles: Sequence[str] = ()) -> dict[str, Any]:
        """An OperationOutcome in the style of the HL7 validator (details.text, expression; 'All OK' when clean)."""
        return self.validator.validate(resource, profiles)

    def __call__(self, resource: dict[str, Any]) -> list[Issue]:
        """The write-check hook: base spec and claimed profiles; a claimed profile that is not loaded is a warning."""
        return [as_fhir_issue(issue) for issue in self.validation_issues(resource)]


def as_fhir_issue(issue: ValidationIssue, prefix: str = "") -> Issue:
    expression = issue.expression
    return Issue(issue.severity, issue.code, f"{prefix}{issue.message}", [expression] if expression else [])
