"""HTTP oddities that only a real server shows: slowloris-style bodies (bounded by ZCC_BODY_TIMEOUT), huge
and numerous headers (bounded by the HTTP parser), and the server keeps serving others meanwhile."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.auth.fixtures import obtain_auth_header
from tests.reliability.live import GatewayProcess, gateway_cluster

BODY_TIMEOUT = 2


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[GatewayProcess, dict[str, str]]]:
    workdir = tmp_path_factory.mktemp("http-live")
    database_url = f"sqlite:///{workdir / 'gateway.db'}"
    (gateway,) = gateway_cluster(1, database_url, workdir, ZCC_BODY_TIMEOUT=str(BODY_TIMEOUT))
    gateway.start()
    try:
        yield gateway, obtain_auth_header(gateway.origin, database_url)
    finally:
        gateway.stop()


def raw_request(port: int, head: bytes, trickle: bytes = b"", every: float = 0.0, read_timeout: float = 15) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=read_timeout) as sock:
        sock.sendall(head)
        try:
            for byte in trickle:
                sock.sendall(bytes([byte]))
                time.sleep(every)
        except OSError:  # the server closed the connection on us: that is the point
            pass
        chunks = []
        try:
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        except (TimeoutError, ConnectionResetError):
            pass
        return b"".join(chunks)


def test_slow_body_gets_408_within_the_deadline(server: tuple[GatewayProcess, dict[str, str]]) -> None:
    gateway, auth = server
    head = (f"POST /fhir/Patient HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: {auth['Authorization']}\r\n"
            "Content-Type: application/fhir+json\r\nContent-Length: 1000\r\n\r\n").encode()
    started = time.monotonic()
    answer = raw_request(gateway.port, head, trickle=b'{"resourceType":"Patient"' + b" " * 40, every=0.25)
    elapsed = time.monotonic() - started
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert b'"code":"timeout"' in answer
    assert elapsed < BODY_TIMEOUT + 12  # the trickle itself takes ~16 s if the server never cuts it off


def test_other_clients_are_served_while_a_slow_body_trickles(server: tuple[GatewayProcess, dict[str, str]]) -> None:
    gateway, auth = server
    with socket.create_connection(("127.0.0.1", gateway.port)) as slow:
        slow.sendall(b"POST /fhir/Patient HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n"
                     + f"Authorization: {auth['Authorization']}\r\n\r\n".encode() + b"{")
        started = time.monotonic()
        response = httpx.get(f"{gateway.base}/metadata", timeout=10)
        assert response.status_code == 200 and time.monotonic() - started < 5


@pytest.mark.parametrize("headers", [
    {"X-Huge": "a" * 200_000},
    {f"X-Many-{n}": "v" for n in range(5_000)},
])
def test_huge_headers_are_refused_and_the_server_survives(server: tuple[GatewayProcess, dict[str, str]],
                                                          headers: dict[str, str]) -> None:
    gateway, _ = server
    head = "GET /fhir/metadata HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    head += "".join(f"{name}: {value}\r\n" for name, value in headers.items()) + "\r\n"
    answer = raw_request(gateway.port, head.encode(), read_timeout=10)
    assert answer.startswith(b"HTTP/1.1 431"), answer[:200]
    assert b'"code":"too-costly"' in answer
    assert httpx.get(f"{gateway.base}/metadata", timeout=10).status_code == 200


def test_pipelined_garbage_is_refused(server: tuple[GatewayProcess, dict[str, str]], tmp_path: Path) -> None:
    gateway, _ = server
    for garbage in (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 64,  # a TLS ClientHello
                    b"GET /fhir/metadata HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
                    b"GET /fhir/metadata HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                    b"Content-Length: 5\r\n\r\n0\r\n\r\n"):
        answer = raw_request(gateway.port, garbage, read_timeout=5)
        assert answer == b"" or answer.startswith(b"HTTP/1.1 4") or b"200 OK" not in answer[:20], answer[:200]
    assert httpx.get(f"{gateway.base}/metadata", timeout=10).status_code == 200
