"""A real, throwaway PostgreSQL cluster for the tests (the `postgresql` Debian package's binaries).

`postgres_cluster` (session scope) runs `initdb` into a temporary directory and starts the server
listening only on a Unix socket in that directory (no TCP port is opened; the port number only names
the socket). `PostgresCluster.new_database()` creates an empty database per test and returns its URL,
so tests never see each other's rows. The cluster is stopped (immediate mode) and deleted at the end.

PostgreSQL refuses to run as root: under root the cluster belongs to the `postgres` system user,
and initdb and pg_ctl run through `runuser`.

Missing binaries skip the tests on a developer's machine and fail them under CI (environment
variable `CI` set), as for the other test material.
"""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.material import _missing

_SETUP = "the `postgresql` Debian package (scripts/setup-test-material.sh installs it)"


def find_binary(name: str) -> str | None:
    """`name` on PATH, else in the newest /usr/lib/postgresql/<version>/bin (Debian keeps them off PATH)."""
    found = shutil.which(name)
    if found:
        return found
    candidates = glob.glob(f"/usr/lib/postgresql/*/bin/{name}")
    candidates.sort(key=lambda path: int(Path(path).parts[-3]) if Path(path).parts[-3].isdigit() else 0)
    return candidates[-1] if candidates else None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class PostgresCluster:
    """A running cluster: `socket_dir` and `port` address it; the superuser is `appban`, trusted."""

    base: Path
    socket_dir: Path
    port: int
    user: str = "appban"
    _numbers: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def url(self, database: str = "appban") -> str:
        return f"postgresql://{self.user}@/{database}?host={self.socket_dir}&port={self.port}"

    def execute(self, sql: str, database: str = "postgres") -> None:
        """One statement outside a transaction (CREATE DATABASE needs that)."""
        import psycopg

        with psycopg.connect(
            host=str(self.socket_dir), port=self.port, user=self.user, dbname=database, autocommit=True
        ) as connection:
            connection.execute(sql.encode())

    def new_database(self) -> str:
        """A new empty database; returns its URL."""
        name = f"appban_test_{next(self._numbers)}"
        self.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)


def _run(command: list[str], as_user: str | None) -> None:
    if as_user is not None:
        command = ["runuser", "-u", as_user, "--", *command]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"`{' '.join(command)}` failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")


@pytest.fixture(scope="session", name="postgres_cluster")
def postgres_cluster_fixture() -> Iterator[PostgresCluster]:
    initdb, pg_ctl = find_binary("initdb"), find_binary("pg_ctl")
    if initdb is None or pg_ctl is None:
        _missing(f"PostgreSQL's initdb and pg_ctl, from {_SETUP}")
    assert initdb is not None and pg_ctl is not None
    as_user: str | None = None
    base = Path(tempfile.mkdtemp(prefix="appban-pg-"))
    if os.geteuid() == 0:
        try:
            account = pwd.getpwnam("postgres")
        except KeyError:
            shutil.rmtree(base)
            _missing(f"the `postgres` system user, from {_SETUP} (the server cannot run as root)")
        as_user = "postgres"
        os.chown(base, account.pw_uid, account.pw_gid)
    base.chmod(0o700)
    data = base / "data"
    port = _free_port()
    started = False
    try:
        _run(
            [initdb, "-D", str(data), "-U", "appban", "--auth=trust", "-E", "UTF8", "--locale=C", "--no-sync"],
            as_user,
        )
        # Durability is beside the point for a throwaway cluster: skip the fsyncs that dominate test time.
        options = f"-k {base} -p {port} -c listen_addresses='' -c fsync=off -c synchronous_commit=off"
        options += " -c full_page_writes=off"
        _run(
            [pg_ctl, "-D", str(data), "-l", str(base / "server.log"), "-w", "-t", "60", "-o", options, "start"], as_user
        )
        started = True
        cluster = PostgresCluster(base=base, socket_dir=base, port=port)
        cluster.execute('CREATE DATABASE "appban"')
        yield cluster
    finally:
        if started:
            _run([pg_ctl, "-D", str(data), "-m", "immediate", "-w", "stop"], as_user)
        shutil.rmtree(base, ignore_errors=True)
