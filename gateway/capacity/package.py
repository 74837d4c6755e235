"""Where the capacity package (profiles/nictiz/capacity: CodeSystems, profiles, SearchParameters) lives —
in a source checkout or installed next to the `gateway` package — and adding it to a PackageSet that lacks
it, so its search parameters are indexed and its terms resolve whatever ZCC_PACKAGE_PATH says."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from conformance.packages import PackageSet, load_package
from gateway.capacity.urls import CATEGORY_SYSTEM

PACKAGE_PARTS = ("profiles", "nictiz", "capacity")


def capacity_package_path() -> Path:
    """The package folder: the checkout's top-level profiles/ first, else the installed `profiles` data."""
    checkout = Path(__file__).resolve().parents[2].joinpath(*PACKAGE_PARTS)
    if (checkout / "package.json").is_file():
        return checkout
    spec = importlib.util.find_spec(".".join(PACKAGE_PARTS))
    for location in (spec.submodule_search_locations or []) if spec else []:
        if (Path(location) / "package.json").is_file():
            return Path(location)
    raise FileNotFoundError("the capacity package (profiles/nictiz/capacity) is not installed")


def ensure_capacity_package(packages: PackageSet) -> None:
    """Add the capacity package unless the set already resolves its definitions (e.g. via ZCC_PACKAGE_PATH)."""
    if packages.resolve(CATEGORY_SYSTEM) is None:
        packages.add(load_package(capacity_package_path()))
