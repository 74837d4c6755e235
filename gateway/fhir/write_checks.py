"""Checks every resource passes before it is written: type and id rules of the REST spec, the base-spec
structure (conformance.structure) and, when loaded, profile validation (conformance.validator)."""

from __future__ import annotations

import re
from typing import Any

from gateway.fhir.errors import FhirError, Issue

ID_PATTERN = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")


def check_id(resource_id: str) -> None:
    if not ID_PATTERN.match(resource_id):
        raise FhirError(400, "invalid", f"'{resource_id}' is not a valid FHIR id ([A-Za-z0-9-.], 1-64 characters)")


class WriteChecks:
    def __init__(
        self, resource_types: frozenset[str], structure_checker: Any = None, validator: Any = None, mode: str = "strict"
    ) -> None:
        self.resource_types = resource_types
        self.structure_checker = structure_checker  # callable(resource) -> list of issues with severity/code/...
        self.validator = validator  # callable(resource) -> list[Issue]
        self.mode = mode

    def check(
        self, resource: dict[str, Any], url_type: str | None, url_id: str | None, require_id: bool
    ) -> list[Issue]:
        """Raise FhirError for anything that must not be written; return warnings otherwise."""
        resource_type = resource.get("resourceType")
        if resource_type not in self.resource_types:
            raise FhirError(
                400, "invalid", f"resourceType '{resource_type}' is not an R4 resource type", ["resourceType"]
            )
        if url_type is not None and resource_type != url_type:
            raise FhirError(
                400, "invalid", f"the body is a {resource_type} but the URL is for {url_type}", ["resourceType"]
            )
        body_id = resource.get("id")
        if body_id is not None and not isinstance(body_id, str):
            raise FhirError(400, "structure", "id must be a string", [f"{resource_type}.id"])
        if require_id:
            if body_id is None:
                raise FhirError(
                    400, "required", "an update must carry the id of the URL in the body", [f"{resource_type}.id"]
                )
            if url_id is not None and body_id != url_id:
                raise FhirError(
                    400,
                    "invalid",
                    f"the body id '{body_id}' does not match the URL id '{url_id}'",
                    [f"{resource_type}.id"],
                )
        if body_id is not None:
            check_id(body_id)
        warnings: list[Issue] = []
        if self.mode == "off":
            return warnings
        if self.structure_checker is not None:
            issues = [_as_issue(item) for item in self.structure_checker(resource)]
            errors = [issue for issue in issues if issue.severity in {"error", "fatal"}]
            if errors:
                raise FhirError(400, errors[0].code, errors[0].diagnostics, issues=errors)
            warnings += issues
        if self.validator is not None:
            issues = self.validator(resource)
            errors = [issue for issue in issues if issue.severity in {"error", "fatal"}]
            if errors and self.mode == "strict":
                raise FhirError(422, "processing", errors[0].diagnostics, issues=issues)
            warnings += [issue for issue in issues if issue not in errors] + (errors if self.mode == "lenient" else [])
        return warnings


def _as_issue(item: Any) -> Issue:
    if isinstance(item, Issue):
        return item
    expression = getattr(item, "expression", None)
    if isinstance(expression, str):
        expression = [expression]
    return Issue(
        getattr(item, "severity", "error"),
        getattr(item, "code", "structure"),
        getattr(item, "message", None) or getattr(item, "diagnostics", str(item)),
        list(expression or []),
    )
