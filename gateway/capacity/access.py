"""Who may see capacity — as data plus one function, so the auth stage can enforce it.

Detailed capacity (Slots, Schedules, the services and locations behind them, `$find-capacity`, live updates)
is for authenticated professionals of care organisations; regional aggregates (`MeasureReport/$aggregate`)
may be public when the operator says so (ZCC_CAPACITY_PUBLIC_AGGREGATES=on)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from gateway.fhir.context import RequestScope
from gateway.fhir.errors import FhirError
from gateway.fhir.interaction import Interaction, Result
from gateway.fhir.pipeline import Handler

DETAILED_TYPES = frozenset({"Slot", "Schedule", "HealthcareService", "Subscription"})
DETAILED_OPERATIONS = frozenset({"find-capacity"})
AGGREGATE_OPERATIONS = frozenset({"aggregate"})
FEED_WRITERS_NEED = "system/Slot.cu system/Schedule.cu"  # scopes a bed-status feed client needs (documentation)


@dataclass(frozen=True)
class CapacityAccessPolicy:
    public_aggregates: bool = False

    @classmethod
    def from_environment(cls) -> CapacityAccessPolicy:
        return cls(public_aggregates=os.environ.get("ZCC_CAPACITY_PUBLIC_AGGREGATES", "off") == "on")


@dataclass(frozen=True)
class AccessDecision:
    allowed: bool
    reason: str


def capacity_access(policy: CapacityAccessPolicy, identity: Any, resource_type: str | None,
                    operation: str | None) -> AccessDecision:
    """May this caller (None: anonymous) use this capacity resource type / operation? Scopes are checked
    separately by the scope stage; this decides the professional-only / public split."""
    if operation in AGGREGATE_OPERATIONS and policy.public_aggregates:
        return AccessDecision(True, "regional aggregates are public on this gateway")
    if identity is None:
        return AccessDecision(False, "capacity needs an authenticated care professional")
    if getattr(identity, "insecure_dev", False):
        return AccessDecision(True, "insecure development mode")
    if not getattr(identity, "ura", None):
        return AccessDecision(False, "capacity is for care organisations (a token with a URA)")
    detailed = resource_type in DETAILED_TYPES or operation in DETAILED_OPERATIONS
    return AccessDecision(True, "detailed capacity for a care organisation" if detailed else "capacity aggregate")


class CapacityAccessStage:
    """Pipeline stage (after the scope stage): capacity types and operations only for care organisations.
    Scopes still apply on top; public aggregates are served outside the pipeline (`/capacity/aggregate`)."""

    def __init__(self, policy: CapacityAccessPolicy) -> None:
        self.policy = policy

    def __call__(self, scope: RequestScope, it: Interaction, next_handler: Handler) -> Result:
        if it.resource_type in DETAILED_TYPES or it.operation in DETAILED_OPERATIONS | AGGREGATE_OPERATIONS:
            decision = capacity_access(self.policy, scope.identity, it.resource_type, it.operation)
            if not decision.allowed:
                raise FhirError(403, "forbidden", decision.reason)
        return next_handler(scope, it)
