"""CLI: db upgrade, users add, audit verify, serve."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from ._pg import free_port

SRC = str(Path(__file__).resolve().parents[2] / "src")


def _cli(*args: str, env_extra: dict[str, str] | None = None, cwd: Path | None = None):
    env = {**os.environ, "PYTHONPATH": SRC, **(env_extra or {})}
    env.pop("THERADOSE_DB", None)
    env.update(env_extra or {})
    return subprocess.run(
        [sys.executable, "-m", "theradose", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
        cwd=cwd,
    )


def test_db_upgrade_users_add_and_verify(tmp_path: Path) -> None:
    db = tmp_path / "site.db"
    r = _cli("db", "upgrade", "--db", str(db), "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["revision"] == "0001"
    r = _cli(
        "users",
        "add",
        "alice",
        "--role",
        "physicist",
        "--full-name",
        "Alice P",
        "--db",
        str(db),
        "--json",
        env_extra={"THERADOSE_PASSWORD": "correct horse battery"},
    )
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == {"username": "alice", "role": "physicist", "full_name": "Alice P"}
    r = _cli(
        "users",
        "add",
        "alice",
        "--role",
        "physicist",
        "--db",
        str(db),
        env_extra={"THERADOSE_PASSWORD": "correct horse battery"},
    )
    assert r.returncode == 2 and r.stderr.startswith("error: ") and "exists" in r.stderr
    r = _cli(
        "users", "add", "bob", "--role", "wizard", "--db", str(db), env_extra={"THERADOSE_PASSWORD": "x" * 10}
    )
    assert r.returncode == 2 and "--role" in r.stderr
    r = _cli("audit", "verify", "--db", str(db), "--json")
    assert r.returncode == 0
    assert json.loads(r.stdout) == {"ok": True, "entries": 1, "first_bad_entry": None, "problem": None}


def test_default_database_is_theradose_db_in_working_directory(tmp_path: Path) -> None:
    r = _cli("db", "upgrade", "--json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "theradose.db").exists()
    other = tmp_path / "env.db"
    r = _cli("db", "upgrade", "--json", cwd=tmp_path, env_extra={"THERADOSE_DB": str(other)})
    assert r.returncode == 0 and other.exists()


def test_verify_on_missing_schema_is_a_clean_error(tmp_path: Path) -> None:
    r = _cli("audit", "verify", "--db", str(tmp_path / "empty.db"), "--json")
    assert r.returncode == 2 and "theradose db upgrade" in r.stderr and "Traceback" not in r.stderr


def test_serve_answers_on_loopback(tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "PYTHONPATH": SRC}
    proc = subprocess.Popen(
        [sys.executable, "-m", "theradose", "serve", "--db", str(tmp_path / "s.db"), "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/health", timeout=2)
                break
            except httpx.TransportError:
                assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else ""
                assert time.monotonic() < deadline, "server did not start"
                time.sleep(0.2)
        assert r.json() == {"status": "ok"}
        spec = httpx.get(f"http://127.0.0.1:{port}/openapi.json", timeout=5).json()
        assert "/batches/{batch_id}/dispensings" in spec["paths"]
        assert httpx.get(f"http://127.0.0.1:{port}/batches", timeout=5).status_code == 401
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        if proc.stdout:
            proc.stdout.close()
