"""The exceptions the auth component raises at its two boundaries, and how each becomes a response.

- `OAuthError`: the token endpoint's failures, rendered as RFC 6749 §5.2 JSON (`{"error": ...}`).
- `Forbidden`: an authenticated caller lacks the scope for what it asked; the REST layer renders it as a 403
  OperationOutcome (it has the same `status` / `outcome()` shape as the FHIR layer's own errors)."""

from __future__ import annotations

from typing import Any

OAUTH_ERRORS = frozenset(
    {"invalid_request", "invalid_client", "invalid_grant", "unauthorized_client", "unsupported_grant_type",
     "invalid_scope"}
)


class OAuthError(Exception):
    def __init__(self, error: str, description: str) -> None:
        if error not in OAUTH_ERRORS:
            raise ValueError(f"{error!r} is not an RFC 6749 token endpoint error code")
        super().__init__(description)
        self.error = error
        self.description = description

    @property
    def status(self) -> int:
        # RFC 6749 §5.2: 400, except that failed client authentication may (and here does) answer 401
        return 401 if self.error == "invalid_client" else 400

    def body(self) -> dict[str, str]:
        return {"error": self.error, "error_description": self.description}


class Forbidden(Exception):
    """The caller is authenticated but not allowed this; becomes 403 with an OperationOutcome."""

    status = 403
    code = "forbidden"

    def __init__(self, diagnostics: str) -> None:
        super().__init__(diagnostics)
        self.diagnostics = diagnostics
        self.headers: dict[str, str] = {}

    def outcome(self) -> dict[str, Any]:
        return operation_outcome("forbidden", self.diagnostics)


def operation_outcome(code: str, diagnostics: str) -> dict[str, Any]:
    """A one-issue OperationOutcome (built here because gateway.auth does not import gateway.fhir)."""
    return {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": code, "diagnostics": diagnostics}],
    }
