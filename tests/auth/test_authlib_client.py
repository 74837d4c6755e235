"""Interop: a real OAuth2 client library (authlib's httpx OAuth2Client with private_key_jwt) obtains a token
from the gateway's token endpoint served by uvicorn on a free loopback port, and uses it."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from authlib.integrations.base_client import OAuthError
from authlib.integrations.httpx_client import OAuth2Client
from authlib.oauth2.rfc7523 import PrivateKeyJWT
from authlib.oauth2.rfc7523.assertion import private_key_jwt_sign
from sqlalchemy import Engine

from gateway.auth.demo import ClientKey
from gateway.auth.settings import AuthSettings
from tests.auth.conftest import CLIENT_ID, build_app


class ShortLivedPrivateKeyJWT(PrivateKeyJWT):
    """authlib signs assertions valid for an hour and (when given `claims`) re-uses one jti; the gateway
    accepts at most 5 minutes and every jti once, so sign fresh claims with a short lifetime each time."""

    def __init__(self, token_endpoint: str, kid: str, alg: str, claims: dict[str, Any]) -> None:
        super().__init__(token_endpoint, headers={"kid": kid}, alg=alg)
        self.extra_claims = claims

    def sign(self, auth: Any, token_endpoint: str) -> str:
        return private_key_jwt_sign(
            auth.client_secret, client_id=auth.client_id, token_endpoint=token_endpoint,
            claims=dict(self.extra_claims), header=dict(self.headers), alg=self.alg, expires_in=60,
        )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def live_base(tmp_path: Path, engine: Engine) -> Iterator[str]:
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    settings = AuthSettings(issuer=base, fhir_base_url=f"{base}/fhir", key_dir=tmp_path / "live-keys")
    app, _ = build_app(settings, engine)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    yield base
    server.should_exit = True
    thread.join(timeout=10)


@pytest.mark.parametrize("key_fixture", ["ec_key", "rsa_key"])
def test_authlib_client_obtains_and_uses_a_token(live_base: str, register: Callable[..., Any],
                                                 request: pytest.FixtureRequest, key_fixture: str) -> None:
    client_key: ClientKey = request.getfixturevalue(key_fixture)
    register(client_key, allowed_roles=("triagist-hap", "arts"))
    config = httpx.get(f"{live_base}/.well-known/smart-configuration").json()
    token_url = config["token_endpoint"]
    auth_method = ShortLivedPrivateKeyJWT(token_url, client_key.kid, client_key.alg, {"subject_role": "arts"})
    with OAuth2Client(CLIENT_ID, client_key.key, token_endpoint_auth_method=auth_method,
                      scope="system/Patient.rs") as oauth:
        token = oauth.fetch_token(token_url, grant_type="client_credentials")
        assert token["token_type"] == "Bearer" and token["scope"] == "system/Patient.rs"
        identity = oauth.get(f"{live_base}/fhir/Patient").json()  # authlib attaches the bearer token
        assert identity["client_id"] == CLIENT_ID and identity["role"] == "arts"
        second = oauth.fetch_token(token_url, grant_type="client_credentials")  # a fresh jti each time
        assert second["access_token"] != token["access_token"]


def test_authlib_default_assertion_lifetime_is_refused(live_base: str, register: Callable[..., Any],
                                                       ec_key: ClientKey) -> None:
    register()
    token_url = f"{live_base}/auth/token"
    auth_method = PrivateKeyJWT(token_url, headers={"kid": ec_key.kid}, alg="ES384")  # exp = now + 3600
    with OAuth2Client(CLIENT_ID, ec_key.key, token_endpoint_auth_method=auth_method,
                      scope="system/Patient.rs") as oauth:
        with pytest.raises(OAuthError) as raised:
            oauth.fetch_token(token_url, grant_type="client_credentials")
        assert raised.value.error == "invalid_client" and "300 seconds" in str(raised.value.description)


def test_unauthenticated_call_to_live_server(live_base: str) -> None:
    response = httpx.get(f"{live_base}/fhir/Patient")
    assert response.status_code == 401 and response.headers["www-authenticate"].startswith("Bearer")
