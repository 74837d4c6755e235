"""Demo capacity for a ROAZ region: providers of every category (Organization, Location with address and
position, HealthcareService) and bed-status rows for them — deterministic for a seed, so demos, tests and
benchmarks see the same picture."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from gateway.capacity import model
from gateway.capacity.terms import CapacityTerms

# Approximate centre (lat, lon) and a main city per region: demo data only.
REGION_CENTRES: dict[str, tuple[float, float, str]] = {
    "noord-nederland": (53.2, 6.57, "Groningen"), "zwolle": (52.51, 6.09, "Zwolle"),
    "euregio": (52.22, 6.89, "Enschede"), "oost": (51.84, 5.86, "Nijmegen"),
    "midden-nederland": (52.09, 5.12, "Utrecht"), "noordwest": (52.37, 4.90, "Amsterdam"),
    "noord-holland-flevoland": (52.63, 4.75, "Alkmaar"), "west": (52.16, 4.49, "Leiden"),
    "zuidwest": (51.92, 4.48, "Rotterdam"), "brabant": (51.56, 5.09, "Tilburg"),
    "limburg": (50.85, 5.69, "Maastricht"),
}
TYPICAL_TOTAL = {"bed": 12, "vehicle": 4, "consult": 6, "team": 3, "acceptance": 1}


@dataclass(frozen=True)
class DemoProvider:
    key: model.UnitKey
    region: str
    resources: list[dict[str, Any]]  # Organization, Location, HealthcareService
    total: int


def demo_providers(terms: CapacityTerms, region: str, per_category: int = 3, seed: int = 7,
                   ura_base: int = 10_000_000) -> list[DemoProvider]:
    if region not in terms.regions:
        raise KeyError(region)
    rng = random.Random(f"{seed}:{region}")
    lat0, lon0, city = REGION_CENTRES.get(region, (52.1, 5.3, "Utrecht"))
    region_def = terms.regions[region]
    providers = []
    region_number = sorted(terms.regions).index(region)
    for c_index, (code, category) in enumerate(sorted(terms.categories.items())):
        for n in range(per_category):
            ura = f"{ura_base + region_number * 100_000 + c_index * 1_000 + n:08d}"
            key = model.UnitKey(ura, f"{code}-{n}", code)
            position = (round(lat0 + rng.uniform(-0.25, 0.25), 5), round(lon0 + rng.uniform(-0.35, 0.35), 5))
            postcode = f"{rng.randint(1000, 9999)} {rng.choice('ABCDEFGHJKLMNPRSTVWXZ')}{rng.choice('ABCDEFGHJKLMN')}"
            name = f"{category.group_display} {city} {n + 1}"
            resources = [
                model.organization(key, name, region=region_def),
                model.location(key, f"{name} — {category.display}", region_def, city, postcode, position),
                model.healthcare_service(key, category, region_def, telecom=f"+31 88 {rng.randint(1000000, 9999999)}",
                                         available_time=[{"allDay": True}]),
            ]
            total = max(1, int(TYPICAL_TOTAL.get(category.unit, 4) * rng.uniform(0.5, 1.8)))
            providers.append(DemoProvider(key, region, resources, total))
    return providers


def provider_bundle(providers: list[DemoProvider]) -> dict[str, Any]:
    entries = [{"resource": r, "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"}}
               for p in providers for r in p.resources]
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


def demo_rows(providers: list[DemoProvider], moment: datetime, seed: int = 7) -> list[dict[str, Any]]:
    """One bed-status row per provider: random occupancy at `moment`."""
    rng = random.Random(f"{seed}:{moment.isoformat()}")
    return [{"ura": p.key.ura, "location": p.key.location, "category": p.key.category, "total": p.total,
             "free": rng.randint(0, p.total), "timestamp": model.instant(moment), "region": p.region}
            for p in providers]


REPORT_HOURS_AGO = (24, 18, 12, 6, 0.1)  # so the dashboard's 24 h trend has something to show
QUICK_HOURS_AGO = (12, 0.1)  # `zcc-gateway demo-data`: two reports per provider keep `make run` short


def load_demo_capacity(components: Any, identity: Any, per_category: int = 1,
                       regions: list[str] | None = None, hours_ago: tuple[float, ...] = REPORT_HOURS_AGO) -> int:
    """Write the demo providers (one transaction per region) and feed their bed-status rows, oldest report
    first, through the normal feed (raw messages kept, notifications sent). Idempotent: fixed ids, and a
    report that is not newer than the stored one is ignored. Returns the number of rows applied."""
    from gateway.fhir.context import RequestScope
    from gateway.fhir.urls import interaction_for

    services, terms = components.feed.services, components.terms
    providers: list[DemoProvider] = []
    for region in regions or sorted(terms.regions):
        found = demo_providers(terms, region, per_category)
        bundle = provider_bundle(found)
        _decimalise_positions(bundle)
        it = interaction_for("POST", "", [], services.resource_types, {"prefer": "return=minimal"}, bundle)
        services.pipeline.dispatch(RequestScope(services, identity=identity), it)
        providers += found
    now = datetime.now(UTC)
    applied = 0
    for hours in hours_ago:
        rows = demo_rows(providers, now - timedelta(hours=hours))
        result = components.feed.ingest(json.dumps(rows).encode("utf-8"), "application/json", identity)
        applied += result.count("applied")
    return applied


def _decimalise_positions(bundle: dict[str, Any]) -> None:
    """Stored decimals are Decimal (precision kept); the demo builds floats."""
    for entry in bundle["entry"]:
        position = entry["resource"].get("position")
        if position:
            for axis in ("latitude", "longitude"):
                position[axis] = Decimal(str(position[axis]))
