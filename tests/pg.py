"""A throw-away PostgreSQL cluster for the test session.

The store must behave identically on SQLite and PostgreSQL, so tests run against a real server rather than a
mock. The cluster lives in a temporary directory, listens on a free loopback port and on a unix socket in
that directory, trusts local connections, and is removed when the session ends. PostgreSQL refuses to run as
root, so when the tests run as root the cluster runs as an unprivileged user (`postgres`, else `nobody`).
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path


class PostgresUnavailableError(RuntimeError):
    """No PostgreSQL binaries on this machine (tests that need the server are skipped)."""


def find_pg_bin() -> Path:
    """The directory holding `initdb` and `pg_ctl`: PATH first, then Debian's versioned directories."""
    on_path = shutil.which("initdb")
    if on_path and shutil.which("pg_ctl"):
        return Path(on_path).resolve().parent
    for candidate in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if Path(candidate, "initdb").exists() and Path(candidate, "pg_ctl").exists():
            return Path(candidate)
    raise PostgresUnavailableError("initdb/pg_ctl not found on PATH or in /usr/lib/postgresql/*/bin")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _run_as() -> str | None:
    """The user to run the server as, or None when we are not root (then we run it ourselves)."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    raise PostgresUnavailableError("running as root and no unprivileged user (postgres/nobody) exists")


@dataclass
class TemporaryPostgres:
    """A running cluster; `url` is a SQLAlchemy URL to its `postgres` database as superuser `postgres`."""

    directory: Path
    bin_dir: Path
    user: str | None
    port: int

    @property
    def data_dir(self) -> Path:
        return self.directory / "data"

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _command(self, *args: str) -> list[str]:
        prefix = ["runuser", "-u", self.user, "--"] if self.user else []
        return [*prefix, *args]

    def start(self) -> None:
        if self.user:
            shutil.chown(self.directory, self.user)
        subprocess.run(
            self._command(
                str(self.bin_dir / "initdb"),
                "-D",
                str(self.data_dir),
                "-U",
                "postgres",
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
            ),
            check=True,
            capture_output=True,
            cwd=self.directory,
        )
        options = (
            f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=300"
        )
        subprocess.run(
            self._command(
                str(self.bin_dir / "pg_ctl"),
                "-D",
                str(self.data_dir),
                "-o",
                options,
                "-l",
                str(self.directory / "server.log"),
                "-w",
                "-t",
                "30",
                "start",
            ),
            check=True,
            capture_output=True,
            cwd=self.directory,
        )

    def stop(self) -> None:
        subprocess.run(
            self._command(
                str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir), "-m", "immediate", "-w", "stop"
            ),
            check=False,
            capture_output=True,
            cwd=self.directory,
        )
        shutil.rmtree(self.directory, ignore_errors=True)


def start_temporary_postgres() -> TemporaryPostgres:
    """Create and start a fresh cluster; the caller must call `.stop()`."""
    bin_dir = find_pg_bin()
    user = _run_as()
    directory = Path(tempfile.mkdtemp(prefix="zcc-pg-"))
    server = TemporaryPostgres(directory=directory, bin_dir=bin_dir, user=user, port=_free_port())
    try:
        server.start()
    except (subprocess.CalledProcessError, OSError) as error:
        log = directory / "server.log"
        details = log.read_text(errors="replace")[-2000:] if log.exists() else ""
        stderr = getattr(error, "stderr", b"") or b""
        server.stop()
        raise PostgresUnavailableError(
            f"could not start PostgreSQL: {error} {stderr.decode(errors='replace')}\n{details}"
        ) from error
    return server


def fresh_database(server_url: str, prefix: str = "t") -> str:
    """Create an empty database on the session's server and return its URL (one per test module)."""
    import uuid

    from sqlalchemy import create_engine, text

    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    engine = create_engine(server_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return server_url.rsplit("/", 1)[0] + f"/{name}"
