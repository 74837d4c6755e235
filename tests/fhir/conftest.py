"""A gateway app per test module, on SQLite and on the session's PostgreSQL server, driven in-process."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from gateway.app import build_services, create_app
from gateway.settings import Settings
from tests.auth.fixtures import GatewayTokenAuth
from tests.pg import fresh_database


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path_factory.mktemp('db') / 'gateway.db'}"
    return fresh_database(request.getfixturevalue("pg_url"))


def core_settings(database_url: str, **overrides: object) -> Settings:
    """The REST-semantics suites run with real tokens and audit on, and with the consent stage off: they test
    FHIR behaviour, not disclosure policy (tests/consent and tests/audit cover that end to end)."""
    return Settings(database_url=database_url, base_url="http://testserver/fhir", consent=False, **overrides)


@pytest.fixture(scope="module")
def services(database_url: str):  # type: ignore[no-untyped-def]
    return build_services(core_settings(database_url))


@pytest.fixture(scope="module")
def client(services, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    app = create_app(services=services)
    with TestClient(app) as test_client:
        test_client.auth = GatewayTokenAuth(app, services.settings.database_url)
        yield test_client


FHIR_JSON = {"Content-Type": "application/fhir+json", "Accept": "application/fhir+json"}
