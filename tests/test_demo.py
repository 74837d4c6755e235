"""`zcc-gateway demo-data` (what `make run` does first) loads cleanly on every package the cache holds — with the
Nictiz packages installed the demo data is validated against their terminology too (an organisation-type code
that RoleCodeNL does not define once slipped through on R4 core alone)."""

from __future__ import annotations

from typer.testing import CliRunner

from gateway.cli import app
from gateway.demo import demo_bundle
from gateway.settings import Settings


def test_demo_data_loads_with_the_installed_packages(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("ZCC_AUTH_KEY_DIR", str(tmp_path / "keys"))
    database = f"sqlite:///{tmp_path / 'demo.db'}"
    result = CliRunner().invoke(app, ["demo-data", "--database", database])
    assert result.exit_code == 0, result.output
    assert f"{len(demo_bundle()['entry'])} resources written" in result.output
    assert Settings().package_paths  # the default: every package in var/packages
