"""Session-wide fixtures shared by all test packages: the loaded FHIR packages and a PostgreSQL server."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from hypothesis import settings

from conformance.packages import PackageSet, default_package_paths
from tests.pg import PostgresUnavailableError, start_temporary_postgres


@pytest.fixture(scope="session")
def packages() -> PackageSet:
    """The R4 core package (definitions and examples), loaded once."""
    return PackageSet.from_paths(default_package_paths())


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """SQLAlchemy URL of the `postgres` database of a throw-away PostgreSQL cluster (skips if none)."""
    try:
        server = start_temporary_postgres()
    except PostgresUnavailableError as error:
        pytest.skip(str(error))
    try:
        yield server.url
    finally:
        server.stop()


# CI runs hypothesis deterministically (same examples on every run, so a red build is reproducible);
# `HYPOTHESIS_PROFILE=explore` searches afresh for local bug hunting.
settings.register_profile("ci", derandomize=True, deadline=None)
settings.register_profile("explore", deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
