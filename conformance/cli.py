"""`validate`: validate FHIR resources (files, folders, Bundles; JSON and XML) from the command line.

    zcc-gateway validate PATH... [--profile URL]... [--package PATH]... [--format text|json|junit] [--jobs N]

Exit code 0 when no resource has errors, 1 when some have, 2 on usage errors. Mount the command with
`app.command("validate")(conformance.cli.validate)`; `python -m conformance.cli PATH...` works standalone.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape, quoteattr

import typer

app = typer.Typer(help="Validate FHIR R4 resources against the base spec and profiles.", add_completion=False)

PROGRESS_THRESHOLD = 10  # files; fewer finish before a bar would be useful


class OutputFormat(StrEnum):
    text = "text"
    json = "json"
    junit = "junit"


@dataclass
class FileResult:
    path: str
    profiles: list[str]
    outcome: dict[str, Any]
    errors: int = 0
    warnings: int = 0

    def __post_init__(self) -> None:
        issues = self.outcome.get("issue", ())
        self.errors = sum(1 for i in issues if i.get("severity") in ("error", "fatal"))
        self.warnings = sum(1 for i in issues if i.get("severity") == "warning")


@dataclass
class ProfileSummary:
    files: int = 0
    errors: int = 0
    warnings: int = 0
    invalid_files: int = 0
    names: set[str] = field(default_factory=set)


def find_files(paths: Sequence[Path]) -> list[Path]:
    """The JSON and XML files named or found (recursively) in the folders named, in a stable order."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in (".json", ".xml")
                                and p.name != "package.json"))
        else:
            found.append(path)
    return found


# -- work (runs in worker processes with --jobs) ------------------------------------------------------------------

_validator: Any = None


def _init_worker(packages: list[str]) -> None:
    global _validator
    from conformance.packages import PackageSet
    from conformance.typemodel import package_paths_from_environment
    from conformance.validator import Validator

    paths = [p for p in package_paths_from_environment() if p.exists()] + [Path(p) for p in packages]
    _validator = Validator(PackageSet.from_paths(paths))


def _validate_one(task: tuple[str, list[str]]) -> FileResult:
    path, profiles = task
    raw = Path(path).read_bytes()
    content_type = "xml" if path.lower().endswith(".xml") else "json"
    outcome = _validator.validate(raw, profiles, content_type)
    claimed = profiles or _claimed_profiles(raw, content_type)
    return FileResult(path, claimed, outcome)


def _claimed_profiles(raw: bytes, content_type: str) -> list[str]:
    try:
        if content_type == "xml":
            from conformance.fhirxml import xml_to_json

            resource = xml_to_json(raw)
        else:
            resource = json.loads(raw)
    except Exception:  # noqa: BLE001 - the outcome already reports the parse error
        return []
    meta = resource.get("meta") if isinstance(resource, dict) else None
    profiles = meta.get("profile") if isinstance(meta, dict) else None
    return [p for p in profiles if isinstance(p, str)] if isinstance(profiles, list) else []


def run(files: list[Path], profiles: list[str], packages: list[str], jobs: int, progress: bool) -> list[FileResult]:
    tasks = [(str(f), profiles) for f in files]
    if jobs <= 1:
        if _validator is None:
            _init_worker(packages)
        return list(_with_progress(map(_validate_one, tasks), len(tasks), progress))
    with ProcessPoolExecutor(max_workers=jobs, initializer=_init_worker, initargs=(packages,)) as pool:
        return list(_with_progress(pool.map(_validate_one, tasks, chunksize=4), len(tasks), progress))


def _with_progress(results: Iterator[FileResult], total: int, show: bool) -> Iterator[FileResult]:
    if not show:
        yield from results
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    columns = (TextColumn("validating"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, transient=True, console=_stderr_console()) as bar:
        task = bar.add_task("validate", total=total)
        for result in results:
            bar.advance(task)
            yield result


def _stderr_console() -> Any:
    from rich.console import Console

    return Console(stderr=True)


# -- reporting ------------------------------------------------------------------------------------------------------

def summarise(results: list[FileResult]) -> dict[str, ProfileSummary]:
    summary: dict[str, ProfileSummary] = {}
    for result in results:
        for profile in result.profiles or ["(base specification)"]:
            row = summary.setdefault(profile, ProfileSummary())
            row.files += 1
            row.errors += result.errors
            row.warnings += result.warnings
            row.invalid_files += result.errors > 0
    return summary


def render_text(results: list[FileResult], show_warnings: bool) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(highlight=False, soft_wrap=True)
    for result in results:
        shown = [i for i in result.outcome.get("issue", ())
                 if i.get("severity") in ("error", "fatal") or (show_warnings and i.get("severity") == "warning")]
        if not shown:
            continue
        console.print(f"[bold]{result.path}[/bold]: {result.errors} error(s), {result.warnings} warning(s)")
        for issue in shown:
            where = (issue.get("expression") or ["?"])[0]
            position = issue.get("diagnostics", "")
            console.print(f"  {issue['severity'].upper():<8} {where} {position} {issue['details']['text']}",
                          markup=False)
    table = Table(title="Validation summary")
    for column in ("profile", "files", "invalid files", "errors", "warnings"):
        table.add_column(column, justify="left" if column == "profile" else "right", overflow="fold")
    for profile, row in sorted(summarise(results).items()):
        table.add_row(profile, str(row.files), str(row.invalid_files), str(row.errors), str(row.warnings))
    console.print(table)
    invalid = sum(1 for r in results if r.errors)
    console.print(f"{len(results)} file(s), {invalid} with errors, "
                  f"{sum(r.errors for r in results)} error(s), {sum(r.warnings for r in results)} warning(s)")


def render_json(results: list[FileResult]) -> str:
    summary = {p: {"files": s.files, "invalidFiles": s.invalid_files, "errors": s.errors, "warnings": s.warnings}
               for p, s in sorted(summarise(results).items())}
    from conformance.fhirjson import dumps

    body = {"files": [{"path": r.path, "profiles": r.profiles, "errors": r.errors, "warnings": r.warnings,
                       "outcome": r.outcome} for r in results], "summary": summary}
    return dumps(body, pretty=True).decode()


def render_junit(results: list[FileResult]) -> str:
    failures = sum(1 for r in results if r.errors)
    lines = ['<?xml version="1.0" encoding="UTF-8"?>',
             f'<testsuite name="fhir-validation" tests="{len(results)}" failures="{failures}" errors="0">']
    for result in results:
        lines.append(f"  <testcase classname={quoteattr(', '.join(result.profiles) or 'base')} "
                     f"name={quoteattr(result.path)}>")
        if result.errors:
            details = "\n".join(
                f"{i['severity']}: {(i.get('expression') or ['?'])[0]}: {i['details']['text']}"
                for i in result.outcome.get("issue", ()) if i.get("severity") in ("error", "fatal"))
            lines.append(f"    <failure message={quoteattr(f'{result.errors} error(s)')}>{escape(details)}</failure>")
        lines.append("  </testcase>")
    lines.append("</testsuite>")
    return "\n".join(lines)


@app.command()
def validate(
    paths: list[Path] = typer.Argument(..., exists=True, help="files or folders (JSON, XML, Bundles)"),
    profile: list[str] = typer.Option([], "--profile", help="profile URL to validate against (repeatable)"),
    package: list[Path] = typer.Option([], "--package", exists=True,
                                       help="extra FHIR package: .tgz or folder (repeatable)"),
    output_format: OutputFormat = typer.Option(OutputFormat.text, "--format", help="text, json or junit"),
    jobs: int = typer.Option(1, "--jobs", min=1, help="worker processes"),
    warnings: bool = typer.Option(True, "--warnings/--no-warnings", help="list warnings in text output"),
) -> None:
    """Validate resources; exit 0 when none has errors, 1 when some have, 2 on usage errors."""
    files = find_files(paths)
    if not files:
        raise typer.BadParameter("no .json or .xml files found", param_hint="PATHS")
    if profile:
        _init_worker([str(p) for p in package])
        unknown = [url for url in profile if _validator.registry.profile(url) is None]
        if unknown:
            raise typer.BadParameter(f"profile not found in the loaded packages: {', '.join(unknown)}",
                                     param_hint="--profile")
    show_progress = len(files) >= PROGRESS_THRESHOLD and output_format is OutputFormat.text
    results = run(files, list(profile), [str(p) for p in package], jobs, show_progress)
    if output_format is OutputFormat.json:
        typer.echo(render_json(results))
    elif output_format is OutputFormat.junit:
        typer.echo(render_junit(results))
    else:
        render_text(results, warnings)
    raise typer.Exit(1 if any(r.errors for r in results) else 0)


def main() -> None:  # pragma: no cover - thin wrapper
    sys.exit(app())


if __name__ == "__main__":  # pragma: no cover
    main()
