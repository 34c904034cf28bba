"""A throwaway PostgreSQL server for the tests (a pytest plugin listed in tests/conftest.py).

`postgres_server` (session): MONITOR_TEST_DATABASE_URL if set, else a PostgreSQL started
from the machine's binaries in a temp folder, on 127.0.0.1 and a free port.
`postgres_url` (function): a fresh database per test, dropped afterwards.
`database_url` (function): parametrized over SQLite and PostgreSQL, so storage tests run on both.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import make_url

TEST_URL_VARIABLE = "MONITOR_TEST_DATABASE_URL"
START_SECONDS = 60  # bound on initdb, start and readiness
SUPERUSER = "postgres"


class PostgresServer:
    """A PostgreSQL server the tests own: start, stop and restart it at will."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.data = root / "data"
        self.log = root / "postgres.log"
        self.port = _free_port()
        pg_ctl = shutil.which("pg_ctl")
        if pg_ctl is None:
            raise RuntimeError("no pg_ctl on PATH")
        self.bin = Path(os.path.realpath(pg_ctl)).parent  # initdb sits beside the real pg_ctl

    @property
    def url(self) -> str:
        """Admin URL (superuser, database `postgres`)."""
        return f"postgresql+psycopg://{SUPERUSER}@127.0.0.1:{self.port}/postgres"

    def init(self) -> None:
        if os.geteuid() == 0:  # initdb refuses root; the folder is handed to `postgres`
            shutil.chown(self.root, user="postgres", group="postgres")
        self._run(
            str(self.bin / "initdb"), "-D", str(self.data), "-A", "trust", "-U", SUPERUSER,
            "-E", "UTF8", "--locale=C", "--no-sync",
        )  # fmt: skip

    def start(self) -> None:
        options = (
            f"-c listen_addresses=127.0.0.1 -c port={self.port} "
            f"-c unix_socket_directories={self.root} -c fsync=off"
        )
        self._run(
            str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-o", options,
            "-w", "-t", str(START_SECONDS), "start",
        )  # fmt: skip
        self._wait_ready()

    def stop(self) -> None:
        self._run(
            str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate",
            "-w", "-t", str(START_SECONDS), "stop",
        )  # fmt: skip

    def restart(self) -> None:
        self.stop()
        self.start()

    def _run(self, *argv: str) -> None:
        if os.geteuid() == 0:
            argv = ("runuser", "-u", "postgres", "--", *argv)
        result = subprocess.run(
            argv,
            cwd=self.root,  # postgres may not be allowed into the caller's folder
            capture_output=True,
            text=True,
            timeout=START_SECONDS + 10,
            check=False,
        )
        if result.returncode != 0:
            log = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
            raise RuntimeError(
                f"{' '.join(argv)} failed ({result.returncode}):\n"
                f"{result.stdout}{result.stderr}\n{log}"
            )

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + START_SECONDS
        while True:
            try:
                psycopg.connect(_libpq(self.url), connect_timeout=2).close()
                return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)


class ExternalPostgres:
    """A server given by MONITOR_TEST_DATABASE_URL: used as is, never stopped."""

    def __init__(self, url: str) -> None:
        self.url = url

    def stop(self) -> None:
        pytest.skip(f"cannot stop the external server of {TEST_URL_VARIABLE}")

    def start(self) -> None:
        pytest.skip(f"cannot start the external server of {TEST_URL_VARIABLE}")

    def restart(self) -> None:
        pytest.skip(f"cannot restart the external server of {TEST_URL_VARIABLE}")


PostgresHandle = PostgresServer | ExternalPostgres


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresHandle]:
    external = os.environ.get(TEST_URL_VARIABLE)
    if external:
        yield ExternalPostgres(external)
        return
    if shutil.which("pg_ctl") is None:
        pytest.fail(
            "PostgreSQL tests need pg_ctl on PATH (install postgresql-15) "
            f"or {TEST_URL_VARIABLE}=postgresql://user:password@host/dbname",
            pytrace=False,
        )
    root = Path(tempfile.mkdtemp(prefix="monitor-pg-"))
    server = PostgresServer(root)
    try:
        server.init()
        server.start()
        yield server
    finally:
        if (server.data / "postmaster.pid").exists():
            server.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def postgres_url(postgres_server: PostgresHandle) -> Iterator[str]:
    """A fresh, empty database on the test server; dropped after the test."""
    name = f"t_{secrets.token_hex(6)}"
    admin = _libpq(postgres_server.url)
    with psycopg.connect(admin, autocommit=True, connect_timeout=10) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    url = make_url(postgres_server.url).set(drivername="postgresql+psycopg", database=name)
    yield url.render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True, connect_timeout=10) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(
    params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)],
    ids=["sqlite", "postgresql"],
)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database URL for each backend: a SQLite file, then a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'monitor.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


def _libpq(url: str) -> str:
    """psycopg wants a libpq URL: no SQLAlchemy driver suffix."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port
