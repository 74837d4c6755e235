"""`zcc-gateway validate` is the conformance CLI mounted on the gateway's command line (same exit codes)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conformance import cli as conformance_cli
from gateway.cli import app

runner = CliRunner()


@pytest.fixture(autouse=True)
def fresh_validator(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(conformance_cli, "_validator", None)


def test_exit_codes_through_the_gateway_command(tmp_path: Path) -> None:
    good = tmp_path / "good.json"
    good.write_text(json.dumps({"resourceType": "Patient", "gender": "female"}))
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"resourceType": "Patient", "gender": "vrouw"}))
    assert runner.invoke(app, ["validate", str(good)]).exit_code == 0
    refused = runner.invoke(app, ["validate", str(bad), "--format", "json"])
    assert refused.exit_code == 1, refused.output
    assert "Patient.gender" in refused.output
    assert runner.invoke(app, ["validate", str(tmp_path / "empty-folder-does-not-exist")]).exit_code == 2
