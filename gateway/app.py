"""`create_app(settings)`: wires the pieces together. No logic lives here."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from fastapi import FastAPI
from starlette.routing import Route

from conformance.packages import PackageSet
from conformance.structure import check_structure
from conformance.typemodel import TypeModel
from gateway.fhir import bundles, capability, crud, history, search_handler
from gateway.fhir import interaction as kinds
from gateway.fhir.context import Services
from gateway.fhir.pipeline import Pipeline
from gateway.fhir.routes import FhirEndpoint
from gateway.fhir.write_checks import WriteChecks
from gateway.search.definitions import SearchParameterRegistry
from gateway.search.extract import extract_index_rows
from gateway.settings import Settings
from gateway.store.engine import create_database_engine
from gateway.store.migrate import upgrade
from gateway.store.repository import ResourceStore

log = logging.getLogger("gateway")

HANDLERS = {
    kinds.READ: crud.read,
    kinds.VREAD: crud.vread,
    kinds.CREATE: crud.create,
    kinds.UPDATE: crud.update,
    kinds.DELETE: crud.delete,
    kinds.HISTORY_INSTANCE: history.history,
    kinds.HISTORY_TYPE: history.history,
    kinds.HISTORY_SYSTEM: history.history,
    kinds.SEARCH_TYPE: search_handler.search,
    kinds.SEARCH_SYSTEM: search_handler.search,
    kinds.CAPABILITIES: capability.capabilities,
    kinds.BATCH: bundles.batch,
    kinds.TRANSACTION: bundles.transaction,
}


def build_services(settings: Settings) -> Services:
    packages = PackageSet.from_paths(settings.package_paths)
    resource_types = frozenset(packages.resource_types())
    type_model = TypeModel.from_packages(packages)
    registry = SearchParameterRegistry(packages, type_model)
    engine = create_database_engine(settings.database_url)
    upgrade(engine)
    store = ResourceStore(engine, lambda resource: extract_index_rows(resource, registry))
    write_checks = WriteChecks(
        resource_types, lambda resource: check_structure(resource, type_model), None, settings.validation
    )
    services = Services(settings, packages, store, registry, resource_types, write_checks, type_model)
    services.pipeline = Pipeline(dict(HANDLERS))
    services.started_at = datetime.now(UTC).isoformat(timespec="seconds")
    return services


def create_app(settings: Settings | None = None, services: Services | None = None) -> FastAPI:
    settings = settings or Settings()
    services = services or build_services(settings)
    endpoint = FhirEndpoint(services)
    methods = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD"]
    app = FastAPI(title="zcc-gateway", version="0.1.0", docs_url="/docs", openapi_url="/openapi.json")
    app.router.routes.append(Route("/fhir", endpoint.handle, methods=methods))
    app.router.routes.append(Route("/fhir/{path:path}", endpoint.handle, methods=methods))
    app.state.services = services
    return app


def app_from_environment() -> FastAPI:
    """uvicorn factory for `zcc-gateway serve` (each worker builds its own services from ZCC_* variables)."""
    return create_app(Settings())
