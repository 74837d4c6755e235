"""`zcc-gateway audit ...`: verify the chain, the patient access report, checkpoints and retention."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import typer

audit_app = typer.Typer(help="The audit trail: verify, report, checkpoint, purge.", no_args_is_help=True)

DATABASE_HELP = "database URL (default: ZCC_DATABASE_URL or sqlite:///var/gateway.db)"
KEY_DIR_HELP = "directory of the audit checkpoint key (default: ZCC_AUDIT_KEY_DIR, ZCC_AUTH_KEY_DIR or var/keys)"


def _engine(database: str | None):  # type: ignore[no-untyped-def]
    from gateway.settings import Settings
    from gateway.store.engine import create_database_engine
    from gateway.store.migrate import upgrade

    if database:
        os.environ["ZCC_DATABASE_URL"] = database
    engine = create_database_engine(Settings().database_url)
    upgrade(engine)
    return engine


@audit_app.command()
def verify(
    database: str | None = typer.Option(None, help=DATABASE_HELP),
    key_dir: Path | None = typer.Option(None, help=KEY_DIR_HELP),
) -> None:
    """Recompute the hash chain and check every signed checkpoint; exit 1 at the first broken link."""
    from gateway.audit.keys import load_checkpoint_key
    from gateway.audit.log import AuditLog

    try:
        check = load_checkpoint_key(key_dir, create=False).check
    except FileNotFoundError as error:
        typer.echo(f"warning: {error}; checkpoint signatures are not checked", err=True)
        check = None
    log = AuditLog()
    with _engine(database).connect() as connection:
        result = log.verify(connection, check)
        checkpoints = len(log.stored_checkpoints(connection))
    if result.broken is not None:
        where = f"seq {result.broken.seq}" if result.broken.seq is not None else "the start"
        event = f" (AuditEvent/{result.broken.event_id})" if result.broken.event_id else ""
        typer.echo(f"audit chain BROKEN at {where}{event}: {result.broken.problem}")
        raise typer.Exit(1)
    signed = f"{checkpoints} signed checkpoint(s) verified" if check else "checkpoints not checked"
    typer.echo(f"audit chain intact: {result.count} event(s), head {result.last_hash[:16]}…, {signed}")


@audit_app.command()
def report(
    bsn: str = typer.Option(..., help="the patient's BSN"),
    database: str | None = typer.Option(None, help=DATABASE_HELP),
) -> None:
    """The patient's access overview (Wabvpz 15d/15e): who, which organisation, when, why, allowed or refused."""
    from gateway.audit.log import AuditLog
    from gateway.audit.patients import patients_with_bsn, valid_bsn
    from gateway.audit.report import render_report

    if not valid_bsn(bsn):
        typer.echo(f"{bsn!r} is not a valid BSN (9 digits passing the eleven test)", err=True)
        raise typer.Exit(2)
    log = AuditLog()
    with _engine(database).connect() as connection:
        patients = patients_with_bsn(connection, bsn)
        if not patients:
            typer.echo(f"no patient with BSN {bsn} is known here", err=True)
            raise typer.Exit(1)
        events = [event for patient in patients for event in log.events_for_patient(connection, patient)]
    events.sort(key=lambda event: str(event.get("recorded", "")))
    label = f"BSN {bsn} ({', '.join(f'Patient/{p}' for p in patients)})"
    typer.echo(render_report(label, events))


@audit_app.command()
def checkpoint(
    database: str | None = typer.Option(None, help=DATABASE_HELP),
    key_dir: Path | None = typer.Option(None, help=KEY_DIR_HELP),
) -> None:
    """Sign the current chain head (run it from a timer, e.g. hourly, besides the every-N-events checkpoints)."""
    from gateway.audit.keys import load_checkpoint_key
    from gateway.audit.log import AuditLog

    key = load_checkpoint_key(key_dir)
    with _engine(database).connect().execution_options(write=True) as connection, connection.begin():
        made = AuditLog().checkpoint(connection, key.sign, key.key_id, _now())
    if made is None:
        typer.echo("the audit trail is empty: nothing to sign")
        return
    typer.echo(f"checkpoint signed (key {made.key_id}): {made.count} event(s) up to seq {made.upto_seq}")


@audit_app.command()
def purge(
    older_than_days: int | None = typer.Option(
        None, min=1, help="retention in days (default: ZCC_AUDIT_RETENTION_DAYS, 1826 = 5 years)"
    ),
    database: str | None = typer.Option(None, help=DATABASE_HELP),
    key_dir: Path | None = typer.Option(None, help=KEY_DIR_HELP),
) -> None:
    """Remove AuditEvents older than the retention period; a signed anchor keeps the rest verifiable."""
    from gateway.audit.keys import load_checkpoint_key
    from gateway.audit.log import AuditLog
    from gateway.audit.retention import PurgeRefused, purge_before
    from gateway.settings import Settings

    engine = _engine(database)
    days = older_than_days or Settings().audit_retention_days
    cutoff = datetime.now(UTC) - timedelta(days=days)
    key = load_checkpoint_key(key_dir)
    try:
        with engine.connect().execution_options(write=True) as connection, connection.begin():
            result = purge_before(connection, AuditLog(), cutoff, key.sign, key.key_id, key.check, _now())
    except PurgeRefused as error:
        typer.echo(str(error), err=True)
        raise typer.Exit(1) from None
    if result.anchor is None:
        typer.echo(f"nothing recorded before {cutoff.date()} ({days} days): nothing removed")
        return
    typer.echo(
        f"removed {result.removed} event(s) recorded before {cutoff.date()}; signed anchor at seq "
        f"{result.anchor.upto_seq} ({result.anchor.count} event(s) so far)"
    )


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")
