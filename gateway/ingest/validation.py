"""Output validation of an ingested message: every translated resource against the base spec and the profiles it
claims in `meta.profile` (the nl-core profiles for HAP output), with the gateway's profile validator. A claimed
profile that is not on the package path (ZCC_PACKAGE_PATH) is reported as a warning, never silently passed.

The output is then written through the FHIR pipeline, whose write checks validate every resource again with the
same validator. `prevalidated_write_checks` lets that second pass reuse the result for a resource whose content is
exactly what was validated here (validation is a function of the content), instead of validating it twice.
`OutputValidation` remembers recent results across messages, for the parts that repeat."""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

from conformance import fhirjson
from conformance.validator import Issue as ValidationIssue
from gateway.fhir.errors import Issue
from gateway.fhir.profile_validation import ProfileValidation, as_fhir_issue
from gateway.fhir.write_checks import WriteChecks

Validated = dict[bytes, list[ValidationIssue]]  # canonical JSON of a resource -> the validator's issues


class OutputValidation:
    """Validates ingestion output, remembering the issues of the last `size` distinct resources by content: the
    same patient, professionals, organisations and unchanged statements come back message after message, and
    validation is a function of the content (and of the loaded definitions: one cache per validator)."""

    def __init__(self, validation: ProfileValidation, size: int = 2048) -> None:
        self.validation = validation
        self.size = size
        self._issues: OrderedDict[bytes, list[ValidationIssue]] = OrderedDict()
        self._lock = threading.Lock()

    def issues(self, resource: dict[str, Any]) -> tuple[bytes, list[ValidationIssue]]:
        """(the resource's content key, the validator's issues for it)."""
        content = _content(resource)
        with self._lock:
            found = self._issues.get(content)
            if found is not None:
                self._issues.move_to_end(content)
                return content, found
        found = self.validation.validation_issues(resource)
        if self.size > 0:
            with self._lock:
                self._issues[content] = found
                while len(self._issues) > self.size:
                    self._issues.popitem(last=False)
        return content, found


def validate_output(resources: list[dict[str, Any]], validation: ProfileValidation | OutputValidation,
                    validated: Validated | None = None) -> list[Issue]:
    """Issues of every resource, located as `Bundle.entry[i].resource.<path>` and prefixed with the resource type.
    `validated`, when given, receives each resource's issues keyed on its content."""
    output = validation if isinstance(validation, OutputValidation) else OutputValidation(validation, size=0)
    issues: list[Issue] = []
    for index, resource in enumerate(resources):
        resource_type = resource["resourceType"]
        content, found_issues = output.issues(resource)
        if validated is not None:
            validated[content] = found_issues
        for found in found_issues:
            where = f"Bundle.entry[{index}].resource" + found.expression.removeprefix(resource_type)
            issues.append(Issue(found.severity, found.code, f"{resource_type}: {found.message}", [where]))
    return issues


def prevalidated_write_checks(checks: Any, validation: ProfileValidation, validated: Validated,
                              lenient: bool = False) -> Any:
    """The gateway's write checks with its profile validation answered from `validated` for a resource with exactly
    the content validated there; any other resource (or other content) is validated as usual. Every other check
    (type, id, structure) is unchanged; the validation mode too, except that a lenient ingestion (profile errors
    accepted as warnings) is not refused by a strict write. Only when the write checks use `validation` itself."""
    if not isinstance(checks, WriteChecks) or checks.validator is not validation:
        return checks
    mode = "lenient" if lenient and checks.mode == "strict" else checks.mode

    def validator(resource: dict[str, Any]) -> list[Issue]:
        found = validated.get(_content(resource))
        if found is None:
            return validation(resource)
        return [as_fhir_issue(issue) for issue in found]

    return WriteChecks(checks.resource_types, checks.structure_checker, validator, mode)


def _content(resource: dict[str, Any]) -> bytes:
    return fhirjson.dumps(resource)
