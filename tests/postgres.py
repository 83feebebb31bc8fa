"""A throwaway PostgreSQL server for tests: Debian's `postgresql`, a cluster of its own.

    apt-get install -y --no-install-recommends postgresql    # .ci/run does
    pytest tests/core/test_feedback.py tests/service/test_feedback_durability.py

`cluster()` makes a cluster in a temporary folder (initdb), starts it on a free loopback
port with password (SCRAM) authentication for a role `mnist` that owns a database
`mnist`, and removes it at the end. As root, its programs run as the `postgres` user
(PostgreSQL refuses to run as root). Tests that need one skip, saying why, only where
PostgreSQL is not installed.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from clients.server_process import free_port

INSTALLS = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"),
                  key=lambda p: int(p.parts[-3]) if p.parts[-3].isdigit() else 0)
ROLE, DATABASE = "mnist", "mnist"
NOT_INSTALLED = ("PostgreSQL is not installed (apt-get install -y --no-install-recommends "
                 "postgresql)")


def installed() -> bool:
    return bool(INSTALLS)


def _as_owner() -> list[str]:
    """The prefix that runs a PostgreSQL program as its owner: `postgres` when root."""
    return ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []


@dataclass
class Cluster:
    folder: Path
    port: int
    password: str

    @property
    def bin(self) -> Path:
        return INSTALLS[-1].parent

    @property
    def data(self) -> Path:
        return self.folder / "data"

    @property
    def url(self) -> str:
        return f"postgresql://{ROLE}:{self.password}@127.0.0.1:{self.port}/{DATABASE}"

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*_as_owner(), str(self.bin / args[0]), *args[1:]],
                              capture_output=True, text=True, timeout=60)

    def start(self, attempts: int = 20) -> None:
        """pg_ctl start, waiting until it accepts connections. After a SIGKILL of the
        postmaster, its orphaned backends hold the old shared memory for a moment: the
        start is retried until they are gone."""
        options = (f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 "
                   "-c fsync=on -c synchronous_commit=on")
        for _ in range(attempts):
            done = self._run("pg_ctl", "-D", str(self.data), "-l", str(self.folder / "log"),
                             "-o", options, "-w", "-t", "30", "start")
            if done.returncode == 0:
                return
            time.sleep(0.5)
        raise RuntimeError(f"PostgreSQL did not start: {done.stdout}{done.stderr}"
                           f"{(self.folder / 'log').read_text()}")

    def postmaster_pid(self) -> int:
        return int((self.data / "postmaster.pid").read_text().split()[0])

    def kill(self) -> None:
        """SIGKILL of the postmaster: no shutdown, no checkpoint."""
        pid = self.postmaster_pid()
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and Path(f"/proc/{pid}").exists():
            time.sleep(0.05)

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")


def _init(folder: Path, password: str) -> Cluster:
    cluster = Cluster(folder, free_port(), password)
    (folder / "pw").write_text(password)
    if os.geteuid() == 0:
        owner = pwd.getpwnam("postgres")
        for path in (folder, folder / "pw"):
            os.chown(path, owner.pw_uid, owner.pw_gid)
    done = cluster._run("initdb", "-D", str(cluster.data), "-U", ROLE, "--auth=scram-sha-256",
                        f"--pwfile={folder / 'pw'}", "--no-sync")
    if done.returncode != 0:
        raise RuntimeError(f"initdb failed: {done.stdout}{done.stderr}")
    return cluster


def _create_database(cluster: Cluster) -> None:
    import psycopg

    with psycopg.connect(cluster.url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as db:
        db.execute(f"CREATE DATABASE {DATABASE}")


@contextmanager
def cluster() -> Iterator[Cluster]:
    """A running throwaway cluster (see the module's docstring); skips the test where
    PostgreSQL is not installed."""
    if not installed():
        pytest.skip(NOT_INSTALLED)
    # Not under pytest's tmp_path: its parents are private to root, and the server runs
    # as `postgres`.
    folder = Path(tempfile.mkdtemp(prefix="mnist-test-postgres-"))
    pg = _init(folder, password=os.urandom(8).hex())
    try:
        pg.start()
        _create_database(pg)
        yield pg
    finally:
        pg.stop()
        shutil.rmtree(folder, ignore_errors=True)
