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
from .conftest import TEST_KEY

SRC = str(Path(__file__).resolve().parents[2] / "src")


def _cli(capsys, monkeypatch, *args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    """Run ``theradose ARGS`` in-process; returns (exit code, stdout, stderr)."""
    from theradose.cli import main

    for name in ("THERADOSE_DB", "THERADOSE_PASSWORD", "THERADOSE_KEY_FILE", "THERADOSE_CHECKPOINT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("THERADOSE_SECRET_KEY", TEST_KEY)
    for key, value in (env or {}).items():
        monkeypatch.setenv(key, value)
    capsys.readouterr()
    try:
        main(list(args))
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_db_upgrade_users_add_and_verify(tmp_path: Path, capsys, monkeypatch) -> None:
    db = str(tmp_path / "site.db")
    code, out, err = _cli(capsys, monkeypatch, "db", "upgrade", "--db", db, "--json")
    assert code == 0, err
    assert json.loads(out)["revision"] == "loop_0003"
    pw = {"THERADOSE_PASSWORD": "correct horse battery"}
    code, out, err = _cli(
        capsys,
        monkeypatch,
        "users",
        "add",
        "alice",
        "--role",
        "physicist",
        "--full-name",
        "Alice P",
        "--db",
        db,
        "--json",
        env=pw,
    )
    assert code == 0, err
    assert json.loads(out) == {"username": "alice", "role": "physicist", "full_name": "Alice P"}
    code, out, err = _cli(
        capsys, monkeypatch, "users", "add", "alice", "--role", "physicist", "--db", db, env=pw
    )
    assert code == 2 and err.startswith("error: ") and "exists" in err
    code, out, err = _cli(capsys, monkeypatch, "users", "add", "bob", "--role", "wizard", "--db", db, env=pw)
    assert code == 2 and "--role" in err
    code, out, err = _cli(capsys, monkeypatch, "audit", "verify", "--db", db, "--json")
    assert code == 0, err
    result = json.loads(out)
    assert (result["ok"], result["entries"], result["first_bad_entry"], result["problem"]) == (
        True,
        1,
        None,
        None,
    )
    assert result["rows_checked"] == 1 and result["state_mismatches"] == [] and result["head_ok"] is True


def test_default_database_is_theradose_db_in_working_directory(tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    code, _out, err = _cli(capsys, monkeypatch, "db", "upgrade", "--json")
    assert code == 0, err
    assert (tmp_path / "theradose.db").exists()
    other = tmp_path / "env.db"
    code, _out, err = _cli(capsys, monkeypatch, "db", "upgrade", "--json", env={"THERADOSE_DB": str(other)})
    assert code == 0 and other.exists()


def test_verify_on_missing_schema_is_a_clean_error(tmp_path: Path, capsys, monkeypatch) -> None:
    code, out, err = _cli(
        capsys, monkeypatch, "audit", "verify", "--db", str(tmp_path / "empty.db"), "--json"
    )
    assert code == 2 and "theradose db upgrade" in err and out == ""


def test_serve_answers_on_loopback(tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "PYTHONPATH": SRC, "THERADOSE_SECRET_KEY": TEST_KEY}
    env.pop("THERADOSE_KEY_FILE", None)
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
