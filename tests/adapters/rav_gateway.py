"""A gateway (tmp SQLite, auth, consent and audit on, ingestion registered) that loads the Nictiz nl-core
packages and the gateway's urgency code systems, as a deployment that validates RAV output against nl-core does.
Fixtures for the RAV end-to-end tests (import them into the test module)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from conformance.packages import default_package_paths
from gateway.app import build_services, create_app
from gateway.ingest.service import IngestService
from gateway.settings import Settings
from tests.auth.fixtures import GatewayTokenAuth
from tests.reference import MISSING_MESSAGE, REFERENCE_DIR

ROOT = Path(__file__).resolve().parents[2]
NL_CORE_PACKAGES = [REFERENCE_DIR / "nictiz-r4-zib2020" / "resources" / "zib",
                    REFERENCE_DIR / "nictiz-r4-zib2020" / "resources" / "nl-core",
                    ROOT / "profiles" / "nictiz" / "urgency"]


@pytest.fixture(scope="module")
def rav_database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    if not REFERENCE_DIR.exists():
        pytest.skip(MISSING_MESSAGE)
    return f"sqlite:///{tmp_path_factory.mktemp('rav') / 'gateway.db'}"


@pytest.fixture(scope="module")
def rav_services(rav_database_url: str):  # type: ignore[no-untyped-def]
    packages = [*default_package_paths(ROOT), *NL_CORE_PACKAGES]
    return build_services(Settings(database_url=rav_database_url, base_url="http://testserver/fhir",
                                   package_paths=packages))


@pytest.fixture(scope="module")
def rav_app(rav_services):  # type: ignore[no-untyped-def]
    return create_app(services=rav_services)  # registers /ingest and $process-message


@pytest.fixture(scope="module")
def rav_service(rav_app) -> IngestService:  # type: ignore[no-untyped-def]
    return rav_app.state.ingest


@pytest.fixture(scope="module")
def rav_client(rav_app, rav_database_url: str) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    with TestClient(rav_app) as test_client:
        test_client.auth = GatewayTokenAuth(rav_app, rav_database_url)
        yield test_client
