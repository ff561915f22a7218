"""Engine and transactions.

Values bound to statements are never shown in errors or logs (``hide_parameters``): they may be
identities. SQLite: WAL journal, foreign keys on, busy timeout, and every write transaction opened with
``BEGIN IMMEDIATE`` so writers are serialized (no lost update, no upgrade deadlock); within one
process writers also queue on a lock first, which avoids SQLite's sleeping busy handler and its
latency tail. PostgreSQL: every write transaction first locks the audit head row
(``SELECT ... FOR UPDATE``), which orders all writers because each write appends to the one audit
chain; rows that are read-modified-written (batch stock) are also locked ``FOR UPDATE``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, create_engine, event, select
from sqlalchemy.orm import Session, sessionmaker

from theradose.service.settings import normalize_db_url

if TYPE_CHECKING:
    from theradose.service.keys import KeyRing

#: Seconds a SQLite writer waits for the write lock before failing.
SQLITE_BUSY_TIMEOUT_S = 60


def make_engine(url: str) -> Engine:
    """Create an engine for ``url`` with the pragmas/events described in the module docstring."""
    url = normalize_db_url(url)
    if url.startswith("sqlite"):
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_S},
            pool_size=20,
            hide_parameters=True,
        )

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.isolation_level = None  # we emit BEGIN ourselves
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_S * 1000}")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn: Any) -> None:
            conn.exec_driver_sql(conn.get_execution_options().get("sqlite_begin", "BEGIN"))

        return engine
    return create_engine(url, pool_size=20, max_overflow=20, pool_pre_ping=True, hide_parameters=True)


class Database:
    """An engine plus read and write session factories.

    ``keyring`` (kept outside the database) seals the audit entries written in :meth:`write`
    transactions; it travels on each session (``session.info``, see :mod:`theradose.service.audit_store`).
    """

    def __init__(self, url: str, keyring: KeyRing | None = None) -> None:
        self.url = normalize_db_url(url)
        self.keyring = keyring
        self.engine = make_engine(self.url)
        self.is_sqlite = self.url.startswith("sqlite")
        write_bind = (
            self.engine.execution_options(sqlite_begin="BEGIN IMMEDIATE") if self.is_sqlite else self.engine
        )
        self._writer_lock: Any = threading.Lock() if self.is_sqlite else nullcontext()
        self._read = sessionmaker(bind=self.engine, expire_on_commit=False)
        self._write = sessionmaker(bind=write_bind, expire_on_commit=False)

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A session for reading; closed (transaction ended, objects detached but loaded) at the end."""
        with self._read() as session:
            if self.keyring is not None:
                session.info["theradose.keyring"] = self.keyring
            yield session

    @contextmanager
    def write(self) -> Iterator[Session]:
        """A write transaction holding the writer lock; committed on success, rolled back on error."""
        from theradose.service.models import AuditHead

        with self._writer_lock, self._write() as session, session.begin():
            if self.keyring is not None:
                session.info["theradose.keyring"] = self.keyring
            session.execute(select(AuditHead).where(AuditHead.id == 1).with_for_update()).scalar_one()
            yield session

    def dispose(self) -> None:
        """Close all pooled connections."""
        self.engine.dispose()
