"""The shared vocabulary of the FHIR layer: an `Interaction` (what the client asked for, independent of
HTTP) and a `Result` (what to answer). HTTP routes and Bundle entries both become Interactions and pass the
same pipeline, so cross-cutting stages see every one of them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from gateway.store.repository import StoredResource

READ = "read"
VREAD = "vread"
CREATE = "create"
UPDATE = "update"
DELETE = "delete"
SEARCH_TYPE = "search-type"
SEARCH_SYSTEM = "search-system"
HISTORY_INSTANCE = "history-instance"
HISTORY_TYPE = "history-type"
HISTORY_SYSTEM = "history-system"
CAPABILITIES = "capabilities"
BATCH = "batch"
TRANSACTION = "transaction"
OPERATION = "operation"


@dataclass
class Interaction:
    kind: str
    method: str
    resource_type: str | None = None
    id: str | None = None
    version: str | None = None
    operation: str | None = None  # without the leading `$`
    params: list[tuple[str, str]] = field(default_factory=list)
    headers: Mapping[str, str] = field(default_factory=dict)  # lower-case names
    body: dict[str, Any] | None = None
    full_url: str | None = None  # Bundle.entry.fullUrl, for transaction entries
    existing: Result | None = None  # a transaction's conditional create that matched: answer without writing

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    def prefer(self, key: str) -> str | None:
        """Value of a `Prefer` token, e.g. prefer("return") -> "minimal"."""
        for part in (self.header("prefer") or "").split(";"):
            for token in part.split(","):
                name, _, value = token.strip().partition("=")
                if name.strip().lower() == key:
                    return value.strip().strip('"').lower()
        return None

    @property
    def path(self) -> str:
        parts = [p for p in (self.resource_type, self.id) if p]
        if self.version:
            parts += ["_history", self.version]
        if self.operation:
            parts.append(f"${self.operation}")
        return "/".join(parts)


@dataclass
class Result:
    status: int
    resource: dict[str, Any] | None = None
    stored: StoredResource | None = None  # served as stored bytes when the format allows
    headers: dict[str, str] = field(default_factory=dict)
    # resources of `resource` that are a stored version's content unchanged (no _elements/_summary), by object id:
    # (the resource, its StoredResource). A version never changes, so a stage may remember across requests what
    # it derives from one (the consent stage: what a decision depends on).
    versions: dict[int, tuple[dict[str, Any], StoredResource]] = field(default_factory=dict)

    def body_resource(self) -> dict[str, Any] | None:
        if self.resource is not None:
            return self.resource
        if self.stored is not None and self.stored.body is not None:
            return self.stored.resource()
        return None
