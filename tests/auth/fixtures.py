"""Real tokens for every test suite: register a test client in the gateway's database and run the SMART
Backend Services flow against the app (in-process via TestClient, or a live server by its base URL).

Use from any conftest:

    from tests.auth.fixtures import auth_header, obtain_auth_header, GatewayTokenAuth  # noqa: F401

    def test_read(client, auth_header, database_url):
        headers = auth_header(client.app, database_url)                  # {"Authorization": "Bearer ..."}
        headers = auth_header(client.app, database_url, "system/Patient.rs")   # a narrower token

    TestClient(app, auth=GatewayTokenAuth(app, database_url))            # refreshes before the 300 s expiry
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator
from functools import cache
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from starlette.types import ASGIApp

from gateway.auth.clients import ClientRegistration, ClientRegistry
from gateway.auth.demo import ClientKey, fetch_token
from gateway.auth.registry_schema import create_auth_tables
from gateway.store.engine import create_database_engine

TEST_CLIENT_ID = "test-suite"
TEST_URA = "90000001"
TEST_ORGANIZATION_TYPE = "Z33"
TEST_ROLES = ("triagist-hap", "arts", "verpleegkundige")
TEST_PURPOSES = ("TREAT", "COC", "ETREAT", "BTG")


@cache
def _client_key() -> ClientKey:
    return ClientKey.generate("EC")  # one key per test process; P-384 generation is cheap


@cache
def _engine(database_url: str) -> Engine:
    engine = create_database_engine(database_url)
    create_auth_tables(engine)  # no-op once the Alembic migration has created them
    return engine


def ensure_test_client(database_url: str, client_id: str = TEST_CLIENT_ID, ura: str = TEST_URA,
                       organization_type: str = TEST_ORGANIZATION_TYPE,
                       allowed_scopes: str = "system/*.cruds") -> ClientKey:
    """Register (or re-key) the test client; its registration allows everything, tokens narrow it."""
    registry, key = ClientRegistry(_engine(database_url)), _client_key()
    current = registry.get(client_id)
    if current is None:
        registry.add(
            ClientRegistration(client_id=client_id, ura=ura, organization_type=organization_type,
                               allowed_scopes=allowed_scopes, allowed_roles=TEST_ROLES,
                               allowed_purposes=TEST_PURPOSES, jwks=key.public_jwks()),
            actor="tests",
        )
    elif current.jwks != key.public_jwks() or not current.enabled:
        registry.rotate_key(client_id, key.public_jwks(), actor="tests")
        registry.set_enabled(client_id, True, actor="tests")
    return key


def obtain_token(target: ASGIApp | str, database_url: str, scope: str = "system/*.cruds",
                 role: str = "triagist-hap", purpose: str = "TREAT", client_id: str = TEST_CLIENT_ID,
                 **registration: str) -> dict[str, Any]:
    """The token response for the test client. `target` is the app (in-process) or a live server's origin
    (e.g. "http://127.0.0.1:8123"); `database_url` is the database that app uses."""
    key = ensure_test_client(database_url, client_id, **registration)
    with _http(target) as http:
        token_url = http.get("/.well-known/smart-configuration").json()["token_endpoint"]
        claims = {"subject_role": role, "purpose_of_use": purpose}
        return fetch_token(token_url, client_id, key, scope, claims=claims, client=http)


def obtain_auth_header(target: ASGIApp | str, database_url: str, scope: str = "system/*.cruds",
                       **options: str) -> dict[str, str]:
    """`{"Authorization": "Bearer <token>"}` for the test client, valid for 300 seconds."""
    return {"Authorization": f"Bearer {obtain_token(target, database_url, scope, **options)['access_token']}"}


class GatewayTokenAuth(httpx.Auth):
    """httpx auth that fetches a token on first use and again shortly before it expires."""

    def __init__(self, target: ASGIApp | str, database_url: str, scope: str = "system/*.cruds",
                 **options: str) -> None:
        self.target, self.database_url, self.scope, self.options = target, database_url, scope, options
        self._token: str | None = None
        self._expires_at = 0.0

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        if self._token is None or time.monotonic() > self._expires_at - 30:
            response = obtain_token(self.target, self.database_url, self.scope, **self.options)
            self._token, self._expires_at = response["access_token"], time.monotonic() + response["expires_in"]
        request.headers["Authorization"] = f"Bearer {self._token}"
        yield request


def _http(target: ASGIApp | str) -> httpx.Client:
    if isinstance(target, str):
        return httpx.Client(base_url=target, timeout=10)
    return TestClient(target)


@pytest.fixture
def auth_header() -> Callable[..., dict[str, str]]:
    """`auth_header(app_or_origin, database_url, scope="system/*.cruds", role=..., purpose=...)`."""
    return obtain_auth_header
