"""Start and stop a throwaway PostgreSQL cluster on 127.0.0.1 for the tests."""

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

MISSING = (
    "PostgreSQL server binaries (initdb, pg_ctl) not found on PATH or in /usr/lib/postgresql/*/bin: "
    "install them with scripts/setup-system.sh (Debian package postgresql)"
)


def find_bin_dir() -> Path | None:
    """Directory holding initdb and pg_ctl, or None."""
    candidates = []
    found = shutil.which("initdb")
    if found:
        candidates.append(Path(os.path.realpath(found)).parent)
    candidates.extend(
        Path(p).parent for p in sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), reverse=True)
    )
    for directory in candidates:
        if (directory / "initdb").exists() and (directory / "pg_ctl").exists():
            return directory
    return None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class PgCluster:
    bin_dir: Path
    data_dir: Path
    port: int
    as_user: str | None

    @property
    def admin_url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def url(self, dbname: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{dbname}"

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        cmd = [str(self.bin_dir / args[0]), *args[1:]]
        if self.as_user:
            cmd = ["runuser", "-u", self.as_user, "--", *cmd]
        return subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=120)

    def start(self) -> None:
        result = self._run(
            "initdb", "-D", str(self.data_dir), "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync"
        )
        if result.returncode != 0:
            raise RuntimeError(f"initdb failed: {result.stderr.strip()}")
        options = (
            f"-h 127.0.0.1 -p {self.port} -k {self.data_dir} -c fsync=off -c synchronous_commit=off "
            "-c full_page_writes=off -c max_connections=200"
        )
        result = self._run(
            "pg_ctl",
            "-D",
            str(self.data_dir),
            "-l",
            str(self.data_dir / "server.log"),
            "-o",
            options,
            "-w",
            "start",
        )
        if result.returncode != 0:
            log = (self.data_dir / "server.log").read_text(errors="replace")[-2000:]
            raise RuntimeError(f"pg_ctl start failed: {result.stderr.strip()} {log}")

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data_dir), "-m", "immediate", "-w", "stop")

    def create_database(self, name: str, template: str | None = None) -> str:
        import psycopg

        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            suffix = f' TEMPLATE "{template}"' if template else ""
            conn.execute(f'CREATE DATABASE "{name}"{suffix}')
        return self.url(name)

    def drop_database(self, name: str) -> None:
        import psycopg

        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def start_cluster() -> tuple[PgCluster, Path]:
    """Start a cluster in a new temporary directory; returns it and the directory to remove afterwards."""
    bin_dir = find_bin_dir()
    if bin_dir is None:
        raise FileNotFoundError(MISSING)
    root = Path(tempfile.mkdtemp(prefix="theradose-pg-"))
    data_dir = root / "data"
    as_user = None
    if os.geteuid() == 0:  # postgres refuses to run as root
        try:
            entry = pwd.getpwnam("postgres")
        except KeyError as exc:
            raise FileNotFoundError(
                "running as root needs the system user 'postgres' (Debian package postgresql)"
            ) from exc
        os.chown(root, entry.pw_uid, entry.pw_gid)
        as_user = "postgres"
    cluster = PgCluster(bin_dir=bin_dir, data_dir=data_dir, port=free_port(), as_user=as_user)
    cluster.start()
    return cluster, root
