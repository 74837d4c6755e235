"""Fakes for the consent stage tests: fixed facts, a store that yields no connection, a tiny search registry."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

from gateway.consent.facts import FactsSource
from gateway.consent.model import PatientFacts
from gateway.fhir.context import RequestScope

BASE = "http://gw/fhir"


class FixedFacts(FactsSource):
    def __init__(self, facts: dict[str, PatientFacts], params: Any) -> None:
        super().__init__(params)
        self.fixed = facts
        self.asked: list[list[str]] = []

    def facts(self, connection: Any, patients: Any) -> dict[str, PatientFacts]:
        wanted = sorted(patients)
        self.asked.append(wanted)
        return {p: self.fixed.get(p, PatientFacts(p)) for p in wanted}


@dataclass
class FakeStore:
    current: dict[tuple[str, str], Any] = field(default_factory=dict)

    @contextmanager
    def read(self, snapshot: bool = True, waiting: bool = True) -> Iterator[None]:
        yield None

    def get(self, connection: Any, resource_type: str, resource_id: str) -> Any:
        return self.current.get((resource_type, resource_id))


class FakeRegistry:
    def get(self, resource_type: str | None, code: str) -> Any:
        known = {"code", "subject", "patient", "performer", "identifier", "name"}
        return SimpleNamespace(supported=True) if code in known else None


def scope(identity: Any = None) -> RequestScope:
    services = SimpleNamespace(settings=SimpleNamespace(base_url=BASE), store=FakeStore(), search=FakeRegistry())
    return RequestScope(services, identity=identity or triagist())  # type: ignore[arg-type]


def triagist(**changes: Any) -> SimpleNamespace:
    values = {
        "client_id": "zcc-app",
        "ura": "1",
        "organization_type": "N6",
        "role": "triagist",
        "purpose_of_use": "TREAT",
        "scopes": ["user/*.read"],
        "jti": "jti-1",
    }
    values.update(changes)
    return SimpleNamespace(**values)
