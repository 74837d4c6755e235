"""Output validation of an ingested message: every translated resource against the base spec and the profiles it
claims in `meta.profile` (the nl-core profiles for HAP output), with the gateway's profile validator. A claimed
profile that is not on the package path (ZCC_PACKAGE_PATH) is reported as a warning, never silently passed.

The output is then written through the FHIR pipeline, whose write checks validate every resource again with the
same validator, and check its structure with the write checks' own structure checker. `prevalidated_write_checks`
lets that second pass reuse both results for a resource whose content is exactly what was checked here (both are a
function of the content), instead of computing them again inside the write transaction, where every moment counts
twice (on SQLite the transaction holds the database's single write lock: another ingestion process waits for it).
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
Structured = dict[bytes, list[Any]]  # canonical JSON of a resource -> the write checks' structure checker's issues


class OutputValidation:
    """Validates ingestion output, remembering the issues of the last `size` distinct resources by content: the
    same patient, professionals, organisations and unchanged statements come back message after message, and
    validation is a function of the content (and of the loaded definitions: one cache per validator).

    With a `structure_checker` (the write checks' own), `structure(resource)` runs it the same way: once per
    content, remembered, so that the write transaction can reuse the result (`prevalidated_write_checks`)."""

    def __init__(self, validation: ProfileValidation, size: int = 2048, structure_checker: Any = None) -> None:
        self.validation = validation
        self.size = size
        self.structure_checker = structure_checker
        # the validator's own structure check is this one: run once, for both (`issues` hands it the result)
        self._shared_structure = structure_checker is not None and structure_checker is getattr(
            validation, "structure_checker", None)
        self._issues: OrderedDict[bytes, list[ValidationIssue]] = OrderedDict()
        self._structure: OrderedDict[bytes, list[Any]] = OrderedDict()
        self._lock = threading.Lock()

    def issues(self, resource: dict[str, Any]) -> tuple[bytes, list[ValidationIssue]]:
        """(the resource's content key, the validator's issues for it)."""
        content = _content(resource)
        with self._lock:
            found = self._issues.get(content)
            if found is not None:
                self._issues.move_to_end(content)
                return content, found
        structure = self.structure(resource, content) if self._shared_structure else None
        found = self.validation.validation_issues(resource, structure=structure)
        if self.size > 0:
            with self._lock:
                self._issues[content] = found
                while len(self._issues) > self.size:
                    self._issues.popitem(last=False)
        return content, found

    def structure(self, resource: dict[str, Any], content: bytes | None = None) -> list[Any] | None:
        """The structure checker's issues for `resource` (whose content key is `content`, when known); None
        without a structure checker, or when it fails (left to the write check, as if not asked here)."""
        if self.structure_checker is None:
            return None
        if content is None:
            content = _content(resource)
        with self._lock:
            found = self._structure.get(content)
            if found is not None:
                self._structure.move_to_end(content)
                return found
        try:
            found = list(self.structure_checker(resource))
        except Exception:  # noqa: BLE001 - not answered here: the write check runs the checker itself, and fails there
            return None
        if self.size > 0:
            with self._lock:
                self._structure[content] = found
                while len(self._structure) > self.size:
                    self._structure.popitem(last=False)
        return found


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


def check_structure(resources: list[dict[str, Any]], output: OutputValidation) -> Structured:
    """The issues of `output`'s structure checker for each resource, keyed on its content (empty without one)."""
    structured: Structured = {}
    if output.structure_checker is None:
        return structured
    for resource in resources:
        content = _content(resource)
        found = output.structure(resource, content)
        if found is not None:
            structured[content] = found
    return structured


def structure_checker_of(checks: Any, validation: ProfileValidation) -> Any:
    """The structure checker that `prevalidated_write_checks(checks, validation, ...)` can answer for (the write
    checks' own, when they check structure and use `validation`); None otherwise."""
    if not isinstance(checks, WriteChecks) or checks.validator is not validation or checks.mode == "off":
        return None
    return checks.structure_checker


def prevalidated_write_checks(checks: Any, validation: ProfileValidation, validated: Validated,
                              lenient: bool = False, structured: Structured | None = None,
                              structured_by: Any = None) -> Any:
    """The gateway's write checks with its profile validation answered from `validated` for a resource with exactly
    the content validated there, and its structure check answered from `structured` likewise when `structured_by`
    (the checker that produced `structured`) is the write checks' own structure checker; any other resource (or
    other content) is checked as usual. The type and id checks are unchanged; the validation mode too, except that
    a lenient ingestion (profile errors accepted as warnings) is not refused by a strict write. Only when the write
    checks use `validation` itself."""
    if not isinstance(checks, WriteChecks) or checks.validator is not validation:
        return checks
    mode = "lenient" if lenient and checks.mode == "strict" else checks.mode
    structure_checker = checks.structure_checker
    if structured and structure_checker is not None and structured_by is structure_checker:
        structure_checker = _answered_structure(structure_checker, structured)

    def validator(resource: dict[str, Any]) -> list[Issue]:
        found = validated.get(_content(resource))
        if found is None:
            return validation(resource)
        return [as_fhir_issue(issue) for issue in found]

    return WriteChecks(checks.resource_types, structure_checker, validator, mode)


def _answered_structure(check: Any, structured: Structured) -> Any:
    """`check` answered from `structured` for content found there."""
    def structure_checker(resource: dict[str, Any]) -> list[Any]:
        found = structured.get(_content(resource))
        return check(resource) if found is None else found

    return structure_checker


def _content(resource: dict[str, Any]) -> bytes:
    return fhirjson.dumps(resource)
