"""The request pipeline: every Interaction — from HTTP or from a Bundle entry — runs through the same
ordered stages (auth, consent, audit, ...) before it reaches its handler. Stages are registered in one
place (gateway.app) and no handler can be reached around them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from gateway.fhir import interaction as kinds
from gateway.fhir.context import RequestScope
from gateway.fhir.errors import FhirError
from gateway.fhir.interaction import Interaction, Result

Handler = Callable[[RequestScope, Interaction], Result]
Stage = Callable[[RequestScope, Interaction, Handler], Result]


@dataclass(frozen=True)
class Operation:
    """A `$operation` the server offers; the CapabilityStatement is generated from these."""

    name: str
    handler: Handler
    definition: str  # canonical URL of the OperationDefinition
    levels: frozenset[str]  # "system", "type", "instance"
    resource_types: frozenset[str] | None = None  # None: every type
    documentation: str = ""


@dataclass
class Pipeline:
    handlers: dict[str, Handler]
    stages: list[Stage] = field(default_factory=list)
    operations: dict[str, Operation] = field(default_factory=dict)

    def add_stage(self, stage: Stage) -> None:
        self.stages.append(stage)

    def add_operation(self, operation: Operation) -> None:
        self.operations[operation.name] = operation

    def dispatch(self, scope: RequestScope, it: Interaction) -> Result:
        handler: Handler = self._route
        for stage in reversed(self.stages):
            handler = _bind(stage, handler)
        return handler(scope, it)

    def _route(self, scope: RequestScope, it: Interaction) -> Result:
        if it.kind == kinds.OPERATION:
            return self._operation(it)(scope, it)
        handler = self.handlers.get(it.kind)
        if handler is None:
            raise FhirError(501, "not-supported", f"the {it.kind} interaction is not supported")
        return handler(scope, it)

    def _operation(self, it: Interaction) -> Handler:
        operation = self.operations.get(it.operation or "")
        level = "instance" if it.id else "type" if it.resource_type else "system"
        if operation is None or level not in operation.levels:
            raise FhirError(404, "not-supported", f"the operation ${it.operation} is not supported at {level} level")
        if (
            it.resource_type
            and operation.resource_types is not None
            and it.resource_type not in operation.resource_types
        ):
            raise FhirError(404, "not-supported", f"${it.operation} is not defined for {it.resource_type}")
        return operation.handler


def _bind(stage: Stage, following: Handler) -> Handler:
    return lambda scope, it: stage(scope, it, following)
