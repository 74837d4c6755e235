"""`create_app(settings)`: wires the pieces together. No logic lives here."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from fastapi import FastAPI
from starlette.routing import Route

from conformance.packages import PackageSet
from conformance.typemodel import TypeModel
from gateway.audit.wiring import build_audit
from gateway.auth.components import AuthComponents
from gateway.auth.discovery import capability_security
from gateway.auth.middleware import AuthStage
from gateway.auth.scope_stage import ScopeStage
from gateway.auth.settings import AuthSettings
from gateway.capacity.package import ensure_capacity_package
from gateway.capacity.routes import register as register_capacity
from gateway.consent.engine import ConsentEngine
from gateway.consent.explain_operation import explain_access_operation
from gateway.consent.stage import ConsentStage
from gateway.fhir import bundles, capability, crud, history, search_handler
from gateway.fhir import interaction as kinds
from gateway.fhir.context import Services
from gateway.fhir.openapi import install_openapi
from gateway.fhir.pipeline import Pipeline
from gateway.fhir.profile_validation import ProfileValidation
from gateway.fhir.routes import FhirEndpoint
from gateway.fhir.validate_operation import validate_operation
from gateway.fhir.write_checks import WriteChecks
from gateway.gc_tuning import tune_for_serving
from gateway.ingest.routes import register as register_ingest
from gateway.limits.resource_size import ResourceSizeLimits
from gateway.limits.search_size import SearchSizeLimits
from gateway.limits.wiring import add_request_limits
from gateway.search.definitions import SearchParameterRegistry
from gateway.search.extract import extract_index_rows
from gateway.settings import Settings
from gateway.store.engine import create_database_engine
from gateway.store.migrate import upgrade
from gateway.store.repository import ResourceStore
from gateway.summary.operation import summary_operation
from gateway.summary.screen import ConsentScreen, release_everything

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


def build_services(settings: Settings, stages: bool = True) -> Services:
    """Everything a gateway process needs; `stages=False` leaves the pipeline bare (for tests that compose
    their own stages)."""
    packages = PackageSet.from_paths(settings.package_paths)
    ensure_capacity_package(packages)  # the gateway's own capacity definitions (profiles/nictiz/capacity)
    resource_types = frozenset(packages.resource_types())
    type_model = TypeModel.from_packages(packages)
    registry = SearchParameterRegistry(packages, type_model)
    engine = create_database_engine(settings.database_url, settings.database_timeout)
    upgrade(engine)
    store = ResourceStore(engine, lambda resource: extract_index_rows(resource, registry))
    validation = ProfileValidation(packages, type_model)  # one per process, warmed so the first write is not slow
    validation.warm()
    write_checks = WriteChecks(resource_types, validation.structure_checker, validation, settings.validation)
    services = Services(settings, packages, store, registry, resource_types, write_checks, type_model)
    services.pipeline = Pipeline(dict(HANDLERS))
    services.validation = validation
    services.pipeline.add_operation(validate_operation(validation))
    if stages:
        _add_stages(services)
    services.started_at = datetime.now(UTC).isoformat(timespec="seconds")
    return services


def _add_stages(services: Services) -> None:
    """The cross-cutting stages, in order: audit outermost (so refusals are logged too), then the token's
    scopes, then consent (which filters every resource of every response)."""
    settings = services.settings
    consent = ConsentEngine.build(services.packages, settings.base_url)
    audit = build_audit(settings, timedelta(hours=consent.policy.parameters.btg_time_box_hours),
                        consent.policy.parameters.admin_roles) if settings.audit else None
    if audit is not None:
        services.pipeline.add_stage(audit.stage)
    services.pipeline.add_stage(ScopeStage(services.search))
    if audit is not None:  # AuditEvents are served from the chain, on their own legal basis (not consent's)
        services.pipeline.add_stage(audit.access)
    if settings.consent:
        services.pipeline.add_stage(ConsentStage(consent))
    services.pipeline.add_stage(ResourceSizeLimits(settings.max_string))
    services.pipeline.add_stage(SearchSizeLimits(settings.max_search_params, settings.max_or_values))
    services.pipeline.add_operation(explain_access_operation(consent))
    summary_screen = ConsentScreen(consent) if settings.consent else release_everything
    services.pipeline.add_operation(summary_operation(consent.describer.compartment, summary_screen))


def create_app(settings: Settings | None = None, services: Services | None = None) -> FastAPI:
    settings = settings or Settings()
    services = services or build_services(settings)
    settings = services.settings
    auth = AuthComponents.build(AuthSettings.from_environment(settings.base_url), services.store.engine)
    services.capability_security = capability_security(auth.settings)
    services.auth = auth
    endpoint = FhirEndpoint(services)
    methods = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD"]
    app = FastAPI(title="zcc-gateway", version="0.1.0", docs_url="/docs", openapi_url="/openapi.json")
    app.include_router(auth.router)  # before the FHIR catch-all: it serves /fhir/.well-known/...
    app.router.routes.append(Route("/fhir", endpoint.handle, methods=methods))
    app.router.routes.append(Route("/fhir/{path:fhirpath}", endpoint.handle, methods=methods))
    register_ingest(app, services)
    register_capacity(app, services)
    add_request_limits(app, settings)  # before AuthStage is added: the limits run inside it, per client
    app.add_middleware(AuthStage, **auth.middleware_options())
    install_openapi(app, services)  # /openapi.json: FastAPI's routes plus the FHIR paths, from the registry
    app.state.services = services
    return app


def app_from_environment() -> FastAPI:
    """uvicorn factory for `zcc-gateway serve` (each worker builds its own services from ZCC_* variables)."""
    app = create_app(Settings())
    tune_for_serving()  # after start-up: what is loaded now lives as long as the worker
    return app
