"""An in-process gateway (temporary SQLite, real tokens, audit on) for the attack catalogue, plus helpers that
check the two invariants of every hostile request: a clear OperationOutcome, and nothing written."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from starlette.testclient import TestClient

from gateway.app import build_services, create_app
from gateway.ingest.schema import ingest_message
from gateway.settings import Settings
from gateway.store.schema import resource_version
from tests.auth.fixtures import GatewayTokenAuth

FHIR_JSON = {"Content-Type": "application/fhir+json", "Accept": "application/fhir+json"}
FHIR_XML = {"Content-Type": "application/fhir+xml", "Accept": "application/fhir+json"}


@pytest.fixture(scope="module")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    return f"sqlite:///{tmp_path_factory.mktemp('attacks') / 'gateway.db'}"


@pytest.fixture(scope="module")
def services(database_url: str):  # type: ignore[no-untyped-def]
    return build_services(Settings(database_url=database_url, base_url="http://testserver/fhir", consent=False))


@pytest.fixture(scope="module")
def client(services, database_url: str) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    app = create_app(services=services)
    with TestClient(app, raise_server_exceptions=False) as test_client:
        test_client.auth = GatewayTokenAuth(app, database_url)
        yield test_client


def stored_versions(services: Any) -> int:
    """How many resource versions the store holds (a refused request must not change this)."""
    with services.store.engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(resource_version)).scalar_one())


def ingest_statuses(services: Any) -> list[str]:
    with services.store.engine.connect() as connection:
        return list(connection.execute(select(ingest_message.c.status)).scalars())


def assert_outcome(response: httpx.Response, status: int | set[int], code: str | set[str] | None = None) -> dict:
    """The response is the expected client error, carried by an OperationOutcome with a human diagnostics."""
    allowed = {status} if isinstance(status, int) else status
    assert response.status_code in allowed, (response.status_code, response.text[:500])
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome", outcome
    issue = outcome["issue"][0]
    assert issue["severity"] in {"error", "fatal"}
    assert issue.get("diagnostics"), outcome
    if code is not None:
        codes = {code} if isinstance(code, str) else code
        assert issue["code"] in codes, outcome
    return outcome
