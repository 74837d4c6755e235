"""A store on a fresh PostgreSQL database, for the store tests that need the real server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from conformance.packages import PackageSet
from gateway.search.definitions import SearchParameterRegistry
from gateway.search.extract import extract_index_rows
from gateway.store.engine import create_database_engine
from gateway.store.migrate import upgrade
from gateway.store.repository import ResourceStore
from tests.pg import fresh_database


@pytest.fixture()
def pg_store(packages: PackageSet, pg_url: str) -> Iterator[ResourceStore]:
    """A ResourceStore on a fresh, migrated PostgreSQL database, indexing with the loaded search parameters."""
    engine = create_database_engine(fresh_database(pg_url, "store"))
    upgrade(engine)
    registry = SearchParameterRegistry(packages)
    yield ResourceStore(engine, lambda body: extract_index_rows(body, registry))
    engine.dispose()
