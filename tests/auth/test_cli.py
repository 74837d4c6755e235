"""`zcc-gateway clients ...` against a temporary database."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from gateway.auth.clients import ClientRegistry
from gateway.auth.demo import ClientKey
from gateway.cli import app
from gateway.store.engine import create_database_engine

runner = CliRunner()


def test_add_list_disable_and_rotate(tmp_path):
    database = f"sqlite:///{tmp_path / 'gateway.db'}"
    key = ClientKey.generate()
    jwks = json.dumps(key.public_jwks())
    added = runner.invoke(
        app,
        [
            "clients",
            "add",
            "vendor-x",
            "--jwks",
            jwks,
            "--ura",
            "12345678",
            "--organization-type",
            "Z33",
            "--scopes",
            "system/Patient.rs",
            "--database",
            database,
        ],
    )
    assert added.exit_code == 0, added.output
    listed = runner.invoke(app, ["clients", "list", "--database", database])
    assert "vendor-x" in listed.output and "12345678" in listed.output
    assert runner.invoke(app, ["clients", "disable", "vendor-x", "--database", database]).exit_code == 0
    registry = ClientRegistry(create_database_engine(database))
    assert registry.get("vendor-x").enabled is False
    new_key = ClientKey.generate()
    rotated = runner.invoke(
        app, ["clients", "rotate-key", "vendor-x", "--jwks", json.dumps(new_key.public_jwks()), "--database", database]
    )
    assert rotated.exit_code == 0, rotated.output
    assert registry.get("vendor-x").jwks == new_key.public_jwks()
    assert len(registry.audit_trail("vendor-x")) >= 3  # add, disable, rotate — each recorded


def test_bad_registration_is_a_clear_cli_error(tmp_path):
    database = f"sqlite:///{tmp_path / 'gateway.db'}"
    jwks = json.dumps(ClientKey.generate().public_jwks())
    refused = runner.invoke(
        app,
        ["clients", "add", "v", "--jwks", jwks, "--ura", "123", "--organization-type", "Z33", "--database", database],
    )
    assert refused.exit_code == 1 and "URA" in refused.output
    assert runner.invoke(app, ["clients", "disable", "nobody", "--database", database]).exit_code == 1


def test_vendor_client_with_delegated_organisations(tmp_path):
    database = f"sqlite:///{tmp_path / 'gateway.db'}"
    jwks = json.dumps(ClientKey.generate().public_jwks())
    base = ["clients", "add", "vendor", "--jwks", jwks, "--ura", "12345678", "--organization-type", "Z33"]
    delegations = ["--delegate", "90000456:Z3", "--delegate", "90000789:A1"]
    added = runner.invoke(app, [*base, *delegations, "--database", database])
    assert added.exit_code == 0, added.output
    registration = ClientRegistry(create_database_engine(database)).get("vendor")
    assert registration.organization_type_for("90000456") == "Z3"
    assert registration.organization_type_for("90000789") == "A1"
    assert registration.organization_type_for("90000999") is None
    assert "90000456:Z3" in runner.invoke(app, ["clients", "list", "--database", database]).output
    refused = runner.invoke(app, [*base, "--delegate", "90000456", "--database", database])
    assert refused.exit_code == 1 and "URA:TYPE" in refused.output
