"""One gateway (tmp SQLite, audit and consent on) with the ingestion routes registered, per test module."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from conformance.packages import default_package_paths
from gateway.app import build_services, create_app
from gateway.ingest.routes import register
from gateway.ingest.service import IngestService
from gateway.settings import Settings
from tests.auth.fixtures import GatewayTokenAuth
from tests.reference import MISSING_MESSAGE, REFERENCE_DIR

REFERENCE = REFERENCE_DIR / "hap-hl7v3"
KETENZORG = REFERENCE / "ketenzorg"
SUMMARY = REFERENCE / "professionele-samenvatting" / "QUPC_IN990002NL_01.xml"


@pytest.fixture(scope="module")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    return f"sqlite:///{tmp_path_factory.mktemp('ingest') / 'gateway.db'}"


@pytest.fixture(scope="module")
def services(database_url: str):  # type: ignore[no-untyped-def]
    """On R4 core alone, whatever the local package cache holds: these suites test the pipeline (raw kept,
    rejected kept, idempotent, provenance). Conformance of the output to nl-core is test_nl_core_validation.py."""
    settings = Settings(database_url=database_url, base_url="http://testserver/fhir",
                        package_paths=default_package_paths())
    return build_services(settings)


@pytest.fixture(scope="module")
def app(services):  # type: ignore[no-untyped-def]
    app = create_app(services=services)
    register(app, services)
    return app


@pytest.fixture(scope="module")
def service(app) -> IngestService:  # type: ignore[no-untyped-def]
    return app.state.ingest


@pytest.fixture(scope="module")
def client(app, database_url: str) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    with TestClient(app) as test_client:
        test_client.auth = GatewayTokenAuth(app, database_url)
        yield test_client


def reference_message(name: str) -> bytes:
    if not REFERENCE_DIR.exists():
        pytest.skip(MISSING_MESSAGE)
    return (KETENZORG / name).read_bytes()
