from __future__ import annotations

import stat
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from gateway.auth.clients import ClientRegistry
from gateway.auth.demo import DEMO_CLIENT_ID, TokenRequestError, demo_token, ensure_demo_client, fetch_token
from gateway.auth.settings import AuthSettings
from tests.auth.conftest import build_app


def test_demo_client_gets_a_token(tmp_path: Path, engine: Engine, settings: AuthSettings) -> None:
    app, auth = build_app(settings, engine)
    token = demo_token(auth.registry, settings.token_url, tmp_path / "var", "system/Patient.rs",
                       client=TestClient(app))
    assert token["scope"] == "system/Patient.rs"
    response = TestClient(app).get("/fhir/Patient", headers={"Authorization": f"Bearer {token['access_token']}"})
    assert response.json()["ura"] == "90000001" and response.json()["role"] == "triagist-hap"


def test_refusal_carries_the_oauth_error(tmp_path: Path, engine: Engine, settings: AuthSettings) -> None:
    app, auth = build_app(settings, engine)
    key = ensure_demo_client(auth.registry, tmp_path / "var")
    with pytest.raises(TokenRequestError) as raised:
        fetch_token(settings.token_url, DEMO_CLIENT_ID, key, "system/Patient.rs", client=TestClient(app))
    assert raised.value.error == "invalid_request" and "subject_role" in raised.value.description


def test_demo_key_is_private_and_reused(tmp_path: Path, registry: ClientRegistry) -> None:
    first = ensure_demo_client(registry, tmp_path)
    second = ensure_demo_client(registry, tmp_path)
    assert first.kid == second.kid
    key_file = tmp_path / "clients" / f"{DEMO_CLIENT_ID}.jwk"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert [row["action"] for row in registry.audit_trail(DEMO_CLIENT_ID)] == ["add"]


def test_demo_client_is_rekeyed_when_the_key_file_is_lost(tmp_path: Path, registry: ClientRegistry) -> None:
    first = ensure_demo_client(registry, tmp_path)
    (tmp_path / "clients" / f"{DEMO_CLIENT_ID}.jwk").unlink()
    second = ensure_demo_client(registry, tmp_path)
    assert first.kid != second.kid
    assert registry.get(DEMO_CLIENT_ID).jwks == second.public_jwks()  # type: ignore[union-attr]
