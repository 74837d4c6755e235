from __future__ import annotations

import pytest

from gateway.consent.engine import ConsentEngine
from gateway.consent.model import PatientFacts
from gateway.consent.policy import Policy, load_policy
from tests.consent.builders import NOW, contact
from tests.consent.fakes import BASE, FixedFacts


@pytest.fixture(scope="session")
def policy() -> Policy:
    return load_policy()


@pytest.fixture(scope="module")
def engine(packages, policy) -> ConsentEngine:  # type: ignore[no-untyped-def]
    """A consent engine whose facts are fixed: p1 has an active zcc contact, nobody else has anything."""
    built = ConsentEngine.build(packages, BASE, policy, clock=lambda: NOW)
    p1 = PatientFacts("p1", (contact(),))
    built.facts_source = FixedFacts({"p1": p1}, policy.parameters)
    return built
