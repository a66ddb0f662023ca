"""A throwaway PostgreSQL cluster for the archive tests: initdb and pg_ctl in a temporary directory.

The server listens only on a Unix socket inside that directory (no TCP
port to collide with anyone), trusts local connections, and runs as the
current user, or as ``nobody`` through setpriv when the tests run as root
(initdb refuses root). Import as ``from tests.archive.postgres import ...``.
"""

import contextlib
import os
import pwd
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

NOBODY = "nobody"
PORT = 5432  # only names the socket file: the socket lives in the cluster's own directory
SUPERUSER = "otwamp"
TIMEOUT = 60.0


def postgres_bin() -> Path | None:
    """The newest Debian PostgreSQL's bin directory, or None."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[-3]))
    return found[-1].parent if found else None


class Cluster:
    """A running cluster; ``url(db)`` is a psycopg URL, ``stop``/``start`` restart it."""

    def __init__(self, bin_dir: Path, root: Path, prefix: tuple[str, ...]) -> None:
        self.bin_dir, self.root, self.prefix = bin_dir, root, prefix
        self.data, self.log = root / "data", root / "server.log"

    def _run(self, tool: str, *args: str) -> None:
        env = {"PATH": os.environ.get("PATH", ""), "LC_ALL": "C", "TZ": "UTC"}
        command = [*self.prefix, str(self.bin_dir / tool), *args]
        result = subprocess.run(
            command,
            check=False,
            env=env,
            cwd=self.root,
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
        )
        if result.returncode != 0:
            log = self.log.read_text(errors="replace") if self.log.exists() else ""
            raise RuntimeError(f"{tool} failed: {result.stderr}{result.stdout}\n{log}")

    def init(self) -> None:
        """initdb: trust auth for local connections, UTF-8, our superuser name."""
        self._run("initdb", "-D", str(self.data), "-U", SUPERUSER, "-A", "trust", "-E", "UTF8")

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        options = (
            f"-k {self.root} -p {PORT} -c listen_addresses='' -c fsync=off "
            "-c shared_buffers=16MB -c max_connections=30"
        )
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "start")

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (fast: disconnect clients, clean shutdown)."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def url(self, database: str) -> str:
        """The postgresql:// URL of ``database`` on this cluster's socket."""
        return f"postgresql://{SUPERUSER}@/{database}?host={self.root}&port={PORT}"

    def create_database(self) -> str:
        """A new empty database's URL."""
        import psycopg

        name = f"arc_{secrets.token_hex(6)}"
        with psycopg.connect(self.url("postgres"), autocommit=True) as connection:
            connection.execute(f"CREATE DATABASE {name}")
        return self.url(name)


def _owner_prefix(root: Path) -> tuple[str, ...]:
    """Run as ourselves, or as nobody (owning ``root``) when we are root."""
    if os.geteuid() != 0:
        return ()
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("initdb refuses root and setpriv is missing")
    account = pwd.getpwnam(NOBODY)
    os.chown(root, account.pw_uid, account.pw_gid)
    return (setpriv, f"--reuid={account.pw_uid}", f"--regid={account.pw_gid}", "--clear-groups")


@contextlib.contextmanager
def running_cluster() -> Iterator[Cluster]:
    """A started cluster in a new temporary directory; stopped and removed at the end."""
    bin_dir = postgres_bin()
    if bin_dir is None:
        pytest.skip("needs PostgreSQL (scripts/install-debian-deps.sh installs it)")
    root = Path(tempfile.mkdtemp(prefix="arc-pg-"))
    try:
        cluster = Cluster(bin_dir, root, _owner_prefix(root))
        cluster.init()
        cluster.start()
        try:
            yield cluster
        finally:
            with contextlib.suppress(RuntimeError):
                cluster.stop("immediate")
    finally:
        shutil.rmtree(root, ignore_errors=True)
