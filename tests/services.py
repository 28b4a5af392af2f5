"""Real PostgreSQL 15 and Redis servers for tests, from Debian's packages, on loopback.

Nothing starts services on a fresh machine (``make deps-services`` installs the
packages): each test session starts its own servers in a temp folder on free
ports and stops them at the end. PostgreSQL runs as user ``postgres`` when the
tests run as root (``initdb`` refuses root).
"""

from __future__ import annotations

import itertools
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

PG_BIN = Path("/usr/lib/postgresql/15/bin")
REDIS = shutil.which("redis-server") or "/usr/bin/redis-server"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _as_owner(cmd: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


class PgServer:
    """One PostgreSQL cluster; :meth:`new_database` hands each test a fresh database."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.data = root / "data"
        self.sock = root / "sock"
        self.port = free_port()
        self._names = itertools.count(1)

    def start(self) -> None:
        if not (PG_BIN / "initdb").exists():
            raise RuntimeError("PostgreSQL 15 is not installed: run make deps-services")
        self.sock.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres")
            shutil.chown(self.sock, "postgres")
        if not self.data.exists():
            subprocess.run(
                _as_owner(
                    [
                        str(PG_BIN / "initdb"),
                        "-D",
                        str(self.data),
                        "-U",
                        "postgres",
                        "--auth=trust",
                        "-E",
                        "UTF8",
                        "--locale=C.UTF-8",
                    ]
                ),
                check=True,
                capture_output=True,
            )
        self.pg_ctl(
            "start",
            "-w",
            "-t",
            "60",
            "-l",
            str(self.root / "log.txt"),
            "-o",
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.sock} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
            "-c max_connections=300",
        )

    def pg_ctl(self, *args: str) -> None:
        # Never pipes: the server pg_ctl starts would inherit them and the call never return.
        with (self.root / "pg_ctl.txt").open("ab") as out:
            subprocess.run(
                _as_owner([str(PG_BIN / "pg_ctl"), "-D", str(self.data), *args]),
                check=True,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def stop(self) -> None:
        subprocess.run(
            _as_owner([str(PG_BIN / "pg_ctl"), "-D", str(self.data), "stop", "-m", "fast"]),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def restart(self) -> None:
        self.pg_ctl("restart", "-w", "-m", "fast", "-t", "60", "-l", str(self.root / "log.txt"))

    def url(self, db: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{db}"

    def new_database(self) -> str:
        """A fresh, empty database; its SQLAlchemy URL."""
        import psycopg

        name = f"t{os.getpid()}_{next(self._names)}"
        with psycopg.connect(
            f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres", autocommit=True
        ) as con:
            con.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)


class RedisServer:
    """One redis-server; ``appendonly`` when a test restarts it and wants messages kept."""

    def __init__(self, root: Path, *, appendonly: bool = False) -> None:
        self.root = root
        self.port = free_port()
        self.appendonly = appendonly
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        if not Path(REDIS).exists():
            raise RuntimeError("redis-server is not installed: run make deps-services")
        self.root.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [
                REDIS,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "yes" if self.appendonly else "no",
                "--dir",
                str(self.root),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=30)

    def restart(self) -> None:
        self.stop()
        self.start()

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"


@contextmanager
def throwaway_pg(prefix: str = "waikan-pg-") -> Iterator[PgServer]:
    """A PostgreSQL 15 server in a temporary folder, removed with it afterwards."""
    root = Path(tempfile.mkdtemp(prefix=prefix))
    server = PgServer(root)
    server.start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """A PostgreSQL 15 server for the whole session."""
    with throwaway_pg() as server:
        yield server


@contextmanager
def throwaway_redis(prefix: str = "waikan-redis-") -> Iterator[RedisServer]:
    """A Redis server (no persistence) in a temporary folder, removed with it afterwards."""
    root = Path(tempfile.mkdtemp(prefix=prefix))
    server = RedisServer(root)
    server.start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """A Redis server for the whole session (no persistence)."""
    with throwaway_redis() as server:
        yield server


_redis_dbs = itertools.count(1)


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """A broker URL on an empty Redis database of the session's server."""
    import redis

    db = next(_redis_dbs) % 16
    url = redis_server.url(db)
    redis.Redis.from_url(url).flushdb()
    return url


@pytest.fixture
def pg_url(pg_server: PgServer) -> str:
    """A fresh, empty PostgreSQL database of the session's server."""
    return pg_server.new_database()


@pytest.fixture(params=["sqlite", "pg"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The store URL of one backend: each store test runs on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'w.db'}"
    server: PgServer = request.getfixturevalue("pg_server")
    return server.new_database()
