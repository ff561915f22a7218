"""The audit chain detects edited, deleted and truncated entries (API and CLI)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from sqlalchemy import text

from .conftest import TEST_KEY

SRC = str(Path(__file__).resolve().parents[2] / "src")


def _some_writes(api) -> None:
    pseudonym = api.patient()
    api.prescription(pseudonym)
    api.released_batch()


def _verify(api) -> dict:
    r = api.get("/audit/verify", "admin")
    assert r.status_code == 200
    return r.json()


def test_chain_ok_then_tampered_row_detected(api) -> None:
    _some_writes(api)
    before = _verify(api)
    assert before["ok"] is True and before["entries"] >= 10 and before["first_bad_entry"] is None
    with api.app.state.db.engine.begin() as conn:
        conn.execute(text("UPDATE audit_entries SET actor = 'mallory' WHERE seq = 7"))
    after = _verify(api)
    assert after["ok"] is False and after["first_bad_entry"] == 7


def test_changed_before_after_json_detected(api) -> None:
    _some_writes(api)
    with api.app.state.db.engine.begin() as conn:
        row = conn.execute(
            text("SELECT seq, after_json FROM audit_entries WHERE entity = 'batch' ORDER BY seq")
        ).first()
        data = json.loads(row.after_json)
        data["activity_mbq"] = data["activity_mbq"] * 2
        conn.execute(
            text("UPDATE audit_entries SET after_json = :j WHERE seq = :s"),
            {"j": json.dumps(data, sort_keys=True, separators=(",", ":")), "s": row.seq},
        )
    result = _verify(api)
    assert result["ok"] is False and result["first_bad_entry"] == row.seq


def test_deleted_row_detected(api) -> None:
    _some_writes(api)
    with api.app.state.db.engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_entries WHERE seq = 4"))
    result = _verify(api)
    assert result["ok"] is False and result["first_bad_entry"] == 4


def test_deleted_newest_rows_detected_by_head(api) -> None:
    _some_writes(api)
    with api.app.state.db.engine.begin() as conn:
        last = conn.execute(text("SELECT max(seq) FROM audit_entries")).scalar_one()
        conn.execute(text("DELETE FROM audit_entries WHERE seq >= :s"), {"s": last - 1})
    result = _verify(api)
    assert result["ok"] is False and result["first_bad_entry"] == last - 1


def test_rehashed_row_without_the_key_detected_at_that_row(api) -> None:
    """An attacker who recomputes the unkeyed hash of the edited row is caught at that row."""
    from theradose.pharmacy.audit import entry_hash
    from theradose.service.audit_store import row_to_entry
    from theradose.service.models import AuditEntryRow

    _some_writes(api)
    with api.app.state.db.write() as session:
        row = session.get(AuditEntryRow, 5)
        row.actor = "mallory"
        row.hash = entry_hash(row.prev_hash, row_to_entry(row).body())
    result = _verify(api)
    assert result["ok"] is False and result["first_bad_entry"] == 5


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": SRC, "THERADOSE_SECRET_KEY": TEST_KEY}
    env.pop("THERADOSE_KEY_FILE", None)
    return subprocess.run(
        [sys.executable, "-m", "theradose", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def test_cli_audit_verify(sqlite_api) -> None:
    """The real command line (subprocess) on a tampered database."""
    _some_writes(sqlite_api)
    url = sqlite_api.app.state.settings.db_url
    ok = _cli("audit", "verify", "--db", url, "--json")
    assert ok.returncode == 0, ok.stderr
    data = json.loads(ok.stdout)
    assert data["ok"] is True and data["first_bad_entry"] is None and data["entries"] >= 10
    assert data["state_mismatches"] == [] and data["rows_checked"] >= 5
    with sqlite_api.app.state.db.engine.begin() as conn:
        conn.execute(text("UPDATE audit_entries SET reason = 'edited' WHERE seq = 3"))
    bad = _cli("audit", "verify", "--db", url, "--json")
    assert bad.returncode == 1
    data = json.loads(bad.stdout)
    assert (data["ok"], data["first_bad_entry"]) == (False, 3)
    assert data["problem"] == "entry 3 content changed or sealed with another key"
