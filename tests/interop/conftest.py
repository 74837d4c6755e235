"""A live gateway (uvicorn in its own process, free loopback port) per database backend."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.auth.fixtures import obtain_auth_header
from tests.pg import fresh_database

live_server_database: dict[str, str] = {}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session", params=["sqlite", "postgres"])
def live_server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if request.param == "sqlite":
        database = f"sqlite:///{tmp_path_factory.mktemp('live') / 'gateway.db'}"
    else:
        database = fresh_database(request.getfixturevalue("pg_url"))
    port = _free_port()
    base = f"http://127.0.0.1:{port}/fhir"
    env = {
        **os.environ,
        "ZCC_DATABASE_URL": database,
        "ZCC_BASE_URL": base,
        "ZCC_CONSENT": "off",
        "ZCC_AUTH_KEY_DIR": str(tmp_path_factory.mktemp("keys")),
    }
    log = open(tmp_path_factory.mktemp("logs") / "server.log", "wb")  # noqa: SIM115
    process = subprocess.Popen(
        [sys.executable, "-m", "gateway.cli", "serve", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=Path(__file__).parents[2],
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/metadata", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.2)
        if process.poll() is not None:
            raise RuntimeError(f"gateway did not start: {Path(log.name).read_text()}")
    else:
        process.kill()
        raise RuntimeError("gateway did not answer within 60 s")
    live_server_database[base] = database
    yield base
    process.terminate()
    process.wait(timeout=10)
    log.close()


@pytest.fixture(scope="session")
def auth_headers(live_server: str, request: pytest.FixtureRequest) -> dict[str, str]:
    """A real token for the test client, obtained over HTTP through the SMART discovery document."""
    database = live_server_database[live_server]
    return obtain_auth_header(live_server.removesuffix("/fhir"), database)


@pytest.fixture(scope="session")
def http(live_server: str, auth_headers: dict[str, str]) -> Iterator[httpx.Client]:
    with httpx.Client(headers=auth_headers, timeout=30) as client:
        yield client


@pytest.fixture(scope="session")
def token_for(live_server: str):  # type: ignore[no-untyped-def]
    """`token_for(scope)`: an Authorization header narrowed to `scope`."""
    return lambda scope: obtain_auth_header(
        live_server.removesuffix("/fhir"), live_server_database[live_server], scope=scope
    )
