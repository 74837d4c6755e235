"""One gateway per test module (tmp SQLite, audit and consent on, real tokens) with the capacity package
loaded and `gateway.capacity.routes.register` wired by create_app."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from conformance.packages import default_package_paths
from gateway.app import build_services, create_app
from gateway.settings import Settings
from tests.auth.fixtures import GatewayTokenAuth

CAPACITY_PACKAGE = Path(__file__).resolve().parents[2] / "profiles" / "nictiz" / "capacity"
FHIR_JSON = {"Content-Type": "application/fhir+json", "Accept": "application/fhir+json"}


def capacity_settings(database_url: str) -> Settings:
    return Settings(database_url=database_url, base_url="http://testserver/fhir",
                    package_paths=[*default_package_paths(), CAPACITY_PACKAGE])


@pytest.fixture(scope="module")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    return f"sqlite:///{tmp_path_factory.mktemp('capacity') / 'gateway.db'}"


@pytest.fixture(scope="module")
def services(database_url: str):  # type: ignore[no-untyped-def]
    return build_services(capacity_settings(database_url))


@pytest.fixture(scope="module")
def app(services):  # type: ignore[no-untyped-def]
    app = create_app(services=services)
    yield app
    app.state.capacity.hub.stop()


@pytest.fixture(scope="module")
def client(app, database_url: str) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    with TestClient(app) as test_client:
        test_client.auth = GatewayTokenAuth(app, database_url)
        yield test_client


@pytest.fixture(scope="module")
def components(app):  # type: ignore[no-untyped-def]
    return app.state.capacity
