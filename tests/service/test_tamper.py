"""Tampering with the database behind the application's back is found by ``audit verify`` (SQLite and
PostgreSQL): direct edits of records and users, edited and re-hashed entries, a truncated tail with the
head moved back, forged signature and token rows, a swapped key. The untouched database verifies ok.

The attacker of these tests can run any SQL on the database but does not hold the key (which lives in a
file or an environment variable outside the database).
"""

from __future__ import annotations

import hashlib
import json
import secrets
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from clock import hours_from_now, iso
from theradose.pharmacy.audit import canonical_json, entry_hash, format_time
from theradose.service import audit_store
from theradose.service.keys import add_key_to_file

from .conftest import TEST_KEY, Api, login_all, make_app, password_of


def _workflow(api: Api) -> dict[str, Any]:
    """A patient, a written directive, a released batch, a dispensing and a pharmacist's signature."""
    pseudonym = api.patient()
    rx = api.prescription(pseudonym)
    batch = api.released_batch()
    planned = hours_from_now(2)
    r = api.post(
        f"/batches/{batch}/dispensings",
        "pharmacist",
        {
            "prescription_id": rx,
            "activity_mbq": 7400,
            "planned_time": iso(planned),
            "calibrator_id": api.calibrator(),
        },
    )
    assert r.status_code == 201, r.text
    dispensing = r.json()["id"]
    r = api.post(
        "/signatures",
        "pharmacist",
        {
            "record_type": "batch",
            "record_id": batch,
            "meaning": "approved",
            "password": password_of("pharmacist"),
        },
    )
    assert r.status_code == 201, r.text
    return {"patient": pseudonym, "rx": rx, "batch": batch, "dispensing": dispensing}


def _verify(api: Api) -> dict[str, Any]:
    r = api.get("/audit/verify", "admin")
    assert r.status_code == 200, r.text
    return dict(r.json())


def _sql(api: Api, statement: str, **params: Any) -> Any:
    with api.app.state.db.engine.begin() as conn:
        return conn.execute(text(statement), params)


def _mismatches(result: dict[str, Any]) -> set[tuple[str, str, str | None]]:
    return {(m["table"], m["id"], m["field"]) for m in result["state_mismatches"]}


def test_untouched_database_verifies_ok(api: Api, tmp_path: Path) -> None:
    ids = _workflow(api)
    result = _verify(api)
    assert result["ok"] is True, result
    assert result["problem"] is None and result["state_mismatches"] == [] and result["head_ok"] is True
    # users 5 + patient + prescription + batch + 2 QC + dispensing + signature
    assert result["rows_checked"] >= 12
    assert result["key_ids"] == [api.app.state.keys.active_id] and result["legacy_entries"] == 0
    r = api.get(f"/signatures/batch/{ids['batch']}", "admin")
    assert [(s["meaning"], s["valid"]) for s in r.json()] == [("released", True), ("approved", True)]


def test_direct_update_of_a_dispensing_is_named(api: Api) -> None:
    ids = _workflow(api)
    _sql(api, "UPDATE dispensings SET activity_at_planned_mbq = 9000 WHERE id = :i", i=ids["dispensing"])
    # the API serves the new value ...
    assert (
        api.get(f"/dispensings/{ids['dispensing']}", "pharmacist").json()["activity_at_planned_mbq"] == 9000
    )
    # ... and verify names table, id and field, with the recorded and the found value
    result = _verify(api)
    assert result["ok"] is False and result["first_bad_entry"] is None  # the chain itself is intact
    assert _mismatches(result) == {("dispensings", str(ids["dispensing"]), "activity_at_planned_mbq")}
    mismatch = result["state_mismatches"][0]
    assert mismatch["recorded"] == pytest.approx(7400) and mismatch["found"] == 9000
    assert result["problem"].startswith(f"dispensings id {ids['dispensing']} field activity_at_planned_mbq")


def test_role_change_in_the_database_is_named(api: Api) -> None:
    _workflow(api)
    user_id = _sql(api, "SELECT id FROM users WHERE username = 'technologist'").scalar_one()
    _sql(api, "UPDATE users SET role = 'admin' WHERE id = :i", i=user_id)
    result = _verify(api)
    assert result["ok"] is False
    assert _mismatches(result) == {("users", str(user_id), "role")}
    assert result["state_mismatches"][0]["recorded"] == "technologist"


def test_password_hash_and_identity_swapped_in_the_database_are_found(api: Api) -> None:
    """The trail keeps keyed digests (never the values) of password hashes and identities."""
    ids = _workflow(api)
    other = _sql(api, "SELECT password_hash FROM users WHERE username = 'admin'").scalar_one()
    _sql(api, "UPDATE users SET password_hash = :h WHERE username = 'physician'", h=other)
    _sql(api, "UPDATE patient_identities SET mrn = 'STOLEN-1'")
    result = _verify(api)
    physician = _sql(api, "SELECT id FROM users WHERE username = 'physician'").scalar_one()
    patient = _sql(api, "SELECT id FROM patients WHERE pseudonym = :p", p=ids["patient"]).scalar_one()
    assert _mismatches(result) == {
        ("users", str(physician), "password_digest"),
        ("patients", ids["patient"], "identity_digest"),
    }
    trail = _sql(api, "SELECT after_json FROM audit_entries WHERE after_json IS NOT NULL").scalars().all()
    assert not any("STOLEN" in a or other in a for a in trail)  # digests only, no values
    assert patient >= 1


def test_rows_inserted_or_deleted_outside_the_application_are_named(api: Api) -> None:
    ids = _workflow(api)
    qc = _sql(api, "SELECT min(id) FROM qc_results WHERE batch_id = :b", b=ids["batch"]).scalar_one()
    _sql(api, "DELETE FROM qc_results WHERE id = :i", i=qc)
    _sql(
        api,
        "INSERT INTO calibrators (name, name_key, manufacturer, model, serial, tolerance_fraction) "
        "VALUES ('ghost', 'ghost', '', '', '', 0.5)",
    )
    ghost = _sql(api, "SELECT id FROM calibrators WHERE name = 'ghost'").scalar_one()
    result = _verify(api)
    assert _mismatches(result) == {("qc_results", str(qc), None), ("calibrators", str(ghost), None)}
    problems = {m["table"]: m["problem"] for m in result["state_mismatches"]}
    assert problems["qc_results"].startswith("deleted outside the application")
    assert problems["calibrators"].startswith("not in the audit trail")


def _rehash_from(api: Api, seq: int, key: bytes | None) -> None:
    """What an attacker without the key can do: recompute every hash from ``seq`` on (unkeyed, or with a
    guessed key) and move the head to the new last hash."""
    from theradose.service.models import AuditEntryRow, AuditHead

    with api.app.state.db.engine.begin() as conn:
        rows = conn.execute(
            text("SELECT * FROM audit_entries WHERE seq >= :s ORDER BY seq"), {"s": seq}
        ).all()
        prev = conn.execute(
            text("SELECT hash FROM audit_entries WHERE seq = :s"), {"s": seq - 1}
        ).scalar_one()
        for row in rows:
            entry = audit_store.row_to_entry(AuditEntryRow(**row._mapping))
            new = entry_hash(prev, entry.body(), key)
            conn.execute(
                text("UPDATE audit_entries SET prev_hash = :p, hash = :h WHERE seq = :s"),
                {"p": prev, "h": new, "s": row.seq},
            )
            prev = new
        conn.execute(text("UPDATE audit_head SET hash = :h WHERE id = 1"), {"h": prev})
    assert AuditHead  # the head row the attacker moved


@pytest.mark.parametrize("guess", [None, b"a guessed key of the right length!"], ids=["sha256", "wrong-key"])
def test_edited_and_rehashed_entry_is_found(api: Api, guess: bytes | None) -> None:
    _workflow(api)
    seq = _sql(api, "SELECT min(seq) FROM audit_entries WHERE entity = 'dispensing'").scalar_one()
    after = json.loads(_sql(api, "SELECT after_json FROM audit_entries WHERE seq = :s", s=seq).scalar_one())
    after["activity_at_planned_mbq"] = 9000.0
    _sql(api, "UPDATE audit_entries SET after_json = :a WHERE seq = :s", a=canonical_json(after), s=seq)
    _rehash_from(api, seq, guess)
    result = _verify(api)
    assert result["ok"] is False and result["first_bad_entry"] == seq
    assert "content changed or sealed with another key" in result["problem"]


def test_deleted_newest_entry_with_head_moved_back_is_found(api: Api) -> None:
    ids = _workflow(api)
    # the newest entry is an audited re-identification (who looked at whose identity)
    assert api.get(f"/patients/{ids['patient']}/identity", "physician").status_code == 200
    last = _sql(api, "SELECT max(seq) FROM audit_entries").scalar_one()
    prev = _sql(api, "SELECT hash FROM audit_entries WHERE seq = :s", s=last - 1).scalar_one()
    _sql(api, "DELETE FROM audit_entries WHERE seq = :s", s=last)
    forged = hashlib.sha256(f"{last - 1}{prev}".encode()).hexdigest()
    _sql(
        api, "UPDATE audit_head SET seq = :s, hash = :h, mac = :m WHERE id = 1", s=last - 1, h=prev, m=forged
    )
    result = _verify(api)
    assert result["ok"] is False and result["head_ok"] is False
    assert result["problem"].startswith("audit head seal invalid")


def test_truncated_tail_with_an_old_head_replayed_needs_the_checkpoint(
    api: Api, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An attacker who kept a copy of an earlier head row can put it back after deleting the newest
    entries: the chain is then a valid prefix, and only a checkpoint written outside the database shows
    that entries are missing."""
    from theradose.cli import main

    ids = _workflow(api)
    old_head = _sql(api, "SELECT seq, hash, key_id, mac FROM audit_head WHERE id = 1").one()
    assert api.get(f"/patients/{ids['patient']}/identity", "physician").status_code == 200
    assert api.get(f"/patients/{ids['patient']}/identity", "technologist").status_code == 200
    checkpoints = tmp_path / "checkpoints"
    checkpoints.mkdir()
    with api.app.state.db.read() as session:
        written = audit_store.write_checkpoint(session, api.app.state.keys, checkpoints)
    assert written is not None and written["seq"] == old_head.seq + 2
    _sql(api, "DELETE FROM audit_entries WHERE seq > :s", s=old_head.seq)
    _sql(
        api,
        "UPDATE audit_head SET seq = :s, hash = :h, key_id = :k, mac = :m WHERE id = 1",
        s=old_head.seq,
        h=old_head.hash,
        k=old_head.key_id,
        m=old_head.mac,
    )
    assert _verify(api)["ok"] is True  # a replayed head is consistent: the database alone cannot tell
    with api.app.state.db.read() as session:
        result = audit_store.verify(session, api.app.state.keys, checkpoint=checkpoints)
    assert result.ok is False and result.checkpoint is not None
    assert result.problem == (
        f"chain truncated: checkpoint line 1 of {checkpoints / audit_store.CHECKPOINT_FILE} "
        f"(written {written['written_at']}) saw entry {old_head.seq + 2}, "
        f"the chain ends at entry {old_head.seq}"
    )
    # the command line reports the same, exit code 1
    url = api.app.state.settings.db_url
    monkeypatch.delenv("THERADOSE_KEY_FILE", raising=False)
    monkeypatch.setenv("THERADOSE_SECRET_KEY", TEST_KEY)
    with pytest.raises(SystemExit) as exc:
        main(["audit", "verify", "--db", url, "--checkpoint", str(checkpoints), "--json"])
    assert exc.value.code == 1


def test_checkpoint_detects_a_rewritten_chain_and_a_forged_checkpoint(api: Api, tmp_path: Path) -> None:
    _workflow(api)
    file = tmp_path / "cp.jsonl"
    with api.app.state.db.read() as session:
        record = audit_store.write_checkpoint(session, api.app.state.keys, file)
        assert audit_store.verify(session, api.app.state.keys, checkpoint=file).ok
    assert record is not None
    seq = record["seq"]
    _sql(api, "UPDATE audit_entries SET hash = :h WHERE seq = :s", h="f" * 64, s=seq)
    with api.app.state.db.read() as session:
        result = audit_store.verify(session, api.app.state.keys, checkpoint=file)
    assert result.checkpoint is not None and result.checkpoint.problem.startswith(
        f"entry {seq} rewritten since"
    )
    # a checkpoint line edited by hand (no key) is refused
    lines = file.read_text().splitlines()
    edited = json.loads(lines[0]) | {"seq": seq - 1}
    file.write_text(json.dumps(edited) + "\n")
    with api.app.state.db.read() as session:
        result = audit_store.verify(session, api.app.state.keys, checkpoint=file)
    assert result.checkpoint is not None and result.checkpoint.problem.endswith(
        "seal invalid (edited or forged)"
    )


def test_forged_signature_row_is_not_valid_and_is_named(api: Api) -> None:
    ids = _workflow(api)
    record_hash = _sql(
        api,
        "SELECT record_hash FROM signatures "
        "WHERE record_type = 'batch' AND record_id = :r AND meaning = 'approved'",
        r=str(ids["batch"]),
    ).scalar_one()
    key_id = api.app.state.keys.active_id
    for seal, kid in ((secrets.token_hex(32), key_id), (secrets.token_hex(32), None)):
        _sql(
            api,
            "INSERT INTO signatures (record_type, record_id, signer, signer_name, meaning, signed_at, "
            "record_hash, seal, key_id) VALUES ('batch', :r, 'physician', 'Physician', 'approved', "
            ":t, :h, :s, :k)",
            r=str(ids["batch"]),
            t=format_time(hours_from_now(-1)),
            h=record_hash,
            s=seal,
            k=kid,
        )
    listed = api.get(f"/signatures/batch/{ids['batch']}", "admin").json()
    assert [(s["signer"], s["valid"]) for s in listed] == [
        ("qp", True),  # released by the qualified person
        ("pharmacist", True),  # approved
        ("physician", False),
        ("physician", False),
    ]
    result = _verify(api)
    forged = {str(s["id"]) for s in listed[2:]}
    assert _mismatches(result) == {("signatures", i, None) for i in forged}


def test_forged_token_row_opens_nothing(api: Api) -> None:
    token = secrets.token_urlsafe(32)
    admin = _sql(api, "SELECT id FROM users WHERE username = 'admin'").scalar_one()
    _sql(
        api,
        "INSERT INTO session_tokens (token_hash, user_id, created_at, expires_at, revoked) "
        "VALUES (:h, :u, :c, :e, :r)",
        h=hashlib.sha256(token.encode()).hexdigest(),
        u=admin,
        c=hours_from_now(-1),
        e=hours_from_now(10),
        r=False,
    )
    r = api.client.get("/users", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 401


def _app_with_key_file(url: str, key_file: Path, *, with_users: bool = False) -> Any:
    return make_app(url, with_users=with_users, secret_key=None, key_file=key_file)


def test_swapped_key_is_found_and_rotation_keeps_old_entries_valid(db_url: str, tmp_path: Path) -> None:
    key_file = tmp_path / "keys"
    first_id, created = add_key_to_file(key_file, "site-1")
    assert created and (key_file.stat().st_mode & 0o777) == 0o600
    app = _app_with_key_file(db_url, key_file, with_users=True)
    with TestClient(app) as client:
        api = Api(client=client, app=app)
        login_all(client, api.tokens)
        ids = _workflow(api)
        assert _verify(api)["ok"] is True
    app.state.db.dispose()

    # rotation: a second key becomes active; entries and signatures of the first still verify
    second_id, created = add_key_to_file(key_file, "site-2")
    assert not created
    app = _app_with_key_file(db_url, key_file)
    with TestClient(app) as client:
        api = Api(client=client, app=app)
        login_all(client, api.tokens)
        api.patient()
        result = _verify(api)
        assert result["ok"] is True and result["key_ids"] == [first_id, second_id]
        listed = api.get(f"/signatures/batch/{ids['batch']}", "admin").json()
        assert [s["valid"] for s in listed] == [True, True]
    app.state.db.dispose()

    # swapped: the same key ids with other key bytes (e.g. an attacker's file)
    swapped = tmp_path / "swapped"
    add_key_to_file(swapped, "site-1")
    add_key_to_file(swapped, "site-2")
    app = _app_with_key_file(db_url, swapped)
    with app.state.db.read() as session:
        result = audit_store.verify(session, app.state.keys)
    assert result.ok is False and result.chain.first_bad_entry == 1
    assert result.problem == "entry 1 content changed or sealed with another key"
    with TestClient(app) as client:
        listed = client.get(
            f"/signatures/batch/{ids['batch']}",
            headers={"Authorization": "Bearer " + _login(client, "admin")},
        ).json()
        assert [s["valid"] for s in listed] == [False, False]
    app.state.db.dispose()

    # a key the ring does not hold at all (e.g. the environment key of another site)
    app = make_app(db_url, with_users=False, secret_key=TEST_KEY + "-other", key_file=None)
    with app.state.db.read() as session:
        result = audit_store.verify(session, app.state.keys)
    assert result.ok is False and result.problem == (
        "entry 1 sealed with key 'site-1', which the key ring does not hold"
    )
    app.state.db.dispose()


def _login(client: Any, role: str) -> str:
    r = client.post("/auth/login", json={"username": role, "password": password_of(role)})
    assert r.status_code == 200, r.text
    return str(r.json()["token"])


def test_every_table_is_checked_or_says_why_not() -> None:
    """A table added later is either compared with the audit trail or listed with the reason it is not."""
    from theradose.service.models import Base

    tracked = {t.model.__tablename__ for t in audit_store.TRACKED.values()}
    tables = {t.name for t in Base.metadata.sorted_tables}
    assert tables == tracked | set(audit_store.UNTRACKED)
    assert not tracked & set(audit_store.UNTRACKED)


def test_running_service_writes_checkpoints(sqlite_url: str, tmp_path: Path) -> None:
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    app = make_app(sqlite_url, checkpoint_path=folder, checkpoint_interval_s=0.05)
    with TestClient(app) as client:
        api = Api(client=client, app=app)
        login_all(client, api.tokens)
        api.patient()
    # written while running and once more at shutdown, after the last write
    lines = (folder / audit_store.CHECKPOINT_FILE).read_text().splitlines()
    assert len(lines) >= 1
    with app.state.db.read() as session:
        last = session.execute(text("SELECT seq FROM audit_head")).scalar_one()
        result = audit_store.verify(session, app.state.keys, checkpoint=folder)
    assert result.ok and result.checkpoint is not None and result.checkpoint.newest_seq == last
    app.state.db.dispose()
