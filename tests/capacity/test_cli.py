"""`zcc-gateway capacity import` (verdict per row, exit code on rejects), the demo capacity loader and the
capacity package being found without ZCC_PACKAGE_PATH naming it."""

from __future__ import annotations

from datetime import UTC, datetime

from typer.testing import CliRunner

from conformance.packages import PackageSet, default_package_paths
from gateway.app import build_services
from gateway.auth.identity import local_administrator
from gateway.capacity.aggregate import aggregate_reports
from gateway.capacity.components import CapacityComponents
from gateway.capacity.demo import load_demo_capacity
from gateway.capacity.package import capacity_package_path, ensure_capacity_package
from gateway.capacity.urls import CATEGORY_SYSTEM
from gateway.cli import app as cli
from gateway.fhir.context import RequestScope
from gateway.settings import Settings
from tests.capacity.helpers import at


def test_import_prints_verdicts_and_fails_on_rejected_rows(tmp_path) -> None:  # type: ignore[no-untyped-def]
    database = f"sqlite:///{tmp_path / 'cli.db'}"
    good = tmp_path / "beds.csv"
    good.write_text(f"ura,location,category,total,free,timestamp\n55555551,ELV,elv-palliatief,3,1,{at(5)}\n")
    mixed = tmp_path / "mixed.csv"
    mixed.write_text(f"ura,location,category,total,free,timestamp\n55555551,ELV,elv-palliatief,3,2,{at(10)}\n"
                     f"55555552,GRZ,grz-bed,1,4,{at(1)}\n")
    runner = CliRunner()
    first = runner.invoke(cli, ["capacity", "import", str(good), "--database", database])
    assert first.exit_code == 0, first.output
    assert "applied 1, duplicate 0, out-of-order 0, rejected 0" in first.output
    second = runner.invoke(cli, ["capacity", "import", str(mixed), "--database", database])
    assert second.exit_code == 1
    assert "applied 0, duplicate 0, out-of-order 1, rejected 1" in second.output
    missing = runner.invoke(cli, ["capacity", "import", str(tmp_path / "nope.csv"), "--database", database])
    assert missing.exit_code == 2


def test_the_capacity_package_is_found_without_configuration(tmp_path) -> None:  # type: ignore[no-untyped-def]
    assert (capacity_package_path() / "CodeSystem-capacity-category.json").is_file()
    packages = PackageSet.from_paths(default_package_paths())
    ensure_capacity_package(packages)
    ensure_capacity_package(packages)  # a second call adds nothing
    assert sum(1 for p in packages.packages if p.name == "zcc-gateway.capacity") == 1
    services = build_services(Settings(database_url=f"sqlite:///{tmp_path / 'plain.db'}",
                                       package_paths=default_package_paths()))
    assert services.packages.resolve(CATEGORY_SYSTEM) is not None
    assert services.search.get("Schedule", "region") is not None


def test_demo_capacity_covers_every_category(tmp_path) -> None:  # type: ignore[no-untyped-def]
    services = build_services(Settings(database_url=f"sqlite:///{tmp_path / 'demo.db'}"))
    components = CapacityComponents.build(services)
    try:
        applied = load_demo_capacity(components, local_administrator(), regions=["limburg"], hours_ago=(2, 0.5))
        assert applied == 2 * len(components.terms.categories)
        again = load_demo_capacity(components, local_administrator(), regions=["limburg"], hours_ago=(2,))
        assert again == 0  # older than what is stored: ignored
    finally:
        components.hub.stop()
    (report,) = aggregate_reports(RequestScope(services), components.terms, [("region", "limburg")],
                                  datetime.now(UTC))
    totals = {g["code"]["coding"][0]["code"]: g["population"][0]["count"] for g in report["group"]}
    assert set(totals) == set(components.terms.categories)
    assert all(total > 0 for total in totals.values()), totals
