"""Output validation behind one function, so that the profile validator replaces the structural checks with
a one-line change once it lands (`validate_output` is the only caller-facing name)."""

from __future__ import annotations

from typing import Any

from conformance.structure import check_structure
from conformance.typemodel import TypeModel
from gateway.fhir.errors import Issue


def validate_output(resources: list[dict[str, Any]], model: TypeModel | None = None) -> list[Issue]:
    """Issues of every resource, located as `Bundle.entry[i].resource.<path>` (structure checks for now)."""
    issues: list[Issue] = []
    for index, resource in enumerate(resources):
        for found in check_structure(resource, model):
            where = f"Bundle.entry[{index}].resource" + found.expression.removeprefix(resource["resourceType"])
            issues.append(Issue(found.severity, found.code, f"{resource['resourceType']}: {found.message}", [where]))
    return issues
