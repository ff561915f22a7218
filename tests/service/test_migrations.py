"""The shipped Alembic migrations create exactly the schema of the SQLAlchemy models (both backends)."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
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
            head = conn.execute(text("SELECT seq, hash FROM audit_head WHERE id = 1")).one()
            secret = conn.execute(text("SELECT secret_hex FROM server_secret WHERE id = 1")).scalar_one()
            version = conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
    finally:
        engine.dispose()
    assert diff == []
    assert tuple(head) == (0, "0" * 64)
    assert len(bytes.fromhex(secret)) == 32
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
