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

from tests.pg import fresh_database


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
    env = {**os.environ, "ZCC_DATABASE_URL": database, "ZCC_BASE_URL": base}
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
    yield base
    process.terminate()
    process.wait(timeout=10)
    log.close()
