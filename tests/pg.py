"""A throwaway PostgreSQL server for the tests: the alert store runs against a real one.

The session starts one server (``initdb`` + ``pg_ctl``, about 2 s) and every test that
asks for ``store_url`` on the PostgreSQL side gets a fresh database on it. ``initdb``
refuses to run as root, so as root the server runs as the ``postgres`` user, in a
directory directly under /tmp owned by it (pytest's tmp_path sits under a 0700 root
directory the ``postgres`` user cannot enter). It listens on 127.0.0.1 and a free port
only, with fsync off: the data is thrown away.

When the PostgreSQL binaries (or psycopg) are absent the PostgreSQL half of the tests
FAILS, saying what to install: never a silent skip, which would let a green run hide a
store never tried on PostgreSQL. ``scripts/ensure-java-postgres.sh`` (run by ``make test``)
installs the server.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

BACKENDS = ("sqlite", "postgresql")


def _bindir() -> Path | None:
    if shutil.which("pg_config"):
        out = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True)
        if out.returncode == 0 and (Path(out.stdout.strip()) / "initdb").exists():
            return Path(out.stdout.strip())
    for cand in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (cand / "initdb").exists():
            return cand
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PostgresServer:
    """One running server; ``url(db)`` is a SQLAlchemy URL for a database on it."""

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.root = Path(tempfile.mkdtemp(prefix="er-pg-", dir="/tmp"))
        self.data = self.root / "data"
        self.port = _free_port()
        self.as_postgres = os.geteuid() == 0
        if self.as_postgres:
            shutil.chown(self.root, "postgres", "postgres")

    def _run(self, *args: str) -> None:
        cmd = [str(self.bindir / args[0]), *args[1:]]
        if self.as_postgres:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(args[:1])} failed ({done.returncode}): {done.stderr.strip()[-800:]}")

    def start(self) -> None:
        self._run("initdb", "-D", str(self.data), "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8", "--no-sync",
                  "-U", "postgres")
        opts = (f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off "
                "-c synchronous_commit=off -c full_page_writes=off -c max_connections=50")
        self._run("pg_ctl", "-D", str(self.data), "-o", opts, "-l", str(self.root / "log"), "-w", "start")

    def stop(self) -> None:
        try:
            self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def url(self, db: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{db}"

    def create_database(self) -> str:
        """A fresh empty database; returns its SQLAlchemy URL."""
        import psycopg
        name = "t_" + uuid.uuid4().hex[:12]
        with psycopg.connect(f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres",
                             autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PostgresServer]:
    """The session's PostgreSQL server (a failure, saying what to install, when PostgreSQL is absent)."""
    bindir = _bindir()
    if bindir is None:
        pytest.fail("PostgreSQL server binaries not found (initdb, pg_ctl): run scripts/ensure-java-postgres.sh "
                    "or apt-get install -y postgresql", pytrace=False)
    try:
        import psycopg  # noqa: F401
    except ImportError:
        pytest.fail("psycopg not installed: pip install 'escalation-risk[postgres]'", pytrace=False)
    server = PostgresServer(bindir)
    t0 = time.perf_counter()
    server.start()
    print(f"\nPostgreSQL {bindir.parent.name} on 127.0.0.1:{server.port} started in "
          f"{time.perf_counter() - t0:.1f} s")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(params=BACKENDS)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A URL of an empty alert store: a SQLite file, or a fresh database on the test server."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'alerts.db'}"
    server: PostgresServer = request.getfixturevalue("pg_server")
    return server.create_database()
