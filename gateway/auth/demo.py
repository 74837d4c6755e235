"""Local-use helpers: a demo client with its private key under `var/`, and the client side of the SMART
Backend Services flow (mint an assertion, fetch a token) for `zcc-gateway token --client demo`.

The client side lives here too because it is the executable documentation of what an EHR vendor has to do;
docs/auth.md shows the same steps."""

from __future__ import annotations

import json
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from joserfc import jwt
from joserfc.jwk import ECKey, RSAKey

from gateway.auth.assertions import ASSERTION_TYPE
from gateway.auth.clients import ClientRegistration, ClientRegistry

DEMO_CLIENT_ID = "demo"
DEMO_URA = "90000001"  # the demo HAP Organization in gateway/demo.py
DEMO_ORGANIZATION_TYPE = "N6"  # RoleCodeNL: huisartsenpost
DEMO_SCOPES = "system/*.cruds"
DEMO_ROLES = ("triagist-hap", "arts", "verpleegkundige")
DEMO_PURPOSES = ("TREAT", "COC", "ETREAT", "BTG")


class TokenRequestError(Exception):
    """The token endpoint said no; `error` and `description` are its OAuth2 error fields."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        self.status = status
        self.error = str(body.get("error", "unknown"))
        self.description = str(body.get("error_description", ""))
        super().__init__(f"{status} {self.error}: {self.description}")


@dataclass(frozen=True)
class ClientKey:
    """A client's private signing key and the JWS algorithm it signs with."""

    key: ECKey | RSAKey

    @property
    def alg(self) -> str:
        return "ES384" if isinstance(self.key, ECKey) else "RS384"

    @property
    def kid(self) -> str:
        return str(self.key.kid)

    def public_jwks(self) -> dict[str, Any]:
        return {"keys": [self.key.as_dict(private=False, alg=self.alg, use="sig")]}

    @classmethod
    def generate(cls, kind: str = "EC") -> ClientKey:
        key: ECKey | RSAKey = ECKey.generate_key("P-384") if kind == "EC" else RSAKey.generate_key(3072)
        key.ensure_kid()
        return cls(key)


def ensure_demo_client(
    registry: ClientRegistry, var_dir: Path = Path("var"), client_id: str = DEMO_CLIENT_ID
) -> ClientKey:
    """Create (or reuse) the demo client: private key in `var/clients/<id>.jwk`, public key registered."""
    path = Path(var_dir) / "clients" / f"{client_id}.jwk"
    client_key = _load_or_create_key(path)
    current = registry.get(client_id)
    if current is None:
        registry.add(
            ClientRegistration(
                client_id=client_id,
                ura=DEMO_URA,
                organization_type=DEMO_ORGANIZATION_TYPE,
                allowed_scopes=DEMO_SCOPES,
                allowed_roles=DEMO_ROLES,
                allowed_purposes=DEMO_PURPOSES,
                jwks=client_key.public_jwks(),
            ),
            actor="demo-setup",
        )
    elif current.jwks != client_key.public_jwks():
        registry.rotate_key(client_id, client_key.public_jwks(), actor="demo-setup")
    return client_key


def mint_client_assertion(
    client_id: str, client_key: ClientKey, token_url: str, lifetime: int = 60, claims: dict[str, Any] | None = None
) -> str:
    """A SMART Backend Services client assertion; extra `claims` (e.g. subject_role) are signed along."""
    now = int(time.time())
    payload = {
        "iss": client_id, "sub": client_id, "aud": token_url, "jti": secrets.token_urlsafe(16),
        "iat": now, "exp": now + lifetime, **(claims or {}),
    }
    header = {"alg": client_key.alg, "kid": client_key.kid, "typ": "JWT"}
    return jwt.encode(header, payload, client_key.key, algorithms=[client_key.alg])


def token_request_form(
    client_id: str, client_key: ClientKey, token_url: str, scope: str, claims: dict[str, Any] | None = None
) -> dict[str, str]:
    return {
        "grant_type": "client_credentials",
        "scope": scope,
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": mint_client_assertion(client_id, client_key, token_url, claims=claims),
    }


def fetch_token(
    token_url: str,
    client_id: str,
    client_key: ClientKey,
    scope: str = DEMO_SCOPES,
    claims: dict[str, Any] | None = None,
    client: httpx.Client | None = None,
) -> dict[str, Any]:
    """POST to the token endpoint; returns the token response or raises TokenRequestError."""
    form = token_request_form(client_id, client_key, token_url, scope, claims)
    if client is not None:
        response = client.post(token_url, data=form)
    else:
        response = httpx.post(token_url, data=form, timeout=10)
    if response.status_code != 200:
        try:
            body = response.json()
        except ValueError:
            body = {"error": "unknown", "error_description": response.text[:200]}
        raise TokenRequestError(response.status_code, body if isinstance(body, dict) else {})
    return response.json()


def demo_token(
    registry: ClientRegistry,
    token_url: str,
    var_dir: Path = Path("var"),
    scope: str = DEMO_SCOPES,
    role: str = "triagist-hap",
    purpose: str = "TREAT",
    client: httpx.Client | None = None,
) -> dict[str, Any]:
    """What `zcc-gateway token --client demo` does: ensure the demo client, then fetch a token for it."""
    client_key = ensure_demo_client(registry, var_dir)
    claims = {"subject_role": role, "purpose_of_use": purpose}
    return fetch_token(token_url, DEMO_CLIENT_ID, client_key, scope, claims=claims, client=client)


def _load_or_create_key(path: Path) -> ClientKey:
    if path.exists():
        data = json.loads(path.read_text())
        key: ECKey | RSAKey = ECKey.import_key(data) if data.get("kty") == "EC" else RSAKey.import_key(data)
        return ClientKey(key)
    client_key = ClientKey.generate()
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        json.dump(client_key.key.as_dict(private=True, alg=client_key.alg), handle)
    return client_key
