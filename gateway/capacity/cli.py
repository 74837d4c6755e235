"""`zcc-gateway capacity`: import bed-status files (CSV, JSON rows or a SANER MeasureReport) through the same
feed as `POST /ingest/capacity`, and load the demo capacity picture. Mounted in gateway/cli.py."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

capacity_app = typer.Typer(help="Care capacity: bed-status import and demo data.", no_args_is_help=True)
CONTENT_TYPES = {".csv": "text/csv", ".json": "application/json"}


def _components(database: str | None):  # type: ignore[no-untyped-def]
    from gateway.app import build_services  # late: building services loads packages (slow for --help)
    from gateway.capacity.components import CapacityComponents
    from gateway.settings import Settings

    services = build_services(Settings(database_url=database) if database else Settings())
    return CapacityComponents.build(services)


@capacity_app.command("import")
def import_files(
    files: list[Path] = typer.Argument(..., help="bed-status files: .csv, .json (rows or a SANER MeasureReport)"),
    database: str | None = typer.Option(None, help="database URL (default: ZCC_DATABASE_URL)"),
) -> None:
    """Apply bed-status files; prints each row's verdict. Exit code 1 when a file or a row was rejected."""
    from gateway.auth.identity import local_administrator

    missing = [str(path) for path in files if not path.is_file()]
    if missing:
        raise typer.BadParameter(f"no such file: {', '.join(missing)}")
    components = _components(database)
    console = Console()
    failed = False
    try:
        for path in files:
            result = components.feed.ingest(path.read_bytes(), CONTENT_TYPES.get(path.suffix.lower()),
                                            local_administrator())
            summary = result.summary()
            table = Table(title=f"{path.name}: {summary['status']} (record {summary['record']})")
            for column in ("row", "verdict", "unit", "reason"):
                table.add_column(column)
            for row in summary["rows"]:
                reason = row.get("message", "") + (f" [{row['field']}]" if row.get("field") else "")
                table.add_row(str(row["row"]), row["verdict"], row.get("unit", ""), reason)
            console.print(table)
            if not summary["rows"]:
                issues = (summary.get("outcome") or {}).get("issue", [])
                console.print(f"[red]{issues[0]['diagnostics'] if issues else 'rejected'}[/red]")
            console.print(f"applied {summary['applied']}, duplicate {summary['duplicate']}, "
                          f"out-of-order {summary['outOfOrder']}, rejected {summary['rejected']}")
            failed = failed or summary["status"] == "rejected" or summary["rejected"] > 0
        components.hub.drain(timeout=10)  # deliver the notifications before the process ends
    finally:
        components.hub.stop()
    if failed:
        raise typer.Exit(1)


@capacity_app.command("demo")
def demo(
    per_category: int = typer.Option(1, min=1, max=20, help="providers per category and region"),
    database: str | None = typer.Option(None, help="database URL (default: ZCC_DATABASE_URL)"),
) -> None:
    """Load demo providers of every category in every ROAZ region, with 24 h of bed-status reports."""
    from gateway.auth.identity import local_administrator
    from gateway.capacity.demo import load_demo_capacity

    components = _components(database)
    try:
        applied = load_demo_capacity(components, local_administrator(), per_category=per_category)
    finally:
        components.hub.stop()
    typer.echo(f"demo capacity: {applied} bed-status reports applied")
