"""FHIR errors: every failure a client can cause becomes an OperationOutcome with an HTTP status."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Issue:
    severity: str  # fatal | error | warning | information
    code: str  # from http://hl7.org/fhir/issue-type
    diagnostics: str
    expression: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        issue: dict[str, Any] = {"severity": self.severity, "code": self.code, "diagnostics": self.diagnostics}
        if self.expression:
            issue["expression"] = list(self.expression)
        return issue


class FhirError(Exception):
    """Raised anywhere in request handling; turned into an OperationOutcome response at one boundary."""

    def __init__(
        self,
        status: int,
        code: str,
        diagnostics: str,
        expression: list[str] | None = None,
        issues: list[Issue] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(diagnostics)
        self.status = status
        self.issues = issues or [Issue("error", code, diagnostics, expression or [])]
        self.headers = headers or {}

    @property
    def code(self) -> str:
        return self.issues[0].code

    def outcome(self) -> dict[str, Any]:
        return operation_outcome(self.issues)


def operation_outcome(issues: list[Issue]) -> dict[str, Any]:
    return {"resourceType": "OperationOutcome", "issue": [issue.as_dict() for issue in issues]}


def information(diagnostics: str, code: str = "informational") -> dict[str, Any]:
    return operation_outcome([Issue("information", code, diagnostics)])


def not_found(resource_type: str, resource_id: str | None = None) -> FhirError:
    what = f"{resource_type}/{resource_id}" if resource_id else resource_type
    return FhirError(404, "not-found", f"{what} is not known")


def bad_request(diagnostics: str, code: str = "invalid", expression: list[str] | None = None) -> FhirError:
    return FhirError(400, code, diagnostics, expression)
