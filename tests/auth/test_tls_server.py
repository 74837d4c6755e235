"""Mutual TLS served by the gateway itself (`zcc-gateway serve --tls-cert --tls-key --tls-client-ca`): uvicorn
verifies the client certificate, the gateway binds the token to it (RFC 8705) and checks the binding on every
request — a live server process and a real TLS client, no proxy header involved."""

from __future__ import annotations

import ipaddress
import os
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from cryptography.x509.oid import ExtendedKeyUsageOID

from gateway.auth.client_cert import x5t_s256
from gateway.auth.compact import unverified_parts
from gateway.auth.demo import fetch_token
from tests.auth.fixtures import TEST_CLIENT_ID, ensure_test_client
from tests.auth.pki import TEST_CA_OID, URA, CertificateAuthority, pem, uzi_names


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _write_pair(folder: Path, name: str, certificate: x509.Certificate, key: Any) -> tuple[str, str]:
    cert_path, key_path = folder / f"{name}.pem", folder / f"{name}.key"
    cert_path.write_text(pem(certificate))
    key_path.write_bytes(key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()))
    return str(cert_path), str(key_path)


@pytest.fixture(scope="module")
def tls_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    folder = tmp_path_factory.mktemp("tls")
    ca = CertificateAuthority.create()
    (folder / "ca.pem").write_text(pem(ca.certificate))
    server = ca.issue_with_key([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))], common_name="127.0.0.1",
                               usage=ExtendedKeyUsageOID.SERVER_AUTH)
    client_a, client_b = ca.issue_with_key(uzi_names()), ca.issue_with_key(uzi_names())
    database = f"sqlite:///{folder / 'gateway.db'}"
    port = _free_port()
    origin = f"https://127.0.0.1:{port}"
    server_cert, server_key = _write_pair(folder, "server", *server)
    env = {**os.environ, "ZCC_DATABASE_URL": database, "ZCC_BASE_URL": f"{origin}/fhir", "ZCC_CONSENT": "off",
           "ZCC_AUTH_KEY_DIR": str(folder / "keys"), "ZCC_UZI_TRUST_ANCHORS": str(folder / "ca.pem"),
           "ZCC_UZI_CA_OIDS": TEST_CA_OID}
    log = open(folder / "server.log", "wb")  # noqa: SIM115
    process = subprocess.Popen(
        [sys.executable, "-m", "gateway.cli", "serve", "--port", str(port), "--tls-cert", server_cert,
         "--tls-key", server_key, "--tls-client-ca", str(folder / "ca.pem")],
        env=env, stdout=log, stderr=subprocess.STDOUT, cwd=Path(__file__).parents[2],
    )
    gateway = {"origin": origin, "database": database, "ca": str(folder / "ca.pem"),
               "a": _write_pair(folder, "client-a", *client_a), "b": _write_pair(folder, "client-b", *client_b),
               "a_cert": client_a[0]}
    try:
        _wait_until_up(gateway, process, folder / "server.log")
        yield gateway
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()


def _wait_until_up(gateway: dict[str, Any], process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"gateway did not start: {log.read_text()}")
        try:
            with _client(gateway, "a") as http:
                if http.get("/fhir/metadata").status_code == 200:
                    return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise RuntimeError("gateway did not answer over TLS within 60 s")


def _client(gateway: dict[str, Any], certificate: str | None) -> httpx.Client:
    context = ssl.create_default_context(cafile=gateway["ca"])
    if certificate:
        context.load_cert_chain(*gateway[certificate])
    return httpx.Client(base_url=gateway["origin"], verify=context, timeout=10)


def _token(gateway: dict[str, Any], http: httpx.Client) -> str:
    key = ensure_test_client(gateway["database"], ura=URA)
    response = fetch_token(f"{gateway['origin']}/auth/token", TEST_CLIENT_ID, key, "system/Patient.rs",
                           claims={"subject_role": "arts", "purpose_of_use": "TREAT"}, client=http)
    return response["access_token"]


def test_token_is_bound_to_the_tls_client_certificate(tls_gateway: dict[str, Any]) -> None:
    with _client(tls_gateway, "a") as http:
        token = _token(tls_gateway, http)
        assert unverified_parts(token)[1]["cnf"]["x5t#S256"] == x5t_s256(tls_gateway["a_cert"])
        response = http.get("/fhir/Patient", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 200, response.text


def test_bound_token_over_another_certificate_is_rejected(tls_gateway: dict[str, Any]) -> None:
    with _client(tls_gateway, "a") as http:
        token = _token(tls_gateway, http)
    with _client(tls_gateway, "b") as other:
        response = other.get("/fhir/Patient", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401
    assert "invalid_token" in response.headers["WWW-Authenticate"]


def test_connection_without_client_certificate_is_refused(tls_gateway: dict[str, Any]) -> None:
    with _client(tls_gateway, None) as http, pytest.raises(httpx.HTTPError):
        http.get("/fhir/metadata")
