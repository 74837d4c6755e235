"""The CapabilityStatement, generated from what is actually registered: resource types from the loaded
core definitions, interactions from the pipeline's handlers, search parameters from the registry, operations
from the pipeline, formats from gateway.fhir.formats."""

from __future__ import annotations

from typing import Any

from gateway import __version__
from gateway.fhir import interaction as kinds
from gateway.fhir.context import RequestScope
from gateway.fhir.formats import JSON, XML
from gateway.fhir.interaction import Interaction, Result

_TYPE_INTERACTIONS = {
    kinds.READ: "read",
    kinds.VREAD: "vread",
    kinds.UPDATE: "update",
    kinds.DELETE: "delete",
    kinds.HISTORY_INSTANCE: "history-instance",
    kinds.HISTORY_TYPE: "history-type",
    kinds.CREATE: "create",
    kinds.SEARCH_TYPE: "search-type",
}
_SYSTEM_INTERACTIONS = {
    kinds.TRANSACTION: "transaction",
    kinds.BATCH: "batch",
    kinds.SEARCH_SYSTEM: "search-system",
    kinds.HISTORY_SYSTEM: "history-system",
}


def capability_statement(scope: RequestScope) -> dict[str, Any]:
    services = scope.services
    pipeline = services.pipeline
    registered = set(pipeline.handlers)
    type_interactions = [{"code": code} for kind, code in _TYPE_INTERACTIONS.items() if kind in registered]
    resources = []
    for resource_type in sorted(services.resource_types):
        entry: dict[str, Any] = {
            "type": resource_type,
            "interaction": type_interactions,
            "versioning": "versioned-update",
            "readHistory": True,
            "updateCreate": True,
            "conditionalCreate": True,
            "conditionalRead": "not-supported",
            "conditionalUpdate": True,
            "conditionalDelete": "single",
            "searchInclude": services.search.include_names(resource_type),
            "searchRevInclude": services.search.revinclude_names(resource_type),
            "searchParam": services.search.capability_params(resource_type),
        }
        operations = [
            {"name": op.name, "definition": op.definition}
            for op in pipeline.operations.values()
            if ("type" in op.levels or "instance" in op.levels)
            and (op.resource_types is None or resource_type in op.resource_types)
        ]
        if operations:
            entry["operation"] = operations
        resources.append({key: value for key, value in entry.items() if value != []})  # FHIR has no empty arrays
    system_operations = [
        {"name": op.name, "definition": op.definition} for op in pipeline.operations.values() if "system" in op.levels
    ]
    rest: dict[str, Any] = {
        "mode": "server",
        "documentation": (
            "Search parameter types supported: token, string, date, reference, quantity, uri, number. "
            "Composite and special parameters are not supported yet. Chaining up to three levels deep; "
            "_include/_revinclude with :iterate."
        ),
        "resource": resources,
        "interaction": [{"code": code} for kind, code in _SYSTEM_INTERACTIONS.items() if kind in registered],
        "searchParam": services.search.capability_params(None),
    }
    if system_operations:
        rest["operation"] = system_operations
    security = services.capability_security
    if security:
        rest["security"] = security
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": services.started_at,
        "publisher": "zcc-gateway",
        "kind": "instance",
        "software": {"name": "zcc-gateway", "version": __version__},
        "implementation": {"description": "zcc-gateway FHIR R4 server", "url": scope.base_url},
        "fhirVersion": "4.0.1",
        "format": [JSON, XML, "json", "xml"],
        "rest": [rest],
    }


def capabilities(scope: RequestScope, it: Interaction) -> Result:
    return Result(200, resource=capability_statement(scope))
