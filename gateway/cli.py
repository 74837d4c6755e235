"""The `zcc-gateway` command line."""

from __future__ import annotations

import os
from decimal import Decimal

import typer

app = typer.Typer(help="zcc-gateway: FHIR R4 gateway for Dutch acute-care coordination.", no_args_is_help=True)


def _apply_database(database: str | None) -> None:
    if database:
        os.environ["ZCC_DATABASE_URL"] = database


@app.command()
def serve(
    host: str = typer.Option("127.0.0.1", help="interface to listen on"),
    port: int = typer.Option(8080, help="TCP port"),
    database: str | None = typer.Option(
        None, help="database URL (default: ZCC_DATABASE_URL or sqlite:///var/gateway.db)"
    ),
    workers: int = typer.Option(1, min=1, help="worker processes"),
) -> None:
    """Serve the FHIR API at http://HOST:PORT/fhir."""
    import uvicorn

    from gateway.settings import Settings
    from gateway.store.engine import create_database_engine
    from gateway.store.migrate import upgrade

    _apply_database(database)
    os.environ.setdefault("ZCC_BASE_URL", f"http://{host}:{port}/fhir")
    settings = Settings()
    upgrade(create_database_engine(settings.database_url))  # once, before the workers start
    typer.echo(f"zcc-gateway serving {settings.base_url} (database {settings.database_url}, {workers} worker(s))")
    uvicorn.run(
        "gateway.app:app_from_environment", factory=True, host=host, port=port, workers=workers, log_level="warning"
    )


@app.command("demo-data")
def demo_data(database: str | None = typer.Option(None, help="database URL")) -> None:
    """Load the demo data set (idempotent: PUTs with fixed ids)."""
    from gateway.app import build_services
    from gateway.demo import demo_bundle
    from gateway.fhir.context import RequestScope
    from gateway.fhir.urls import interaction_for
    from gateway.settings import Settings

    _apply_database(database)
    services = build_services(Settings())
    bundle = demo_bundle()
    _decimalise(bundle)
    it = interaction_for("POST", "", [], services.resource_types, {}, bundle)
    result = services.pipeline.dispatch(RequestScope(services), it)
    entries = result.resource["entry"] if result.resource else []
    typer.echo(f"demo data: {len(entries)} resources written to {services.settings.database_url}")


def _decimalise(node: object) -> None:
    """Demo values are Python floats; the canonical form keeps decimals as Decimal."""
    if isinstance(node, dict):
        for key, value in node.items():
            if isinstance(value, float):
                node[key] = Decimal(str(value))
            else:
                _decimalise(value)
    elif isinstance(node, list):
        for item in node:
            _decimalise(item)


if __name__ == "__main__":
    app()
