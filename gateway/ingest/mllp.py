"""`zcc-gateway mllp --port N`: an MLLP listener for HL7v2 senders (source `rav`). Every message goes through
the same ingestion pipeline as `POST /ingest/rav` and is answered with an HL7 ACK (AA), or a NAK (AE: error in
the message, AR: not supported) that carries the reason. MLLP has no authentication of its own: the listener
binds to loopback by default and is meant to sit behind the network controls (VPN/TLS tunnel) of the sender."""

from __future__ import annotations

import dataclasses

import typer

from gateway.adapters.hl7v2.ack import ack_for_result
from gateway.adapters.hl7v2.mllp import DEFAULT_MAX_FRAME, Handler, run_listener
from gateway.ingest.actor import IngestionIdentity, cli_identity
from gateway.ingest.service import IngestService

MLLP_SOURCE = "rav"


def mllp_identity() -> IngestionIdentity:
    return dataclasses.replace(cli_identity(), client_id="mllp-listener", role="ingest-mllp")


def ack_handler(service: IngestService, identity: IngestionIdentity, source: str = MLLP_SOURCE) -> Handler:
    def handle(raw: bytes) -> bytes:
        try:
            result = service.ingest(source, raw, identity)
        except Exception as error:  # noqa: BLE001 - a server-side failure (database down): AE, the sender resends
            issue = {"severity": "error", "code": "transient", "diagnostics": f"not processed, retry: {error}"}
            return ack_for_result(raw, "received", {"resourceType": "OperationOutcome", "issue": [issue]})
        return ack_for_result(raw, result.record.status, result.record.outcome)

    return handle


def mllp_command(
    port: int = typer.Option(2575, help="TCP port (2575 is the registered HL7 port)"),
    host: str = typer.Option("127.0.0.1", help="interface to listen on"),
    database: str | None = typer.Option(None, help="database URL (default: ZCC_DATABASE_URL)"),
    max_frame: int = typer.Option(DEFAULT_MAX_FRAME, help="largest message accepted, in bytes"),
) -> None:
    """Listen for HL7v2 messages over MLLP and ingest them as source 'rav'."""
    from gateway.ingest.cli import _service  # late: building services loads packages

    service = _service(database)
    typer.echo(f"MLLP listener on {host}:{port} (source {MLLP_SOURCE})")
    run_listener(ack_handler(service, mllp_identity()), host, port, max_frame)
