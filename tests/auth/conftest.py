"""Fixtures for the auth tests: a SQLite registry in a temp file, client keys, a test PKI, and a small FastAPI
app that mounts the auth router and the AuthStage middleware in front of dummy `/fhir` and `/ingest` routes."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi.testclient import TestClient
from joserfc.jwk import RSAKey
from sqlalchemy import Engine

from gateway.auth.clients import ClientRegistration, ClientRegistry
from gateway.auth.components import AuthComponents
from gateway.auth.demo import ClientKey, token_request_form
from gateway.auth.errors import Forbidden
from gateway.auth.middleware import AuthStage, require_scope
from gateway.auth.registry_schema import create_auth_tables
from gateway.auth.settings import AuthSettings
from gateway.store.engine import create_database_engine
from tests.auth.pki import CertificateAuthority, pem

ISSUER = "http://testserver"
TOKEN_URL = f"{ISSUER}/auth/token"
CLIENT_ID = "ehr-vendor"
URA = "90000123"


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = create_database_engine(f"sqlite:///{tmp_path / 'auth.db'}")
    create_auth_tables(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def registry(engine: Engine) -> ClientRegistry:
    return ClientRegistry(engine)


@pytest.fixture(scope="session")
def ec_key() -> ClientKey:
    return ClientKey.generate("EC")


@pytest.fixture(scope="session")
def rsa_key() -> ClientKey:
    key = RSAKey.generate_key(2048)
    key.ensure_kid()
    return ClientKey(key)


@pytest.fixture(scope="session")
def other_ec_key() -> ClientKey:
    return ClientKey.generate("EC")


def registration(client_key: ClientKey, **changes: Any) -> ClientRegistration:
    base = ClientRegistration(
        client_id=CLIENT_ID,
        ura=URA,
        organization_type="Z33",
        allowed_scopes="system/Patient.rs system/Observation.rs system/Task.cu",
        allowed_roles=("triagist-hap",),
        allowed_purposes=("TREAT", "BTG"),
        jwks=client_key.public_jwks(),
    )
    return replace(base, **changes)


@pytest.fixture
def register(registry: ClientRegistry, ec_key: ClientKey) -> Callable[..., ClientRegistration]:
    """Register a client (defaults: CLIENT_ID with the EC key); keyword arguments change fields."""

    def _register(client_key: ClientKey | None = None, **changes: Any) -> ClientRegistration:
        return registry.add(registration(client_key or ec_key, **changes), actor="tests")

    return _register


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    ca, other_ca = CertificateAuthority.create(), CertificateAuthority.create("Other CA")
    anchors = tmp_path_factory.mktemp("pki") / "uzi-roots.pem"
    anchors.write_text(pem(ca.certificate))
    return {"ca": ca, "other_ca": other_ca, "anchors": anchors}


@pytest.fixture
def settings(tmp_path: Path) -> AuthSettings:
    return AuthSettings(issuer=ISSUER, fhir_base_url=f"{ISSUER}/fhir", key_dir=tmp_path / "keys")


def build_app(settings: AuthSettings, engine: Engine) -> tuple[FastAPI, AuthComponents]:
    """The app the lead's create_app will resemble: auth router + AuthStage + FHIR-ish routes."""
    auth = AuthComponents.build(settings, engine)
    app = FastAPI()
    app.include_router(auth.router)

    @app.exception_handler(Forbidden)
    async def forbidden(_: Request, error: Forbidden) -> JSONResponse:
        return JSONResponse(error.outcome(), status_code=error.status, media_type="application/fhir+json")

    @app.get("/fhir/metadata")
    async def metadata() -> dict[str, str]:
        return {"resourceType": "CapabilityStatement"}

    @app.get("/fhir/Patient")
    async def search_patients(request: Request) -> dict[str, Any]:
        identity = request.state.identity
        require_scope(identity, "Patient", "search-type")
        return {
            "client_id": identity.client_id,
            "ura": identity.ura,
            "organization_type": identity.organization_type,
            "role": identity.role,
            "purpose_of_use": identity.purpose_of_use,
            "scopes": [str(scope) for scope in identity.scopes],
            "cert_thumbprint": identity.cert_thumbprint,
            "insecure_dev": identity.insecure_dev,
        }

    @app.delete("/fhir/Patient/{resource_id}")
    async def delete_patient(request: Request, resource_id: str) -> dict[str, str]:
        require_scope(request.state.identity, "Patient", "delete")
        return {"deleted": resource_id}

    @app.post("/ingest/hap")
    async def ingest(request: Request) -> dict[str, str]:
        return {"ura": request.state.identity.ura}

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    app.add_middleware(AuthStage, **auth.middleware_options())
    return app, auth


@pytest.fixture
def app_and_auth(settings: AuthSettings, engine: Engine) -> tuple[FastAPI, AuthComponents]:
    return build_app(settings, engine)


@pytest.fixture
def client(app_and_auth: tuple[FastAPI, AuthComponents]) -> TestClient:
    return TestClient(app_and_auth[0])


@pytest.fixture
def request_token(client: TestClient, ec_key: ClientKey) -> Callable[..., Any]:
    """POST a token request for CLIENT_ID; returns the httpx response."""

    def _request(
        scope: str = "system/Patient.rs",
        client_key: ClientKey | None = None,
        claims: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        **form: str,
    ) -> Any:
        data = token_request_form(CLIENT_ID, client_key or ec_key, TOKEN_URL, scope, claims)
        data.update(form)
        return client.post("/auth/token", data=data, headers=headers or {})

    return _request
