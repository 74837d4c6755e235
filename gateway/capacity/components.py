"""The capacity pieces built once per process: terms, notification hub, feed; and their pipeline wiring
(the capacity stage and the `$find-capacity` / `$aggregate` operations). Used by the HTTP wiring and the CLI."""

from __future__ import annotations

from dataclasses import dataclass

from gateway.capacity.access import CapacityAccessPolicy, CapacityAccessStage
from gateway.capacity.aggregate import aggregate_operation
from gateway.capacity.feed import CapacityFeed
from gateway.capacity.find import find_capacity_operation
from gateway.capacity.hub import SubscriptionHub
from gateway.capacity.outbox import OutboxStage
from gateway.capacity.stage import CapacityChanges, CapacityWriteRules
from gateway.capacity.terms import CapacityTerms
from gateway.capacity.websocket import WebSocketRegistry
from gateway.fhir.context import Services
from gateway.ingest.records import IngestRecords
from gateway.ingest.schema import create_ingest_tables


@dataclass
class CapacityComponents:
    terms: CapacityTerms
    registry: WebSocketRegistry
    hub: SubscriptionHub
    feed: CapacityFeed
    access: CapacityAccessPolicy

    @classmethod
    def build(cls, services: Services, hub: SubscriptionHub | None = None) -> CapacityComponents:
        """Builds and wires into `services.pipeline` (call once per Services): the change collector goes in
        front of every stage (it publishes after the audit stage's transaction committed), the access rule
        and the write rules after the scope and consent stages, and the rest-hook outbox innermost (it
        writes the pending deliveries in the transaction of the change)."""
        terms = CapacityTerms.from_packages(services.packages)
        registry = WebSocketRegistry() if hub is None else hub.registry
        hub = hub or SubscriptionHub(services, registry)
        create_ingest_tables(services.store.engine)  # no-op once the migrations carry the ingestion tables
        feed = CapacityFeed(services, terms, IngestRecords(services.store.engine))
        access = CapacityAccessPolicy.from_environment()
        services.pipeline.stages.insert(0, CapacityChanges(hub))
        services.pipeline.add_stage(CapacityAccessStage(access))
        services.pipeline.add_stage(CapacityWriteRules(terms))
        services.pipeline.add_stage(OutboxStage(hub))  # innermost: in the write transaction, after the checks
        services.pipeline.add_operation(find_capacity_operation(terms))
        services.pipeline.add_operation(aggregate_operation(terms))
        hub.start()
        return cls(terms, registry, hub, feed, access)
