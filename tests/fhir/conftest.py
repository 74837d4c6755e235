"""A gateway app per test module, on SQLite and on the session's PostgreSQL server, driven in-process."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, text
from starlette.testclient import TestClient

from gateway.app import build_services, create_app
from gateway.settings import Settings


def _fresh_postgres_database(server_url: str) -> str:
    name = f"t_{uuid.uuid4().hex[:12]}"
    engine = create_engine(server_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return server_url.rsplit("/", 1)[0] + f"/{name}"


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path_factory.mktemp('db') / 'gateway.db'}"
    return _fresh_postgres_database(request.getfixturevalue("pg_url"))


@pytest.fixture(scope="module")
def services(database_url: str):  # type: ignore[no-untyped-def]
    return build_services(Settings(database_url=database_url, base_url="http://testserver/fhir"))


@pytest.fixture(scope="module")
def client(services) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    with TestClient(create_app(services=services)) as test_client:
        yield test_client


FHIR_JSON = {"Content-Type": "application/fhir+json", "Accept": "application/fhir+json"}
