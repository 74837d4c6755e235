"""Long-lived server services and the per-request scope handlers work in."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection

from conformance.packages import PackageSet
from gateway.settings import Settings
from gateway.store.repository import ResourceStore


@dataclass
class Services:
    settings: Settings
    packages: PackageSet
    store: ResourceStore
    search: Any  # gateway.search.definitions.SearchParameterRegistry
    resource_types: frozenset[str]
    write_checks: Any  # gateway.fhir.write_checks.WriteChecks
    type_model: Any = None  # conformance.typemodel.TypeModel of the loaded packages (XML, structure)
    pipeline: Any = None  # gateway.fhir.pipeline.Pipeline (set once wired)
    started_at: str = ""
    capability_security: Any = None  # CapabilityStatement.rest.security (SMART), set by the auth wiring
    auth: Any = None  # gateway.auth.components.AuthComponents
    validation: Any = None  # gateway.fhir.profile_validation.ProfileValidation (warmed at start-up)


@dataclass
class RequestScope:
    """What one request (or one Bundle entry) works with. Inside a transaction all entries share one
    connection, so that every write commits or rolls back together."""

    services: Services
    connection: Connection | None = None
    identity: Any = None
    state: dict[str, Any] = field(default_factory=dict)
    # Served on the server's event loop: a stage must not wait there (for a database lock, a commit over the
    # network); it leaves such work in `deferred`, which the HTTP boundary runs on a worker thread before it
    # answers (and answers with its error, if it raises one).
    on_event_loop: bool = False
    deferred: list[Callable[[], None]] = field(default_factory=list)

    @property
    def base_url(self) -> str:
        return self.services.settings.base_url

    @contextmanager
    def writing(self) -> Iterator[Connection]:
        if self.connection is not None:
            yield self.connection
        else:
            with self.services.store.write() as connection:
                yield connection

    def reading(self, snapshot: bool = True) -> AbstractContextManager[Connection]:
        """A connection to read on; `snapshot=False` for a single statement (no transaction needed)."""
        if self.connection is not None:
            return nullcontext(self.connection)
        return self.services.store.read(snapshot, waiting=not self.on_event_loop)

    def child(self, connection: Connection | None) -> RequestScope:
        return RequestScope(self.services, connection, self.identity, self.state, self.on_event_loop, self.deferred)

    def run_deferred(self) -> None:
        """Run (and forget) the work left for a worker thread, in order; the first error stops it and is raised."""
        work = list(self.deferred)
        self.deferred.clear()
        for item in work:
            item()
