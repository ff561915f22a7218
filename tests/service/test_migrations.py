"""The shipped Alembic migrations create exactly the schema of the SQLAlchemy models (both backends)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect as sa_inspect
from sqlalchemy import text

from theradose.service.db import make_engine
from theradose.service.migrate import upgrade
from theradose.service.models import Base


def test_migrations_match_models(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            diff = compare_metadata(context, Base.metadata)
            head = conn.execute(text("SELECT seq, hash, key_id, mac FROM audit_head WHERE id = 1")).one()
            tables = set(sa_inspect(conn).get_table_names())
            version = conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
    finally:
        engine.dispose()
    assert diff == []
    assert tuple(head) == (0, "0" * 64, None, None)
    assert "server_secret" not in tables  # no key is kept in the database it protects
    assert version == "loop_0003"
    assert upgrade(db_url) == "loop_0003"  # idempotent


def test_sqlite_uses_wal(sqlite_url: str) -> None:
    engine = make_engine(sqlite_url)
    try:
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar_one() == "wal"
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar_one() == 1
    finally:
        engine.dispose()


def test_upgrade_keeps_an_unkeyed_chain_verifiable_and_anchors_it(db_url_0002: str) -> None:
    """A database from before keyed sealing: its unkeyed entries still verify after the upgrade, new
    entries are keyed, and its signatures count only while the audit trail records them."""
    from fastapi.testclient import TestClient

    from .conftest import Api, login_all, make_app

    url, batch_id, signature_id = db_url_0002
    assert upgrade(url) == "loop_0003"
    app = make_app(url)
    with TestClient(app) as client:
        api = Api(client=client, app=app)
        login_all(client, api.tokens)
        result = api.get("/audit/verify", "admin").json()
        assert result["ok"] is True, result
        assert result["legacy_entries"] == 3 and result["entries"] > 3
        listed = api.get(f"/signatures/batch/{batch_id}", "admin").json()
        assert [(s["id"], s["key_id"], s["valid"]) for s in listed] == [(signature_id, None, True)]
        # a legacy-looking signature row the trail does not record is not valid
        engine = app.state.db.engine
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO signatures (record_type, record_id, signer, signer_name, meaning, "
                    "signed_at, record_hash, seal) SELECT record_type, record_id, 'physician', 'P', "
                    "meaning, signed_at, record_hash, seal FROM signatures WHERE id = :i"
                ),
                {"i": signature_id},
            )
        listed = api.get(f"/signatures/batch/{batch_id}", "admin").json()
        assert [s["valid"] for s in listed] == [True, False]
        # an unkeyed entry appended after keyed ones is refused by the verification
        with engine.begin() as conn:
            last = conn.execute(text("SELECT max(seq) FROM audit_entries")).scalar_one()
            conn.execute(text("UPDATE audit_entries SET key_id = NULL WHERE seq = :s"), {"s": last})
        result = api.get("/audit/verify", "admin").json()
        assert result["ok"] is False and result["first_bad_entry"] == last
    app.state.db.dispose()


@pytest.fixture
def db_url_0002(request: pytest.FixtureRequest, db_url: str) -> tuple[str, int, int]:
    """A database at revision 0002 (before keyed sealing) with an unkeyed chain of three entries: a
    user, a batch and a pharmacist's signature of the batch (then sealed with the database's own key).

    Returns the URL, the batch id and the signature id.
    """
    import hashlib
    import hmac

    from sqlalchemy import text

    from clock import days_from_now, now_utc
    from theradose.pharmacy.audit import GENESIS_HASH, canonical_json, chain_entry, format_time
    from theradose.pharmacy.signatures import record_hash
    from theradose.service.db import make_engine
    from theradose.service.migrate import upgrade

    engine = make_engine(db_url)
    sqlite = db_url.startswith("sqlite")
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE IF EXISTS alembic_version")
        for table in reversed(_all_tables(conn)):
            conn.exec_driver_sql(f"DROP TABLE {table}" + ("" if sqlite else " CASCADE"))
    engine.dispose()
    upgrade(db_url, "0002")
    engine = make_engine(db_url)
    now = now_utc()

    def stored(t: datetime) -> datetime:
        return t.replace(tzinfo=None) if sqlite else t

    batch = {
        "id": 1,
        "product": "[177Lu]Lu-PSMA-617",
        "nuclide": "Lu-177",
        "lot": "LEGACY-1",
        "activity_mbq": 30000.0,
        "volume_ml": 30.0,
        "reference_time": days_from_now(-1, now=now),
        "expiry_time": days_from_now(2, now=now),
        "status": "released",
        "delivery_id": None,
    }
    user = {"id": 1, "username": "oldadmin", "full_name": "", "role": "admin", "active": True}
    with engine.begin() as conn:
        secret = bytes.fromhex(conn.execute(text("SELECT secret_hex FROM server_secret")).scalar_one())
        conn.execute(
            text(
                "INSERT INTO users (id, username, full_name, role, password_hash, active, created_at) "
                "VALUES (1, 'oldadmin', '', 'admin', 'x', :a, :c)"
            ),
            {"a": True, "c": stored(now)},
        )
        conn.execute(
            text(
                "INSERT INTO batches (id, product, nuclide, lot, activity_mbq, volume_ml, reference_time, "
                "expiry_time, status, remaining_activity_ref_mbq, remaining_volume_ml, delivery_id, version) "
                "VALUES (1, :p, :n, :l, 30000, 30, :r, :e, 'released', 30000, 30, NULL, 2)"
            ),
            {
                "p": batch["product"],
                "n": batch["nuclide"],
                "l": batch["lot"],
                "r": stored(batch["reference_time"]),  # type: ignore[arg-type]
                "e": stored(batch["expiry_time"]),  # type: ignore[arg-type]
            },
        )
        record = {
            **batch,
            "reference_time": format_time(batch["reference_time"]),  # type: ignore[arg-type]
            "expiry_time": format_time(batch["expiry_time"]),  # type: ignore[arg-type]
        }
        manifest = {
            "signer": "pharmacist0",
            "meaning": "approved",
            "signed_at": format_time(now),
            "record_type": "batch",
            "record_id": "1",
            "record_hash": record_hash(record),
        }
        seal = hmac.new(secret, canonical_json(manifest).encode(), hashlib.sha256).hexdigest()
        signature = {"id": 1, "signer_name": "Pharmacist", **manifest, "seal": seal}
        conn.execute(
            text(
                "INSERT INTO signatures (id, record_type, record_id, signer, signer_name, meaning, "
                "signed_at, record_hash, seal) "
                "VALUES (1, 'batch', '1', :s, 'Pharmacist', 'approved', :t, :h, :seal)"
            ),
            {"s": manifest["signer"], "t": manifest["signed_at"], "h": manifest["record_hash"], "seal": seal},
        )
        prev_seq, prev_hash = 0, GENESIS_HASH
        created = {**user, "created_at": format_time(now)}
        full_batch = {
            **record,
            "remaining_activity_ref_mbq": 30000.0,
            "remaining_volume_ml": 30.0,
            "version": 2,
        }
        for entity, entity_id, action, after in (
            ("user", "1", "create", created),
            ("batch", "1", "create", full_batch),
            ("batch", "1", "sign", signature),
        ):
            entry = chain_entry(
                prev_seq=prev_seq,
                prev_hash=prev_hash,
                actor="legacy",
                at=now,
                action=action,
                entity=entity,
                entity_id=entity_id,
                after=after,
            )
            conn.execute(
                text(
                    "INSERT INTO audit_entries (seq, actor, at, action, entity, entity_id, after_json, "
                    "prev_hash, hash) VALUES (:q, 'legacy', :at, :ac, :en, :id, :af, :p, :h)"
                ),
                {
                    "q": entry.seq,
                    "at": format_time(now),
                    "ac": action,
                    "en": entity,
                    "id": entity_id,
                    "af": canonical_json(after),
                    "p": entry.prev_hash,
                    "h": entry.hash,
                },
            )
            prev_seq, prev_hash = entry.seq, entry.hash
        conn.execute(text("UPDATE audit_head SET seq = :s, hash = :h"), {"s": prev_seq, "h": prev_hash})
        if not sqlite:
            for table in ("users", "batches", "signatures"):
                conn.exec_driver_sql(f"SELECT setval('{table}_id_seq', (SELECT max(id) FROM {table}))")
    engine.dispose()
    return db_url, 1, 1


def _all_tables(conn: Any) -> list[str]:
    from sqlalchemy import inspect

    from theradose.service.models import Base

    present = set(inspect(conn).get_table_names())
    return [t.name for t in Base.metadata.sorted_tables if t.name in present]
