"""A throwaway PostgreSQL server in a temporary folder on 127.0.0.1 (tests and benchmarks).

Uses Debian's ``postgresql`` binaries (``/usr/lib/postgresql/<version>/bin``, or ``pg_ctl`` on
``PATH``).  Running as root, ``initdb`` and the server run as the ``postgres`` user and the data
folder is handed to it.  Each instance gets a fresh folder (a reused socket folder with a stale
lock file can block a restart after a crash).
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

__all__ = ["LocalPostgres", "PostgresUnavailable", "find_postgres_bin"]


class PostgresUnavailable(RuntimeError):
    """PostgreSQL's server binaries (or the postgres user, as root) are not installed."""


def find_postgres_bin() -> Path:
    """Folder holding ``initdb`` and ``pg_ctl`` (raises :class:`PostgresUnavailable`)."""
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[-2]), reverse=True)
    for folder in candidates:
        if os.path.exists(os.path.join(folder, "initdb")):
            return Path(folder)
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    raise PostgresUnavailable("PostgreSQL server binaries not found (apt-get install postgresql)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LocalPostgres:
    """``initdb`` + ``pg_ctl start`` on a free port; :meth:`stop` (or :meth:`crash`) and :meth:`start`.

    Args:
        base: parent folder for the data folder (default: a new temp folder).
        fsync: keep PostgreSQL's fsync on (default); off only for throwaway speed.
    """

    def __init__(self, base: str | os.PathLike[str] | None = None, *, fsync: bool = True) -> None:
        self.bin = find_postgres_bin()
        self._own_base = base is None
        self.base = Path(tempfile.mkdtemp(prefix="orange-fast-pg-") if base is None else base)
        self.data = self.base / "data"
        self.port = _free_port()
        self.fsync = fsync
        self._as_postgres: list[str] = []
        if os.geteuid() == 0:
            try:
                pwd.getpwnam("postgres")
            except KeyError:
                raise PostgresUnavailable("running as root but there is no 'postgres' user") from None
            self._as_postgres = ["runuser", "-u", "postgres", "--"]

    @property
    def admin_dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    @property
    def pid(self) -> int | None:
        """The postmaster's pid while running."""
        try:
            return int((self.data / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def dsn(self, database: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def _run(self, *args: str, timeout: float = 60.0) -> None:
        subprocess.run([*self._as_postgres, *args], check=True, capture_output=True, timeout=timeout)

    def init(self) -> None:
        """Create the cluster (once)."""
        self.data.mkdir(parents=True, exist_ok=True)
        if self._as_postgres:
            shutil.chown(self.base, "postgres")
            shutil.chown(self.data, "postgres")
        os.chmod(self.data, 0o700)
        self._run(str(self.bin / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync")

    def start(self) -> None:
        options = f"-p {self.port} -k {self.data} -c listen_addresses=127.0.0.1 -c max_connections=300"
        if not self.fsync:
            options += " -c fsync=off -c synchronous_commit=off"
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-o", options, "-l",
                  str(self.data / "server.log"), "-w", "-t", "60", "start", timeout=90)

    def stop(self, mode: str = "fast") -> None:
        """Stop (``fast``) or crash (``immediate``: no checkpoint, like kill -9 of the postmaster)."""
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop", timeout=90)

    def create_database(self, name: str) -> str:
        """Create ``name`` (via psql) and return its DSN."""
        psql = self.bin / "psql"
        subprocess.run([str(psql), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-q", "-c",
                        f'CREATE DATABASE "{name}"'], check=True, capture_output=True, timeout=60)
        return self.dsn(name)

    def __enter__(self) -> LocalPostgres:  # noqa: PYI034
        self.init()
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        try:
            self.stop("immediate")
        except (subprocess.SubprocessError, OSError):
            pass
        if self._own_base:
            shutil.rmtree(self.base, ignore_errors=True)
