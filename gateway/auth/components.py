"""Assembling the auth component from settings and a database engine, in one place, so that `create_app`
only has to include a router and add a middleware."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter
from sqlalchemy import Engine

from gateway.auth.assertions import AssertionVerifier, DatabaseReplayCache, JwksFetcher
from gateway.auth.clients import ClientRegistry
from gateway.auth.keys import SigningKeys
from gateway.auth.registry_schema import create_auth_tables
from gateway.auth.routes import auth_router
from gateway.auth.settings import AuthSettings
from gateway.auth.token_endpoint import TokenEndpoint
from gateway.auth.tokens import TokenIssuer, TokenVerifier
from gateway.auth.uzi import UziTrust


@dataclass
class AuthComponents:
    settings: AuthSettings
    registry: ClientRegistry
    keys: SigningKeys
    issuer: TokenIssuer
    verifier: TokenVerifier
    endpoint: TokenEndpoint
    router: APIRouter

    @classmethod
    def build(
        cls,
        settings: AuthSettings,
        engine: Engine,
        create_tables: bool = False,
        fetch_jwks: Callable[..., dict[str, Any]] | None = None,
    ) -> AuthComponents:
        """`create_tables` creates the auth tables directly (until they are part of the Alembic migrations)."""
        if create_tables:
            create_auth_tables(engine)
        registry = ClientRegistry(engine)
        keys = SigningKeys(settings.key_dir)
        issuer = TokenIssuer(keys, settings.issuer, settings.fhir_base_url, settings.token_lifetime)
        verifier = TokenVerifier(keys, settings.issuer, settings.fhir_base_url, settings.clock_leeway)
        assertions = AssertionVerifier(
            registry,
            settings.token_url,
            DatabaseReplayCache(engine),
            fetch_jwks or JwksFetcher(settings.jwks_cache_seconds),
            settings.clock_leeway,
        )
        endpoint = TokenEndpoint(assertions, issuer, UziTrust.from_settings(settings), settings.require_mtls)
        return cls(settings, registry, keys, issuer, verifier, endpoint, auth_router(endpoint, keys, settings))

    def middleware_options(self) -> dict[str, Any]:
        """Keyword arguments for `app.add_middleware(AuthStage, **auth.middleware_options())`."""
        return {"verifier": self.verifier, "settings": self.settings}
