"""What the store holds for one capacity unit: its Schedule (with the last source timestamp), which of its
Slots exist, and whether its Organization, Location and HealthcareService exist yet."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, and_, select

from gateway.capacity.model import UnitKey
from gateway.store.repository import ResourceStore, StoredResource
from gateway.store.schema import idx_reference, resource


@dataclass(frozen=True)
class UnitState:
    schedule: StoredResource | None
    slot_indices: frozenset[int]
    location: dict[str, Any] | None
    has_organization: bool
    has_service: bool

    @property
    def schedule_resource(self) -> dict[str, Any] | None:
        return self.schedule.resource() if self.schedule is not None else None


def _current(store: ResourceStore, connection: Connection, resource_type: str, resource_id: str
             ) -> StoredResource | None:
    stored = store.get(connection, resource_type, resource_id)
    return stored if stored is not None and not stored.deleted else None


def slot_ids_of_schedule(connection: Connection, schedule_id: str) -> list[str]:
    query = (
        select(resource.c.id)
        .join(idx_reference, idx_reference.c.res_key == resource.c.res_key)
        .where(and_(idx_reference.c.param == "schedule", idx_reference.c.target_type == "Schedule",
                    idx_reference.c.target_id == schedule_id, resource.c.type == "Slot",
                    resource.c.deleted.is_(False)))
    )
    return list(connection.execute(query).scalars())


def read_unit(store: ResourceStore, connection: Connection, key: UnitKey) -> UnitState:
    prefix = key.slot_id(0)[:-1]
    indices = frozenset(
        int(slot_id[len(prefix):]) for slot_id in slot_ids_of_schedule(connection, key.schedule_id)
        if slot_id.startswith(prefix) and slot_id[len(prefix):].isdigit()
    )
    location = _current(store, connection, "Location", key.location_id)
    return UnitState(
        schedule=_current(store, connection, "Schedule", key.schedule_id),
        slot_indices=indices,
        location=location.resource() if location is not None else None,
        has_organization=_current(store, connection, "Organization", key.organization_id) is not None,
        has_service=_current(store, connection, "HealthcareService", key.service_id) is not None,
    )
