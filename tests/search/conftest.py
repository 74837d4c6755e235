"""A search parameter registry over the R4 core package, shared by the search tests."""

from __future__ import annotations

import pytest

from conformance.packages import PackageSet
from gateway.search.definitions import SearchParameterRegistry


@pytest.fixture(scope="session")
def registry(packages: PackageSet) -> SearchParameterRegistry:
    return SearchParameterRegistry(packages)


@pytest.fixture(scope="session")
def examples(packages: PackageSet) -> dict[tuple[str, str], dict]:
    """R4 example resources by (type, id)."""
    return {(r["resourceType"], r["id"]): r for _, r in packages.examples() if "id" in r}
