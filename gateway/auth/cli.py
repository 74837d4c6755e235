"""`zcc-gateway clients add|list|disable|enable|rotate-key`: the client registry from the command line.
Every change is recorded in the registry's audit table with the acting operator."""

from __future__ import annotations

import getpass
import json
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

clients_app = typer.Typer(help="Register and manage the systems that may call the gateway.", no_args_is_help=True)


def _registry(database: str | None):  # type: ignore[no-untyped-def]
    from gateway.auth.clients import ClientRegistry
    from gateway.settings import Settings
    from gateway.store.engine import create_database_engine
    from gateway.store.migrate import upgrade

    settings = Settings() if database is None else Settings(database_url=database)
    engine = create_database_engine(settings.database_url)
    upgrade(engine)
    return ClientRegistry(engine)


def _jwks(value: str) -> dict:  # type: ignore[type-arg]
    """A JWKS given inline (JSON) or as a file path."""
    text = Path(value).read_text() if not value.lstrip().startswith("{") else value
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError as error:
        raise typer.BadParameter(f"not a JWKS: {error}") from None
    return parsed if "keys" in parsed else {"keys": [parsed]}


def _fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(1)


@clients_app.command("add")
def add(
    client_id: str = typer.Argument(..., help="client id (also the JWT iss/sub)"),
    jwks: str = typer.Option(..., help="the client's public JWKS: inline JSON or a file"),
    ura: str = typer.Option(..., help="URA of the organisation the client acts for (8 digits)"),
    organization_type: str = typer.Option(..., help="organisation-type code, RoleCodeNL, e.g. N6 (HAP), AMB (RAV)"),
    scopes: str = typer.Option("system/*.rs", help="the most this client may be granted (SMART v2 scopes)"),
    roles: str = typer.Option("triagist-hap", help="allowed subject roles, comma-separated"),
    purposes: str = typer.Option("TREAT,COC", help="allowed purposes of use, comma-separated"),
    pinned_cert: str | None = typer.Option(None, help="SHA-256 thumbprint of the only accepted client certificate"),
    delegate: list[str] = typer.Option(
        [], help="URA:TYPE of another organisation this vendor client may act for (repeatable)"
    ),
    database: str | None = typer.Option(None, help="database URL"),
) -> None:
    """Register a client."""
    from gateway.auth.clients import ClientRegistration, Delegation, RegistrationError

    delegations = []
    for item in delegate:
        delegated_ura, _, delegated_type = item.partition(":")
        if not delegated_ura or not delegated_type:
            _fail(f"--delegate takes URA:TYPE (e.g. 90000456:Z3), not {item!r}")
        delegations.append(Delegation(delegated_ura, delegated_type))

    registration = ClientRegistration(
        client_id=client_id,
        ura=ura,
        organization_type=organization_type,
        allowed_scopes=scopes,
        allowed_roles=tuple(r.strip() for r in roles.split(",") if r.strip()),
        allowed_purposes=tuple(p.strip() for p in purposes.split(",") if p.strip()),
        jwks=_jwks(jwks),
        pinned_cert_thumbprint=pinned_cert,
        delegations=tuple(delegations),
    )
    try:
        _registry(database).add(registration, actor=getpass.getuser())
    except RegistrationError as error:
        _fail(str(error))
    typer.echo(f"client {client_id} registered for URA {ura}")


@clients_app.command("list")
def list_clients(database: str | None = typer.Option(None, help="database URL")) -> None:
    """List registered clients."""
    table = Table()
    for heading in ("client", "URA", "type", "delegates", "scopes", "roles", "purposes", "enabled"):
        table.add_column(heading, overflow="fold")  # wrap, never truncate: ids and URAs must stay whole
    for client in _registry(database).all():
        table.add_row(
            client.client_id,
            client.ura,
            client.organization_type,
            ",".join(f"{d.ura}:{d.organization_type}" for d in client.delegations),
            client.allowed_scopes,
            ",".join(client.allowed_roles),
            ",".join(client.allowed_purposes),
            "yes" if client.enabled else "no",
        )
    console = Console()
    if not console.is_terminal:  # piped or captured: full lines, no wrapping at 80 columns
        console = Console(width=240)
    console.print(table)


def _set_enabled(client_id: str, enabled: bool, database: str | None) -> None:
    from gateway.auth.clients import UnknownClientError

    try:
        _registry(database).set_enabled(client_id, enabled, actor=getpass.getuser())
    except UnknownClientError:
        _fail(f"no client {client_id!r}")
    typer.echo(f"client {client_id} {'enabled' if enabled else 'disabled'}")


@clients_app.command("disable")
def disable(client_id: str, database: str | None = typer.Option(None, help="database URL")) -> None:
    """Stop issuing tokens to a client (tokens already issued expire within 300 s)."""
    _set_enabled(client_id, False, database)


@clients_app.command("enable")
def enable(client_id: str, database: str | None = typer.Option(None, help="database URL")) -> None:
    """Issue tokens to a disabled client again."""
    _set_enabled(client_id, True, database)


@clients_app.command("rotate-key")
def rotate_key(
    client_id: str,
    jwks: str = typer.Option(..., help="the new public JWKS: inline JSON or a file"),
    database: str | None = typer.Option(None, help="database URL"),
) -> None:
    """Replace a client's public keys."""
    from gateway.auth.clients import RegistrationError, UnknownClientError

    try:
        _registry(database).rotate_key(client_id, _jwks(jwks), actor=getpass.getuser())
    except UnknownClientError:
        _fail(f"no client {client_id!r}")
    except RegistrationError as error:
        _fail(str(error))
    typer.echo(f"client {client_id}: keys rotated")
