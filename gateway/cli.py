"""The `zcc-gateway` command line."""

from __future__ import annotations

import os
from decimal import Decimal

import typer

from conformance.cli import validate as validate_command
from gateway.audit.cli import audit_app
from gateway.auth.cli import clients_app
from gateway.capacity.cli import capacity_app
from gateway.ingest.cli import ingest_app
from gateway.ingest.mllp import mllp_command

app = typer.Typer(help="zcc-gateway: FHIR R4 gateway for Dutch acute-care coordination.", no_args_is_help=True)
app.add_typer(ingest_app, name="ingest")
app.add_typer(clients_app, name="clients")
app.add_typer(capacity_app, name="capacity")
app.add_typer(audit_app, name="audit")
app.command("mllp")(mllp_command)
app.command("validate")(validate_command)


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
    insecure_dev: bool = typer.Option(
        False, "--insecure-dev", help="accept requests without a token (logs a warning on each)"
    ),
    tls_cert: str | None = typer.Option(None, help="serve HTTPS with this server certificate (PEM)"),
    tls_key: str | None = typer.Option(None, help="private key of --tls-cert (PEM)"),
    tls_client_ca: str | None = typer.Option(
        None, help="require client certificates issued by these CAs (PEM bundle): mutual TLS, RFC 8705"
    ),
) -> None:
    """Serve the FHIR API at http://HOST:PORT/fhir (https with --tls-cert)."""
    import ssl

    import uvicorn

    from gateway.auth.tls_server import PROTOCOL
    from gateway.settings import Settings
    from gateway.store.engine import create_database_engine
    from gateway.store.migrate import upgrade

    _apply_database(database)
    if insecure_dev:
        os.environ["ZCC_INSECURE_DEV"] = "1"
    if tls_client_ca and not tls_cert:
        raise typer.BadParameter("--tls-client-ca needs --tls-cert (mutual TLS is TLS first)")
    scheme = "https" if tls_cert else "http"
    os.environ.setdefault("ZCC_BASE_URL", f"{scheme}://{host}:{port}/fhir")
    settings = Settings()
    upgrade(create_database_engine(settings.database_url))  # once, before the workers start
    typer.echo(f"zcc-gateway serving {settings.base_url} (database {settings.database_url}, {workers} worker(s))")
    typer.echo("FHIR packages: " + ", ".join(path.parent.name if path.name == "package" else str(path)
                                            for path in settings.package_paths))
    tls: dict = {}
    if tls_cert:
        tls = {"ssl_certfile": tls_cert, "ssl_keyfile": tls_key, "http": PROTOCOL}
    if tls_client_ca:
        tls |= {"ssl_ca_certs": tls_client_ca, "ssl_cert_reqs": ssl.CERT_REQUIRED}
    uvicorn.run(
        "gateway.app:app_from_environment", factory=True, host=host, port=port, workers=workers, log_level="warning",
        **tls,
    )


@app.command("demo-data")
def demo_data(database: str | None = typer.Option(None, help="database URL")) -> None:
    """Load the demo data set (idempotent: PUTs with fixed ids)."""
    from gateway.app import build_services
    from gateway.auth.identity import local_administrator
    from gateway.demo import demo_bundle
    from gateway.fhir.context import RequestScope
    from gateway.fhir.urls import interaction_for
    from gateway.settings import Settings

    _apply_database(database)
    services = build_services(Settings())
    bundle = demo_bundle()
    _decimalise(bundle)
    it = interaction_for("POST", "", [], services.resource_types, {}, bundle)
    result = services.pipeline.dispatch(RequestScope(services, identity=local_administrator()), it)
    entries = result.resource["entry"] if result.resource else []
    typer.echo(f"demo data: {len(entries)} resources written to {services.settings.database_url}")
    from gateway.capacity.components import CapacityComponents
    from gateway.capacity.demo import QUICK_HOURS_AGO, load_demo_capacity

    capacity = CapacityComponents.build(services)
    try:
        applied = load_demo_capacity(capacity, local_administrator(), hours_ago=QUICK_HOURS_AGO)
    finally:
        capacity.hub.stop()
    typer.echo(f"demo capacity: providers of every category in every ROAZ region, {applied} bed-status reports")
    from gateway.auth.clients import ClientRegistry
    from gateway.auth.demo import DEMO_CLIENT_ID, ensure_demo_client

    ensure_demo_client(ClientRegistry(services.store.engine))
    typer.echo(
        f"demo client '{DEMO_CLIENT_ID}' registered (key in var/clients/{DEMO_CLIENT_ID}.jwk); get a token with:\n"
        f"  TOKEN=$(.venv/bin/zcc-gateway token --client {DEMO_CLIENT_ID})\n"
        f"  curl -H \"Authorization: Bearer $TOKEN\" -H 'X-Zcc-Flow: zcc' {services.settings.base_url}/Patient"
    )


@app.command()
def token(
    client: str = typer.Option("demo", help="client id (its private key is read from var/clients/<id>.jwk)"),
    scope: str = typer.Option("system/*.rs", help="requested SMART scopes"),
    role: str = typer.Option("triagist-hap", help="subject_role claim"),
    purpose: str = typer.Option("TREAT", help="purpose_of_use (TREAT, COC, ETREAT, BTG)"),
    json_output: bool = typer.Option(False, "--json", help="print the whole token response"),
) -> None:
    """Fetch an access token for a local client from the running gateway (SMART Backend Services)."""
    import json

    import httpx

    from gateway.auth.clients import ClientRegistry
    from gateway.auth.demo import DEMO_CLIENT_ID, TokenRequestError, demo_token
    from gateway.auth.settings import AuthSettings
    from gateway.settings import Settings
    from gateway.store.engine import create_database_engine

    if client != DEMO_CLIENT_ID:
        typer.echo(f"only the local demo client is supported here, not {client!r}", err=True)
        raise typer.Exit(2)
    settings = Settings()
    auth_settings = AuthSettings.from_environment(settings.base_url)
    registry = ClientRegistry(create_database_engine(settings.database_url))
    try:
        response = demo_token(registry, auth_settings.token_url, scope=scope, role=role, purpose=purpose)
    except TokenRequestError as error:
        typer.echo(f"token request refused: {error}", err=True)
        raise typer.Exit(1) from None
    except (OSError, httpx.HTTPError) as error:
        typer.echo(f"cannot reach the token endpoint {auth_settings.token_url}: {error}", err=True)
        raise typer.Exit(1) from None
    typer.echo(json.dumps(response) if json_output else response["access_token"])


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
