"""Output validation of an ingested message: every translated resource against the base spec and the profiles it
claims in `meta.profile` (the nl-core profiles for HAP output), with the gateway's profile validator. A claimed
profile that is not on the package path (ZCC_PACKAGE_PATH) is reported as a warning, never silently passed."""

from __future__ import annotations

from typing import Any

from gateway.fhir.errors import Issue
from gateway.fhir.profile_validation import ProfileValidation


def validate_output(resources: list[dict[str, Any]], validation: ProfileValidation) -> list[Issue]:
    """Issues of every resource, located as `Bundle.entry[i].resource.<path>` and prefixed with the resource type."""
    issues: list[Issue] = []
    for index, resource in enumerate(resources):
        resource_type = resource["resourceType"]
        for found in validation.validation_issues(resource):
            where = f"Bundle.entry[{index}].resource" + found.expression.removeprefix(resource_type)
            issues.append(Issue(found.severity, found.code, f"{resource_type}: {found.message}", [where]))
    return issues
