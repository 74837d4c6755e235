"""Validation issues and their OperationOutcome form (in the style of the HL7 Java validator)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

LINE_EXT = "http://hl7.org/fhir/StructureDefinition/operationoutcome-issue-line"
COL_EXT = "http://hl7.org/fhir/StructureDefinition/operationoutcome-issue-col"
SOURCE_EXT = "http://hl7.org/fhir/StructureDefinition/operationoutcome-issue-source"
CONTEXT_EXT = "http://hl7.org/fhir/StructureDefinition/operationoutcome-issue-context"
SEVERITY_ORDER = {"fatal": 0, "error": 1, "warning": 2, "information": 3}


@dataclass(slots=True)
class Issue:
    severity: str  # fatal | error | warning | information
    code: str  # OperationOutcome issue type (structure, required, value, code-invalid, invariant, ...)
    message: str
    expression: str
    profile: str | None = None  # the profile whose rule this is
    rule: str | None = None  # a stable name for the rule (invariant key, check name)
    line: int | None = None
    column: int | None = None

    @property
    def is_error(self) -> bool:
        return self.severity in ("error", "fatal")

    def to_json(self) -> dict[str, Any]:
        issue: dict[str, Any] = {}
        extensions = []
        if self.line is not None:
            extensions.append({"url": LINE_EXT, "valueInteger": self.line})
            extensions.append({"url": COL_EXT, "valueInteger": self.column or 1})
        if self.profile:
            extensions.append({"url": CONTEXT_EXT, "valueString": self.profile})
        if extensions:
            issue["extension"] = extensions
        issue["severity"] = self.severity
        issue["code"] = self.code
        issue["details"] = {"text": self.message}
        if self.line is not None:
            issue["diagnostics"] = f"[{self.line},{self.column or 1}]"
        issue["expression"] = [self.expression]
        return issue


def operation_outcome(issues: Iterable[Issue]) -> dict[str, Any]:
    """An OperationOutcome; an 'All OK' information issue when there is nothing to report (as the HL7 validator)."""
    ordered = sorted(issues, key=lambda i: (SEVERITY_ORDER.get(i.severity, 9), i.line or 0, i.column or 0))
    if not ordered:
        return {"resourceType": "OperationOutcome",
                "issue": [{"severity": "information", "code": "informational", "details": {"text": "All OK"}}]}
    return {"resourceType": "OperationOutcome", "issue": [issue.to_json() for issue in ordered]}


def count(outcome: dict[str, Any], *severities: str) -> int:
    return sum(1 for issue in outcome.get("issue", ()) if issue.get("severity") in severities)
