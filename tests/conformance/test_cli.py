"""The `validate` command: exit codes, output formats, folders, several processes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conformance import cli

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[2]
NICTIZ = ROOT.parent / "shared" / "reference" / "nictiz-r4-zib2020"

GOOD = {"resourceType": "Patient", "id": "p1", "text": {"status": "generated", "div": '<div xmlns="http://www.w3.org/1999/xhtml">p</div>'},
        "gender": "female", "birthDate": "1980-02-03"}
BAD = {"resourceType": "Patient", "id": "p2", "gender": "vrouw", "birthDate": "1980-13-03"}


@pytest.fixture(autouse=True)
def fresh_validator(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli, "_validator", None)


def write(folder: Path, name: str, resource: dict) -> Path:
    path = folder / name
    path.write_text(json.dumps(resource))
    return path


def test_valid_file_exits_zero(tmp_path: Path) -> None:
    result = runner.invoke(cli.app, [str(write(tmp_path, "good.json", GOOD))])
    assert result.exit_code == 0, result.output
    assert "0 with errors" in result.output


def test_errors_exit_one_and_are_listed_with_their_expression(tmp_path: Path) -> None:
    result = runner.invoke(cli.app, [str(write(tmp_path, "bad.json", BAD))])
    assert result.exit_code == 1
    assert "Patient.gender" in result.output
    assert "Patient.birthDate" in result.output


def test_usage_errors_exit_two(tmp_path: Path) -> None:
    assert runner.invoke(cli.app, [str(tmp_path / "missing.json")]).exit_code == 2
    good = str(write(tmp_path, "good.json", GOOD))
    assert runner.invoke(cli.app, [good, "--format", "yaml"]).exit_code == 2
    assert runner.invoke(cli.app, [good, "--profile", "http://example.org/no-such-profile"]).exit_code == 2
    assert runner.invoke(cli.app, [str(tmp_path / "empty-dir")]).exit_code == 2


def test_json_output_has_an_outcome_per_file_and_a_summary(tmp_path: Path) -> None:
    write(tmp_path, "good.json", GOOD)
    write(tmp_path, "bad.json", BAD)
    result = runner.invoke(cli.app, [str(tmp_path), "--format", "json"])
    assert result.exit_code == 1
    body = json.loads(result.output)
    by_name = {Path(f["path"]).name: f for f in body["files"]}
    assert by_name["good.json"]["errors"] == 0
    assert by_name["bad.json"]["errors"] == 2
    assert by_name["bad.json"]["outcome"]["resourceType"] == "OperationOutcome"
    assert body["summary"]["(base specification)"]["invalidFiles"] == 1


def test_junit_output_marks_failures(tmp_path: Path) -> None:
    write(tmp_path, "bad.json", BAD)
    result = runner.invoke(cli.app, [str(tmp_path), "--format", "junit"])
    assert result.exit_code == 1
    assert 'tests="1" failures="1"' in result.output
    assert "<failure" in result.output


def test_several_processes_give_the_same_results(tmp_path: Path) -> None:
    for index in range(6):
        write(tmp_path, f"good{index}.json", GOOD)
    write(tmp_path, "bad.json", BAD)
    result = runner.invoke(cli.app, [str(tmp_path), "--format", "json", "--jobs", "2"])
    assert result.exit_code == 1
    body = json.loads(result.output)
    assert sorted(f["errors"] for f in body["files"]) == [0, 0, 0, 0, 0, 0, 2]


@pytest.mark.skipif(not NICTIZ.exists(), reason="Nictiz reference data not available")
def test_nictiz_xml_examples_with_packages_and_progress() -> None:
    examples = sorted((NICTIZ / "examples").glob("nl-core-Patient-0*.xml"))
    args = [*map(str, examples), "--package", str(NICTIZ / "resources" / "zib"),
            "--package", str(NICTIZ / "resources" / "nl-core"), "--no-warnings"]
    result = runner.invoke(cli.app, args)
    assert result.exit_code == 0, result.output
    assert "nl-core-Patient" in result.output


def test_progress_bar_is_drawn_on_long_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    drawn = []
    original = cli._with_progress

    def spy(results, total, show):  # noqa: ANN001, ANN202
        drawn.append(show)
        return original(results, total, show)

    monkeypatch.setattr(cli, "_with_progress", spy)
    for index in range(cli.PROGRESS_THRESHOLD):
        write(tmp_path, f"good{index}.json", GOOD)
    assert runner.invoke(cli.app, [str(tmp_path)]).exit_code == 0
    assert runner.invoke(cli.app, [str(tmp_path / "good0.json")]).exit_code == 0
    assert drawn == [True, False]
