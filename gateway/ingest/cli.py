"""`zcc-gateway ingest`: ingest files or folders, re-process rejected records. The lead mounts it with
`app.add_typer(ingest_app, name="ingest")`."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from gateway.ingest.actor import cli_identity
from gateway.ingest.adapters import SOURCES
from gateway.ingest.records import REJECTED
from gateway.ingest.service import IngestResult, IngestService

ingest_app = typer.Typer(help="Ingest source messages (HL7v3, ...) into the gateway.", invoke_without_command=True)
STATUSES = ("accepted", "rejected", "duplicate")


def message_files(paths: list[Path]) -> list[Path]:
    """Files as given; folders recursively (hidden files skipped), in a stable order."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found += sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith("."))
        elif path.is_file():
            found.append(path)
        else:
            raise typer.BadParameter(f"{path} does not exist")
    return found


def _service(database: str | None) -> IngestService:
    from gateway.app import build_services  # late: building services loads packages (slow for --help)
    from gateway.settings import Settings

    settings = Settings(database_url=database) if database else Settings()
    services = build_services(settings)
    return IngestService(services)


def _summary(console: Console, rows: list[tuple[str, IngestResult]]) -> None:
    table = Table(title="ingestion")
    for column in ("message", "record", "status", "resources", "unmapped", "reason"):
        table.add_column(column)
    for name, result in rows:
        record = result.record
        reason = next((i.diagnostics for i in result.issues if i.severity in {"error", "fatal"}), "")
        if record.status == "duplicate":
            reason = f"duplicate of {record.duplicate_of}"
        table.add_row(name, record.id, record.status, str(len(record.resources)), str(len(record.unmapped)),
                      reason[:100])
    console.print(table)
    counts = Counter(result.record.status for _, result in rows)
    console.print("  ".join(f"{status}: {counts.get(status, 0)}" for status in STATUSES))


class _NotProcessed(Exception):
    def __init__(self, name: str, error: BaseException) -> None:
        super().__init__(f"{name}: {error}")
        self.name, self.error = name, error


def _ingest_files(service: IngestService, files: list[Path], source: str, identity: Any, lenient: bool, jobs: int,
                  database: str | None) -> Iterator[tuple[str, IngestResult]]:
    """(file name, result) in file order; with jobs > 1 from worker processes on the same database. A database
    failure (not the message's fault) stops the run."""
    if jobs == 1 or len(files) < 2:
        for path in files:
            try:
                yield path.name, service.ingest(source, path.read_bytes(), identity, lenient)
            except Exception as error:  # noqa: BLE001 - the database failed, not the message: stop, say so
                raise _NotProcessed(path.name, error) from None
        return
    from gateway.ingest.parallel import IngestWorkers  # late: only --jobs needs worker processes

    with IngestWorkers(min(jobs, len(files)), database or service.services.settings.database_url) as workers:
        results = workers.ingest(source, [(path.name, path) for path in files], identity, lenient)
        names = iter(files)
        while True:
            name = next(names, None)
            try:
                done = next(results)
            except StopIteration:
                return
            except Exception as error:  # noqa: BLE001 - as above, from a worker
                raise _NotProcessed(name.name if name else "?", error) from None
            yield done.name, done.result


@ingest_app.callback()
def ingest(
    paths: list[Path] = typer.Argument(None, help="message files or folders"),
    source: str = typer.Option("hap", "--source", "-s", help=f"source kind: {', '.join(SOURCES)}"),
    retry: list[str] = typer.Option(None, "--retry", help="re-process this ingestion record (repeatable)"),
    all_rejected: bool = typer.Option(False, "--all-rejected", help="re-process every rejected record"),
    lenient: bool = typer.Option(False, "--lenient", help="accept output with validation errors (as warnings)"),
    database: str | None = typer.Option(None, help="database URL (default: ZCC_DATABASE_URL)"),
    jobs: int = typer.Option(1, "--jobs", "-j", min=1,
                             help="worker processes (one per core): messages are ingested in parallel"),
) -> None:
    if source not in SOURCES:
        raise typer.BadParameter(f"--source must be one of {', '.join(SOURCES)}")
    files = message_files(paths or [])
    service = _service(database)
    identity = cli_identity()
    retries = list(retry or []) + (service.records.ids_with_status(REJECTED) if all_rejected else [])
    if not files and not retries:
        raise typer.BadParameter("give message files/folders, --retry ID or --all-rejected")
    console = Console()
    rows: list[tuple[str, IngestResult]] = []
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task("ingesting", total=len(files) + len(retries))
        try:
            for name, result in _ingest_files(service, files, source, identity, lenient, jobs, database):
                rows.append((name, result))
                progress.advance(task)
        except _NotProcessed as failure:
            console.print(f"[red]{failure.name}: not processed ({failure.error}); the raw message is kept as "
                          "received, run again later[/red]")
            raise typer.Exit(2) from None
        for record_id in retries:
            try:
                rows.append((f"retry {record_id[:8]}", service.retry(record_id, identity, lenient)))
            except KeyError:
                console.print(f"[red]no ingestion record {record_id}[/red]")
            progress.advance(task)
    _summary(console, rows)
    if any(result.record.status == REJECTED for _, result in rows):
        raise typer.Exit(1)
