"""Certificate-bound tokens (RFC 8705) and UZI checks at the token endpoint, with the certificate arriving
through a trusted proxy header or the ASGI TLS extension."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.auth.client_cert import x5t_s256
from gateway.auth.compact import unverified_parts
from gateway.auth.demo import ClientKey, token_request_form
from gateway.auth.settings import AuthSettings
from tests.auth.conftest import CLIENT_ID, TOKEN_URL, URA, build_app
from tests.auth.pki import TEST_CA_OID, pem, rfc9440, uzi_names

HEADER = "client-cert"


@pytest.fixture
def proxy_settings(settings: AuthSettings, pki: dict[str, Any]) -> AuthSettings:
    return replace(settings, client_cert_header=HEADER, trusted_proxies=("127.0.0.0/8",),
                   uzi_trust_anchors=(pki["anchors"],), uzi_allowed_ca_oids=(TEST_CA_OID,))


@pytest.fixture
def via_proxy(proxy_settings: AuthSettings, engine: Engine) -> TestClient:
    return TestClient(build_app(proxy_settings, engine)[0], client=("127.0.0.1", 40000))


@pytest.fixture
def good_cert(pki: dict[str, Any]) -> Any:
    return pki["ca"].issue(uzi_names())


def _token(client: TestClient, key: ClientKey, headers: dict[str, str] | None = None) -> Any:
    form = token_request_form(CLIENT_ID, key, TOKEN_URL, "system/Patient.rs")
    return client.post("/auth/token", data=form, headers=headers or {})


def test_token_is_bound_to_the_proxy_certificate(register: Callable[..., Any], via_proxy: TestClient,
                                                 ec_key: ClientKey, good_cert: Any) -> None:
    register()
    response = _token(via_proxy, ec_key, {HEADER: rfc9440(good_cert)})
    assert response.status_code == 200, response.text
    assert unverified_parts(response.json()["access_token"])[1]["cnf"] == {"x5t#S256": x5t_s256(good_cert)}
    auth = {"Authorization": f"Bearer {response.json()['access_token']}", HEADER: rfc9440(good_cert)}
    identity = via_proxy.get("/fhir/Patient", headers=auth).json()
    assert identity["cert_thumbprint"] == x5t_s256(good_cert)


def test_url_encoded_pem_header_is_accepted(register: Callable[..., Any], via_proxy: TestClient,
                                            ec_key: ClientKey, good_cert: Any) -> None:
    from urllib.parse import quote

    register()
    assert _token(via_proxy, ec_key, {HEADER: quote(pem(good_cert))}).status_code == 200


def test_bound_token_without_certificate_is_rejected(register: Callable[..., Any], via_proxy: TestClient,
                                                     ec_key: ClientKey, good_cert: Any) -> None:
    register()
    token = _token(via_proxy, ec_key, {HEADER: rfc9440(good_cert)}).json()["access_token"]
    response = via_proxy.get("/fhir/Patient", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401 and "client certificate" in response.json()["issue"][0]["diagnostics"]


def test_bound_token_with_other_certificate_is_rejected(register: Callable[..., Any], via_proxy: TestClient,
                                                        ec_key: ClientKey, good_cert: Any,
                                                        pki: dict[str, Any]) -> None:
    register()
    token = _token(via_proxy, ec_key, {HEADER: rfc9440(good_cert)}).json()["access_token"]
    other = pki["ca"].issue(uzi_names())
    response = via_proxy.get("/fhir/Patient", headers={"Authorization": f"Bearer {token}", HEADER: rfc9440(other)})
    assert response.status_code == 401 and "bound" in response.json()["issue"][0]["diagnostics"]


def test_header_from_untrusted_address_is_ignored(register: Callable[..., Any], proxy_settings: AuthSettings,
                                                  engine: Engine, ec_key: ClientKey, good_cert: Any) -> None:
    register()
    direct = TestClient(build_app(proxy_settings, engine)[0], client=("203.0.113.9", 40000))
    response = _token(direct, ec_key, {HEADER: rfc9440(good_cert)})
    assert response.status_code == 200
    assert "cnf" not in unverified_parts(response.json()["access_token"])[1]


def test_header_is_ignored_when_not_configured(register: Callable[..., Any], settings: AuthSettings,
                                               engine: Engine, ec_key: ClientKey, good_cert: Any) -> None:
    register()
    client = TestClient(build_app(settings, engine)[0], client=("127.0.0.1", 40000))
    response = _token(client, ec_key, {HEADER: rfc9440(good_cert)})
    assert "cnf" not in unverified_parts(response.json()["access_token"])[1]


def test_malformed_certificate_header_is_a_bad_request(register: Callable[..., Any], via_proxy: TestClient,
                                                       ec_key: ClientKey) -> None:
    register()
    response = _token(via_proxy, ec_key, {HEADER: ":bm90IGEgY2VydA==:"})
    assert response.status_code == 400 and response.json()["error"] == "invalid_request"


def test_certificate_of_another_ura_is_refused(register: Callable[..., Any], via_proxy: TestClient,
                                               ec_key: ClientKey, pki: dict[str, Any]) -> None:
    register()
    other_org = pki["ca"].issue(uzi_names(ura="90000999", permanent_ura="90000999"))
    response = _token(via_proxy, ec_key, {HEADER: rfc9440(other_org)})
    assert response.status_code == 401 and "90000999" in response.json()["error_description"]


def test_certificate_from_untrusted_ca_is_refused(register: Callable[..., Any], via_proxy: TestClient,
                                                  ec_key: ClientKey, pki: dict[str, Any]) -> None:
    register()
    response = _token(via_proxy, ec_key, {HEADER: rfc9440(pki["other_ca"].issue(uzi_names()))})
    assert response.status_code == 401 and response.json()["error"] == "invalid_client"


def test_expired_certificate_is_refused(register: Callable[..., Any], via_proxy: TestClient,
                                        ec_key: ClientKey, pki: dict[str, Any]) -> None:
    register()
    response = _token(via_proxy, ec_key, {HEADER: rfc9440(pki["ca"].issue(uzi_names(), valid_days=(-9, -1)))})
    assert response.status_code == 401 and response.json()["error"] == "invalid_client"


def test_pinned_certificate_must_match(register: Callable[..., Any], via_proxy: TestClient, ec_key: ClientKey,
                                       good_cert: Any, pki: dict[str, Any]) -> None:
    register(pinned_cert_thumbprint=x5t_s256(good_cert))
    assert _token(via_proxy, ec_key, {HEADER: rfc9440(good_cert)}).status_code == 200
    other = pki["ca"].issue(uzi_names())
    response = _token(via_proxy, ec_key, {HEADER: rfc9440(other)})
    assert response.status_code == 401 and "registered" in response.json()["error_description"]


def test_pinned_client_without_certificate_is_refused(register: Callable[..., Any], via_proxy: TestClient,
                                                      ec_key: ClientKey, good_cert: Any) -> None:
    register(pinned_cert_thumbprint=x5t_s256(good_cert))
    response = _token(via_proxy, ec_key)
    assert response.status_code == 401 and "mTLS" in response.json()["error_description"]


def test_require_mtls_refuses_unbound_tokens(register: Callable[..., Any], proxy_settings: AuthSettings,
                                             engine: Engine, ec_key: ClientKey) -> None:
    register()
    client = TestClient(build_app(replace(proxy_settings, require_mtls=True), engine)[0],
                        client=("127.0.0.1", 40000))
    assert _token(client, ec_key).status_code == 401


class _TlsExtension:
    """Stands in for a server (e.g. Hypercorn) that puts the peer chain in the ASGI TLS extension."""

    def __init__(self, app: ASGIApp, chain_pem: list[str]) -> None:
        self.app, self.chain_pem = app, chain_pem

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            tls = {"client_cert_chain": self.chain_pem}
            scope = {**scope, "extensions": {**scope.get("extensions", {}), "tls": tls}}
        await self.app(scope, receive, send)


def test_certificate_from_the_asgi_tls_extension(register: Callable[..., Any], proxy_settings: AuthSettings,
                                                 engine: Engine, ec_key: ClientKey, good_cert: Any,
                                                 pki: dict[str, Any]) -> None:
    register()
    app = build_app(replace(proxy_settings, client_cert_header=None, trusted_proxies=()), engine)[0]
    client = TestClient(_TlsExtension(app, [pem(good_cert), pem(pki["ca"].certificate)]))
    token = _token(client, ec_key).json()["access_token"]
    assert unverified_parts(token)[1]["cnf"]["x5t#S256"] == x5t_s256(good_cert)
    assert client.get("/fhir/Patient", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    assert URA == client.get("/fhir/Patient", headers={"Authorization": f"Bearer {token}"}).json()["ura"]
