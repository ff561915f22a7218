"""Alembic environment: runs on the connection given by theradose.service.migrate (or the URL)."""

from __future__ import annotations

from alembic import context

from theradose.service.models import Base

config = context.config


def _run(connection: object) -> None:
    context.configure(
        connection=connection,  # type: ignore[arg-type]
        target_metadata=Base.metadata,
        render_as_batch=True,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


_connection = config.attributes.get("connection")
if _connection is not None:
    _run(_connection)
else:
    from theradose.service.db import make_engine

    _engine = make_engine(config.get_main_option("sqlalchemy.url") or "")
    with _engine.connect() as _conn:
        _run(_conn)
    _engine.dispose()
