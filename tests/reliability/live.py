"""Real gateway processes for the scale-out and fault tests: `python -m gateway.cli serve` on free loopback
ports, all against one database and one signing-key directory, as they would run behind a reverse proxy.

All instances are configured with the same public base URL (the first instance's address stands in for the
proxy), so a token or a paging link from one instance is valid on every other."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class GatewayProcess:
    port: int
    env: dict[str, str]
    log_path: Path
    process: subprocess.Popen | None = field(default=None, repr=False)

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base(self) -> str:
        return f"{self.origin}/fhir"

    def start(self, timeout: float = 120) -> None:
        self.launch()
        self.wait_ready(timeout)

    def launch(self) -> None:
        log = open(self.log_path, "ab")  # noqa: SIM115 - the child keeps its own descriptor
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gateway.cli", "serve", "--port", str(self.port)],
            env=self.env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT,
        )
        log.close()

    def wait_ready(self, timeout: float = 120) -> None:
        assert self.process is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gateway did not start: {self.log_path.read_text()[-3000:]}")
            try:
                if httpx.get(f"{self.base}/metadata", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.2)
        self.kill()
        raise RuntimeError(f"gateway on port {self.port} did not answer within {timeout} s")

    def kill(self) -> None:
        """SIGKILL: no shutdown handlers, no flushing — a crash."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()

    def rss_kib(self) -> int:
        assert self.process is not None
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        return 0


def gateway_cluster(count: int, database_url: str, workdir: Path, **extra_env: str) -> list[GatewayProcess]:
    """`count` configured (not yet started) instances sharing database, keys and public base URL."""
    ports = [free_port() for _ in range(count)]
    public_base = f"http://127.0.0.1:{ports[0]}/fhir"
    (workdir / "keys").mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ, "ZCC_DATABASE_URL": database_url, "ZCC_BASE_URL": public_base, "ZCC_CONSENT": "off",
        "ZCC_AUTH_KEY_DIR": str(workdir / "keys"), **extra_env,
    }
    return [GatewayProcess(port, env, workdir / f"gateway-{port}.log") for port in ports]


def start_all(gateways: list[GatewayProcess]) -> None:
    gateways[0].start()  # the first one runs the migrations and creates the key ring; the others start together
    for gateway in gateways[1:]:
        gateway.launch()
    for gateway in gateways[1:]:
        gateway.wait_ready()
